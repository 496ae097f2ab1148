//! Event ages in bounded memory: exact up to [`EXACT_LIMIT`] samples, then a log-linear
//! histogram whose buckets are at most 1/128 of their value wide.

use std::time::Duration;

use super::AgeSummary;

/// Ages kept one by one (8 bytes each, 8 MiB at the limit) before the histogram takes over.
pub(crate) const EXACT_LIMIT: usize = 1 << 20;
/// Sub-buckets per power of two: each bucket is less than 1/128 (0.79 %) of its value wide.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Buckets for every `u64`: the first `SUB` values one by one, then `SUB` per power of two.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// Ages of attempts at their start, in nanoseconds.
#[derive(Debug, Default)]
pub(crate) struct Ages {
    exact: Vec<u64>,
    /// Counts per bucket once more than `limit` ages came.
    buckets: Option<Box<[u64]>>,
    count: u64,
    max: u64,
    limit: usize,
}

fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let m = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    SUB + (e - SUB_BITS) as usize * SUB + m
}

/// The largest value in bucket `i` (the percentiles err upward, by less than 1/128).
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = ((i - SUB) / SUB) as u32 + SUB_BITS;
    let m = ((i - SUB) % SUB) as u64;
    let lower = (1u64 << e) | (m << (e - SUB_BITS));
    lower + ((1u64 << (e - SUB_BITS)) - 1)
}

impl Ages {
    /// Exact up to `limit` ages.
    pub(crate) fn new(limit: usize) -> Self {
        Ages {
            limit,
            ..Ages::default()
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, ns: u64) {
        self.count += 1;
        self.max = self.max.max(ns);
        if self.buckets.is_none() && self.exact.len() < self.limit {
            self.exact.push(ns);
        } else {
            self.push_counted(ns);
        }
    }

    /// Past the limit: into the histogram (made from the exact ages the first time).
    #[cold]
    fn push_counted(&mut self, ns: u64) {
        if let Some(b) = &mut self.buckets {
            b[bucket(ns)] += 1;
            return;
        }
        let mut b = vec![0u64; BUCKETS].into_boxed_slice();
        for v in self.exact.drain(..) {
            b[bucket(v)] += 1;
        }
        b[bucket(ns)] += 1;
        self.exact = Vec::new();
        self.buckets = Some(b);
    }

    pub(crate) fn summary(&self) -> AgeSummary {
        Ages::summary_of(&[self])
    }

    /// The summary of several sets of ages together: exact when each is (and together they
    /// are within the limit of the first), else from their histograms added up.
    pub(crate) fn summary_of(sets: &[&Ages]) -> AgeSummary {
        let limit = sets.first().map_or(0, |a| a.limit);
        let count: u64 = sets.iter().map(|a| a.count).sum();
        let max = sets.iter().map(|a| a.max).max().unwrap_or(0);
        if sets.iter().all(|a| a.buckets.is_none()) && count <= limit as u64 {
            let mut sorted: Vec<u64> = sets.iter().flat_map(|a| a.exact.iter().copied()).collect();
            sorted.sort_unstable();
            return AgeSummary::of(&sorted);
        }
        let mut b = vec![0u64; BUCKETS];
        for a in sets {
            match &a.buckets {
                Some(own) => b.iter_mut().zip(own.iter()).for_each(|(t, c)| *t += c),
                None => a.exact.iter().for_each(|v| b[bucket(*v)] += 1),
            }
        }
        Ages::from_buckets(&b, count, max)
    }

    fn from_buckets(b: &[u64], n: u64, max: u64) -> AgeSummary {
        let rank = |p: u64| -> Duration {
            let want = (p * n).div_ceil(100).max(1);
            let mut seen = 0;
            for (i, c) in b.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return Duration::from_nanos(upper(i).min(max));
                }
            }
            Duration::from_nanos(max)
        };
        AgeSummary {
            count: n,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: Duration::from_nanos(max),
            exact: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_no_wider_than_1_128_of_it() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            1_000,
            60_000_000_000,
            u64::MAX,
        ] {
            let i = bucket(v);
            assert!(i < BUCKETS);
            let hi = upper(i);
            assert!(hi >= v, "{v}: upper {hi}");
            assert!((hi - v) as f64 <= v as f64 / 128.0, "{v}: upper {hi}");
        }
        // Buckets are in order and touch.
        for i in SUB..BUCKETS - 1 {
            assert_eq!(bucket(upper(i)), i);
            assert_eq!(bucket(upper(i) + 1), i + 1);
        }
    }

    #[test]
    fn past_the_limit_percentiles_stay_within_1_128_above_the_exact_ones() {
        let mut exact = Ages::new(usize::MAX);
        let mut bounded = Ages::new(100);
        let mut x = 12345u64;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> 20) % 400_000_000_000;
            exact.push(v);
            bounded.push(v);
        }
        let (e, b) = (exact.summary(), bounded.summary());
        assert!(e.exact && !b.exact);
        assert_eq!((e.count, e.max), (b.count, b.max));
        for (e, b) in [(e.p50, b.p50), (e.p90, b.p90), (e.p99, b.p99)] {
            let (e, b) = (e.as_nanos() as f64, b.as_nanos() as f64);
            assert!(b >= e && b - e <= e / 128.0, "exact {e}, histogram {b}");
        }
    }

    #[test]
    fn two_sets_summarised_together_are_one_set_of_all() {
        for (limit, n) in [(10_000, 3_000u64), (100, 3_000)] {
            let (mut x, mut y, mut all) = (Ages::new(limit), Ages::new(limit), Ages::new(limit));
            let mut z = 7u64;
            for i in 0..n {
                z = z
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (z >> 24) % 1_000_000_000;
                if i % 3 == 0 {
                    x.push(v);
                } else {
                    y.push(v);
                }
                all.push(v);
            }
            assert_eq!(Ages::summary_of(&[&x, &y]), all.summary(), "limit {limit}");
        }
    }
}
