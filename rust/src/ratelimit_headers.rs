//! OpenAI's `x-ratelimit-*` values, computed where the in-process limiter decides: which bucket
//! a client must watch, and reset times written as OpenAI writes them. The same rules as
//! `fd2.pipeline.limits.ratelimit_headers` and `duration` (tests check the two against each other).

use std::fmt::Write;

/// A reset time as OpenAI writes it: `20ms`, `1s`, `1.5s`, `6m0s`.
#[must_use]
pub fn duration(us: i64) -> String {
    let mut text = String::new();
    write_duration(&mut text, us);
    text
}

/// `duration`, written into `out` (a stack buffer on the request path: no allocation).
pub fn write_duration(out: &mut impl Write, us: i64) {
    // Writing to a String or a large enough buffer cannot fail.
    let _ = if us <= 0 {
        out.write_str("0s")
    } else if us < 1_000_000 {
        write!(out, "{}ms", ceil_div(us, 1000).max(1))
    } else if us < 60_000_000 {
        // Below a minute `us` is exact as an f64, and the division rounds as Python's does.
        #[allow(clippy::cast_precision_loss)]
        let seconds = us as f64 / 1_000_000.0;
        let mut fixed = Text::default();
        let _ = write!(fixed, "{seconds:.3}");
        let trimmed = fixed.as_str().trim_end_matches('0').trim_end_matches('.');
        write!(out, "{trimmed}s")
    } else {
        let whole = ceil_div(us, 1_000_000);
        write!(out, "{}m{}s", whole / 60, whole % 60)
    };
}

/// Up to 48 bytes of text on the stack: a header value, rendered without allocating.
pub struct Text {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Text {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Text {
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only whole `str`s are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Write for Text {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn ceil_div(value: i64, by: i64) -> i64 {
    value / by + i64::from(value % by != 0)
}

/// Of the buckets `candidates` names, the one closest to empty: the lowest share left
/// (`remaining / limit`, compared exactly), the first on a tie.
#[must_use]
pub fn closest_to_empty(
    candidates: impl IntoIterator<Item = usize>,
    remaining: &[i64],
    limits: &[i64],
) -> Option<usize> {
    let mut chosen: Option<usize> = None;
    for index in candidates {
        chosen = match chosen {
            Some(best)
                if i128::from(remaining[index]) * i128::from(limits[best])
                    >= i128::from(remaining[best]) * i128::from(limits[index]) =>
            {
                Some(best)
            }
            _ => Some(index),
        };
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_openai_writes_them() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(1), "1ms");
        assert_eq!(duration(20_000), "20ms");
        assert_eq!(duration(20_001), "21ms");
        assert_eq!(duration(1_000_000), "1s");
        assert_eq!(duration(1_500_000), "1.5s");
        assert_eq!(duration(59_999_999), "60s");
        assert_eq!(duration(60_000_000), "1m0s");
        assert_eq!(duration(360_000_000), "6m0s");
        assert_eq!(duration(360_000_001), "6m1s");
    }

    #[test]
    fn exact_ties_round_half_to_even_as_python_does() {
        // 1.0625 and 1.1875 are exact in binary: Python's '.3f' gives 1.062 and 1.188.
        assert_eq!(duration(1_062_500), "1.062s");
        assert_eq!(duration(1_187_500), "1.188s");
    }

    #[test]
    fn the_bucket_closest_to_empty_is_chosen_first_on_ties() {
        let remaining = [5, 1, 10, 2];
        let limits = [10, 10, 10, 4];
        assert_eq!(closest_to_empty([0, 2], &remaining, &limits), Some(0));
        assert_eq!(closest_to_empty([0, 1, 2, 3], &remaining, &limits), Some(1));
        assert_eq!(closest_to_empty([0, 3], &remaining, &limits), Some(0));
        assert_eq!(closest_to_empty([], &remaining, &limits), None);
    }
}
