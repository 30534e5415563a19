//! Python binding for the AWS event stream decoder: `fd2._native.EventStreamDecoder`.

use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBytes, PyDict};

use crate::errors::{Error, catch_panic};
use crate::eventstream::{DEFAULT_MAX_MESSAGE_BYTES, Decoder, HeaderValue, Message};

/// One decoded message as Python sees it: headers by name, and the payload.
type PyMessage<'py> = (Bound<'py, PyDict>, Bound<'py, PyBytes>);

/// Incremental decoder for `application/vnd.amazon.eventstream` bytes: `feed()` returns every
/// message completed so far as (headers, payload), CRCs checked. When a chunk completes good
/// messages and then fails, the good ones are returned and the error is raised by the next call
/// (what came before a corrupt message is still relayed).
//
// The GIL is kept: a Bedrock event is a few hundred bytes, decoded in far less time than
// detaching from the interpreter costs, and the results are Python objects anyway.
#[pyclass(module = "fd2._native", name = "EventStreamDecoder")]
pub struct PyEventStreamDecoder {
    inner: Decoder,
    /// An error met after good messages of the same chunk, raised by the next call.
    pending: Option<Error>,
}

#[pymethods]
impl PyEventStreamDecoder {
    #[new]
    #[pyo3(
        signature = (*, max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES),
        text_signature = "(*, max_message_bytes=16777216)"
    )]
    fn new(max_message_bytes: usize) -> Self {
        Self {
            inner: Decoder::new(max_message_bytes),
            pending: None,
        }
    }

    /// Appends `chunk`; returns the messages it completed as (headers, payload), headers a dict
    /// of name to value (bool, int, bytes, str, datetime for timestamps, UUID for uuids; the
    /// first of a repeated name wins).
    fn feed<'py>(&mut self, chunk: &Bound<'py, PyBytes>) -> PyResult<Vec<PyMessage<'py>>> {
        if let Some(err) = self.pending.take() {
            return Err(err.into());
        }
        let py = chunk.py();
        let bytes = chunk.as_bytes();
        let mut out = Vec::new();
        // A Python error while building the results (memory) stops the callback's work; it is
        // kept here and raised after the decoder has returned.
        let mut py_err: Option<PyErr> = None;
        let inner = &mut self.inner;
        let result = catch_panic(|| {
            inner.feed(bytes, |message| {
                if py_err.is_none() {
                    match to_python(py, &message) {
                        Ok(item) => out.push(item),
                        Err(err) => py_err = Some(err),
                    }
                }
            })
        });
        if let Some(err) = py_err {
            return Err(err);
        }
        match result {
            Ok(()) => Ok(out),
            Err(Error::Panic(msg)) => {
                self.inner.poison();
                Err(Error::Panic(msg).into())
            }
            Err(err) if !out.is_empty() => {
                self.pending = Some(err);
                Ok(out)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Ends the stream: returns the bytes of an unfinished last message (0 when the stream
    /// ended on a message boundary), which are dropped.
    fn finish(&mut self) -> PyResult<usize> {
        if let Some(err) = self.pending.take() {
            return Err(err.into());
        }
        Ok(self.inner.finish()?)
    }

    /// Messages decoded so far.
    #[getter]
    fn messages(&self) -> u64 {
        self.inner.messages()
    }

    /// Bytes held back (the unfinished message).
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    /// The largest message accepted, in bytes.
    #[getter]
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

fn to_python<'py>(py: Python<'py>, message: &Message<'_>) -> PyResult<PyMessage<'py>> {
    let headers = PyDict::new(py);
    for (name, value) in &message.headers {
        if headers.contains(*name)? {
            continue;
        }
        match *value {
            HeaderValue::Bool(b) => headers.set_item(*name, b)?,
            HeaderValue::Byte(b) => headers.set_item(*name, b)?,
            HeaderValue::Short(s) => headers.set_item(*name, s)?,
            HeaderValue::Int(i) => headers.set_item(*name, i)?,
            HeaderValue::Long(l) => headers.set_item(*name, l)?,
            HeaderValue::Bytes(b) => headers.set_item(*name, PyBytes::new(py, b))?,
            HeaderValue::String(s) => headers.set_item(*name, s)?,
            HeaderValue::Timestamp(ms) => headers.set_item(*name, timestamp(py, ms)?)?,
            HeaderValue::Uuid(u) => {
                let uuid = py.import("uuid")?.getattr("UUID")?.call(
                    (),
                    Some(&[("bytes", PyBytes::new(py, &u))].into_py_dict(py)?),
                )?;
                headers.set_item(*name, uuid)?;
            }
        }
    }
    Ok((headers, PyBytes::new(py, message.payload)))
}

/// Milliseconds since the epoch as an aware UTC `datetime` (exact: no float on the way).
fn timestamp(py: Python<'_>, ms: i64) -> PyResult<Bound<'_, PyAny>> {
    let datetime = py.import("datetime")?;
    let utc = datetime.getattr("timezone")?.getattr("utc")?;
    let epoch = datetime
        .getattr("datetime")?
        .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
    let delta = datetime
        .getattr("timedelta")?
        .call((), Some(&[("milliseconds", ms)].into_py_dict(py)?))?;
    epoch.call_method1("__add__", (delta,))
}

/// Registers the event stream decoder on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEventStreamDecoder>()
}

#[cfg(test)]
mod tests {
    use crate::eventstream::DEFAULT_MAX_MESSAGE_BYTES;

    #[test]
    fn text_signature_states_the_default() {
        // Keep the hand-written `text_signature` of `EventStreamDecoder()` in step.
        assert_eq!(DEFAULT_MAX_MESSAGE_BYTES, 16_777_216);
    }
}
