//! Incremental `text/event-stream` framing: cuts raw upstream bytes at event boundaries (WHATWG rules) without re-encoding them.

// Layers, bottom up, so a later full decoder can grow out of them:
// - `line::parse_line`: classifies one line (blank, comment, field with a known name).
// - `Scanner`: finds line ends (LF, CR, CRLF, also across chunk splits), strips
//   a leading BOM from the first line, feeds lines to `EventProbe` and reports
//   event boundaries.
// - `SseFramer`: owns the held-back bytes and hands out every completed event
//   exactly as it arrived.

mod line;

use memchr::memchr2;

pub use self::line::{FieldName, Line, LineEnd, parse_line};
use crate::errors::Error;

/// Default cap on the size of one event, terminator included: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";
const DONE: &[u8] = b"[DONE]";
/// Above this capacity an idle buffer is shrunk back (one huge event must
/// not pin its memory for the rest of a long stream).
const SHRINK_ABOVE: usize = 1 << 20;
const KEEP_CAPACITY: usize = 64 << 10;

/// What is known about the event being read. Only what the framer needs
/// today; a full decoder would collect the data, event type and id here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct EventProbe {
    /// At least one non-blank line (comments included).
    has_content: bool,
    data_lines: u32,
    /// The data lines joined with LF equal `[DONE]` (so: exactly one, equal to it).
    data_is_done: bool,
}

impl EventProbe {
    fn on_line(&mut self, line: Line<'_>) {
        self.has_content = true;
        if let Line::Field {
            name: FieldName::Data,
            value,
            ..
        } = line
        {
            self.data_lines = self.data_lines.saturating_add(1);
            self.data_is_done = self.data_lines == 1 && value == DONE;
        }
    }
}

/// Line and event state carried from one chunk to the next.
#[derive(Debug)]
struct Scanner {
    /// Offset, in the bytes being scanned, where the unfinished line begins.
    line_start: usize,
    /// The last byte scanned was a CR ending a line: an LF next completes that CRLF.
    cr_pending: bool,
    /// No line has ended yet, so a BOM at its front is still to be dropped.
    first_line: bool,
    /// Most recent terminator, copied when closing a truncated tail.
    last_end: LineEnd,
    event: EventProbe,
    events: u64,
    done: bool,
}

impl Scanner {
    const fn new() -> Self {
        Self {
            line_start: 0,
            cr_pending: false,
            first_line: true,
            last_end: LineEnd::Lf,
            event: EventProbe {
                has_content: false,
                data_lines: 0,
                data_is_done: false,
            },
            events: 0,
            done: false,
        }
    }

    /// Scans `work[from..]`; `work[..from]` was scanned by earlier calls and
    /// `work` starts where the unfinished event starts. Returns the offset
    /// just past the last event boundary (0 if none).
    fn scan(&mut self, work: &[u8], from: usize, limit: usize) -> Result<usize, Error> {
        let mut pos = from;
        let mut boundary = 0;
        let mut event_start = 0;
        let mut events = 0;
        let mut done = false;
        if self.cr_pending && pos < work.len() {
            self.cr_pending = false;
            if work[pos] == b'\n' {
                // Second half of a CRLF whose CR was scanned last time.
                pos += 1;
                self.line_start = pos;
                self.last_end = LineEnd::CrLf;
                if !self.event.has_content {
                    boundary = pos;
                    event_start = pos;
                }
            }
        }
        while let Some(offset) = memchr2(b'\n', b'\r', &work[pos..]) {
            let end = pos + offset;
            let (next, kind) = if work[end] == b'\n' {
                (end + 1, LineEnd::Lf)
            } else {
                match work.get(end + 1) {
                    Some(b'\n') => (end + 2, LineEnd::CrLf),
                    Some(_) => (end + 1, LineEnd::Cr),
                    None => {
                        self.cr_pending = true;
                        (end + 1, LineEnd::Cr)
                    }
                }
            };
            let mut line = &work[self.line_start..end];
            if self.first_line {
                self.first_line = false;
                line = line.strip_prefix(BOM).unwrap_or(line);
            }
            self.last_end = kind;
            self.line_start = next;
            pos = next;
            match parse_line(line) {
                Line::Blank => {
                    check_size(next - event_start, limit)?;
                    if self.event.has_content {
                        events += 1;
                        done |= self.event.data_is_done;
                    }
                    self.event = EventProbe::default();
                    boundary = next;
                    event_start = next;
                }
                parsed => self.event.on_line(parsed),
            }
        }
        check_size(work.len() - event_start, limit)?;
        self.events += events;
        self.done |= done;
        Ok(boundary)
    }

