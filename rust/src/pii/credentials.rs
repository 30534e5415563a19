//! Credential-like strings: provider API keys by their well-known prefixes,
//! bearer tokens, JWTs and PEM private keys.

use super::{Kind, Match, WINDOW, is_word};

/// A PEM block may be long; it is bounded so a stream's held tail is too.
const MAX_PEM: usize = 16 * 1024;

fn token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

fn run(text: &[u8], from: usize, accept: impl Fn(u8) -> bool, max: usize) -> usize {
    let mut end = from;
    while end < text.len() && end - from < max && accept(text[end]) {
        end += 1;
    }
    end
}

fn found(text: &[u8], start: usize, end: usize) -> Option<Match> {
    if text.get(end).is_some_and(|&b| is_word(b)) {
        return None;
    }
    Some(Match {
        kind: Kind::Credential,
        start,
        end,
    })
}

/// Prefixed keys (`prefix`, then at least `min` characters of `accept`).
const PREFIXES: [(&[u8], usize, usize); 11] = [
    (b"sk-", 20, WINDOW - 3),
    (b"ghp_", 30, 100),
    (b"gho_", 30, 100),
    (b"ghu_", 30, 100),
    (b"ghs_", 30, 100),
    (b"ghr_", 30, 100),
    (b"github_pat_", 22, 200),
    (b"xoxb-", 10, 200),
    (b"xoxp-", 10, 200),
    (b"xoxa-", 10, 200),
    (b"glpat-", 20, 100),
];

pub fn at(text: &[u8], i: usize) -> Option<Match> {
    let rest = &text[i..];
    for (prefix, min, max) in PREFIXES {
        if rest.starts_with(prefix) {
            let end = run(text, i + prefix.len(), token_char, max);
            if end - i - prefix.len() >= min {
                return found(text, i, end);
            }
            return None;
        }
    }
    if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") {
        let end = run(
            text,
            i + 4,
            |b| b.is_ascii_uppercase() || b.is_ascii_digit(),
            17,
        );
        return if end - i == 20 {
            found(text, i, end)
        } else {
            None
        };
    }
    if rest.starts_with(b"AIza") {
        let end = run(text, i + 4, token_char, 36);
        return if end - i == 39 {
            found(text, i, end)
        } else {
            None
        };
    }
    if rest.len() > 7 && rest[..7].eq_ignore_ascii_case(b"bearer ") {
        let end = run(
            text,
            i + 7,
            |b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b),
            WINDOW - 7,
        );
        return if end - i - 7 >= 16 {
            found(text, i, end)
        } else {
            None
        };
    }
    if rest.starts_with(b"eyJ") {
        return jwt(text, i);
    }
    None
}

/// Three base64url segments, the first two JSON objects (`eyJ`).
fn jwt(text: &[u8], i: usize) -> Option<Match> {
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let first = run(text, i, b64, 120);
    if first - i < 10 || text.get(first) != Some(&b'.') || !text[first + 1..].starts_with(b"eyJ") {
        return None;
    }
    let second = run(text, first + 1, b64, 120);
    if text.get(second) != Some(&b'.') {
        return None;
    }
    let third = run(text, second + 1, b64, 100);
    found(text, i, third)
}

/// `-----BEGIN ... PRIVATE KEY-----` and its body, through the END line when there is one.
pub fn private_key(text: &[u8], i: usize) -> Option<Match> {
    let rest = &text[i..];
    if !rest.starts_with(b"-----BEGIN ") {
        return None;
    }
    let label_end = run(text, i + 11, |b| b.is_ascii_uppercase() || b == b' ', 40);
    if !text[i + 11..label_end].ends_with(b"PRIVATE KEY")
        || !text[label_end..].starts_with(b"-----")
    {
        return None;
    }
    let header = label_end + 5;
    let body = run(
        text,
        header,
        |b| b.is_ascii_alphanumeric() || b"+/=\r\n \t:,-".contains(&b),
        MAX_PEM,
    );
    // The body run stops at the END line's dashes' end or at the first character no PEM has.
    let block = &text[header..body];
    let end = match find(block, b"-----END ") {
        Some(at) => {
            let footer = header + at;
            let close = find(&text[footer + 9..body.min(footer + 60)], b"-----")
                .map(|c| footer + 9 + c + 5);
            close.unwrap_or(body)
        }
        None => body,
    };
    Some(Match {
        kind: Kind::Credential,
        start: i,
        end,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
