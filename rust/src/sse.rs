//! Incremental `text/event-stream` decoding: cuts raw upstream bytes at event boundaries (WHATWG rules) without re-encoding them.

// Layers, bottom up:
// - `line::parse_line`: classifies one line (blank, comment, field with a known name).
// - `event::EventBuilder`: applies fields as the WHATWG "interpret an event
//   stream" rules say and yields each dispatched event.
// - `openai::StreamFacts`: reads usage, finish reason, model, errors (and, on
//   request, the generated text) out of dispatched events, parsing JSON only
//   when a byte search says the event can hold something wanted.
// - `Scanner`: finds line ends (LF, CR, CRLF, also across chunk splits), strips
//   a leading BOM from the first line and reports event boundaries.
// - `SseFramer`: owns the held-back bytes and hands out every completed event
//   exactly as it arrived.

mod event;
mod line;
mod openai;
mod scanner;

pub use self::event::{Event, EventBuilder};
pub use self::line::{FieldName, Line, LineEnd, parse_line};
pub use self::openai::{StreamFacts, Usage};
use self::scanner::Scanner;
use crate::errors::Error;

/// Default cap on the size of one event, terminator included: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Above this capacity an idle buffer is shrunk back (one huge event must
/// not pin its memory for the rest of a long stream).
const SHRINK_ABOVE: usize = 1 << 20;
const KEEP_CAPACITY: usize = 64 << 10;

/// What a framer does besides cutting the stream into events.
// Independent switches, each read in one place: an enum set would only add noise.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Read OpenAI facts (usage, finish reason, model, errors) from events.
    pub openai: bool,
    /// Also collect the generated text (to count completion tokens).
    pub collect_text: bool,
    /// Keep the `[DONE]` event, and everything after it, out of the output
    /// until [`SseFramer::take_held`] (so something can be sent before it).
    pub hold_done: bool,
    /// Keep every dispatched event for [`SseFramer::take_events`].
    pub decode: bool,
}

/// What [`SseFramer::feed`] has ready to hand on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready<'a> {
    /// No event completed.
    Nothing,
    /// Exactly the chunk just fed, unchanged (nothing was held back before
    /// and it ended on an event boundary): callers can pass the input on as is.
    Input,
    /// These bytes: one or more whole events.
    Bytes(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    Finished,
    Failed,
}

/// Cuts a byte stream into whole server-sent events, passing the original
/// bytes through untouched.
#[derive(Debug)]
pub struct SseFramer {
    /// Bytes of the unfinished event; starts at that event's first byte.
    buf: Vec<u8>,
    /// With `hold_done`: the `[DONE]` event and all complete events after it.
    held: Vec<u8>,
    holding: bool,
    scanner: Scanner,
    options: Options,
    max_event_bytes: usize,
    discarded: usize,
    phase: Phase,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseFramer {
    /// A framer refusing events longer than `max_event_bytes` (terminator included).
    #[must_use]
    pub fn new(max_event_bytes: usize) -> Self {
        Self::with_options(max_event_bytes, Options::default())
    }

    /// A framer doing what `options` asks besides framing.
    #[must_use]
    pub fn with_options(max_event_bytes: usize, options: Options) -> Self {
        Self {
            buf: Vec::new(),
            held: Vec::new(),
            holding: false,
            scanner: Scanner::default(),
            options,
            max_event_bytes,
            discarded: 0,
            phase: Phase::Open,
        }
    }

    /// Appends `chunk` and calls `emit` once with every event completed by it
    /// (plus any that were held back), returning what `emit` returns.
    ///
    /// # Errors
    /// [`Error::SseEventTooLarge`] when an event outgrows the limit (the framer
    /// is then unusable), [`Error::SseState`] after `finish` or a failure.
    pub fn feed<R>(&mut self, chunk: &[u8], emit: impl FnOnce(Ready<'_>) -> R) -> Result<R, Error> {
        self.check_open()?;
        let limit = self.max_event_bytes;
        let options = self.options;
        if self.buf.is_empty() {
            let scanned = match self.scanner.scan(chunk, 0, limit, options) {
                Ok(scanned) => scanned,
                Err(err) => return Err(self.fail(err)),
            };
            let boundary = scanned.boundary;
            let (complete, rest) = chunk.split_at(boundary);
            self.buf.extend_from_slice(rest);
            self.scanner.line_start -= boundary;
            self.shrink_idle();
            let ready = self.hold(complete, scanned.done_start);
            Ok(emit(if ready.is_empty() {
                Ready::Nothing
            } else if rest.is_empty() && ready.len() == chunk.len() {
                Ready::Input
            } else {
                Ready::Bytes(ready)
            }))
        } else {
            let from = self.buf.len();
            self.buf.extend_from_slice(chunk);
            let scanned = match self.scanner.scan(&self.buf, from, limit, options) {
                Ok(scanned) => scanned,
                Err(err) => return Err(self.fail(err)),
            };
            let boundary = scanned.boundary;
            let buf = std::mem::take(&mut self.buf);
            let ready = self.hold(&buf[..boundary], scanned.done_start);
            let out = emit(if ready.is_empty() {
                Ready::Nothing
            } else {
                Ready::Bytes(ready)
            });
            self.buf = buf;
            self.buf.drain(..boundary);
            self.scanner.line_start -= boundary;
            self.shrink_idle();
            Ok(out)
        }
    }

    /// With `hold_done`: moves the `[DONE]` event and what follows it out of
    /// `complete` into `held`; returns what may go out now.
    fn hold<'a>(&mut self, complete: &'a [u8], done_start: Option<usize>) -> &'a [u8] {
        if !self.options.hold_done {
            return complete;
        }
        if self.holding {
            self.held.extend_from_slice(complete);
            return &[];
        }
        match done_start {
            Some(start) => {
                self.holding = true;
                self.held.extend_from_slice(&complete[start..]);
                &complete[..start]
            }
            None => complete,
        }
    }

