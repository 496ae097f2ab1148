//! [`ConcurrencyLimiter`]: counting execution slots whose limit can change at any moment; and
//! [`AccountLimiter`], the account's slots and its unreserved pool in one word.

use crate::parts::sync::{AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// A counting limiter: at most `limit` permits ([`Permit`]s and [`OwnedPermit`]s) exist at once.
///
/// The runtime keeps one per function (its reserved concurrency, or unlimited to count its
/// executions); the account's slots (Lambda: 1,000) and the unreserved pool shared by functions
/// without reserved concurrency sit together in one atomic word. The limit may change at any
/// moment: permits already given stay valid, and new ones are refused until the count is below
/// the new limit.
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

    /// Takes a slot if one is free, counted in the peak, with no permit to give it back: the
    /// caller gives it back with [`give_back`](Self::give_back) (or turns it into an
    /// [`OwnedPermit`] with [`own_taken`](Self::own_taken)).
    #[inline]
    pub(crate) fn take(&self) -> bool {
        self.acquire_slot()
    }

    /// [`take`](Self::take) without counting the slot in the peak, for a caller that takes
    /// slots of several limiters and gives them all back when a later one refuses: such a slot
    /// never ran anything, so it must not raise a peak. Returns the count it made, which the
    /// caller counts with [`count_peak_at`](Self::count_peak_at) once the slot is kept.
    #[inline]
    pub(crate) fn take_uncounted(&self) -> Option<usize> {
        self.take_slot()
    }

    /// Counts `reached` (the count a slot kept made, from
    /// [`take_uncounted`](Self::take_uncounted)) in the peak.
    #[inline]
    pub(crate) fn count_peak_at(&self, reached: usize) {
        // Load first: fetch_max writes the cache line even when it changes nothing.
        if reached > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(reached, Ordering::Relaxed);
        }
    }

    /// Gives back a slot taken with [`take`](Self::take) or
    /// [`take_uncounted`](Self::take_uncounted), and returns whether somebody waited for one
    /// ([`wait_for_slot`](Self::wait_for_slot)): then the mark is cleared, and the caller
    /// wakes whoever waits. The mark is read from the release itself (one read-modify-write
    /// of the word), so a mark made before the release is seen here, and a mark made after
    /// it sees the slot free.
    #[inline]
    pub(crate) fn give_back(&self) -> bool {
        let before = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        before & WAITING != 0 && self.take_waiting()
    }

    /// A slot the caller took with [`take`](Self::take) or
    /// [`take_uncounted`](Self::take_uncounted), as an [`OwnedPermit`] that gives it back
    /// when dropped (the caller must not give it back itself).
    #[cfg(feature = "model")]
    pub(crate) fn own_taken(self: &Arc<Self>) -> OwnedPermit {
        OwnedPermit {
            limiter: Arc::clone(self),
        }
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

/// The account's execution slots and its unreserved pool (the part of the account no function
/// reserved) in one atomic word, so that an execution of a function without reserved
/// concurrency takes a slot of both with one compare-and-swap, and gives both back with one
/// read-modify-write. An execution of a function with reserved concurrency takes only an
/// account slot (its reservation is carved out of the account beside the pool).
///
/// The word: the account's slots in use in bits 0-30 and a waiter's mark in bit 31; the
/// pool's in bits 32-62 and its mark in bit 63. A take never brings a count past its limit (a
/// count may sit above a limit lowered meanwhile, never above the highest limit set), and a
/// limit is at most [`MAX_LIMIT`](Self::MAX_LIMIT) (2^31 - 1: the engine accepts at most
/// 1,000,000), so a count always fits its half. The two limits share a second word, read with one load.
///
/// Limits may change at any moment, as with [`ConcurrencyLimiter`]: slots already taken stay
/// valid, and new ones are refused until the count is below the new limit. Only the account's
/// peak is kept (nobody reads the pool's).
#[doc(hidden)]
pub struct AccountLimiter {
    /// Account count and mark (low half), pool count and mark (high half).
    word: AtomicU64,
    /// Account limit (low half), pool limit (high half), each with its top bit set (where the
    /// word has its mark): subtracting a count from its half then clears that bit exactly
    /// when the count passes the limit, with no borrow from the other half.
    limits: AtomicU64,
    peak: AtomicUsize,
}

/// One account slot in [`AccountLimiter`]'s word.
const ACCOUNT_ONE: u64 = 1;
/// One pool slot in [`AccountLimiter`]'s word.
const POOL_ONE: u64 = 1 << 32;
/// A half's count.
const COUNT: u64 = (1 << 31) - 1;
/// Somebody waits for an account slot.
const ACCOUNT_MARK: u64 = 1 << 31;
/// Somebody waits for a pool slot.
const POOL_MARK: u64 = 1 << 63;
/// Both marks (in the limits word: both guard bits).
const MARKS: u64 = ACCOUNT_MARK | POOL_MARK;

/// The levels of an [`AccountLimiter`] an execution takes a slot of: the account alone (a
/// function with reserved concurrency), or the account and the unreserved pool.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLevels(
    /// What one execution adds to the word.
    u64,
);

