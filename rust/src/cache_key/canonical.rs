//! Canonical JSON (RFC 8785 rules, with exact numbers): one pass over the input writing the canonical bytes.

use std::borrow::Cow;
use std::cmp::Ordering;

use memchr::memchr2;

use super::number::write_number;
use crate::errors::Error;

/// Deeper nesting is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 128;

/// Writes the canonical form of the JSON document `input` to `out`, leaving
/// out the members of the top-level object whose (decoded) names are in
/// `exclude`.
///
/// # Errors
/// [`Error::CacheKey`] when `input` is not one valid JSON value with unique
/// member names, valid UTF-8, no lone surrogates and at most [`MAX_DEPTH`] levels.
pub fn canonicalize(input: &[u8], exclude: &[Box<str>], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut parser = Parser {
        input,
        pos: 0,
        members: Vec::new(),
        scratch: Vec::new(),
    };
    parser.skip_ws();
    parser.value(out, 0, exclude)?;
    parser.skip_ws();
    if parser.pos != input.len() {
        return Err(parser.error("unexpected data after the JSON value"));
    }
    Ok(())
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Members of the objects being read, innermost last: (name, start, end in `out`).
    /// One stack for the whole document, so objects allocate nothing of their own.
    members: Vec<(Cow<'a, str>, usize, usize)>,
    /// Reused buffer for reordering an object's members.
    scratch: Vec<u8>,
}

impl<'a> Parser<'a> {
    fn error(&self, what: &str) -> Error {
        Error::CacheKey(format!("{what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Error> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", char::from(byte))))
        }
    }

    fn literal(&mut self, word: &'static [u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            out.extend_from_slice(word);
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn value(
        &mut self,
        out: &mut Vec<u8>,
        depth: usize,
        exclude: &[Box<str>],
    ) -> Result<(), Error> {
        match self.peek() {
            Some(b'{') => self.object(out, depth + 1, exclude),
            Some(b'[') => self.array(out, depth + 1),
            Some(b'"') => self.string(out, None),
            Some(b't') => self.literal(b"true", out),
            Some(b'f') => self.literal(b"false", out),
            Some(b'n') => self.literal(b"null", out),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            Err(self.error("nesting deeper than 128 levels"))
        } else {
            Ok(())
        }
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
        self.enter(depth)?;
        self.pos += 1;
        out.push(b'[');
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.value(out, depth, &[])?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(b',');
                }
                Some(b']') => {
                    self.pos += 1;
                    out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// Members are written in input order, then reordered in place by name.
    fn object(
        &mut self,
        out: &mut Vec<u8>,
        depth: usize,
        exclude: &[Box<str>],
    ) -> Result<(), Error> {
        self.enter(depth)?;
        self.pos += 1;
        out.push(b'{');
        let start = out.len();
        let base = self.members.len();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            out.push(b'}');
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let member_start = out.len();
            let name = self.key(out)?;
            self.skip_ws();
            self.expect(b':')?;
            out.push(b':');
            self.skip_ws();
            self.value(out, depth, &[])?;
            if exclude.iter().any(|field| **field == *name) {
                out.truncate(member_start);
            } else {
                self.members.push((name, member_start, out.len()));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(b',');
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        if out.last() == Some(&b',') {
            out.pop(); // the last member was excluded
        }
        let members = &mut self.members[base..];
        let in_order = members
            .windows(2)
            .all(|pair| utf16_order(&pair[0].0, &pair[1].0) == Ordering::Less);
        if !in_order {
            members.sort_by(|a, b| utf16_order(&a.0, &b.0));
            if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(self.error("duplicate member name"));
            }
            self.scratch.clear();
            for (i, (_, from, to)) in members.iter().enumerate() {
                if i > 0 {
                    self.scratch.push(b',');
                }
                self.scratch.extend_from_slice(&out[*from..*to]);
            }
            out.truncate(start);
            out.extend_from_slice(&self.scratch);
        } else if excluded_gap(members, start, out.len()) {
            // Some excluded member left its separator behind: rebuild the list.
            self.scratch.clear();
            for (i, (_, from, to)) in members.iter().enumerate() {
                if i > 0 {
                    self.scratch.push(b',');
                }
                self.scratch.extend_from_slice(&out[*from..*to]);
            }
            out.truncate(start);
            out.extend_from_slice(&self.scratch);
        }
        self.members.truncate(base);
        out.push(b'}');
        Ok(())
    }

    /// A member name: written like any string, and returned decoded (borrowed
    /// from the input when it has no escapes, the common case).
    fn key(&mut self, out: &mut Vec<u8>) -> Result<Cow<'a, str>, Error> {
        let input = self.input;
        let rest = &input[self.pos + 1..];
        if let Some(stop) = memchr2(b'"', b'\\', rest)
            && rest[stop] == b'"'
            && let Some(text) = plain_text(&rest[..stop])
        {
            self.pos += stop + 2;
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
    fn string(&mut self, out: &mut Vec<u8>, mut name: Option<&mut String>) -> Result<(), Error> {
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

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let int_digits = &self.input[int_start..self.pos];
        let mut frac_digits: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let frac_start = self.pos;
            self.digits();
            frac_digits = &self.input[frac_start..self.pos];
            if frac_digits.is_empty() {
                return Err(self.error("invalid number"));
            }
        }
        let mut exponent: i64 = 0;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            let exp_negative = match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    true
                }
                Some(b'+') => {
                    self.pos += 1;
                    false
                }
                _ => false,
            };
            let exp_start = self.pos;
            self.digits();
            let exp_digits = &self.input[exp_start..self.pos];
            exponent = parse_exponent(exp_digits).ok_or_else(|| {
                Error::CacheKey(format!("number exponent out of range at byte {start}"))
            })?;
            if exp_negative {
                exponent = -exponent;
            }
        }
        write_number(out, negative, int_digits, frac_digits, exponent);
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// The exponent's value; `None` when empty or beyond 10^9 (refused, so the
/// canonical position arithmetic can never overflow).
fn parse_exponent(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    let significant = digits
        .iter()
        .position(|&d| d != b'0')
        .map_or(&[][..], |i| &digits[i..]);
    if significant.len() > 9 {
        return None;
    }
    Some(
        significant
            .iter()
            .fold(0, |acc, &d| acc * 10 + i64::from(d - b'0')),
    )
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

/// Whether the kept members do not tile `out[start..end]` exactly (joined by
/// single commas): true when an excluded member sat between or before them.
fn excluded_gap(members: &[(Cow<'_, str>, usize, usize)], start: usize, end: usize) -> bool {
    let mut expected = start;
    for (i, (_, from, to)) in members.iter().enumerate() {
        if *from != expected + usize::from(i > 0) {
            return true;
        }
        expected = *to;
    }
    expected != end
}

/// RFC 8785 orders member names by their UTF-16 code units; that differs from
/// byte order only between astral characters and U+E000..U+FFFF.
fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}
