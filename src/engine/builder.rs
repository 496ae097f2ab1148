//! [`RuntimeBuilder`]: a runtime's settings, checked when it is built.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::executor::Executor;
#[cfg(feature = "model")]
use super::executor::VirtualTime;
use super::FaultSeam;
use crate::observe::TraceEvent;
#[cfg(feature = "model")]
use crate::parts::clock::ManualClock;
use crate::parts::clock::{Clock, RuntimeClock, SystemClock};
use crate::parts::error::Error;
use crate::parts::limiter::AccountLimiter;
use crate::parts::record::InvocationRecord;
use crate::parts::run_queue::RunQueue;
use crate::parts::scaling::ScalingRate;
use std::marker::PhantomData;

use super::ConcurrencyLimitExceeded;
use super::{
    Environments, Hooks, IdleWait, Inner, Observer, OwnLine, RecursionGuard, Registry, Runtime,
    Settings, Timers, Tracer, ZeroConcurrency,
};

/// Settings for a [`Runtime`]; see [`Runtime::builder`].
///
/// | setting | Lambda | default |
/// |---|---|---|
/// | `account_concurrency` | 1,000 | 1,000 (1 to 1,000,000) |
/// | `unreserved_floor` | 100 | 100 (0 to the account limit) |
/// | `zero_concurrency` | events go to on-failure (since 2021) | [`ZeroConcurrency::Discard`] |
/// | `concurrency_limit_exceeded` | throttled, with backoff | [`ConcurrencyLimitExceeded::Wait`] on real threads (model mode: throttled) |
/// | `recursion_guard` | a function reached more than 16 times in one chain is stopped, or `Allow` | [`RecursionGuard::Loops`]`(16)` (1 to 10,000; or `Hops(n)`; or `Off`) |
/// | `seed` | - | 0 (seeds the throttle jitter and the cost models) |
/// | `keep_dead_letters` | - | true |
///
/// Its `Debug` shows the settings; the clock and the hooks show only whether they are set.
///
/// ```
/// use event_invoke::{ManualClock, Runtime};
///
/// let builder = Runtime::<u32>::builder().clock(ManualClock::new()).seed(7);
/// let shown = format!("{builder:?}");
/// assert!(shown.contains("clock: \"virtual\"") && shown.contains("seed: 7"), "{shown}");
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RuntimeBuilder<P, R> {
    /// The caller's clock; without one, `build` makes a [`SystemClock`] (or, in model mode, a
    /// `ManualClock`): a clock is only made when none was given.
    pub(crate) clock: Option<RuntimeClock>,
    pub(crate) account_concurrency: u32,
    pub(crate) unreserved_floor: u32,
    pub(crate) zero_concurrency: ZeroConcurrency,
    pub(crate) concurrency_limit_exceeded: ConcurrencyLimitExceeded,
    pub(crate) recursion_guard: RecursionGuard,
    pub(crate) seed: u64,
    pub(crate) keep_dead_letters: bool,
    pub(crate) observer: Option<Observer<P, R>>,
    pub(crate) tracer: Option<Tracer>,
    pub(crate) faults: Option<Box<dyn FaultSeam<P>>>,
    #[cfg(feature = "model")]
    pub(crate) virtual_time: Option<Box<dyn VirtualTime<P, R>>>,
    pub(crate) scaling: Option<ScalingRate>,
}

impl<P, R> fmt::Debug for RuntimeBuilder<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The clock, the hooks and the payload cloner are trait objects and closures: say
        // what kind they are, or whether they are set.
        let clock = match self.clock.as_ref().map(|c| c.is_virtual()) {
            None => "default (SystemClock; a ManualClock in model mode)",
            Some(true) => "virtual",
            Some(false) => "real",
        };
        let mut d = f.debug_struct("RuntimeBuilder");
        d.field("clock", &clock)
            .field("account_concurrency", &self.account_concurrency)
            .field("unreserved_floor", &self.unreserved_floor)
            .field("zero_concurrency", &self.zero_concurrency)
            .field(
                "concurrency_limit_exceeded",
                &self.concurrency_limit_exceeded,
            )
            .field("recursion_guard", &self.recursion_guard)
            .field("seed", &self.seed)
            .field("keep_dead_letters", &self.keep_dead_letters)
            .field("on_record", &self.observer.is_some())
            .field("on_trace", &self.tracer.is_some())
            .field(
                "fault_injection",
                &self.faults.as_ref().map(|faults| faults as &dyn fmt::Debug),
            )
            .field("scaling_rate", &self.scaling);
        #[cfg(feature = "model")]
        d.field("model", &self.virtual_time.is_some());
        d.finish_non_exhaustive()
    }
}

