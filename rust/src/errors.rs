//! The crate's one error enum, panic capture, and its single mapping to Python exceptions.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

/// Every failure the native code can report. Pure Rust: the core modules
/// return it and know nothing of Python; [`From<Error> for PyErr`] is the
/// only place where variants meet exception classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// One SSE event grew past the configured byte limit.
    SseEventTooLarge { limit: usize, size: usize },
    /// An SSE framer was used in a state that does not allow the call.
    SseState(&'static str),
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

create_exception!(
    fd2._native,
    NativeError,
    PyException,
    "Root of every exception raised by fd2._native."
);
create_exception!(
    fd2._native,
    SseStateError,
    NativeError,
    "An SseFramer was called in a state that does not allow it (e.g. feed() after finish())."
);
create_exception!(
    fd2._native,
    SseEventTooLarge,
    NativeError,
    "One server-sent event grew beyond the framer's max_event_bytes."
);

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        let msg = err.to_string();
        match err {
            Error::SseEventTooLarge { .. } => SseEventTooLarge::new_err(msg),
            Error::SseState(_) => SseStateError::new_err(msg),
            Error::Panic(_) => NativeError::new_err(msg),
        }
    }
}

/// Registers the exception classes on the extension module.
///
/// # Errors
/// If adding an attribute to the module fails.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NativeError", py.get_type::<NativeError>())?;
    m.add("SseStateError", py.get_type::<SseStateError>())?;
    m.add("SseEventTooLarge", py.get_type::<SseEventTooLarge>())?;
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