    /// Bytes that close a truncated tail `work` into a complete event, or
    /// `None` when the tail holds nothing but blank space (or a lone BOM).
    fn closing_suffix(&self, work: &[u8]) -> Option<&'static [u8]> {
        let mut partial = &work[self.line_start..];
        if self.first_line {
            partial = partial.strip_prefix(BOM).unwrap_or(partial);
        }
        if !partial.is_empty() {
            Some(self.last_end.doubled())
        } else if self.event.has_content {
            Some(self.last_end.as_bytes())
        } else {
            None
        }
    }
}

fn check_size(size: usize, limit: usize) -> Result<(), Error> {
    if size > limit {
        Err(Error::SseEventTooLarge { limit, size })
    } else {
        Ok(())
    }
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
    scanner: Scanner,
    max_event_bytes: usize,
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
    pub const fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanner: Scanner::new(),
            max_event_bytes,
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
        if self.buf.is_empty() {
            let boundary = match self.scanner.scan(chunk, 0, limit) {
                Ok(boundary) => boundary,
                Err(err) => return Err(self.fail(err)),
            };
            let (ready, rest) = chunk.split_at(boundary);
            self.buf.extend_from_slice(rest);
            self.scanner.line_start -= boundary;
            self.shrink_idle();
            Ok(emit(if boundary == 0 {
                Ready::Nothing
            } else if rest.is_empty() {
                Ready::Input
            } else {
                Ready::Bytes(ready)
            }))
        } else {
            let from = self.buf.len();
            self.buf.extend_from_slice(chunk);
            let boundary = match self.scanner.scan(&self.buf, from, limit) {
                Ok(boundary) => boundary,
                Err(err) => return Err(self.fail(err)),
            };
            let out = emit(if boundary == 0 {
                Ready::Nothing
            } else {
                Ready::Bytes(&self.buf[..boundary])
            });
            self.buf.drain(..boundary);
            self.scanner.line_start -= boundary;
            self.shrink_idle();
            Ok(out)
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

    /// Ends the stream: returns the held-back bytes, with the line
    /// terminator(s) appended that make them a complete event when they hold
    /// anything but blank lines. Later calls return nothing.
    ///
    /// # Errors
    /// [`Error::SseState`] if the framer failed earlier.
    pub fn finish(&mut self) -> Result<Vec<u8>, Error> {
        match self.phase {
            Phase::Open => {}
            Phase::Finished => return Ok(Vec::new()),
            Phase::Failed => return Err(Error::SseState(FAILED)),
        }
        self.phase = Phase::Finished;
        let mut tail = std::mem::take(&mut self.buf);
        if let Some(suffix) = self.scanner.closing_suffix(&tail) {
            let from = tail.len();
            tail.extend_from_slice(suffix);
            // The bytes were accepted already; the few added ones do not make
            // the tail "too large", so no limit here.
            self.scanner.scan(&tail, from, usize::MAX)?;
        }
        self.scanner.line_start = 0;
        Ok(tail)
    }

    /// Marks the framer unusable (e.g. after a panic interrupted a call).
    pub fn poison(&mut self) {
        self.phase = Phase::Failed;
        self.buf = Vec::new();
        self.scanner.line_start = 0;
    }

    /// An event whose data is exactly `[DONE]` has been handed out.
    #[must_use]
    pub const fn done(&self) -> bool {
        self.scanner.done
    }

    /// Number of non-empty events handed out so far.
    #[must_use]
    pub const fn events(&self) -> u64 {
        self.scanner.events
    }

    /// Bytes held back (the unfinished event).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
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
