//! E-mail addresses, found from each `@`: a local part of at most 64
//! characters before it, a dotted domain with an alphabetic top-level label after.

use memchr::memchr_iter;

use super::{Kind, Match};

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 189; // keeps a whole address within WINDOW

fn local_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&byte)
}

fn domain_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.'
}

pub fn all(text: &[u8]) -> Vec<Match> {
    let mut found: Vec<Match> = Vec::new();
    for at in memchr_iter(b'@', text) {
        if found.last().is_some_and(|last| at < last.end) {
            continue;
        }
        if let Some(m) = around(text, at) {
            found.push(m);
        }
    }
    found
}

fn around(text: &[u8], at: usize) -> Option<Match> {
    let mut start = at;
    while start > 0 && local_char(text[start - 1]) {
        start -= 1;
        if at - start > MAX_LOCAL {
            return None; // glued to a longer run: not an address we can bound
        }
    }
    while start < at && text[start] == b'.' {
        start += 1;
    }
    if start == at {
        return None;
    }
    let mut end = at + 1;
    while end < text.len() && domain_char(text[end]) {
        end += 1;
        if end - at - 1 > MAX_DOMAIN {
            return None;
        }
    }
    while end > at + 1 && matches!(text[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &text[at + 1..end];
    let dot = domain.iter().rposition(|&b| b == b'.')?;
    let tld = &domain[dot + 1..];
    if tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    if domain.split(|&b| b == b'.').any(<[u8]>::is_empty) {
        return None;
    }
    Some(Match {
        kind: Kind::Email,
        start,
        end,
    })
}
