//! The credential a request presents: `Authorization: Bearer`, `api-key` or `x-api-key`.
//! The rules of `fd2.auth.credentials` (which calls this), kept here so every keyed request
//! finds its credential in one pass without Python string work.

use std::ops::Range;

/// The longest credential accepted (JWE tokens can be long; nothing legitimate is longer).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// A credential that must be refused (401) rather than read: a scheme other than Bearer, two
/// different credentials, or bytes no key or token is made of.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The credential among `headers` (names lowercase, as ASGI gives them); `None` when there
/// is none. Printable ASCII without spaces only: CR, LF, NUL, spaces and non-ASCII are refused
/// before they reach a parser or a log.
///
/// # Errors
///
/// `Malformed` for a credential that must be refused.
pub fn presented<'a>(
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<&'a [u8]>, Malformed> {
    let mut found: Option<&[u8]> = None;
    for (name, value) in headers {
        if let Some(range) = candidate(name, value)? {
            found = Some(agreed(found, &value[range])?);
        }
    }
    found.map(checked).transpose()
}

/// Where in `value` the credential of header `name` is; `None` for a header that carries none.
///
/// # Errors
///
/// `Malformed` for an `authorization` scheme other than Bearer.
pub fn candidate(name: &[u8], value: &[u8]) -> Result<Option<Range<usize>>, Malformed> {
    match name {
        b"authorization" => {
            let (scheme, rest_at) = match value.iter().position(|&b| b == b' ') {
                Some(at) => (&value[..at], at + 1),
                None => (value, value.len()),
            };
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                return Err(Malformed);
            }
            let inner = trim_spaces(&value[rest_at..]);
            Ok(Some(rest_at + inner.start..rest_at + inner.end))
        }
        b"api-key" | b"x-api-key" => Ok(Some(trim_spaces(value))),
        _ => Ok(None),
    }
}

/// `next`, unless another credential was presented before it.
///
/// # Errors
///
/// `Malformed` for two different credentials: refused rather than one picked.
pub fn agreed<'a>(before: Option<&[u8]>, next: &'a [u8]) -> Result<&'a [u8], Malformed> {
    match before {
        Some(seen) if seen != next => Err(Malformed),
        _ => Ok(next),
    }
}

/// The credential, if it is made of what keys and tokens are made of.
///
/// # Errors
///
/// `Malformed` for an empty or oversized credential, or any other byte.
pub fn checked(credential: &[u8]) -> Result<&[u8], Malformed> {
    if credential.is_empty()
        || credential.len() > MAX_CREDENTIAL_BYTES
        || !credential.iter().all(|&b| (0x21..=0x7e).contains(&b))
    {
        return Err(Malformed);
    }
    Ok(credential)
}

/// `value` without the spaces around it, as a range of it.
fn trim_spaces(value: &[u8]) -> Range<usize> {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |at| at + 1);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(headers: &[(&'static str, &'static str)]) -> Result<Option<&'static [u8]>, Malformed> {
        presented(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn reads_each_header_form() {
        assert_eq!(
            find(&[("authorization", "Bearer abc")]),
            Ok(Some(&b"abc"[..]))
        );
        assert_eq!(
            find(&[("authorization", "bEaReR  abc  ")]),
            Ok(Some(&b"abc"[..]))
        );
        assert_eq!(find(&[("api-key", " k1 ")]), Ok(Some(&b"k1"[..])));
        assert_eq!(
            find(&[("x-api-key", "k1"), ("host", "h")]),
            Ok(Some(&b"k1"[..]))
        );
        assert_eq!(find(&[("host", "h")]), Ok(None));
    }

    #[test]
    fn refuses_what_it_cannot_read_safely() {
        assert_eq!(find(&[("authorization", "Basic abc")]), Err(Malformed));
        assert_eq!(find(&[("authorization", "Bearer")]), Err(Malformed));
        assert_eq!(find(&[("authorization", "Bearer a b")]), Err(Malformed));
        assert_eq!(find(&[("api-key", "a\u{7f}")]), Err(Malformed));
        assert_eq!(
            find(&[("api-key", "k1"), ("x-api-key", "k2")]),
            Err(Malformed)
        );
        assert_eq!(
            find(&[("api-key", "k1"), ("x-api-key", "k1")]),
            Ok(Some(&b"k1"[..]))
        );
        let long = "k".repeat(MAX_CREDENTIAL_BYTES + 1);
        let headers = [(&b"api-key"[..], long.as_bytes())];
        assert_eq!(presented(headers), Err(Malformed));
    }
}
