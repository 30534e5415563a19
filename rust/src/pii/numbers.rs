//! The detectors that start at a digit (cards, SSNs, IPv4, phones, IPv6), and
//! IBANs and IPv6 addresses starting with a letter.

use std::net::Ipv6Addr;
use std::str::FromStr;

use super::checks::{iban_mod97, luhn};
use super::{Kind, Match, Scanner, is_word};

const MAX_CARD_DIGITS: usize = 19;

fn digit(text: &[u8], i: usize) -> bool {
    text.get(i).is_some_and(u8::is_ascii_digit)
}

fn ends_cleanly(text: &[u8], end: usize) -> bool {
    // Not glued to a following letter or digit, nor to ".<digit>" (a longer number).
    match text.get(end) {
        Some(&b) if b.is_ascii_alphanumeric() || b == b'_' => false,
        Some(&b'.' | &b',') => !digit(text, end + 1),
        _ => true,
    }
}

/// The first detector that matches at `i` (a digit, `+` or `(` not glued to a word).
pub fn at(scanner: &Scanner, text: &[u8], i: usize) -> Option<Match> {
    if text[i].is_ascii_digit() {
        if scanner.on(Kind::Card) {
            let hit = card(text, i);
            if hit.is_some() {
                return hit;
            }
        }
        if scanner.on(Kind::Ssn) {
            let hit = ssn(text, i);
            if hit.is_some() {
                return hit;
            }
        }
        if scanner.on(Kind::Ipv4) {
            let hit = ipv4(text, i);
            if hit.is_some() {
                return hit;
            }
        }
        if scanner.on(Kind::Ipv6) {
            let hit = ipv6(text, i);
            if hit.is_some() {
                return hit;
            }
        }
    }
    if scanner.on(Kind::Phone) {
        return phone(text, i);
    }
    None
}

/// 13 to 19 digits, single spaces or dashes between groups, Luhn-valid.
fn card(text: &[u8], i: usize) -> Option<Match> {
    let mut digits = [0u8; MAX_CARD_DIGITS];
    let mut count = 0;
    let mut j = i;
    let mut end = i;
    while j < text.len() {
        let byte = text[j];
        if byte.is_ascii_digit() {
            if count == MAX_CARD_DIGITS {
                return None; // a longer number than any card
            }
            digits[count] = byte;
            count += 1;
            j += 1;
            end = j;
        } else if (byte == b' ' || byte == b'-') && digit(text, j + 1) && count > 0 {
            j += 1;
        } else {
            break;
        }
    }
    if count < 13 || !ends_cleanly(text, end) || !luhn(&digits[..count]) {
        return None;
    }
    Some(Match {
        kind: Kind::Card,
        start: i,
        end,
    })
}

