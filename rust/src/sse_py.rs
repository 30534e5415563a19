//! Python bindings for the SSE framer: `fd2._native.SseFramer`, a thin wrapper over `sse::SseFramer`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Error, catch_panic};
use crate::sse::{DEFAULT_MAX_EVENT_BYTES, Ready, SseFramer};

/// Incremental framer for `text/event-stream` bytes: `feed()` returns every
/// completed event exactly as received, `finish()` the remainder.
//
// The GIL is kept for every call: a typical chunk is a few KB and is framed
// in well under a microsecond, less than detaching and re-attaching to the
// interpreter costs; keeping it also lets `feed` return the input object
// itself (zero copy) and build output bytes without an extra copy.
#[pyclass(module = "fd2._native", name = "SseFramer")]
pub struct PySseFramer {
    inner: SseFramer,
}

impl PySseFramer {
    /// Runs `f` on the framer; a panic becomes a `NativeError` for this call
    /// and leaves the framer refusing further work (its state may be torn).
    fn guarded<T>(&mut self, f: impl FnOnce(&mut SseFramer) -> Result<T, Error>) -> PyResult<T> {
        let result = catch_panic(|| f(&mut self.inner));
        if let Err(Error::Panic(_)) = result {
            self.inner.poison();
        }
        Ok(result?)
    }
}

#[pymethods]
impl PySseFramer {
    #[new]
    #[pyo3(
        signature = (*, max_event_bytes = DEFAULT_MAX_EVENT_BYTES),
        text_signature = "(*, max_event_bytes=16777216)"
    )]
    fn new(max_event_bytes: usize) -> Self {
        Self {
            inner: SseFramer::new(max_event_bytes),
        }
    }

    /// Appends `chunk`; returns the original bytes of every event completed
    /// since the last call (the same object when `chunk` is exactly that),
    /// or b"" when none completed.
    fn feed<'py>(&mut self, chunk: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyBytes>> {
        let py = chunk.py();
        let bytes = chunk.as_bytes();
        self.guarded(|framer| {
            framer.feed(bytes, |ready| match ready {
                Ready::Nothing => PyBytes::new(py, b""),
                Ready::Input => chunk.clone(),
                Ready::Bytes(out) => PyBytes::new(py, out),
            })
        })
    }

    /// Ends the stream: returns what is still held back, completed with a
    /// blank line when it holds anything; b"" if nothing is held back.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let tail = self.guarded(SseFramer::finish)?;
        Ok(PyBytes::new(py, &tail))
    }

    /// True once an event whose data is exactly `[DONE]` has been returned.
    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }

    /// Number of non-empty events returned so far.
    #[getter]
    fn events(&self) -> u64 {
        self.inner.events()
    }

    /// Number of bytes held back (the unfinished event).
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }
}

/// Registers the SSE classes on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySseFramer>()
}

#[cfg(test)]
mod tests {
    use crate::sse::DEFAULT_MAX_EVENT_BYTES;

    #[test]
    fn text_signature_states_the_default() {
        // Keep the hand-written `text_signature` of `SseFramer()` in step.
        assert_eq!(DEFAULT_MAX_EVENT_BYTES, 16_777_216);
    }
}
