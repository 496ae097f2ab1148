//! [`ConcurrencyLimiter`]: counting execution slots whose limit can change at any moment.

use crate::parts::sync::{AtomicUsize, Ordering};
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// A counting limiter: at most `limit` permits ([`Permit`]s and [`OwnedPermit`]s) exist at once.
///
/// The runtime keeps one for the account (Lambda: 1,000), one for the unreserved pool shared by
/// functions without reserved concurrency, and one per function (its reserved concurrency, or
/// unlimited to count its executions). The limit may change at any moment: permits already
/// given stay valid, and new ones are refused until the count is below the new limit.
///
/// A permit is released when dropped, so a handler that panics cannot leak one.
/// [`try_acquire`](Self::try_acquire) lends a [`Permit`] tied to the limiter's lifetime (no
/// reference counting: the cheap one); [`try_acquire_owned`](Self::try_acquire_owned), on a
/// limiter in an [`Arc`], gives an [`OwnedPermit`] that keeps the limiter alive and can move
/// into another thread.
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
    /// Permits out, and in its top bit ([`WAITING`]) whether somebody waits for one to be
    /// given back. One word, so that "no slot, I wait" and "slot given back" are both
    /// read-modify-writes of it: whichever comes second sees the other (no lost wake-up).
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// The top bit of [`ConcurrencyLimiter::in_flight`]'s word: a waiter wants to hear of the next
/// permit given back ([`ConcurrencyLimiter::wait_for_slot`]).
const WAITING: usize = 1 << (usize::BITS - 1);

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
        if self.acquire_slot() {
            Some(Permit { limiter: self })
        } else {
            None
        }
    }

    /// A permit not yet counted in the [`peak`](Self::peak): for a caller that takes permits
    /// from several limiters and gives them all back when a later one refuses. Such a permit
    /// never ran anything, so it must not raise a peak: the caller counts the permits it keeps
    /// with [`count_peak`](Self::count_peak).
    #[inline]
    pub(crate) fn try_acquire_uncounted(&self) -> Option<Permit<'_>> {
        if self.take_slot().is_some() {
            Some(Permit { limiter: self })
        } else {
            None
        }
    }

    /// Counts the permits out now in the peak: called once a permit from
    /// [`try_acquire_uncounted`](Self::try_acquire_uncounted) is kept. Exact from one thread;
    /// with several, the count may include a permit another thread is about to give back.
    #[inline]
    pub(crate) fn count_peak(&self) {
        let now = self.in_flight();
        // Load first: fetch_max writes the cache line even when it changes nothing.
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// An owned permit, or `None` when `limit` permits are out (a throttle).
    ///
    /// The permit holds a clone of the `Arc` (taken only when a slot is given), so it is
    /// `'static`: it can move into a spawned thread or be stored anywhere, and the slot goes
    /// back when it is dropped, also when the thread holding it panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use event_invoke::ConcurrencyLimiter;
    ///
    /// let limiter = Arc::new(ConcurrencyLimiter::new(1));
    /// let permit = limiter.try_acquire_owned().unwrap();
    /// assert!(limiter.try_acquire_owned().is_none()); // throttled
    ///
    /// let worker = std::thread::spawn(move || {
    ///     // The permit travels with the work; dropped when it is done.
    ///     assert_eq!(permit.limiter().in_flight(), 1);
    /// });
    /// worker.join().unwrap();
    /// assert_eq!(limiter.in_flight(), 0);
    /// assert!(limiter.try_acquire_owned().is_some());
    /// ```
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedPermit> {
        if self.acquire_slot() {
            Some(OwnedPermit {
                limiter: Arc::clone(self),
            })
        } else {
            None
        }
    }

    /// Takes a slot if one is free, without counting it in the peak, and returns the count
    /// it made. Only a permit's constructor calls it, and only a permit's drop gives the slot
    /// back ([`release_slot`](Self::release_slot)).
    #[inline]
    fn take_slot(&self) -> Option<usize> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current & !WAITING >= limit {
                return None;
            }
            // AcqRel: a permit is a hand-off point between threads, like a lock.
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((current & !WAITING) + 1),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a slot if one is free, and counts it in the peak.
    #[inline]
    fn acquire_slot(&self) -> bool {
        let Some(reached) = self.take_slot() else {
            return false;
        };
        // Load first: fetch_max writes the cache line even when it changes nothing.
        if reached > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(reached, Ordering::Relaxed);
        }
        true
    }

    #[inline]
    fn release_slot(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Asks to hear of the next permit given back: marks the limiter as waited for, and returns
    /// whether a slot is free now (then the caller tries again instead of waiting). The mark
    /// stays until [`take_waiting`](Self::take_waiting) clears it.
    ///
    /// No wake-up is lost: the mark and every release are read-modify-writes of one word, so
    /// a release that comes before the mark shows here as a free slot, and one that comes
    /// after finds the mark (the releaser checks with [`take_waiting`](Self::take_waiting)
    /// after its permit is dropped).
    pub(crate) fn wait_for_slot(&self) -> bool {
        let before = self.in_flight.fetch_or(WAITING, Ordering::AcqRel);
        before & !WAITING < self.limit.load(Ordering::Relaxed)
    }

    /// Whether somebody waits ([`wait_for_slot`](Self::wait_for_slot)) and a slot is free:
    /// then the mark is cleared and the caller wakes whoever waits. For a caller that took a
    /// permit and gave it back unused: while the limiter is full again, the permits out will
    /// wake the waiters when they go.
    #[inline]
    pub(crate) fn take_waiting_if_free(&self) -> bool {
        let word = self.in_flight.load(Ordering::Relaxed);
        word & WAITING != 0
            && word & !WAITING < self.limit.load(Ordering::Relaxed)
            && self.take_waiting()
    }

    /// Clears the mark of [`wait_for_slot`](Self::wait_for_slot) and returns whether it was
    /// set: then the caller wakes whoever waits. Costs one load when nobody waits.
    #[inline]
    pub(crate) fn take_waiting(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) & WAITING != 0
            && self.in_flight.fetch_and(!WAITING, Ordering::AcqRel) & WAITING != 0
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
        self.in_flight.load(Ordering::Relaxed) & !WAITING
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
///
/// It borrows the limiter; [`into_owned`](Self::into_owned) turns it into an [`OwnedPermit`]
/// that does not.
#[must_use = "the slot is released as soon as the permit is dropped"]
#[clippy::has_significant_drop]
pub struct Permit<'a> {
    limiter: &'a ConcurrencyLimiter,
}

