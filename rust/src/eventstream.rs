//! Incremental decoding of AWS's `application/vnd.amazon.eventstream` binary framing (the stream
//! of Bedrock's `ConverseStream`, and of other AWS streaming APIs).
//!
//! A message is: a 12-byte prelude (total length, headers length, both big-endian u32, and the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it.
//! A header is a name (u8 length, UTF-8) and a typed value (one type byte, then the value).
//! Bytes arrive in chunks cut anywhere; the decoder holds back at most one unfinished message and
//! hands every complete, checked message to a callback, borrowing from the input where it can.

use crate::errors::Error;

#[cfg(test)]
mod tests;

/// Default cap on one message, prelude and CRCs included: 16 MiB (AWS documents 16 MiB as the
/// largest event stream message).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// A message with no headers and no payload: prelude and message CRC.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;

/// Above this capacity an idle buffer is shrunk back (one huge message must not pin its memory
/// for the rest of a long stream).
const SHRINK_ABOVE: usize = 1 << 20;
const KEEP_CAPACITY: usize = 64 << 10;

/// One header's typed value, as the framing's type byte says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Types 0 (true) and 1 (false): no value bytes.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: big-endian i16.
    Short(i16),
    /// Type 4: big-endian i32.
    Int(i32),
    /// Type 5: big-endian i64.
    Long(i64),
    /// Type 6: u16 length, then the bytes.
    Bytes(&'a [u8]),
    /// Type 7: u16 length, then UTF-8.
    String(&'a str),
    /// Type 8: big-endian i64, milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

/// One complete message whose CRCs matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Headers in the order they came (names may repeat; readers take the first).
    pub headers: Vec<(&'a str, HeaderValue<'a>)>,
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The first header of that name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<HeaderValue<'a>> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
    }

    /// The first header of that name when it is a string.
    #[must_use]
    pub fn string_header(&self, name: &str) -> Option<&'a str> {
        match self.header(name) {
            Some(HeaderValue::String(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    Finished,
    Failed,
}

const FAILED: &str = "the decoder failed earlier (a corrupt stream cannot be resynchronised)";

/// Cuts a byte stream into checked event stream messages.
#[derive(Debug)]
pub struct Decoder {
    /// Bytes of the unfinished message; starts at its first byte.
    buf: Vec<u8>,
    max_message_bytes: usize,
    phase: Phase,
    messages: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl Decoder {
    /// A decoder refusing messages longer than `max_message_bytes` (never below the 16 bytes of
    /// an empty message).
    #[must_use]
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_message_bytes: max_message_bytes.max(MIN_MESSAGE_LEN),
            phase: Phase::Open,
            messages: 0,
        }
    }

    /// Appends `chunk` and calls `on_message` with every message it completes, in order.
    ///
    /// # Errors
    /// [`Error::EventStream`] for a CRC mismatch, impossible lengths or a malformed header,
    /// [`Error::EventStreamTooLarge`] for a message over the limit (both known from the prelude
    /// alone, before its bytes are held); the decoder then refuses every later call, since
    /// nothing after a corrupt length can be trusted to start a message.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_message: impl FnMut(Message<'_>),
    ) -> Result<(), Error> {
        self.check_open()?;
        match self.feed_inner(chunk, &mut on_message) {
            Ok(()) => Ok(()),
            Err(err) => Err(self.fail(err)),
        }
    }

    fn feed_inner(
        &mut self,
        chunk: &[u8],
        on_message: &mut impl FnMut(Message<'_>),
    ) -> Result<(), Error> {
        let mut rest = chunk;
        // First complete the held-back message with just the bytes it lacks, so the rest of the
        // chunk is decoded in place rather than copied.
        while !self.buf.is_empty() && !rest.is_empty() {
            let want = if self.buf.len() < PRELUDE_LEN {
                PRELUDE_LEN
            } else {
                check_prelude(&self.buf, self.max_message_bytes)?.0
            };
            let take = (want - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == want && want > PRELUDE_LEN {
                on_message(decode_message(&self.buf, self.max_message_bytes)?);
                self.messages += 1;
                self.buf.clear();
                self.shrink_idle();
            }
        }
        if self.buf.len() >= PRELUDE_LEN {
            // The chunk ended right after a held prelude: check it now, not when more comes.
            check_prelude(&self.buf, self.max_message_bytes)?;
        } else if self.buf.is_empty() {
            let mut messages = 0;
            let used = decode_all(rest, self.max_message_bytes, &mut |message| {
                messages += 1;
                on_message(message);
            });
            self.messages += messages;
            let used = used?;
            let tail = &rest[used..];
            if tail.len() >= PRELUDE_LEN {
                // Room for the whole message at once (its prelude was checked by decode_all).
                self.buf
                    .reserve(check_prelude(tail, self.max_message_bytes)?.0);
            }
            self.buf.extend_from_slice(tail);
        }
        Ok(())
    }

    /// Ends the stream: returns the bytes of an unfinished last message (0 when the stream
    /// ended on a message boundary) and drops them.
    ///
    /// # Errors
    /// [`Error::EventStream`] if the decoder failed earlier.
    pub fn finish(&mut self) -> Result<usize, Error> {
        match self.phase {
            Phase::Open => {}
            Phase::Finished => return Ok(0),
            Phase::Failed => return Err(Error::EventStream(FAILED.to_owned())),
        }
        self.phase = Phase::Finished;
        let left = self.buf.len();
        self.buf = Vec::new();
        Ok(left)
    }

    /// Marks the decoder unusable (after a panic its state may be torn).
    pub fn poison(&mut self) {
        self.phase = Phase::Failed;
        self.buf = Vec::new();
    }

    /// Messages decoded so far.
    #[must_use]
    pub const fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes held back (the unfinished message).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    #[must_use]
    pub const fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Finished => Err(Error::EventStream(
                "feed() called after finish()".to_owned(),
            )),
            Phase::Failed => Err(Error::EventStream(FAILED.to_owned())),
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.poison();
        err
    }

    fn shrink_idle(&mut self) {
        if self.buf.capacity() > SHRINK_ABOVE {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }
}

/// Decodes every whole message at the start of `bytes`; returns how many bytes they took.
fn decode_all(
    bytes: &[u8],
    max: usize,
    on_message: &mut impl FnMut(Message<'_>),
) -> Result<usize, Error> {
    let mut at = 0;
    while bytes.len() - at >= PRELUDE_LEN {
        let (total, _) = check_prelude(&bytes[at..], max)?;
        if bytes.len() - at < total {
            break;
        }
        on_message(decode_message(&bytes[at..at + total], max)?);
        at += total;
    }
    Ok(at)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the prelude at the start of `bytes` (at least 12 long): its CRC, then the lengths.
/// Returns (total length, headers length).
fn check_prelude(bytes: &[u8], max: usize) -> Result<(usize, usize), Error> {
    let expected = be_u32(bytes, 8);
    let actual = crc32fast::hash(&bytes[..8]);
    if expected != actual {
        return Err(Error::EventStream(format!(
            "prelude CRC mismatch (sent {expected:#010x}, computed {actual:#010x})"
        )));
    }
    // u32 -> usize: lossless on every target fd2 builds for (64-bit).
    let total = be_u32(bytes, 0) as usize;
    let headers = be_u32(bytes, 4) as usize;
    if total < MIN_MESSAGE_LEN {
        return Err(Error::EventStream(format!(
            "message length {total} is below the {MIN_MESSAGE_LEN} bytes of prelude and CRC"
        )));
    }
    if total > max {
        return Err(Error::EventStreamTooLarge {
            limit: max,
            size: total,
        });
    }
    if headers > total - MIN_MESSAGE_LEN {
        return Err(Error::EventStream(format!(
            "headers length {headers} does not fit in a message of {total} bytes"
        )));
    }
    Ok((total, headers))
}

/// Decodes one whole message (`bytes` is exactly its length).
fn decode_message(bytes: &[u8], max: usize) -> Result<Message<'_>, Error> {
    let (total, headers_len) = check_prelude(bytes, max)?;
    debug_assert_eq!(total, bytes.len());
    let body_end = total - CRC_LEN;
    let expected = be_u32(bytes, body_end);
    let actual = crc32fast::hash(&bytes[..body_end]);
    if expected != actual {
        return Err(Error::EventStream(format!(
            "message CRC mismatch (sent {expected:#010x}, computed {actual:#010x})"
        )));
    }
    let headers_end = PRELUDE_LEN + headers_len;
    Ok(Message {
        headers: decode_headers(&bytes[PRELUDE_LEN..headers_end])?,
        payload: &bytes[headers_end..body_end],
    })
}

/// Reads headers until `bytes` is used up.
fn decode_headers(bytes: &[u8]) -> Result<Vec<(&str, HeaderValue<'_>)>, Error> {
    let mut reader = Reader { bytes, at: 0 };
    // Bedrock sends three headers per event; exceptions add a fourth.
    let mut headers = Vec::with_capacity(4);
    while reader.at < bytes.len() {
        let name_len = usize::from(reader.take_array::<1>("header name length")?[0]);
        if name_len == 0 {
            return Err(Error::EventStream("empty header name".to_owned()));
        }
        let name = reader.take_str(name_len, "header name")?;
        let kind = reader.take_array::<1>("header value type")?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(reader.take_array("byte value")?)),
            3 => HeaderValue::Short(i16::from_be_bytes(reader.take_array("short value")?)),
            4 => HeaderValue::Int(i32::from_be_bytes(reader.take_array("int value")?)),
            5 => HeaderValue::Long(i64::from_be_bytes(reader.take_array("long value")?)),
            6 => {
                let len = usize::from(u16::from_be_bytes(reader.take_array("bytes length")?));
                HeaderValue::Bytes(reader.take(len, "bytes value")?)
            }
            7 => {
                let len = usize::from(u16::from_be_bytes(reader.take_array("string length")?));
                HeaderValue::String(reader.take_str(len, "string value")?)
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(reader.take_array("timestamp value")?)),
            9 => HeaderValue::Uuid(reader.take_array("uuid value")?),
            other => {
                return Err(Error::EventStream(format!(
                    "header {name:?} has unknown value type {other}"
                )));
            }
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Reads the headers block front to back, every read bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self.at + len;
        let Some(out) = self.bytes.get(self.at..end) else {
            return Err(Error::EventStream(format!(
                "{what} runs past the end of the headers"
            )));
        };
        self.at = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let slice = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn take_str(&mut self, len: usize, what: &str) -> Result<&'a str, Error> {
        std::str::from_utf8(self.take(len, what)?)
            .map_err(|_| Error::EventStream(format!("{what} is not UTF-8")))
    }
}
