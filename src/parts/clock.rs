//! Time: the [`Clock`] trait, the real [`SystemClock`] and the virtual [`ManualClock`].

use std::any::Any;
use std::fmt;
use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A point in time, in nanoseconds since the epoch of the [`Clock`] that produced it.
///
/// Timestamps are plain integers: cheap to read, compare, store and ship between threads. They
/// only mean something relative to one clock (the runtime's), which is all the engine needs.
///
/// # Examples
///
/// ```
/// use event_invoke::Timestamp;
/// use std::time::Duration;
///
/// let t = Timestamp::ZERO + Duration::from_secs(90);
/// assert_eq!(t, Timestamp::from_secs(90));
/// assert_eq!(t - Duration::from_secs(30), Timestamp::from_secs(60));
/// assert_eq!(t - Timestamp::from_nanos(30_000_000_000), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The clock's epoch.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The latest representable instant (about 584 years after the epoch); used as "never".
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// A timestamp `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// A timestamp `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the epoch.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds from `earlier` to `self`, 0 if `earlier` is later: the hot path's
    /// `self - earlier` without a `Duration` (whose seconds and nanoseconds cost a division
    /// to build and two comparisons to compare).
    #[inline]
    pub(crate) const fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }
}

/// Nanoseconds in `d`, saturating at `u64::MAX` (584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating at [`Timestamp::ZERO`].
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_nanos(d)))
    }
}

impl Sub for Timestamp {
    type Output = Duration;
    /// Saturating: an earlier minus a later timestamp is zero.
    fn sub(self, earlier: Timestamp) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T+{:?}", self.as_duration())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T+{:?}", self.as_duration())
    }
}

/// A source of time for a [`Runtime`](crate::Runtime).
///
/// The engine reads the clock to stamp events, to decide which retries are due and to measure
/// event age and handler duration. Two implementations ship with the crate:
///
/// * [`SystemClock`], the default: real monotonic time. Workers park until the next retry is due.
/// * [`ManualClock`]: virtual time that moves only when told. Nothing in the engine sleeps for
///   real under it; [`Runtime::run_until_idle`](crate::Runtime::run_until_idle) jumps it from one
///   due time to the next, so a six-hour retry schedule runs in milliseconds.
///
/// A custom clock implements [`now`](Clock::now); a virtual one also implements
/// [`advance_to`](Clock::advance_to) and [`subscribe`](Clock::subscribe) so that the runtime can
/// move it and parked workers hear when it moved. The crate's two clocks are read inline on
/// the hot path; a clock of your own is called through its trait object (an indirect call
/// per reading).
pub trait Clock: Send + Sync + 'static {
    /// The current time. Must never go backwards.
    fn now(&self) -> Timestamp;

    /// Whether time only moves when [`advance_to`](Clock::advance_to) is called. Workers under a
    /// virtual clock never wait on a real-time deadline.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Moves a virtual clock forward to `t` (never backwards). Returns `false` for a real clock,
    /// which cannot be moved.
    fn advance_to(&self, t: Timestamp) -> bool {
        let _ = t;
        false
    }

    /// Registers `listener` to be called after every move of a virtual clock; it returns
    /// whether it wants to hear of later moves (a runtime that was dropped says no, and is
    /// forgotten). The runtime uses it to wake parked workers; a real clock ignores it.
    fn subscribe(&self, listener: Box<dyn Fn() -> bool + Send + Sync>) {
        drop(listener);
    }
}