    /// [`feed`](Self::feed), copying the ready bytes into a new vector.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn feed_to_vec(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Error> {
        self.feed(chunk, |ready| match ready {
            Ready::Nothing => Vec::new(),
            Ready::Input => chunk.to_vec(),
            Ready::Bytes(bytes) => bytes.to_vec(),
        })
    }

    /// Ends the stream. An unterminated last event is discarded, as the
    /// WHATWG rules say (an `EventSource` would never dispatch it); returns
    /// the number of bytes dropped that way. Later calls return 0.
    ///
    /// # Errors
    /// [`Error::SseState`] if the framer failed earlier.
    pub fn finish(&mut self) -> Result<usize, Error> {
        match self.phase {
            Phase::Open => {}
            Phase::Finished => return Ok(0),
            Phase::Failed => return Err(Error::SseState(FAILED)),
        }
        self.phase = Phase::Finished;
        let dropped = std::mem::take(&mut self.buf).len();
        self.discarded = dropped;
        self.scanner.line_start = 0;
        self.scanner.builder.reset();
        Ok(dropped)
    }

    /// With `hold_done`: the held `[DONE]` event and everything complete after
    /// it (empty if none), handed over once.
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// With `decode`: the events dispatched since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.scanner.decoded)
    }

    /// Marks the framer unusable (e.g. after a panic interrupted a call).
    pub fn poison(&mut self) {
        self.phase = Phase::Failed;
        self.buf = Vec::new();
        self.held = Vec::new();
        self.scanner.line_start = 0;
    }

    /// An event whose data is exactly `[DONE]` has been read.
    #[must_use]
    pub const fn done(&self) -> bool {
        self.scanner.done
    }

    /// Number of events (blocks with a non-blank line) completed so far.
    #[must_use]
    pub const fn events(&self) -> u64 {
        self.scanner.events
    }

    /// Bytes held back (the unfinished event).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the unterminated last event dropped by [`finish`](Self::finish).
    #[must_use]
    pub const fn discarded(&self) -> usize {
        self.discarded
    }

    /// What the events read so far said (with the `openai` option).
    #[must_use]
    pub const fn facts(&self) -> &StreamFacts {
        &self.scanner.facts
    }

    /// Reconnection time from the last valid `retry:` field.
    #[must_use]
    pub const fn retry(&self) -> Option<u64> {
        self.scanner.builder.retry()
    }

    /// The configured cap on one event's size.
    #[must_use]
    pub const fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Finished => Err(Error::SseState("feed() called after finish()")),
            Phase::Failed => Err(Error::SseState(FAILED)),
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.poison();
        err
    }

    fn shrink_idle(&mut self) {
        if self.buf.capacity() > SHRINK_ABOVE && self.buf.len() <= KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }
}

const FAILED: &str = "SseFramer is unusable after an earlier error";

#[cfg(test)]
mod tests;
