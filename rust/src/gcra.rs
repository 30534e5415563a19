//! GCRA decisions for a set of buckets, all or nothing: the in-process limiter's arithmetic.
//!
//! The same algorithm as `fd2.limits.gcra.decide` (the reference, and what the Redis script
//! computes): each bucket stores its theoretical arrival time (TAT, µs); a request costing `c`
//! units is admitted when, for every bucket, `max(TAT, now) + c·interval − capacity <= now`.

/// One bucket's parameters: its size in units and the µs it takes to refill one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub limit: i64,
    pub interval_us: i64,
}

/// The outcome for one request over its buckets, in the buckets' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub retry_after_us: i64,
    pub remaining: Vec<i64>,
    pub reset_us: Vec<i64>,
    /// The TATs to store when admitted.
    pub new_tats: Vec<i64>,
}

/// Decides a request of `costs` against buckets whose stored TATs are `tats` (`now` for a
/// bucket never used). Wide arithmetic: a manifest's limits and a client's token counts must
/// not overflow into an admission.
#[must_use]
pub fn decide(tats: &[i64], buckets: &[Bucket], costs: &[i64], now: i64) -> Decision {
    let mut allowed = true;
    let mut retry: i128 = 0;
    let mut starts = Vec::with_capacity(tats.len());
    let mut new_tats = Vec::with_capacity(tats.len());
    for ((&stored, bucket), &cost) in tats.iter().zip(buckets).zip(costs) {
        let tat = i128::from(stored.max(now));
        let interval = i128::from(bucket.interval_us);
        let new_tat = tat + i128::from(cost) * interval;
        let wait = new_tat - i128::from(bucket.limit) * interval - i128::from(now);
        if wait > 0 {
            allowed = false;
            retry = retry.max(wait);
        }
        starts.push(tat);
        new_tats.push(new_tat);
    }
    let chosen = if allowed { &new_tats } else { &starts };
    let mut remaining = Vec::with_capacity(chosen.len());
    let mut reset_us = Vec::with_capacity(chosen.len());
    for (&tat, bucket) in chosen.iter().zip(buckets) {
        let interval = i128::from(bucket.interval_us);
        let left = i128::from(bucket.limit) * interval - (tat - i128::from(now));
        // Floor division as Python's, clamped at zero: a negative numerator is an empty bucket.
        remaining.push(if left > 0 {
            saturate(left / interval)
        } else {
            0
        });
        reset_us.push(saturate(tat - i128::from(now)));
    }
    Decision {
        allowed,
        retry_after_us: saturate(retry),
        remaining,
        reset_us,
        new_tats: new_tats.into_iter().map(saturate).collect(),
    }
}

/// A TAT after charging `delta` more units (negative: giving units back).
#[must_use]
pub fn adjusted(stored: i64, bucket: Bucket, delta: i64, now: i64) -> i64 {
    let shift = i128::from(delta) * i128::from(bucket.interval_us);
    let value = if delta > 0 {
        i128::from(stored.max(now)) + shift
    } else {
        i128::from(now).max(i128::from(stored) + shift)
    };
    saturate(value)
}

/// `value` clamped into an `i64`.
#[must_use]
pub fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PER_SECOND_2: Bucket = Bucket {
        limit: 2,
        interval_us: 500_000,
    };

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let now = 1_000_000;
        let first = decide(&[now], &[PER_SECOND_2], &[1], now);
        assert!(first.allowed);
        assert_eq!(first.remaining, vec![1]);
        let second = decide(&first.new_tats, &[PER_SECOND_2], &[1], now);
        assert!(second.allowed);
        assert_eq!(second.remaining, vec![0]);
        let third = decide(&second.new_tats, &[PER_SECOND_2], &[1], now);
        assert!(!third.allowed);
        assert_eq!(third.retry_after_us, 500_000);
        assert_eq!(third.reset_us, vec![1_000_000]);
    }

    #[test]
    fn one_full_bucket_refuses_for_all() {
        let now = 0;
        let roomy = Bucket {
            limit: 100,
            interval_us: 10,
        };
        let full = decide(
            &[now + 1_000_000, now],
            &[PER_SECOND_2, roomy],
            &[1, 1],
            now,
        );
        assert!(!full.allowed);
        // Refused: the remaining counts are those before the request.
        assert_eq!(full.remaining, vec![0, 100]);
    }

    #[test]
    fn huge_costs_never_wrap_into_an_admission() {
        let decision = decide(&[0], &[PER_SECOND_2], &[i64::MAX], 0);
        assert!(!decision.allowed);
        assert_eq!(decision.retry_after_us, i64::MAX);
    }

    #[test]
    fn adjusting_gives_back_no_more_than_now() {
        assert_eq!(adjusted(5_000, PER_SECOND_2, -100, 1_000), 1_000);
        assert_eq!(adjusted(5_000, PER_SECOND_2, 1, 1_000), 505_000);
    }
}