/// Real monotonic time, measured from the moment the clock was created.
///
/// Read through [`std::time::Instant`], the operating system's monotonic clock
/// (`CLOCK_MONOTONIC` on Linux, read without a system call): it never goes backwards, on any
/// thread, as the [`Clock`] contract requires. A runtime makes one only when the builder was
/// given no clock.
///
/// **Event stamps.** On Linux and Android a runtime on this clock stamps each accepted event
/// from the kernel's *coarse* monotonic clock (`CLOCK_MONOTONIC_COARSE`): the same clock as
/// [`now`](Clock::now) as of the last scheduler tick (1 to 10 ms apart, as the kernel was
/// built: 4 ms at 250 Hz), read in about a third of the time. A stamp never leads the clock's
/// `now`, but may trail a `now` read just before the invoke by about one tick (a little more
/// when the tick is late), and an event's age
/// ([`Context::event_age`](crate::Context::event_age), `AsyncEventAge`) reads up to that much
/// more than the time it waited. So a
/// [`maximum_event_age`](crate::Function::maximum_event_age) of a few milliseconds or less may
/// end events before they run (Lambda's own minimum is 60 seconds). Handler durations,
/// timeouts, retry due times and wake-ups read `now`. On other platforms, and with any other
/// clock, stamps are read from `now`.
///
/// # Examples
///
/// ```
/// use event_invoke::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// assert!(!clock.is_virtual());
/// ```
#[derive(Debug, Clone)]
pub struct SystemClock {
    start: Instant,
    /// `start` on the coarse clock's scale: `CLOCK_MONOTONIC` in nanoseconds, read just after
    /// `start`, so that a coarse reading measured from it never leads [`now`](Clock::now).
    /// (`Instant` is `CLOCK_MONOTONIC` on Linux, as std documents. Were it ever another clock
    /// that also counts suspended time, stamps would still never lead `now`, only trail it by
    /// the time suspended. Reading `now` through rustix instead measured slower in a loop: 27.4
    /// against 25.8 ns.)
    #[cfg(any(target_os = "linux", target_os = "android"))]
    coarse_start: u64,
}

/// `CLOCK_MONOTONIC` (`coarse: false`) or `CLOCK_MONOTONIC_COARSE` in nanoseconds.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline(always)]
fn monotonic_nanos(coarse: bool) -> u64 {
    use rustix::time::{clock_gettime, ClockId};
    let id = if coarse {
        ClockId::MonotonicCoarse
    } else {
        ClockId::Monotonic
    };
    let t = clock_gettime(id);
    // The monotonic clocks count from boot: never negative, and 584 years fit in a u64.
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// How many [`SystemClock`]s this process made.
static SYSTEM_CLOCKS_MADE: AtomicU64 = AtomicU64::new(0);

impl SystemClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        SYSTEM_CLOCKS_MADE.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        SystemClock {
            start,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            coarse_start: monotonic_nanos(false),
        }
    }

    /// An event's arrival stamp: the coarse clock on Linux and Android (see the type's docs),
    /// which never leads [`now`](Clock::now) and trails it by about one scheduler tick.
    #[inline(always)]
    pub(crate) fn stamp(&self) -> Timestamp {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // Saturates to the epoch for the tick before the clock was made.
            Timestamp(monotonic_nanos(true).saturating_sub(self.coarse_start))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            self.now()
        }
    }

    /// How many system clocks this process has made so far: what shows that a runtime given a
    /// clock of its caller's makes none. Not part of the API.
    #[doc(hidden)]
    pub fn made_so_far() -> u64 {
        SYSTEM_CLOCKS_MADE.load(Ordering::Relaxed)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        // `Instant` saturates at its epoch rather than go backwards.
        let d = self.start.elapsed();
        Timestamp(
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos())),
        )
    }
}

struct ManualInner {
    now: AtomicU64,
    listeners: Mutex<Vec<Box<dyn Fn() -> bool + Send + Sync>>>,
}

/// Virtual time that moves only when told: the clock for tests and simulations.
///
/// Clones share one time. Give a clone to [`RuntimeBuilder::clock`](crate::RuntimeBuilder::clock)
/// and keep one to move time by hand; worker threads parked on the runtime wake when it moves.
///
/// # Examples
///
/// ```
/// use event_invoke::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// assert_eq!(clock.now(), Timestamp::ZERO);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now().as_duration(), Duration::from_secs(60));
/// clock.advance_to(Timestamp::ZERO); // never backwards
/// assert_eq!(clock.now().as_duration(), Duration::from_secs(60));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