impl AccountLevels {
    /// An account slot only: a function with reserved concurrency.
    pub const ACCOUNT: Self = AccountLevels(ACCOUNT_ONE);
    /// An account slot and an unreserved pool slot: a function without reserved concurrency.
    pub const ACCOUNT_AND_POOL: Self = AccountLevels(ACCOUNT_ONE | POOL_ONE);

    /// The levels of a function with (`false`) or without (`true`) reserved concurrency.
    #[inline]
    pub fn of(unreserved: bool) -> Self {
        if unreserved {
            Self::ACCOUNT_AND_POOL
        } else {
            Self::ACCOUNT
        }
    }

    /// Whether the pool is one of them.
    #[inline]
    pub fn unreserved(self) -> bool {
        self.0 & POOL_ONE != 0
    }

    /// The marks (and limits' guard bits) of these levels: each one's bit 31 places up.
    #[inline]
    fn marks(self) -> u64 {
        self.0 << 31
    }
}

impl AccountLimiter {
    /// The highest limit either half takes; a higher one counts as this one.
    pub const MAX_LIMIT: usize = COUNT as usize;

    /// The account's slots, `account` of them, all unreserved.
    pub fn new(account: usize) -> Self {
        let limit = Self::fit(account);
        AccountLimiter {
            word: AtomicU64::new(0),
            limits: AtomicU64::new(limit | limit << 32 | MARKS),
            peak: AtomicUsize::new(0),
        }
    }

    /// `limit` in a half. The engine never passes more than 1,000,000.
    fn fit(limit: usize) -> u64 {
        debug_assert!(limit <= Self::MAX_LIMIT, "limit {limit} does not fit");
        limit.min(Self::MAX_LIMIT) as u64
    }

