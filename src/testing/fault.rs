//! Fault injection and tracing: the seams for testing handlers against what Lambda really does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::engine::{FaultSeam, RuntimeBuilder};
use crate::parts::error::Error;
use crate::parts::record::RequestId;
use crate::parts::rng::SeededRng;

type IdFilter = Arc<dyn Fn(RequestId) -> bool + Send + Sync>;

/// Faults to inject into a [`Runtime`](crate::Runtime), all drawn from one seeded RNG so a run
/// can be replayed.
///
/// Lambda delivers async events *at least once*: an event can run twice even when nothing
/// failed, a handler that did its work can still be reported failed (a lost response, a
/// timeout after the side effect) and run again, and events come in no set order. Fault
/// injection makes each of these happen on purpose, so a test can show that a handler copes:
///
/// | fault | what happens | Lambda's cause |
/// |---|---|---|
/// | [`duplicates`](Self::duplicates) | after a success the event runs once more, same request id, same invoke count; no second record | the queue is eventually consistent |
/// | [`duplicate_when`](Self::duplicate_when) | the same, for the events you choose | |
/// | [`function_errors`](Self::function_errors) | the handler runs, then its success is replaced by an error (`Injected.FunctionError`), so the event is retried | a response lost after the side effect |
/// | [`system_errors`](Self::system_errors) | before the handler runs, the attempt fails like a throttle (backoff, no retry used up) | 5xx service errors |
/// | [`retry_delay`](Self::retry_delay) | every retry and throttle backoff waits up to this much longer | a busy queue |
/// | [`reorder`](Self::reorder) | a worker takes a random ready event instead of the oldest | no ordering promise |
///
/// A duplicate waiting in the queue takes a queue slot (so with a small
/// [`queue_capacity`](crate::Function::queue_capacity) it can make an invoke `QueueFull`), shows
/// in [`queue_snapshot`](crate::Runtime::queue_snapshot) like any event, and is not counted by
/// [`purge`](crate::Runtime::purge) or [`delete`](crate::Runtime::delete), which remove it
/// without a record.
///
/// Injection is off unless a runtime is built with
/// [`RuntimeBuilder::fault_injection`](crate::RuntimeBuilder::fault_injection), and costs one
/// branch per seam when off. The same seed replays the same faults when the runtime is driven
/// from one thread ([`Runtime::run_until_idle`](crate::Runtime::run_until_idle)); with several
/// worker threads the draws interleave differently from run to run.
///
/// The draws come from a ChaCha8 generator (crate `rand_chacha`) seeded with
/// [`seed`](Self::seed). ChaCha8's output is fixed by its definition, and the seed expansion
/// and the conversion to probabilities, delays and indices are this crate's own, so a seed
/// injects the same faults on every release of this crate's dependencies (golden tests pin
/// them): a seed that an [`IdempotencyCheck`](crate::IdempotencyCheck) reported still replays
/// after `cargo update`.
///
/// # Examples
///
/// ```
/// use event_invoke::{FaultInjection, Function, ManualClock, Runtime};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let runs = Arc::new(AtomicU32::new(0));
/// let seen = runs.clone();
/// let rt: Runtime<u32> = Runtime::builder()
///     .clock(ManualClock::new())
///     .fault_injection(FaultInjection::new(7).duplicates(1.0))
///     .build()
///     .unwrap();
/// rt.register(Function::new("f", move |_: &u32, _ctx| {
///     seen.fetch_add(1, Ordering::SeqCst);
///     Ok(())
/// }))
/// .unwrap();
/// rt.invoke_async("f", 1).unwrap();
/// rt.run_until_idle();
/// assert_eq!(runs.load(Ordering::SeqCst), 2); // delivered twice
/// let m = rt.function_metrics("f").unwrap();
/// assert_eq!((m.finished(), m.duplicates), (1, 1)); // one outcome, one duplicate
/// ```
#[derive(Clone)]
#[must_use = "faults are injected only into a runtime built with RuntimeBuilder::fault_injection or an IdempotencyCheck"]
pub struct FaultInjection {
    pub(crate) seed: u64,
    pub(crate) duplicate: f64,
    pub(crate) duplicate_when: Option<IdFilter>,
    pub(crate) function_error: f64,
    pub(crate) system_error: f64,
    pub(crate) retry_delay: Duration,
    pub(crate) reorder: f64,
}