impl ManualClock {
    /// A virtual clock at [`Timestamp::ZERO`].
    pub fn new() -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                now: AtomicU64::new(0),
                listeners: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The current virtual time (the same as [`Clock::now`], without importing the trait).
    pub fn now(&self) -> Timestamp {
        Timestamp(self.inner.now.load(Ordering::SeqCst))
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let now = self.now();
        Clock::advance_to(self, now + d);
    }

    /// Moves time forward to `t`; a `t` in the past leaves the clock where it is.
    pub fn set(&self, t: Timestamp) {
        Clock::advance_to(self, t);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.inner.now.load(Ordering::SeqCst))
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn advance_to(&self, t: Timestamp) -> bool {
        let previous = self.inner.now.fetch_max(t.0, Ordering::SeqCst);
        if previous < t.0 {
            self.inner.listeners.lock().retain(|listener| listener());
        }
        true
    }

    fn subscribe(&self, listener: Box<dyn Fn() -> bool + Send + Sync>) {
        self.inner.listeners.lock().push(listener);
    }
}

/// The runtime's clock. The two clocks the crate ships are kept as themselves, so that the hot
/// path, which reads the clock up to three times per event, reads them inline instead of through
/// a virtual call; any other [`Clock`] is called through its trait object.
#[derive(Clone)]
pub(crate) enum RuntimeClock {
    /// The real clock.
    System(SystemClock),
    /// A virtual clock of the crate's.
    Manual(ManualClock),
    /// The caller's own clock.
    Other(Arc<dyn Clock>),
}

impl RuntimeClock {
    /// The clock a builder was given, kept as itself when it is one of the crate's (a clone
    /// of a crate clock reads the same time as the clock).
    pub(crate) fn new<C: Clock>(clock: C) -> Self {
        let any: &dyn Any = &clock;
        if let Some(manual) = any.downcast_ref::<ManualClock>() {
            return RuntimeClock::Manual(manual.clone());
        }
        if let Some(system) = any.downcast_ref::<SystemClock>() {
            return RuntimeClock::System(system.clone());
        }
        RuntimeClock::Other(Arc::new(clock))
    }

    /// The clock as the trait object the public API hands out.
    pub(crate) fn as_dyn(&self) -> &dyn Clock {
        match self {
            RuntimeClock::System(clock) => clock,
            RuntimeClock::Manual(clock) => clock,
            RuntimeClock::Other(clock) => &**clock,
        }
    }

    /// [`Clock::now`], without a virtual call for the crate's own clocks.
    #[inline(always)]
    pub(crate) fn now(&self) -> Timestamp {
        match self {
            RuntimeClock::System(clock) => clock.now(),
            RuntimeClock::Manual(clock) => ManualClock::now(clock),
            RuntimeClock::Other(clock) => clock.now(),
        }
    }

    /// An event's arrival stamp: [`now`](Self::now), except that the system clock reads its
    /// coarse clock ([`SystemClock`]'s docs say why that is safe).
    #[inline(always)]
    pub(crate) fn stamp(&self) -> Timestamp {
        match self {
            RuntimeClock::System(clock) => clock.stamp(),
            RuntimeClock::Manual(clock) => ManualClock::now(clock),
            RuntimeClock::Other(clock) => clock.now(),
        }
    }

    /// [`Clock::is_virtual`].
    pub(crate) fn is_virtual(&self) -> bool {
        self.as_dyn().is_virtual()
    }

    /// [`Clock::advance_to`].
    pub(crate) fn advance_to(&self, t: Timestamp) -> bool {
        self.as_dyn().advance_to(t)
    }

    /// [`Clock::subscribe`].
    pub(crate) fn subscribe(&self, listener: Box<dyn Fn() -> bool + Send + Sync>) {
        self.as_dyn().subscribe(listener)
    }
}