    /// Takes a slot of each of `levels` if every one is free; returns the account's count it
    /// made, not yet counted in the peak ([`count_peak`](Self::count_peak)). Give the slots
    /// back with [`give_back`](Self::give_back).
    #[inline]
    pub fn take(&self, levels: AccountLevels) -> Option<usize> {
        let limits = self.limits.load(Ordering::Relaxed);
        let guards = levels.marks();
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let after = (current & !MARKS) + levels.0;
            // Each half of `limits - after` keeps its guard bit while its count after the
            // take is at most its limit (the halves never borrow from each other: a count is
            // at most 2^31 - 1, and a guard bit is 2^31).
            if limits.wrapping_sub(after) & guards != guards {
                return None;
            }
            // AcqRel: a slot is a hand-off point between threads, like a lock.
            match self.word.compare_exchange_weak(
                current,
                current + levels.0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((after & COUNT) as usize),
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts `reached` (from [`take`](Self::take), once its slots are kept) in the account's
    /// peak.
    #[inline]
    pub fn count_peak(&self, reached: usize) {
        // Load first: fetch_max writes the cache line even when it changes nothing.
        if reached > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(reached, Ordering::Relaxed);
        }
    }

    /// Gives back what [`take`](Self::take) took for the same `levels`, and returns whether
    /// somebody waited for a slot of one of them: then its mark is cleared and the caller
    /// wakes whoever waits. The marks are read from the release itself, so a mark made before
    /// it is seen here, and one made after it sees the slot free.
    #[inline]
    pub fn give_back(&self, levels: AccountLevels) -> bool {
        let before = self.word.fetch_sub(levels.0, Ordering::AcqRel);
        before & levels.marks() != 0 && self.take_marks(levels.marks())
    }

    /// Clears `marks`; whether any was set.
    #[cold]
    #[inline(never)]
    fn take_marks(&self, marks: u64) -> bool {
        self.word.fetch_and(!marks, Ordering::AcqRel) & marks != 0
    }

    /// Whether the account (and the pool, when one of `levels`) has no free slot now:
    /// `(account full, pool full)`.
    pub fn full(&self, levels: AccountLevels) -> (bool, bool) {
        let (word, limits) = self.read();
        (
            word & COUNT >= limits & COUNT,
            levels.unreserved() && (word >> 32) & COUNT >= (limits >> 32) & COUNT,
        )
    }

    /// Asks to hear of the next account slot given back (`account`) and of the next pool slot
    /// (`pool`): marks those levels as waited for, and returns whether one of them has a free
    /// slot now (then the caller tries again instead of waiting). A mark stays until a slot of
    /// its level is given back ([`give_back`](Self::give_back)) or
    /// [`take_waiting_if_free`](Self::take_waiting_if_free) clears it.
    ///
    /// No wake-up is lost: the marks and every release are read-modify-writes of one word,
    /// so a release that comes before the mark shows here as a free slot, and one that comes
    /// after finds the mark.
    pub fn wait_for_slot(&self, account: bool, pool: bool) -> bool {
        let marks = (u64::from(account) * ACCOUNT_MARK) | (u64::from(pool) * POOL_MARK);
        if marks == 0 {
            return false;
        }
        let before = self.word.fetch_or(marks, Ordering::AcqRel);
        let limits = self.limits.load(Ordering::Relaxed);
        (account && before & COUNT < limits & COUNT)
            || (pool && (before >> 32) & COUNT < (limits >> 32) & COUNT)
    }

    /// Whether somebody waits for a slot of one of `levels` and that level has a free slot:
    /// then its mark is cleared and the caller wakes whoever waits. For a caller that took slots and gave them back unused: while a level is full
    /// again, the slots out will wake the waiters when they go.
    #[inline]
    pub fn take_waiting_if_free(&self, levels: AccountLevels) -> bool {
        let (word, limits) = self.read();
        let mut marks = 0;
        if word & ACCOUNT_MARK != 0 && word & COUNT < limits & COUNT {
            marks |= ACCOUNT_MARK;
        }
        if levels.unreserved()
            && word & POOL_MARK != 0
            && (word >> 32) & COUNT < (limits >> 32) & COUNT
        {
            marks |= POOL_MARK;
        }
        marks != 0 && self.take_marks(marks)
    }

    fn read(&self) -> (u64, u64) {
        (
            self.word.load(Ordering::Relaxed),
            self.limits.load(Ordering::Relaxed),
        )
    }

    /// Sets one half of the limits word.
    fn set_half(&self, shift: u32, limit: usize) {
        let limit = Self::fit(limit) << shift;
        let mut current = self.limits.load(Ordering::Relaxed);
        while let Err(actual) = self.limits.compare_exchange_weak(
            current,
            current & !(COUNT << shift) | limit,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            current = actual;
        }
    }

    /// Changes the account's limit. Slots already taken stay valid.
    pub fn set_limit(&self, limit: usize) {
        self.set_half(0, limit);
    }

    /// Changes the unreserved pool's limit. Slots already taken stay valid.
    pub fn set_unreserved_limit(&self, limit: usize) {
        self.set_half(32, limit);
    }

    /// The account's limit.
    pub fn limit(&self) -> usize {
        (self.limits.load(Ordering::Relaxed) & COUNT) as usize
    }

    /// The unreserved pool's limit.
    pub fn unreserved_limit(&self) -> usize {
        ((self.limits.load(Ordering::Relaxed) >> 32) & COUNT) as usize
    }

    /// Account slots in use now (executions of every function).
    pub fn in_flight(&self) -> usize {
        (self.word.load(Ordering::Relaxed) & COUNT) as usize
    }

    /// Pool slots in use now (executions of functions without reserved concurrency).
    pub fn unreserved_in_flight(&self) -> usize {
        ((self.word.load(Ordering::Relaxed) >> 32) & COUNT) as usize
    }

    /// The most account slots ever in use at once, each counted once its execution kept it.
    /// With several threads taking slots, the count one records may include a slot another
    /// thread is about to give back unused (its function's limit or the scaling rate refused).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for AccountLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountLimiter")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("unreserved_limit", &self.unreserved_limit())
            .field("unreserved_in_flight", &self.unreserved_in_flight())
            .field("peak", &self.peak())
            .finish()
    }
}

/// Slots taken from an [`AccountLimiter`] in an [`Arc`], given back when dropped (model mode:
/// an execution holds them until its virtual end).
#[cfg(feature = "model")]
pub(crate) struct OwnedAccountSlots {
    limiter: Arc<AccountLimiter>,
    levels: AccountLevels,
}

