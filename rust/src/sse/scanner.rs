//! Line scanning for the SSE framer: line ends across chunk splits, the BOM, event boundaries and dispatch.

use memchr::memchr2;

use super::event::Event;
use super::{EventBuilder, Line, Options, StreamFacts, parse_line};
use crate::errors::Error;

const BOM: &[u8] = b"\xEF\xBB\xBF";
const DONE: &[u8] = b"[DONE]";

/// Line and event state carried from one chunk to the next.
// Four unrelated flags of the scan state; folding them into an enum would not
// make any transition clearer.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default)]
pub(super) struct Scanner {
    /// Offset, in the bytes being scanned, where the unfinished line begins.
    pub(super) line_start: usize,
    /// The last byte scanned was a CR ending a line: an LF next completes that CRLF.
    pub(super) cr_pending: bool,
    /// At least one line has ended, so a BOM is no longer stripped.
    pub(super) past_first_line: bool,
    /// The event being read has a non-blank line (comments included).
    pub(super) has_content: bool,
    pub(super) builder: EventBuilder,
    pub(super) facts: StreamFacts,
    pub(super) decoded: Vec<Event>,
    pub(super) events: u64,
    pub(super) done: bool,
}

/// Where the scan of one piece ended.
pub(super) struct Scanned {
    /// Offset just past the last event boundary (0 if none).
    pub(super) boundary: usize,
    /// Offset where the first `[DONE]` event of the stream starts, if it ended here.
    pub(super) done_start: Option<usize>,
}

impl Scanner {
    /// Scans `work[from..]`; `work[..from]` was scanned by earlier calls and
    /// `work` starts where the unfinished event starts.
    pub(super) fn scan(
        &mut self,
        work: &[u8],
        from: usize,
        limit: usize,
        options: Options,
    ) -> Result<Scanned, Error> {
        let mut pos = from;
        let mut boundary = 0;
        let mut event_start = 0;
        let mut done_start = None;
        if self.cr_pending && pos < work.len() {
            self.cr_pending = false;
            if work[pos] == b'\n' {
                // Second half of a CRLF whose CR was scanned last time.
                pos += 1;
                self.line_start = pos;
                if !self.has_content {
                    boundary = pos;
                    event_start = pos;
                }
            }
        }
        while let Some(offset) = memchr2(b'\n', b'\r', &work[pos..]) {
            let end = pos + offset;
            let next = if work[end] == b'\n' {
                end + 1
            } else {
                match work.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        self.cr_pending = true;
                        end + 1
                    }
                }
            };
            let mut line = &work[self.line_start..end];
            if !self.past_first_line {
                self.past_first_line = true;
                line = line.strip_prefix(BOM).unwrap_or(line);
            }
            self.line_start = next;
            pos = next;
            match parse_line(line) {
                Line::Blank => {
                    check_size(next - event_start, limit)?;
                    if self.has_content {
                        self.events += 1;
                        if self.dispatch(options) && done_start.is_none() {
                            done_start = Some(event_start);
                        }
                    }
                    self.has_content = false;
                    self.builder.reset();
                    boundary = next;
                    event_start = next;
                }
                parsed => {
                    self.has_content = true;
                    self.builder.on_line(parsed);
                }
            }
        }
        check_size(work.len() - event_start, limit)?;
        Ok(Scanned {
            boundary,
            done_start,
        })
    }

    /// Dispatches the event just ended; true if it is the stream's first `[DONE]`.
    fn dispatch(&mut self, options: Options) -> bool {
        let Some(data) = self.builder.data() else {
            return false;
        };
        if options.decode {
            self.decoded.extend(self.builder.event());
        }
        if data == DONE {
            let first = !self.done;
            self.done = true;
            return first;
        }
        if options.openai {
            let event_type = self.builder.event_type();
            self.facts.observe(event_type, data, options.collect_text);
        }
        false
    }
}

fn check_size(size: usize, limit: usize) -> Result<(), Error> {
    if size > limit {
        Err(Error::SseEventTooLarge { limit, size })
    } else {
        Ok(())
    }
}