impl<P: Send + 'static, R: Send + 'static> RuntimeBuilder<P, R> {
    /// The fault seam (see [`FaultInjection`](crate::FaultInjection)).
    pub(crate) fn fault_seam(mut self, faults: Box<dyn FaultSeam<P>>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// The clock (default [`SystemClock`](crate::SystemClock)). Pass a
    /// [`ManualClock`](crate::ManualClock) clone for virtual time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(RuntimeClock::new(clock));
        self
    }

    /// Model mode's seam: executions take the time `virtual_time` gives them (see
    /// [`RuntimeBuilder::model`]).
    #[cfg(feature = "model")]
    pub(crate) fn virtual_time(mut self, virtual_time: Box<dyn VirtualTime<P, R>>) -> Self {
        self.virtual_time = Some(virtual_time);
        self
    }

    /// Limits how fast execution environments are added ([`ScalingRate`]); an execution
    /// refused a new environment is throttled. Off by default (environments appear as fast as
    /// the concurrency limits allow). Works on any clock; in model mode it is what makes a
    /// burst ramp up.
    pub fn scaling_rate(mut self, rate: ScalingRate) -> Self {
        self.scaling = Some(rate);
        self
    }

    /// The account-wide concurrency limit.
    pub fn account_concurrency(mut self, n: u32) -> Self {
        self.account_concurrency = n;
        self
    }

    /// Concurrency that reservations may never take from the account.
    pub fn unreserved_floor(mut self, n: u32) -> Self {
        self.unreserved_floor = n;
        self
    }

    /// What reserved concurrency 0 does to events.
    pub fn zero_concurrency(mut self, mode: ZeroConcurrency) -> Self {
        self.zero_concurrency = mode;
        self
    }

    /// What an event with no free execution slot meets on real threads (default
    /// [`ConcurrencyLimitExceeded::Wait`]: it waits at the front of its queue, uncounted;
    /// [`ConcurrencyLimitExceeded::Throttle`]: Lambda's throttle backoff, counted). Model mode
    /// always throttles.
    pub fn concurrency_limit_exceeded(mut self, mode: ConcurrencyLimitExceeded) -> Self {
        self.concurrency_limit_exceeded = mode;
        self
    }

    /// What the recursion guard counts and where it stops a chain (default Lambda's:
    /// [`RecursionGuard::Loops`]`(16)`, a function reached more than 16 times in one chain).
    pub fn recursion_guard(mut self, guard: RecursionGuard) -> Self {
        self.recursion_guard = guard;
        self
    }

    /// Lambda's loop guard with this limit (`Some(n)`: [`RecursionGuard::Loops`]`(n)`, how
    /// many times one chain may reach the same function), or `None` to switch the guard off
    /// (Lambda's `RecursiveLoop: Allow`). For a limit on a chain's length whatever its
    /// functions, use [`recursion_guard`](Self::recursion_guard) with
    /// [`RecursionGuard::Hops`].
    pub fn recursion_limit(self, limit: Option<u32>) -> Self {
        self.recursion_guard(limit.map_or(RecursionGuard::Off, RecursionGuard::Loops))
    }

    /// Seeds the runtime's random numbers (throttle jitter, and the cost models in model mode),
    /// so runs are reproducible. Each function draws from ChaCha8 generators of its own (crate
    /// `rand_chacha`), seeded from this seed and its registration index; their output does not
    /// change with the releases of this crate's dependencies. Fault injection has its own
    /// seed, [`FaultInjection::new`](crate::FaultInjection::new).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether failure records with no on-failure destination (or whose delivery failed) are
    /// kept for [`Runtime::drain_dead_letters`]. Off, they are only counted.
    pub fn keep_dead_letters(mut self, keep: bool) -> Self {
        self.keep_dead_letters = keep;
        self
    }