/// `AAA-GG-SSSS` (dashes or spaces), with the ranges the SSA never issues refused.
fn ssn(text: &[u8], i: usize) -> Option<Match> {
    let part = text.get(i..i + 11)?;
    let sep = part[3];
    if !(sep == b'-' || sep == b' ') || part[6] != sep {
        return None;
    }
    let groups = [&part[0..3], &part[4..6], &part[7..11]];
    if !groups.iter().all(|g| g.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let area = groups[0];
    if area == b"000"
        || area == b"666"
        || area[0] == b'9'
        || groups[1] == b"00"
        || groups[2] == b"0000"
    {
        return None;
    }
    if !ends_cleanly(text, i + 11) {
        return None;
    }
    Some(Match {
        kind: Kind::Ssn,
        start: i,
        end: i + 11,
    })
}

fn ipv4(text: &[u8], i: usize) -> Option<Match> {
    let mut j = i;
    for index in 0..4 {
        if index > 0 {
            if text.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let start = j;
        let mut value = 0u32;
        while j < text.len() && text[j].is_ascii_digit() && j - start < 3 {
            value = value * 10 + u32::from(text[j] - b'0');
            j += 1;
        }
        if j == start || value > 255 || digit(text, j) {
            return None;
        }
    }
    if !ends_cleanly(text, j) {
        return None;
    }
    Some(Match {
        kind: Kind::Ipv4,
        start: i,
        end: j,
    })
}

/// An IPv6 address at `i` (hex digits, colons, an embedded IPv4), as the standard library parses it.
pub fn ipv6(text: &[u8], i: usize) -> Option<Match> {
    let mut j = i;
    let mut colons = 0;
    while j < text.len() && j - i < 45 {
        let byte = text[j];
        if byte == b':' {
            colons += 1;
        } else if !(byte.is_ascii_hexdigit() || byte == b'.') {
            break;
        }
        j += 1;
    }
    // A trailing '.' or single ':' ends a sentence, not the address.
    while j > i
        && (text[j - 1] == b'.'
            || (text[j - 1] == b':' && text.get(j.wrapping_sub(2)) != Some(&b':')))
    {
        if text[j - 1] == b':' {
            colons -= 1;
        }
        j -= 1;
    }
    if colons < 2 || j < text.len() && is_word(text[j]) {
        return None;
    }
    let candidate = std::str::from_utf8(&text[i..j]).ok()?;
    if !candidate.bytes().any(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Ipv6Addr::from_str(candidate).ok()?;
    Some(Match {
        kind: Kind::Ipv6,
        start: i,
        end: j,
    })
}

/// International (`+` and 8 to 15 digits with separators, or 10 to 15 without) or North American (`(415) 555-2671`,
/// `415-555-2671`, `1 415 555 2671`) numbers with separators; a bare run of
/// digits is not taken for a phone number.
fn phone(text: &[u8], i: usize) -> Option<Match> {
    let plus = text[i] == b'+';
    let mut groups = [0usize; 8];
    let mut count = 0;
    let mut j = i + usize::from(plus);
    let mut end = 0;
    loop {
        let paren = text.get(j) == Some(&b'(');
        if paren {
            j += 1;
        }
        let start = j;
        while digit(text, j) {
            j += 1;
        }
        if j == start {
            return None;
        }
        if count > 0 && groups[..count].iter().sum::<usize>() + (j - start) > 15 {
            break; // the number ended before this group (a longer one follows, e.g. a card)
        }
        groups[count] = j - start;
        count += 1;
        if paren {
            if text.get(j) != Some(&b')') {
                return None;
            }
            j += 1;
        }
        end = j;
        let mut next = j;
        if matches!(text.get(next), Some(b' ' | b'-' | b'.')) {
            next += 1;
        }
        let separated = next > j || paren;
        let more = digit(text, next) || text.get(next) == Some(&b'(');
        if !separated || !more || count == groups.len() || next - i > 24 {
            break;
        }
        j = next;
    }
    if count == 0 || !ends_cleanly(text, end) {
        return None;
    }
    let digits: usize = groups[..count].iter().sum();
    let ok = if plus {
        // With separators 8 to 15 digits; written compactly as E.164 (`+4915112345678`, how
        // phone systems and forms store them) at least 10, so a short signed number is not one.
        if count >= 2 {
            (8..=15).contains(&digits)
        } else {
            (10..=15).contains(&digits)
        }
    } else {
        matches!(&groups[..count], [3, 3, 4] | [1, 3, 3, 4])
    };
    ok.then_some(Match {
        kind: Kind::Phone,
        start: i,
        end,
    })
}

/// Two letters, two check digits, 11 to 30 letters or digits (single spaces
/// allowed between groups), mod-97-valid; the longest valid reading wins.
pub fn iban(text: &[u8], i: usize) -> Option<Match> {
    let head = text.get(i..i + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let mut compact = [0u8; 34];
    let mut ends = [0usize; 35]; // ends[n]: where the text of the first n characters ends
    let mut count = 0;
    let mut j = i;
    while j < text.len() && count < 34 {
        let byte = text[j];
        if byte.is_ascii_uppercase() || byte.is_ascii_digit() {
            compact[count] = byte;
            count += 1;
            j += 1;
            ends[count] = j;
        } else if byte == b' '
            && count >= 4
            && text
                .get(j + 1)
                .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            j += 1;
        } else {
            break;
        }
    }
    for n in (15..=count).rev() {
        let end = ends[n];
        // A reading must end at a group boundary: not inside a run of letters or digits.
        if text.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        if iban_mod97(&compact[..n]) {
            return Some(Match {
                kind: Kind::Iban,
                start: i,
                end,
            });
        }
    }
    None
}
