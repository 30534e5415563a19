//! The crate's one error enum, panic capture, and its single mapping to Python exceptions.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use std::ffi::CStr;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Every failure the native code can report. Pure Rust: the core modules
/// return it and know nothing of Python; [`From<Error> for PyErr`] is the
/// only place where variants meet exception classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// One SSE event grew past the configured byte limit.
    SseEventTooLarge { limit: usize, size: usize },
    /// An SSE framer was used in a state that does not allow the call.
    SseState(&'static str),
    /// An encoding name fd2 does not embed.
    UnknownEncoding(String),
    /// A token id that is not in the encoding.
    UnknownToken(u32),
    /// A request body that cannot be canonicalised into a cache key.
    CacheKey(String),
    /// AWS event stream bytes that are not a valid message (bad CRC, lengths or header),
    /// or a decoder used after it failed.
    EventStream(String),
    /// One AWS event stream message declares more bytes than the decoder's limit.
    EventStreamTooLarge { limit: usize, size: usize },
    /// A Rust panic was caught at the boundary of a call.
    Panic(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SseEventTooLarge { limit, size } => write!(
                f,
                "SSE event exceeds max_event_bytes={limit} (at least {size} bytes)"
            ),
            Self::SseState(msg) => f.write_str(msg),
            Self::UnknownEncoding(name) => write!(
                f,
                "unknown encoding {name:?} (known: o200k_base, cl100k_base)"
            ),
            Self::UnknownToken(id) => write!(f, "token id {id} is not in the encoding"),
            Self::CacheKey(msg) => write!(f, "no cache key: {msg}"),
            Self::EventStream(msg) => write!(f, "invalid event stream: {msg}"),
            Self::EventStreamTooLarge { limit, size } => write!(
                f,
                "event stream message of {size} bytes exceeds max_message_bytes={limit}"
            ),
            Self::Panic(msg) => write!(f, "internal error in fd2._native: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs `f`, turning a panic into [`Error::Panic`] so it never unwinds into
/// Python (where pyo3 would raise `PanicException`, a `BaseException`).
///
/// # Errors
/// Whatever `f` returns, or [`Error::Panic`] if it panicked.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    // AssertUnwindSafe: callers that hold state across the call mark it
    // unusable when they get `Error::Panic` back (see sse_py.rs).
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panic(describe(&*payload))))
}

fn describe(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// One exception class: its Python name, its parent (`None`: the root) and its doc.
struct ExceptionSpec {
    name: &'static CStr,
    parent: Option<usize>,
    doc: &'static CStr,
}

// Index order matters: parents come first. `Error` variants map to an index below.
const NATIVE_ERROR: usize = 0;
const SSE_STATE_ERROR: usize = 1;
const SSE_EVENT_TOO_LARGE: usize = 2;
const UNKNOWN_ENCODING: usize = 3;
const CACHE_KEY_ERROR: usize = 4;
const EVENT_STREAM_ERROR: usize = 5;

const EXCEPTIONS: [ExceptionSpec; 6] = [
    ExceptionSpec {
        name: c"fd2._native.NativeError",
        parent: None,
        doc: c"Root of every exception raised by fd2._native (an fd2.serving.errors.Fd2Error).",
    },
    ExceptionSpec {
        name: c"fd2._native.SseStateError",
        parent: Some(NATIVE_ERROR),
        doc: c"An SSE framer was called in a state that does not allow it (e.g. feed() after finish()).",
    },
    ExceptionSpec {
        name: c"fd2._native.SseEventTooLarge",
        parent: Some(NATIVE_ERROR),
        doc: c"One server-sent event grew beyond the framer's max_event_bytes.",
    },
    ExceptionSpec {
        name: c"fd2._native.UnknownEncoding",
        parent: Some(NATIVE_ERROR),
        doc: c"A token encoding name (or token id) that fd2 does not know.",
    },
    ExceptionSpec {
        name: c"fd2._native.CacheKeyError",
        parent: Some(NATIVE_ERROR),
        doc: c"A request body that cannot be canonicalised (not JSON, duplicate keys, ...).",
    },
    ExceptionSpec {
        name: c"fd2._native.EventStreamError",
        parent: Some(NATIVE_ERROR),
        doc: c"AWS event stream bytes that are not a valid message (CRC, lengths, headers, size limit).",
    },
];

/// The exception classes, created once at module init under `fd2.serving.errors.Fd2Error`
/// (a Python class, so they cannot be static Rust types).
static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn exception_index(err: &Error) -> usize {
    match err {
        Error::SseEventTooLarge { .. } => SSE_EVENT_TOO_LARGE,
        Error::SseState(_) => SSE_STATE_ERROR,
        Error::UnknownEncoding(_) | Error::UnknownToken(_) => UNKNOWN_ENCODING,
        Error::CacheKey(_) => CACHE_KEY_ERROR,
        Error::EventStream(_) | Error::EventStreamTooLarge { .. } => EVENT_STREAM_ERROR,
        Error::Panic(_) => NATIVE_ERROR,
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        let msg = err.to_string();
        let index = exception_index(&err);
        Python::attach(|py| match TYPES.get(py) {
            Some(types) => PyErr::from_type(types[index].bind(py).clone(), msg),
            // Only reachable if the module failed to initialise.
            None => PyRuntimeError::new_err(msg),
        })
    }
}

/// Creates the exception classes under `fd2.serving.errors.Fd2Error` and adds them to
/// the extension module.
///
/// # Errors
/// If `fd2.serving.errors` cannot be imported or a class cannot be created.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let root = py
        .import("fd2.serving.errors")?
        .getattr("Fd2Error")?
        .cast_into::<PyType>()?;
    let types = TYPES.get_or_try_init(py, || -> PyResult<Vec<Py<PyType>>> {
        let mut types: Vec<Py<PyType>> = Vec::with_capacity(EXCEPTIONS.len());
        for spec in &EXCEPTIONS {
            let parent = spec
                .parent
                .map_or_else(|| root.clone(), |i| types[i].bind(py).clone());
            let ty = PyErr::new_type(py, spec.name, Some(spec.doc), Some(&parent), None)?;
            types.push(ty);
        }
        Ok(types)
    })?;
    for (spec, ty) in EXCEPTIONS.iter().zip(types) {
        let full = spec.name.to_str().unwrap_or_default();
        let short = full.rsplit('.').next().unwrap_or(full);
        m.add(short, ty.bind(py))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Error, catch_panic};

    #[test]
    fn passes_results_through() {
        assert_eq!(catch_panic(|| Ok::<_, Error>(7)), Ok(7));
        let err = Error::SseState("nope");
        assert_eq!(catch_panic(|| Err::<(), _>(err.clone())), Err(err));
    }

    #[test]
    fn turns_panics_into_errors() {
        let got = catch_panic(|| -> Result<(), Error> { panic!("boom {}", 1) });
        assert_eq!(got, Err(Error::Panic("boom 1".to_owned())));
        let got = catch_panic(|| -> Result<(), Error> { panic!("static") });
        assert_eq!(got, Err(Error::Panic("static".to_owned())));
    }

    #[test]
    fn messages_name_the_limit() {
        let msg = Error::SseEventTooLarge {
            limit: 10,
            size: 11,
        }
        .to_string();
        assert!(msg.contains("max_event_bytes=10"), "{msg}");
    }
}
