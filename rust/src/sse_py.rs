//! Python bindings for the SSE framer and decoder: `fd2._native.SseFramer` and `SseDecoder`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Error, catch_panic};
use crate::sse::{DEFAULT_MAX_EVENT_BYTES, Options, Ready, SseFramer};

/// Runs `f` on the framer; a panic becomes a `NativeError` for this call and
/// leaves the framer refusing further work (its state may be torn).
fn guarded<T>(
    framer: &mut SseFramer,
    f: impl FnOnce(&mut SseFramer) -> Result<T, Error>,
) -> PyResult<T> {
    let result = catch_panic(|| f(framer));
    if let Err(Error::Panic(_)) = result {
        framer.poison();
    }
    Ok(result?)
}

/// Incremental framer for `text/event-stream` bytes: `feed()` returns every
/// completed event exactly as received; with `openai=True` it also reads
/// usage, finish reason, model, id and errors out of the events.
//
// The GIL is kept for every call: a typical chunk is a few KB and is framed
// in well under a microsecond, less than detaching and re-attaching to the
// interpreter costs; keeping it also lets `feed` return the input object
// itself (zero copy) and build output bytes without an extra copy.
#[pyclass(module = "fd2._native", name = "SseFramer")]
pub struct PySseFramer {
    inner: SseFramer,
}

#[pymethods]
impl PySseFramer {
    #[new]
    #[pyo3(
        signature = (*, max_event_bytes = DEFAULT_MAX_EVENT_BYTES, openai = false, collect_text = false, hold_done = false),
        text_signature = "(*, max_event_bytes=16777216, openai=False, collect_text=False, hold_done=False)"
    )]
    fn new(max_event_bytes: usize, openai: bool, collect_text: bool, hold_done: bool) -> Self {
        let options = Options {
            openai: openai || collect_text,
            collect_text,
            hold_done,
            decode: false,
        };
        Self {
            inner: SseFramer::with_options(max_event_bytes, options),
        }
    }

    /// Appends `chunk`; returns the original bytes of every event completed
    /// since the last call (the same object when `chunk` is exactly that),
    /// or b"" when none completed.
    fn feed<'py>(&mut self, chunk: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyBytes>> {
        let py = chunk.py();
        let bytes = chunk.as_bytes();
        guarded(&mut self.inner, |framer| {
            framer.feed(bytes, |ready| match ready {
                Ready::Nothing => PyBytes::new(py, b""),
                Ready::Input => chunk.clone(),
                Ready::Bytes(out) => PyBytes::new(py, out),
            })
        })
    }

    /// Ends the stream: drops an unterminated last event (as the WHATWG rules
    /// say) and returns its size in bytes (0 normally).
    fn finish(&mut self) -> PyResult<usize> {
        guarded(&mut self.inner, SseFramer::finish)
    }

    /// With `hold_done=True`: the `[DONE]` event and whatever complete events
    /// followed it, kept out of `feed()`'s output; b"" if none (handed over once).
    fn take_held<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.take_held())
    }

    /// True once an event whose data is exactly `[DONE]` has been read.
    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }

    /// Number of events (blocks with a non-blank line) completed so far.
    #[getter]
    fn events(&self) -> u64 {
        self.inner.events()
    }

    /// Number of bytes held back (the unfinished event).
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    /// Bytes of the unterminated last event dropped by `finish()`.
    #[getter]
    fn discarded(&self) -> usize {
        self.inner.discarded()
    }

    /// The first `model` seen in the events (openai=True).
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.facts().model.as_deref()
    }

    /// The `id` of the event that gave `model`.
    #[getter]
    fn response_id(&self) -> Option<&str> {
        self.inner.facts().id.as_deref()
    }

    /// The `created` of the event that gave `model`.
    #[getter]
    fn created(&self) -> Option<i64> {
        self.inner.facts().created
    }

    /// The last `usage` seen: (prompt, completion, total) tokens.
    #[getter]
    fn usage(&self) -> Option<(u64, u64, u64)> {
        self.inner
            .facts()
            .usage
            .map(|u| (u.prompt_tokens, u.completion_tokens, u.total_tokens))
    }

    /// The last non-null `finish_reason` seen.
    #[getter]
    fn finish_reason(&self) -> Option<&str> {
        self.inner.facts().finish_reason.as_deref()
    }

    /// JSON of the first in-stream error (an `error` member, or an `error` event's data).
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.facts().error.as_deref()
    }

    /// Generated text gathered so far (with `collect_text`).
    #[getter]
    fn text(&self) -> &str {
        &self.inner.facts().text
    }

    /// Number of events whose JSON was parsed (the rest were skipped by byte searches).
    #[getter]
    fn parsed(&self) -> u64 {
        self.inner.facts().parsed
    }
}

/// One dispatched event: (event type, data, last event id), text decoded
/// from UTF-8 with replacement as `EventSource` does; the type is "message"
/// when none was given.
type PyEvent = (String, String, String);

/// Full WHATWG decoder: `feed()` returns the events dispatched so far.
#[pyclass(module = "fd2._native", name = "SseDecoder")]
pub struct PySseDecoder {
    inner: SseFramer,
}

#[pymethods]
impl PySseDecoder {
    #[new]
    #[pyo3(
        signature = (*, max_event_bytes = DEFAULT_MAX_EVENT_BYTES),
        text_signature = "(*, max_event_bytes=16777216)"
    )]
    fn new(max_event_bytes: usize) -> Self {
        let options = Options {
            decode: true,
            ..Options::default()
        };
        Self {
            inner: SseFramer::with_options(max_event_bytes, options),
        }
    }

    /// Appends `chunk`; returns the events it completed.
    fn feed(&mut self, chunk: &[u8]) -> PyResult<Vec<PyEvent>> {
        guarded(&mut self.inner, |framer| {
            framer.feed(chunk, |_| ())?;
            Ok(framer
                .take_events()
                .into_iter()
                .map(|event| {
                    let kind = if event.event_type.is_empty() {
                        "message".to_owned()
                    } else {
                        String::from_utf8_lossy(&event.event_type).into_owned()
                    };
                    (
                        kind,
                        String::from_utf8_lossy(&event.data).into_owned(),
                        String::from_utf8_lossy(&event.last_event_id).into_owned(),
                    )
                })
                .collect())
        })
    }

    /// Ends the stream, discarding an unterminated last event; returns its size.
    fn finish(&mut self) -> PyResult<usize> {
        guarded(&mut self.inner, SseFramer::finish)
    }

    /// Reconnection time (ms) from the last valid `retry:` field.
    #[getter]
    fn retry(&self) -> Option<u64> {
        self.inner.retry()
    }
}

/// Registers the SSE classes on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySseFramer>()?;
    m.add_class::<PySseDecoder>()
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