#[cfg(feature = "model")]
impl OwnedAccountSlots {
    /// The slots of `levels` the caller took from `limiter` with [`AccountLimiter::take`],
    /// given back when this is dropped (the caller must not give them back).
    pub(crate) fn taken(limiter: &Arc<AccountLimiter>, levels: AccountLevels) -> Self {
        OwnedAccountSlots {
            limiter: Arc::clone(limiter),
            levels,
        }
    }
}

#[cfg(feature = "model")]
impl Drop for OwnedAccountSlots {
    fn drop(&mut self) {
        // Nobody waits for a slot in model mode; a mark would be cleared like any other.
        let _ = self.limiter.give_back(self.levels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A limiter whose word already holds these counts (as after that many takes, some
    /// perhaps under a higher limit since lowered).
    fn holding(account: u64, pool: u64, limits: (usize, usize)) -> AccountLimiter {
        let l = AccountLimiter::new(limits.0);
        l.set_unreserved_limit(limits.1);
        l.word.store(account | pool << 32, Ordering::Relaxed);
        l
    }

    #[test]
    fn an_unreserved_execution_takes_an_account_and_a_pool_slot_in_one_step() {
        let l = AccountLimiter::new(3);
        l.set_unreserved_limit(2);
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), Some(1));
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), Some(2));
        assert_eq!((l.in_flight(), l.unreserved_in_flight()), (2, 2));
        // The pool is full; the account still has room for a reserved function's execution.
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), None);
        assert_eq!(l.take(AccountLevels::ACCOUNT), Some(3));
        assert_eq!((l.in_flight(), l.unreserved_in_flight()), (3, 2));
        assert_eq!(l.take(AccountLevels::ACCOUNT), None);
        assert!(!l.give_back(AccountLevels::ACCOUNT_AND_POOL));
        assert_eq!((l.in_flight(), l.unreserved_in_flight()), (2, 1));
        // Room in both again: 2 of 3 in the account, 1 of 2 in the pool.
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), Some(3));
        assert_eq!(l.peak(), 0, "the peak counts only what the caller keeps");
        l.count_peak(3);
        assert_eq!(l.peak(), 3);
    }

    #[test]
    fn a_lowered_limit_refuses_until_the_count_is_below_it() {
        let l = AccountLimiter::new(4);
        for _ in 0..4 {
            assert!(l.take(AccountLevels::ACCOUNT_AND_POOL).is_some());
        }
        l.set_limit(2);
        l.set_unreserved_limit(1);
        assert_eq!((l.limit(), l.unreserved_limit()), (2, 1));
        for left in [3, 2] {
            let _ = l.give_back(AccountLevels::ACCOUNT_AND_POOL);
            assert_eq!(l.in_flight(), left);
            assert_eq!(l.take(AccountLevels::ACCOUNT), None, "{left} out, limit 2");
        }
        let _ = l.give_back(AccountLevels::ACCOUNT_AND_POOL);
        assert_eq!(
            l.take(AccountLevels::ACCOUNT_AND_POOL),
            None,
            "pool: 1 out, limit 1"
        );
        assert_eq!(l.take(AccountLevels::ACCOUNT), Some(2));
    }

    #[test]
    fn limits_of_zero_refuse_every_take() {
        let l = AccountLimiter::new(0);
        assert_eq!(l.take(AccountLevels::ACCOUNT), None);
        let l = AccountLimiter::new(5);
        l.set_unreserved_limit(0);
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), None);
        assert_eq!(l.take(AccountLevels::ACCOUNT), Some(1));
    }

    #[test]
    fn the_largest_limit_fills_each_half_to_its_last_count_without_touching_its_mark() {
        let max = AccountLimiter::MAX_LIMIT;
        let l = holding(COUNT - 1, COUNT - 1, (max, max));
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), Some(max));
        assert_eq!((l.in_flight(), l.unreserved_in_flight()), (max, max));
        assert_eq!(l.word.load(Ordering::Relaxed) & MARKS, 0);
        assert_eq!(l.take(AccountLevels::ACCOUNT_AND_POOL), None);
        assert_eq!(l.take(AccountLevels::ACCOUNT), None);
        assert!(!l.wait_for_slot(true, true), "both full");
        assert!(
            l.give_back(AccountLevels::ACCOUNT_AND_POOL),
            "both were marked"
        );
        assert_eq!(
            l.word.load(Ordering::Relaxed),
            (COUNT - 1) | (COUNT - 1) << 32
        );
        assert_eq!((l.limit(), l.unreserved_limit()), (max, max));
    }

    #[test]
    fn a_release_clears_only_the_marks_of_its_levels() {
        let l = AccountLimiter::new(2);
        l.set_unreserved_limit(1);
        assert!(l.take(AccountLevels::ACCOUNT_AND_POOL).is_some());
        assert!(l.take(AccountLevels::ACCOUNT).is_some());
        // Both levels full: a waiter marks both and finds no room.
        assert_eq!(l.full(AccountLevels::ACCOUNT_AND_POOL), (true, true));
        assert!(!l.wait_for_slot(true, true));
        // A reserved function's release frees an account slot only: the pool's mark stays.
        assert!(l.give_back(AccountLevels::ACCOUNT));
        assert_eq!(l.word.load(Ordering::Relaxed) & MARKS, POOL_MARK);
        assert!(
            !l.take_waiting_if_free(AccountLevels::ACCOUNT_AND_POOL),
            "pool still full"
        );
        assert!(l.give_back(AccountLevels::ACCOUNT_AND_POOL));
        assert_eq!(l.word.load(Ordering::Relaxed), 0);
        // A mark made while a level has room says so at once.
        assert!(l.wait_for_slot(false, true));
        assert!(l.take_waiting_if_free(AccountLevels::ACCOUNT_AND_POOL));
        assert!(!l.take_waiting_if_free(AccountLevels::ACCOUNT_AND_POOL));
    }

    proptest! {
        /// Against the plain rule: a take succeeds exactly when each of its levels is below its
        /// limit, adds one to each, and leaves the other half and the marks alone; a give-back
        /// undoes it. Counts may sit above a (lowered) limit; limits reach the largest.
        #[test]
        fn a_take_follows_the_limits_of_its_levels_at_any_count(
            limit_a in prop_oneof![0..8usize, Just(AccountLimiter::MAX_LIMIT), 0..=AccountLimiter::MAX_LIMIT],
            limit_p in prop_oneof![0..8usize, Just(AccountLimiter::MAX_LIMIT), 0..=AccountLimiter::MAX_LIMIT],
            count_a in prop_oneof![0..10u64, COUNT - 2..=COUNT - 1, 0..COUNT],
            count_p in prop_oneof![0..10u64, COUNT - 2..=COUNT - 1, 0..COUNT],
            marks in prop_oneof![Just(0), Just(ACCOUNT_MARK), Just(POOL_MARK), Just(MARKS)],
            unreserved in any::<bool>(),
        ) {
            let l = holding(count_a, count_p, (limit_a, limit_p));
            l.word.fetch_or(marks, Ordering::Relaxed);
            let levels = AccountLevels::of(unreserved);
            let room = count_a < limit_a as u64 && (!unreserved || count_p < limit_p as u64);
            let taken = l.take(levels);
            prop_assert_eq!(taken.is_some(), room);
            let up = u64::from(room);
            let pool_up = up * u64::from(unreserved);
            prop_assert_eq!(l.in_flight() as u64, count_a + up);
            prop_assert_eq!(l.unreserved_in_flight() as u64, count_p + pool_up);
            prop_assert_eq!(l.word.load(Ordering::Relaxed) & MARKS, marks);
            prop_assert_eq!((l.limit(), l.unreserved_limit()), (limit_a, limit_p));
            if let Some(reached) = taken {
                prop_assert_eq!(reached as u64, count_a + 1);
                let marked = marks & levels.marks() != 0;
                prop_assert_eq!(l.give_back(levels), marked);
                prop_assert_eq!(l.in_flight() as u64, count_a);
                prop_assert_eq!(l.unreserved_in_flight() as u64, count_p);
                prop_assert_eq!(l.word.load(Ordering::Relaxed) & MARKS, marks & !levels.marks());
            }
        }

        /// Setting one limit never changes the other, at any value.
        #[test]
        fn the_two_limits_are_set_apart(
            a in 0..=AccountLimiter::MAX_LIMIT,
            p in 0..=AccountLimiter::MAX_LIMIT,
            a2 in 0..=AccountLimiter::MAX_LIMIT,
        ) {
            let l = AccountLimiter::new(a);
            l.set_unreserved_limit(p);
            prop_assert_eq!((l.limit(), l.unreserved_limit()), (a, p));
            l.set_limit(a2);
            prop_assert_eq!((l.limit(), l.unreserved_limit()), (a2, p));
        }
    }
}