impl<'a> Permit<'a> {
    /// The limiter this permit counts against.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::ConcurrencyLimiter;
    ///
    /// let limiter = ConcurrencyLimiter::new(3);
    /// let permit = limiter.try_acquire().unwrap();
    /// assert!(std::ptr::eq(permit.limiter(), &limiter));
    /// assert_eq!(permit.limiter().in_flight(), 1);
    /// ```
    pub fn limiter(&self) -> &'a ConcurrencyLimiter {
        self.limiter
    }

    /// The same slot as an [`OwnedPermit`], which can outlive the borrow: the slot stays taken
    /// throughout (it is never given back and taken again, so no other caller can get it
    /// meanwhile, and a lowered limit cannot refuse it).
    ///
    /// `limiter` must be the `Arc` holding the limiter this permit came from; any other is
    /// refused, and the permit is handed back unchanged in the `Err`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use event_invoke::ConcurrencyLimiter;
    ///
    /// let limiter = Arc::new(ConcurrencyLimiter::new(1));
    /// let other = Arc::new(ConcurrencyLimiter::new(1));
    ///
    /// let permit = limiter.try_acquire().unwrap();
    /// // The wrong limiter: the permit comes back, still holding its slot.
    /// let permit = permit.into_owned(&other).unwrap_err();
    /// assert_eq!((limiter.in_flight(), other.in_flight()), (1, 0));
    ///
    /// let owned = permit.into_owned(&limiter).unwrap();
    /// assert_eq!(limiter.in_flight(), 1);
    /// std::thread::spawn(move || drop(owned)).join().unwrap();
    /// assert_eq!(limiter.in_flight(), 0);
    /// ```
    pub fn into_owned(self, limiter: &Arc<ConcurrencyLimiter>) -> Result<OwnedPermit, Self> {
        if !std::ptr::eq(self.limiter, Arc::as_ptr(limiter)) {
            return Err(self);
        }
        // The slot passes to the owned permit: this one must not give it back. It holds only a
        // reference, so not running its drop leaks nothing else.
        let _ = ManuallyDrop::new(self);
        Ok(OwnedPermit {
            limiter: Arc::clone(limiter),
        })
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.limiter.release_slot();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// One execution slot of a [`ConcurrencyLimiter`] in an [`Arc`], released on drop (also
/// during a panic). Unlike a [`Permit`] it owns a handle to its limiter, so it is
/// `Send + Sync + 'static`: it can move into a spawned thread, or wait in a queue, for as long
/// as the work it stands for.
///
/// Made by [`ConcurrencyLimiter::try_acquire_owned`] or [`Permit::into_owned`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use event_invoke::{ConcurrencyLimiter, OwnedPermit};
///
/// let limiter = Arc::new(ConcurrencyLimiter::new(2));
/// let permits: Vec<OwnedPermit> = (0..3).filter_map(|_| limiter.try_acquire_owned()).collect();
/// assert_eq!(permits.len(), 2); // the third was throttled
///
/// let workers: Vec<_> = permits
///     .into_iter()
///     .map(|permit| std::thread::spawn(move || drop(permit)))
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(limiter.in_flight(), 0);
/// assert_eq!(limiter.peak(), 2);
/// ```
#[must_use = "the slot is released as soon as the permit is dropped"]
#[clippy::has_significant_drop]
pub struct OwnedPermit {
    limiter: Arc<ConcurrencyLimiter>,
}

impl OwnedPermit {
    /// The limiter this permit counts against.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use event_invoke::ConcurrencyLimiter;
    ///
    /// let limiter = Arc::new(ConcurrencyLimiter::new(3));
    /// let permit = limiter.try_acquire_owned().unwrap();
    /// assert!(Arc::ptr_eq(permit.limiter(), &limiter));
    /// assert_eq!(permit.limiter().in_flight(), 1);
    /// ```
    pub fn limiter(&self) -> &Arc<ConcurrencyLimiter> {
        &self.limiter
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        self.limiter.release_slot();
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("limiter", &*self.limiter)
            .finish()
    }
}