impl FaultInjection {
    /// No faults yet, drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        FaultInjection {
            seed,
            duplicate: 0.0,
            duplicate_when: None,
            function_error: 0.0,
            system_error: 0.0,
            retry_delay: Duration::ZERO,
            reorder: 0.0,
        }
    }

    /// The same faults with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// After a success, deliver the event once more with probability `p` (0 to 1).
    pub fn duplicates(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// After a success, deliver the event once more whenever `pick` says so for its id.
    pub fn duplicate_when(
        mut self,
        pick: impl Fn(RequestId) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.duplicate_when = Some(Arc::new(pick));
        self
    }

    /// Replace a handler's success by an injected function error with probability `p`.
    pub fn function_errors(mut self, p: f64) -> Self {
        self.function_error = p;
        self
    }

    /// Fail an attempt before the handler runs, like a throttle, with probability `p`.
    pub fn system_errors(mut self, p: f64) -> Self {
        self.system_error = p;
        self
    }

    /// Make every retry and throttle backoff wait up to `max` longer (uniformly drawn).
    pub fn retry_delay(mut self, max: Duration) -> Self {
        self.retry_delay = max;
        self
    }

    /// Take a random ready event instead of the oldest with probability `p`.
    pub fn reorder(mut self, p: f64) -> Self {
        self.reorder = p;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (field, p) in [
            ("duplicates", self.duplicate),
            ("function_errors", self.function_error),
            ("system_errors", self.system_error),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::InvalidConfig {
                    field,
                    value: p.to_string(),
                    accepted: "a probability from 0.0 to 1.0",
                });
            }
        }
        if self.retry_delay > Duration::from_secs(24 * 3600) {
            return Err(Error::InvalidConfig {
                field: "retry_delay",
                value: format!("{:?}", self.retry_delay),
                accepted: "at most 24 h",
            });
        }
        Ok(())
    }
}

impl fmt::Debug for FaultInjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjection")
            .field("seed", &self.seed)
            .field("duplicates", &self.duplicate)
            .field("duplicate_when", &self.duplicate_when.is_some())
            .field("function_errors", &self.function_error)
            .field("system_errors", &self.system_error)
            .field("retry_delay", &self.retry_delay)
            .field("reorder", &self.reorder)
            .finish()
    }
}

impl<P: Clone + Send + 'static, R: Send + 'static> RuntimeBuilder<P, R> {
    /// Injects faults (duplicates, errors, delays, reordering) from a seeded RNG; see
    /// [`FaultInjection`]. Needs `P: Clone` to deliver duplicates.
    pub fn fault_injection(self, faults: FaultInjection) -> Self {
        self.fault_seam(Box::new(Faults::new(faults, P::clone)))
    }
}

/// A runtime's live fault state: the settings, the RNG, and how to copy a payload.
pub(crate) struct Faults<P> {
    pub(crate) config: FaultInjection,
    rng: Mutex<SeededRng>,
    pub(crate) clone: fn(&P) -> P,
}

impl<P> Faults<P> {
    pub(crate) fn new(config: FaultInjection, clone: fn(&P) -> P) -> Self {
        let rng = Mutex::new(SeededRng::new(config.seed));
        Faults { config, rng, clone }
    }

    /// Whether any fault can happen at all.
    pub(crate) fn active(&self) -> bool {
        let c = &self.config;
        c.duplicate > 0.0
            || c.duplicate_when.is_some()
            || c.function_error > 0.0
            || c.system_error > 0.0
            || c.reorder > 0.0
            || !c.retry_delay.is_zero()
    }

    /// A draw with probability `p`; no draw at all when `p` is 0, so settings that are off do
    /// not shift the sequence of the others.
    pub(crate) fn chance(&self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.rng.lock().unit() < p)
    }

    pub(crate) fn extra_delay(&self) -> Duration {
        if self.config.retry_delay.is_zero() {
            return Duration::ZERO;
        }
        let max = crate::parts::clock::duration_nanos(self.config.retry_delay);
        Duration::from_nanos(self.rng.lock().inclusive(0, max))
    }

    /// Index of the ready event to take among `len`.
    pub(crate) fn pick(&self, len: usize) -> usize {
        if len > 1 && self.chance(self.config.reorder) {
            self.rng.lock().index(len)
        } else {
            0
        }
    }

    pub(crate) fn duplicate(&self, id: RequestId) -> bool {
        self.config.duplicate_when.as_ref().is_some_and(|f| f(id))
            || self.chance(self.config.duplicate)
    }
}

impl<P> fmt::Debug for Faults<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<P: Send + 'static> FaultSeam<P> for Faults<P> {
    fn validate(&self) -> Result<(), Error> {
        self.config.validate()
    }

    fn active(&self) -> bool {
        Faults::active(self)
    }

    fn system_error(&self) -> bool {
        self.chance(self.config.system_error)
    }

    fn function_error(&self) -> bool {
        self.chance(self.config.function_error)
    }

    fn extra_delay(&self) -> Duration {
        Faults::extra_delay(self)
    }

    fn pick(&self, len: usize) -> usize {
        Faults::pick(self, len)
    }

    fn duplicate(&self, id: RequestId, payload: &P) -> Option<P> {
        Faults::duplicate(self, id).then(|| (self.clone)(payload))
    }
}
