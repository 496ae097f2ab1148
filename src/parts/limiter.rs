//! [`ConcurrencyLimiter`]: counting execution slots whose limit can change at any moment.

use crate::parts::sync::{AtomicUsize, Ordering};
use std::fmt;

/// A counting limiter: at most `limit` [`Permit`]s exist at once.
///
/// The runtime keeps one for the account (Lambda: 1,000), one for the unreserved pool shared by
/// functions without reserved concurrency, and one per function (its reserved concurrency, or
/// unlimited to count its executions). The limit may change at any moment: permits already
/// given stay valid, and new ones are refused until the count is below the new limit.
///
/// A permit is released when dropped, so a handler that panics cannot leak one.
///
/// # Examples
///
/// ```
/// use event_invoke::ConcurrencyLimiter;
///
/// let limiter = ConcurrencyLimiter::new(2);
/// let a = limiter.try_acquire().unwrap();
/// let b = limiter.try_acquire().unwrap();
/// assert!(limiter.try_acquire().is_none()); // throttled
/// assert_eq!(limiter.in_flight(), 2);
/// drop(a);
/// assert!(limiter.try_acquire().is_some());
/// limiter.set_limit(0);
/// assert!(limiter.try_acquire().is_none());
/// drop(b);
/// assert_eq!(limiter.in_flight(), 0);
/// assert_eq!(limiter.peak(), 2);
/// ```
pub struct ConcurrencyLimiter {
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl ConcurrencyLimiter {
    /// A limiter allowing `limit` permits at once.
    pub fn new(limit: usize) -> Self {
        ConcurrencyLimiter {
            limit: AtomicUsize::new(limit),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// A limiter that never refuses; it only counts.
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// A permit, or `None` when `limit` permits are out (a throttle).
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        if self.try_acquire_raw() {
            Some(Permit { limiter: self })
        } else {
            None
        }
    }

    /// Takes a slot without a guard; the caller must call [`release_raw`](Self::release_raw).
    #[inline]
    pub(crate) fn try_acquire_raw(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current >= limit {
                return false;
            }
            // AcqRel: a permit is a hand-off point between threads, like a lock.
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Load first: fetch_max writes the cache line even when it changes nothing.
                    if current + 1 > self.peak.load(Ordering::Relaxed) {
                        self.peak.fetch_max(current + 1, Ordering::Relaxed);
                    }
                    return true;
                }
                Err(actual) => current = actual,
            }
        }
    }

    #[inline]
    pub(crate) fn release_raw(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Changes the limit. Permits already out stay valid.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The current limit (`usize::MAX` when unlimited).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Permits out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The most permits ever out at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Forgets the peak (sets it to the current count).
    pub fn reset_peak(&self) {
        self.peak.store(self.in_flight(), Ordering::Relaxed);
    }
}

impl Default for ConcurrencyLimiter {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl fmt::Debug for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimiter")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("peak", &self.peak())
            .finish()
    }
}

/// One execution slot of a [`ConcurrencyLimiter`], released on drop (also during a panic).
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct Permit<'a> {
    limiter: &'a ConcurrencyLimiter,
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.limiter.release_raw();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