    /// Calls `observer` with every record, success or failure, before it goes to its
    /// destination: the hook for audits and logs.
    pub fn on_record(
        mut self,
        observer: impl Fn(&InvocationRecord<P, R>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Calls `tracer` at every step of every event's life (accepted, started, failed, retry
    /// scheduled, throttled, ended...): for audits, logs and tracing spans. Off, it costs one
    /// branch per step. A tracer that panics is ignored (the event goes on), so assert on what
    /// it collected afterwards, not inside it.
    pub fn on_trace(mut self, tracer: impl Fn(&TraceEvent<'_>) + Send + Sync + 'static) -> Self {
        self.tracer = Some(Box::new(tracer));
        self
    }

    /// Checks the settings and builds the runtime.
    #[cfg_attr(not(feature = "model"), allow(unused_mut))]
    pub fn build(mut self) -> Result<Runtime<P, R>, Error> {
        #[cfg(feature = "model")]
        self.settle_virtual_clock()?;
        self.validate()?;
        #[cfg(feature = "model")]
        let executor = self
            .virtual_time
            .map_or(Executor::Threads(PhantomData), Executor::Virtual);
        #[cfg(not(feature = "model"))]
        let executor = Executor::Threads(PhantomData);
        let clock = self
            .clock
            .unwrap_or_else(|| RuntimeClock::System(SystemClock::new()));
        let is_virtual = clock.is_virtual();
        let inner = Arc::new(Inner {
            clock,
            is_virtual,
            registry: RwLock::new(Registry::new(self.account_concurrency)),
            account: Arc::new(AccountLimiter::new(self.account_concurrency as usize)),
            settings: Settings {
                unreserved_floor: self.unreserved_floor,
                zero_concurrency: self.zero_concurrency,
                wait_for_slots: self.concurrency_limit_exceeded == ConcurrencyLimitExceeded::Wait
                    && !executor.is_virtual(),
                recursion_guard: self.recursion_guard,
                seed: self.seed,
                keep_dead_letters: self.keep_dead_letters,
            },
            run_queue: RunQueue::new(),
            timers: Timers::new(),
            slot_waiters: Mutex::new(Vec::new()),
            outstanding: OwnLine(AtomicU64::new(0)),
            idle: IdleWait::default(),
            dead_letters: Mutex::new(Vec::new()),
            hooks: Hooks {
                observer: self.observer,
                tracer: self.tracer,
            },
            faults: self.faults,
            environments: (executor.is_virtual() || self.scaling.is_some())
                .then(|| Environments::new(self.scaling)),
            executor,
        });
        // Parked workers must hear when virtual time moves, or a retry that became due would
        // wait for the next invoke. The weak reference lets the runtime drop.
        let weak = Arc::downgrade(&inner);
        inner.clock.subscribe(Box::new(move || {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            inner.run_queue.wake_one();
            true
        }));
        Ok(Runtime { inner })
    }

    /// Model mode: checks its settings and puts the runtime on a virtual clock (a new
    /// `ManualClock` unless one was given); a real clock is refused.
    #[cfg(feature = "model")]
    fn settle_virtual_clock(&mut self) -> Result<(), Error> {
        if let Some(v) = &self.virtual_time {
            v.validate()?;
            match &self.clock {
                None => self.clock = Some(RuntimeClock::Manual(ManualClock::new())),
                Some(clock) if !clock.is_virtual() => {
                    return Err(Error::InvalidConfig {
                        field: "clock",
                        value: "a real clock".into(),
                        accepted: "a virtual clock in model mode: pass a ManualClock, or no clock",
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks every setting against its range (see the table on [`RuntimeBuilder`]).
    fn validate(&self) -> Result<(), Error> {
        if let Some(faults) = &self.faults {
            faults.validate()?;
        }
        if !(1..=1_000_000).contains(&self.account_concurrency) {
            return Err(Error::InvalidConfig {
                field: "account_concurrency",
                value: self.account_concurrency.to_string(),
                accepted: "1 to 1,000,000 (Lambda's default: 1,000)",
            });
        }
        if self.unreserved_floor > self.account_concurrency {
            return Err(Error::InvalidConfig {
                field: "unreserved_floor",
                value: self.unreserved_floor.to_string(),
                accepted: "0 to the account concurrency (Lambda: 100)",
            });
        }
        if let RecursionGuard::Loops(limit) | RecursionGuard::Hops(limit) = self.recursion_guard {
            if !(1..=10_000).contains(&limit) {
                return Err(Error::InvalidConfig {
                    field: "recursion_limit",
                    value: limit.to_string(),
                    accepted: "1 to 10,000, or the guard off (Lambda: a function reached 16 times)",
                });
            }
        }
        Ok(())
    }
}
