//! Strings in canonical JSON: decoding escapes, refusing what JSON forbids, writing minimal escapes.

use std::borrow::Cow;

use memchr::memchr2;

use super::canonical::Parser;
use crate::errors::Error;

impl<'a> Parser<'a> {
    /// A member name: written like any string, and returned decoded (borrowed
    /// from the input when it has no escapes, the common case).
    pub(super) fn key(&mut self, out: &mut Vec<u8>) -> Result<Cow<'a, str>, Error> {
        let input = self.input;
        let rest = &input[self.pos + 1..];
        let plain = memchr2(b'"', b'\\', rest)
            .filter(|&stop| rest[stop] == b'"')
            .and_then(|stop| plain_text(&rest[..stop]));
        if let Some(text) = plain {
            self.pos += text.len() + 2;
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
            return Ok(Cow::Borrowed(text));
        }
        let mut name = String::new();
        self.string(out, Some(&mut name))?;
        Ok(Cow::Owned(name))
    }

    /// Writes the string in canonical form (only `"`, `\`, and control
    /// characters escaped, the latter as `\b \t \n \f \r` or `\u00xx`);
    /// also decodes it into `name` when given.
    pub(super) fn string(
        &mut self,
        out: &mut Vec<u8>,
        mut name: Option<&mut String>,
    ) -> Result<(), Error> {
        self.pos += 1;
        out.push(b'"');
        loop {
            let rest = &self.input[self.pos..];
            let Some(stop) = memchr2(b'"', b'\\', rest) else {
                return Err(self.error("unterminated string"));
            };
            let run = &rest[..stop];
            let Some(text) = plain_text(run) else {
                return Err(self.error("control character or invalid UTF-8 in a string"));
            };
            out.extend_from_slice(run);
            if let Some(name) = name.as_deref_mut() {
                name.push_str(text);
            }
            self.pos += stop + 1;
            if rest[stop] == b'"' {
                out.push(b'"');
                return Ok(());
            }
            let ch = self.escape()?;
            write_char(out, ch);
            if let Some(name) = name.as_deref_mut() {
                name.push(ch);
            }
        }
    }

    /// Decodes the escape after a backslash (`self.pos` is just past it).
    fn escape(&mut self) -> Result<char, Error> {
        let code = self
            .peek()
            .ok_or_else(|| self.error("unterminated escape"))?;
        self.pos += 1;
        Ok(match code {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(self.error("invalid escape")),
        })
    }

    fn unicode_escape(&mut self) -> Result<char, Error> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high).ok_or_else(|| self.error("lone surrogate escape"));
        }
        if !self.input[self.pos..].starts_with(b"\\u") {
            return Err(self.error("lone surrogate escape"));
        }
        self.pos += 2;
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(self.error("lone surrogate escape"));
        }
        let code = 0x1_0000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        char::from_u32(code).ok_or_else(|| self.error("invalid surrogate pair"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("short \\u escape"))?;
        let mut value = 0;
        for &d in digits {
            let nibble = char::from(d)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            value = value * 16 + nibble;
        }
        self.pos += 4;
        Ok(value)
    }
}

fn write_char(out: &mut Vec<u8>, ch: char) {
    match ch {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\r' => out.extend_from_slice(b"\\r"),
        c if u32::from(c) < 0x20 => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let code = u32::from(c) as usize;
            out.extend_from_slice(b"\\u00");
            out.push(HEX[code >> 4]);
            out.push(HEX[code & 0xF]);
        }
        c => {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// `run` as text if it is valid UTF-8 without control characters (which JSON
/// strings must escape). The control check is a branch-free pass per 64 bytes
/// (it vectorises; an early-exit `any` does not).
fn plain_text(run: &[u8]) -> Option<&str> {
    for block in run.chunks(64) {
        if block.iter().fold(0_u8, |acc, &b| acc | u8::from(b < 0x20)) != 0 {
            return None;
        }
    }
    std::str::from_utf8(run).ok()
}
