//! Canonical JSON (RFC 8785 rules, with exact numbers): one pass over the input writing the canonical bytes.

use std::borrow::Cow;
use std::cmp::Ordering;

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

pub(super) struct Parser<'a> {
    pub(super) input: &'a [u8],
    pub(super) pos: usize,
    /// Members of the objects being read, innermost last: (name, start, end in `out`).
    /// One stack for the whole document, so objects allocate nothing of their own.
    pub(super) members: Vec<(Cow<'a, str>, usize, usize)>,
    /// Reused buffer for reordering an object's members.
    pub(super) scratch: Vec<u8>,
}

impl Parser<'_> {
    pub(super) fn error(&self, what: &str) -> Error {
        Error::CacheKey(format!("{what} at byte {}", self.pos))
    }

    pub(super) fn peek(&self) -> Option<u8> {
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
            rejoin(members, out, start, &mut self.scratch);
        } else if excluded_gap(members, start, out.len()) {
            // Some excluded member left its separator behind: rebuild the list.
            rejoin(members, out, start, &mut self.scratch);
        }
        self.members.truncate(base);
        out.push(b'}');
        Ok(())
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

/// Whether the kept members do not tile `out[start..end]` exactly (joined by
/// single commas): true when an excluded member sat between or before them.
/// Rewrites `out[start..]` as the members' texts in `members` order, comma-separated.
fn rejoin(
    members: &[(Cow<'_, str>, usize, usize)],
    out: &mut Vec<u8>,
    start: usize,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    for (i, (_, from, to)) in members.iter().enumerate() {
        if i > 0 {
            scratch.push(b',');
        }
        scratch.extend_from_slice(&out[*from..*to]);
    }
    out.truncate(start);
    out.extend_from_slice(scratch);
}

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
