//! One line of an event stream: its terminator kinds and its WHATWG classification (blank, comment, field).

use memchr::memchr;

/// How a line was terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnd {
    Lf,
    Cr,
    CrLf,
}

impl LineEnd {
    /// The terminator's bytes.
    #[must_use]
    pub const fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Lf => b"\n",
            Self::Cr => b"\r",
            Self::CrLf => b"\r\n",
        }
    }
}

/// Field names the event-stream format defines; anything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldName {
    Data,
    Event,
    Id,
    Retry,
    Other,
}

impl FieldName {
    /// Classifies a raw field name (case-sensitive, as the spec says).
    #[must_use]
    pub fn from_bytes(name: &[u8]) -> Self {
        match name {
            b"data" => Self::Data,
            b"event" => Self::Event,
            b"id" => Self::Id,
            b"retry" => Self::Retry,
            _ => Self::Other,
        }
    }
}

/// One line (without its terminator), classified per WHATWG "interpret an event stream".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Empty line: ends the current event.
    Blank,
    /// Line starting with `:`; holds the text after the colon.
    Comment(&'a [u8]),
    /// `name:value` (one space after the colon dropped) or a bare `name` (empty value).
    Field {
        name: FieldName,
        raw_name: &'a [u8],
        value: &'a [u8],
    },
}

/// Classifies one line, given without its terminator.
#[must_use]
pub fn parse_line(line: &[u8]) -> Line<'_> {
    match line.first() {
        None => Line::Blank,
        Some(b':') => Line::Comment(&line[1..]),
        Some(_) => {
            let (raw_name, value) = match memchr(b':', line) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &line[line.len()..]),
            };
            Line::Field {
                name: FieldName::from_bytes(raw_name),
                raw_name,
                value,
            }
        }
    }
}
