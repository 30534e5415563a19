//! PII scanning: finds e-mail addresses, phone numbers, payment cards (Luhn),
//! IBANs (mod-97), US SSNs, IPv4/IPv6 addresses and credential-like strings in
//! text, locally, in one pass. Python decides what to do with each match
//! (`fd2.privacy`); this only finds them.
//!
//! Every detector looks at a bounded neighbourhood (at most [`WINDOW`] bytes
//! for a match or a prefix of one that is not yet a match), which is what lets
//! a stream be scanned piecewise with a held-back tail of that size.

mod checks;
mod credentials;
mod email;
mod numbers;
#[cfg(test)]
mod tests;

/// The kinds, in the order of [`Kind`] (their names in settings and counts).
pub const KIND_NAMES: [&str; 8] = [
    "email",
    "phone",
    "card",
    "iban",
    "ssn",
    "ipv4",
    "ipv6",
    "credential",
];

/// The longest text a match, or an unfinished prefix of one, can span (bytes),
/// private-key blocks aside (they grow as long as their body runs).
pub const WINDOW: usize = 256;

/// What a match is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Email = 0,
    Phone = 1,
    Card = 2,
    Iban = 3,
    Ssn = 4,
    Ipv4 = 5,
    Ipv6 = 6,
    Credential = 7,
}

impl Kind {
    #[must_use]
    pub fn name(self) -> &'static str {
        KIND_NAMES[self as usize]
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        const ALL: [Kind; 8] = [
            Kind::Email,
            Kind::Phone,
            Kind::Card,
            Kind::Iban,
            Kind::Ssn,
            Kind::Ipv4,
            Kind::Ipv6,
            Kind::Credential,
        ];
        ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One match: a kind and a byte range of the scanned text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Finds the enabled kinds; built once per route.
#[derive(Clone, Debug)]
pub struct Scanner {
    enabled: [bool; 8],
}

pub(crate) fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl Scanner {
    #[must_use]
    pub fn new(kinds: &[Kind]) -> Self {
        let mut enabled = [false; 8];
        for kind in kinds {
            enabled[*kind as usize] = true;
        }
        Self { enabled }
    }

    fn on(&self, kind: Kind) -> bool {
        self.enabled[kind as usize]
    }

    /// The matches in `text`, ordered, not overlapping (where two would, the
    /// one starting first wins, then the longer).
    #[must_use]
    pub fn scan(&self, text: &[u8]) -> Vec<Match> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let byte = text[i];
            let prev = if i > 0 { text[i - 1] } else { b' ' };
            let hit = if byte.is_ascii_digit() || byte == b'+' || byte == b'(' {
                // Not inside a word, nor continuing a number ("1.2.3.4.5", "+4").
                let continues = prev == b'.' && i >= 2 && text[i - 2].is_ascii_digit();
                if prev.is_ascii_alphanumeric() || continues || (byte != b'(' && prev == b'+') {
                    None
                } else {
                    numbers::at(self, text, i)
                }
            } else if byte.is_ascii_alphabetic() {
                if is_word(prev) {
                    None
                } else {
                    self.alpha(text, i)
                }
            } else if byte == b'-' && self.on(Kind::Credential) {
                credentials::private_key(text, i)
            } else if byte == b':' && text.get(i + 1) == Some(&b':') && !is_word(prev) {
                self.on(Kind::Ipv6)
                    .then(|| numbers::ipv6(text, i))
                    .flatten()
            } else {
                None
            };
            if let Some(m) = hit {
                found.push(m);
                i = m.end;
            } else if byte.is_ascii_alphanumeric() {
                // No match starts inside a run of letters and digits (each detector needs a
                // word start): skip to its end.
                i += 1;
                while i < text.len() && text[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        if self.on(Kind::Email) {
            let emails = email::all(text);
            if !emails.is_empty() {
                found = merge(found, emails);
            }
        }
        found
    }

    fn alpha(&self, text: &[u8], i: usize) -> Option<Match> {
        if self.on(Kind::Credential) {
            let hit = credentials::at(text, i);
            if hit.is_some() {
                return hit;
            }
        }
        if self.on(Kind::Iban) {
            let hit = numbers::iban(text, i);
            if hit.is_some() {
                return hit;
            }
        }
        if self.on(Kind::Ipv6) && text[i].is_ascii_hexdigit() {
            return numbers::ipv6(text, i);
        }
        None
    }
}

/// Two ordered match lists as one, overlaps dropped.
fn merge(a: Vec<Match>, b: Vec<Match>) -> Vec<Match> {
    let mut all = a;
    all.extend(b);
    all.sort_by(|x, y| x.start.cmp(&y.start).then(y.end.cmp(&x.end)));
    let mut out: Vec<Match> = Vec::with_capacity(all.len());
    for m in all {
        if out.last().is_none_or(|last| m.start >= last.end) {
            out.push(m);
        }
    }
    out
}
