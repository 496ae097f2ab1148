//! Model mode: the engine run in virtual time with a cost model, to predict how long a
//! workload takes on Lambda ([`ModelOptions`], [`CostModel`], [`ModelReport`], [`Timeline`]).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::Rng;

use crate::clock::{duration_nanos, Timestamp};
use crate::error::Error;
use crate::limiter::{ScalingRate, ScalingScope};
use crate::queue::QueuedEvent;
use crate::record::{Condition, FunctionError};
use crate::runtime::{FunctionShared, Version};

/// No sampled duration is longer than this (the longest timeout is 24 h, so a longer sample
/// is a timeout anyway); it keeps virtual time far from overflowing.
const SAMPLE_CAP_NS: u64 = 48 * 3600 * 1_000_000_000;

/// Settings of model mode, given to [`RuntimeBuilder::model`](crate::RuntimeBuilder::model).
///
/// In model mode the runtime runs on a [`ManualClock`](crate::ManualClock) and every execution
/// takes virtual time: its function's [`CostModel`] says how long, and every `invoke_async`
/// costs its caller the invoke latency. `run_until_idle` then plays the whole workload out on
/// the calling thread, and [`Runtime::model_report`](crate::Runtime::model_report) says how
/// long it took.
///
/// # Examples
///
/// ```
/// use event_invoke::ModelOptions;
/// use std::time::Duration;
///
/// let options = ModelOptions::new().invoke_latency(Duration::from_millis(10));
/// assert_eq!(options.latency(), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    invoke_latency: Duration,
    timeline_resolution: Duration,
    timeline_points: usize,
}

impl ModelOptions {
    /// No invoke latency; a timeline of at most 2,000 points, 1 ms apart at first.
    pub fn new() -> Self {
        ModelOptions {
            invoke_latency: Duration::ZERO,
            timeline_resolution: Duration::from_millis(1),
            timeline_points: 2_000,
        }
    }

    /// What one `invoke_async` costs its caller (the client outside, or a handler), unless the
    /// calling function's [`CostModel::invoke_latency`] says otherwise. The invoked event is
    /// accepted when the call returns.
    pub fn invoke_latency(mut self, latency: Duration) -> Self {
        self.invoke_latency = latency;
        self
    }

    /// The timeline's first resolution. When a run outgrows `points` buckets, neighbours are
    /// merged (the resolution doubles), so a long run keeps a bounded timeline.
    pub fn timeline(mut self, resolution: Duration, points: usize) -> Self {
        self.timeline_resolution = resolution;
        self.timeline_points = points;
        self
    }

    /// The default invoke latency.
    pub fn latency(&self) -> Duration {
        self.invoke_latency
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.invoke_latency > Duration::from_secs(3600) {
            return Err(Error::InvalidConfig {
                field: "model.invoke_latency",
                value: format!("{:?}", self.invoke_latency),
                accepted: "0 to 1 h (Lambda's Invoke API: tens of milliseconds)",
            });
        }
        if self.timeline_resolution.is_zero() {
            return Err(Error::InvalidConfig {
                field: "model.timeline resolution",
                value: "0ns".into(),
                accepted: "a resolution greater than zero, e.g. 1 ms",
            });
        }
        if !(2..=1_000_000).contains(&self.timeline_points) {
            return Err(Error::InvalidConfig {
                field: "model.timeline points",
                value: self.timeline_points.to_string(),
                accepted: "2 to 1,000,000 points",
            });
        }
        Ok(())
    }
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What an execution of a function costs in model mode: its duration, the latency of each
/// invoke it makes, a cold start for each new execution environment, and a failure rate.
///
/// An execution's virtual time line, from its start:
///
/// 1. the cold start, if it needed a new environment (see
///    [`ScalingRate`](crate::ScalingRate): environments stay warm once made);
/// 2. the handler's calls, in the order it makes them: each `ctx.invoke_async` costs the
///    invoke latency, and the invoked event is accepted when its call returns, so a handler
///    that invokes 100 children at 10 ms spends 1 s and its children arrive 10 ms apart;
///    [`Context::spend`](crate::Context::spend) adds time at that point of the handler;
/// 3. the duration drawn from this model (the rest of the handler's work).
///
/// The execution holds its concurrency slot until the end of that line; then its outcome
/// counts: success, or a function error (retried per the retry policy) when the failure rate
/// draws one or the handler returned one. The timeout counts from the end of the cold start
/// (Lambda's init phase has its own limit): a line longer than that ends at the timeout as
/// `Sandbox.Timedout`, and invokes that would return after the timeout are refused
/// ([`InvokeError::CallerTimedOut`](crate::InvokeError::CallerTimedOut)).
///
/// Draws come from the function's own generator, seeded from the runtime's
/// [`seed`](crate::RuntimeBuilder::seed): one seed, one run.
///
/// # Examples
///
/// ```
/// use event_invoke::CostModel;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let leaf = CostModel::fixed(ms(120)).cold_start(ms(250)).failure_rate(0.05);
/// assert_eq!(leaf.cold_start_time(), ms(250));
/// let spread = CostModel::uniform(ms(50), ms(150));
/// let measured = CostModel::samples(vec![ms(80), ms(95), ms(400)]);
/// let own = CostModel::declared(); // the handler calls ctx.spend(..)
/// # let _ = (spread, measured, own);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    duration: Dist,
    invoke_latency: Option<Duration>,
    cold_start: Duration,
    failure_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Dist {
    Declared,
    Fixed(u64),
    Uniform(u64, u64),
    Exponential(u64),
    LogNormal { median: u64, sigma: f64 },
    Samples(Arc<[u64]>),
}

impl CostModel {
    fn with(duration: Dist) -> Self {
        CostModel {
            duration,
            invoke_latency: None,
            cold_start: Duration::ZERO,
            failure_rate: 0.0,
        }
    }

    /// Every execution takes `d`.
    pub fn fixed(d: Duration) -> Self {
        Self::with(Dist::Fixed(duration_nanos(d)))
    }

    /// Durations drawn uniformly from `min..=max`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        Self::with(Dist::Uniform(duration_nanos(min), duration_nanos(max)))
    }

    /// Durations drawn from an exponential distribution with this mean.
    pub fn exponential(mean: Duration) -> Self {
        Self::with(Dist::Exponential(duration_nanos(mean)))
    }

    /// Durations drawn from a log-normal distribution: `median * e^(sigma * z)` for a standard
    /// normal `z`. A sigma of 0.5 puts the 99th percentile at about 3.2 times the median.
    pub fn log_normal(median: Duration, sigma: f64) -> Self {
        Self::with(Dist::LogNormal {
            median: duration_nanos(median),
            sigma,
        })
    }

    /// Durations drawn uniformly from measured ones (for example, from CloudWatch's
    /// `Duration` of the real function).
    pub fn samples(durations: Vec<Duration>) -> Self {
        Self::with(Dist::Samples(
            durations.into_iter().map(duration_nanos).collect(),
        ))
    }

    /// No drawn duration: the handler declares all its time with
    /// [`Context::spend`](crate::Context::spend), where it spends it. (`spend` works with every
    /// cost model; this one only says there is nothing else, and still takes a cold start,
    /// an invoke latency and a failure rate.)
    pub fn declared() -> Self {
        Self::with(Dist::Declared)
    }

    /// What each `invoke_async` made by this function's handler costs it (instead of the
    /// runtime's [`ModelOptions::invoke_latency`]).
    pub fn invoke_latency(mut self, latency: Duration) -> Self {
        self.invoke_latency = Some(latency);
        self
    }

    /// Time added to an execution that needs a new environment.
    pub fn cold_start(mut self, d: Duration) -> Self {
        self.cold_start = d;
        self
    }

    /// The chance (0.0 to 1.0) that an execution fails with a function error
    /// (`Model.Failure`) at its end, after its handler ran (so the invokes it made stand).
    pub fn failure_rate(mut self, p: f64) -> Self {
        self.failure_rate = p;
        self
    }

    /// The cold start time.
    pub fn cold_start_time(&self) -> Duration {
        self.cold_start
    }

    /// The failure rate.
    pub fn failure_probability(&self) -> f64 {
        self.failure_rate
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        self.invoke_latency
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let day = Duration::from_secs(24 * 3600);
        let invalid = |field, value: String, accepted| {
            Err(Error::InvalidConfig {
                field,
                value,
                accepted,
            })
        };
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return invalid(
                "cost_model.failure_rate",
                self.failure_rate.to_string(),
                "a probability from 0.0 to 1.0",
            );
        }
        if self.cold_start > day {
            return invalid(
                "cost_model.cold_start",
                format!("{:?}", self.cold_start),
                "0 to 24 h (Lambda: about 100 ms to a few seconds)",
            );
        }
        if self
            .invoke_latency
            .is_some_and(|l| l > Duration::from_secs(3600))
        {
            return invalid(
                "cost_model.invoke_latency",
                format!("{:?}", self.invoke_latency),
                "0 to 1 h (Lambda's Invoke API: tens of milliseconds)",
            );
        }
        let day_ns = duration_nanos(day);
        match &self.duration {
            Dist::Declared => {}
            Dist::Fixed(d) | Dist::Exponential(d) if *d > day_ns => {
                return invalid(
                    "cost_model.duration",
                    format!("{:?}", Duration::from_nanos(*d)),
                    "0 to 24 h",
                )
            }
            Dist::Fixed(_) | Dist::Exponential(_) => {}
            Dist::Uniform(min, max) => {
                if min > max || *max > day_ns {
                    return invalid(
                        "cost_model.uniform",
                        format!(
                            "{:?}..={:?}",
                            Duration::from_nanos(*min),
                            Duration::from_nanos(*max)
                        ),
                        "min <= max <= 24 h",
                    );
                }
            }
            Dist::LogNormal { median, sigma } => {
                if *median > day_ns || !sigma.is_finite() || !(0.0..=10.0).contains(sigma) {
                    return invalid(
                        "cost_model.log_normal",
                        format!("median {:?}, sigma {sigma}", Duration::from_nanos(*median)),
                        "a median of at most 24 h and a sigma from 0.0 to 10.0",
                    );
                }
            }
            Dist::Samples(s) => {
                if s.is_empty() || s.iter().any(|d| *d > day_ns) {
                    return invalid(
                        "cost_model.samples",
                        format!("{} samples", s.len()),
                        "at least one sample, each at most 24 h",
                    );
                }
            }
        }
        Ok(())
    }

    /// Draws one execution's duration in nanoseconds (0 for a declared model).
    pub(crate) fn sample(&self, rng: &mut StdRng) -> u64 {
        let ns = match &self.duration {
            Dist::Declared => 0,
            Dist::Fixed(d) => *d,
            Dist::Uniform(min, max) => rng.random_range(*min..=*max),
            Dist::Exponential(mean) => {
                let u: f64 = rng.random();
                (-(1.0 - u).ln() * *mean as f64) as u64
            }
            Dist::LogNormal { median, sigma } => {
                // Box-Muller: one standard normal from two uniforms.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (*median as f64 * (sigma * z).exp()) as u64
            }
            Dist::Samples(s) => s[rng.random_range(0..s.len())],
        };
        ns.min(SAMPLE_CAP_NS)
    }

    /// Whether this execution fails by the failure rate (draws only when the rate is set, so
    /// a model without failures draws nothing for them).
    pub(crate) fn draw_failure(&self, rng: &mut StdRng) -> bool {
        self.failure_rate > 0.0 && rng.random::<f64>() < self.failure_rate
    }

    pub(crate) fn failure() -> FunctionError {
        FunctionError::new(
            "Model.Failure",
            "the cost model's failure rate failed this execution",
        )
    }
}

/// The virtual time line of one execution in model mode: where its handler is in virtual
/// time, moved by its invokes and by `Context::spend`.
#[derive(Debug)]
pub(crate) struct Cursor {
    at: AtomicU64,
    deadline: u64,
    latency: u64,
    /// A call was refused for the timeout: the execution ran out of time.
    timed_out: std::sync::atomic::AtomicBool,
}

impl Cursor {
    pub(crate) fn new(start: Timestamp, deadline: Timestamp, latency: Duration) -> Self {
        Cursor {
            at: AtomicU64::new(start.as_nanos()),
            deadline: deadline.as_nanos(),
            latency: duration_nanos(latency),
            timed_out: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the handler tried to go on past its timeout.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    pub(crate) fn at(&self) -> Timestamp {
        Timestamp::from_nanos(self.at.load(Ordering::Relaxed))
    }

    /// Virtual time left before the timeout.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_nanos(
            self.deadline
                .saturating_sub(self.at.load(Ordering::Relaxed)),
        )
    }

    /// Charges one invoke; the time its call returns, or `None` past the deadline (the
    /// execution has timed out by then, and the cursor stays at the deadline).
    pub(crate) fn call(&self) -> Option<Timestamp> {
        let at = self.at.load(Ordering::Relaxed).saturating_add(self.latency);
        if at > self.deadline {
            self.at.store(self.deadline, Ordering::Relaxed);
            self.timed_out.store(true, Ordering::Relaxed);
            return None;
        }
        self.at.store(at, Ordering::Relaxed);
        Some(Timestamp::from_nanos(at))
    }

    pub(crate) fn spend(&self, d: Duration) {
        let at = self
            .at
            .load(Ordering::Relaxed)
            .saturating_add(duration_nanos(d));
        self.at.store(at, Ordering::Relaxed);
    }
}

/// Execution environments, counted when the runtime models cold starts or a scaling rate.
pub(crate) struct Environments {
    rate: Option<ScalingRate>,
    books: Mutex<ScalingBooks>,
}

/// The scaling allowance of each scope, made when the scope makes its first environment.
#[derive(Default)]
struct ScalingBooks {
    account: Option<Allowance>,
    /// By function index.
    functions: Vec<Option<Allowance>>,
}

/// New environments a scope may still make now: a token bucket that starts with the burst
/// (`initial`) and gets `step` back every `every` since it was last topped up, up to its
/// capacity, `max(initial, step)`.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    left: u64,
    topped_up: Timestamp,
}

impl Allowance {
    /// A scope's first allowance: its burst (it may hold more later, up to one step, when a
    /// step is larger than the burst).
    fn full(rate: &ScalingRate, now: Timestamp) -> Self {
        Allowance {
            left: u64::from(rate.initial()),
            topped_up: now,
        }
    }

    /// The allowance as it stands at `now`.
    fn at(self, rate: &ScalingRate, now: Timestamp) -> Self {
        let every = duration_nanos(rate.every());
        let periods = (now - self.topped_up).as_nanos() as u64 / every.max(1);
        if periods == 0 {
            return self;
        }
        Allowance {
            left: self
                .left
                .saturating_add(periods.saturating_mul(u64::from(rate.step())))
                .min(rate.capacity()),
            topped_up: self.topped_up + Duration::from_nanos(periods.saturating_mul(every)),
        }
    }
}

impl ScalingBooks {
    fn slot<P, R>(
        &mut self,
        rate: &ScalingRate,
        f: &FunctionShared<P, R>,
    ) -> &mut Option<Allowance> {
        match rate.scope() {
            ScalingScope::Account => &mut self.account,
            ScalingScope::Function => {
                let i = f.index as usize;
                if self.functions.len() <= i {
                    self.functions.resize(i + 1, None);
                }
                &mut self.functions[i]
            }
        }
    }
}

impl Environments {
    pub(crate) fn new(rate: Option<ScalingRate>) -> Self {
        Environments {
            rate,
            books: Mutex::new(ScalingBooks::default()),
        }
    }

    /// Whether an execution of `f` that would make `running` would be refused a new
    /// environment. Asked before the slots are taken, so that a refused execution never shows
    /// in a peak; [`claim`](Self::claim) decides for good.
    #[inline]
    pub(crate) fn refuses<P, R>(
        &self,
        f: &FunctionShared<P, R>,
        running: usize,
        now: Timestamp,
    ) -> bool {
        let Some(rate) = &self.rate else {
            return false;
        };
        if running as u64 <= f.environments.load(Ordering::Acquire) {
            return false;
        }
        let mut books = self.books.lock();
        match *books.slot(rate, f) {
            None => false, // a first environment: the allowance starts full
            Some(a) => a.at(rate, now).left == 0,
        }
    }

    /// Called with an execution slot of `f` just taken (`running` counts it): whether it runs
    /// in a new environment (`Some(true)`, a cold start), a warm one (`Some(false)`), or is
    /// refused one by the scaling rate (`None`, a throttle).
    #[inline]
    pub(crate) fn claim<P, R>(
        &self,
        f: &FunctionShared<P, R>,
        running: usize,
        now: Timestamp,
    ) -> Option<bool> {
        let running = running as u64;
        if running <= f.environments.load(Ordering::Acquire) {
            return Some(false);
        }
        // Rare (concurrency grows past its peak): one lock serialises the scaling books.
        let mut books = self.books.lock();
        let envs = f.environments.load(Ordering::Acquire);
        if running <= envs {
            return Some(false);
        }
        if let Some(rate) = &self.rate {
            let slot = books.slot(rate, f);
            let mut allowance = slot
                .unwrap_or_else(|| Allowance::full(rate, now))
                .at(rate, now);
            if allowance.left == 0 {
                *slot = Some(allowance);
                return None;
            }
            allowance.left -= 1;
            *slot = Some(allowance);
        }
        f.environments.store(envs + 1, Ordering::Release);
        Some(true)
    }
}

/// An event on its way to a queue: its invoke call returns at `at`.
pub(crate) struct Arrival<P, R> {
    pub(crate) function: Arc<FunctionShared<P, R>>,
    pub(crate) event: QueuedEvent<P>,
}

/// An execution that started and ends at `at`, holding its slots until then.
pub(crate) struct Completion<P, R> {
    pub(crate) at: u64,
    pub(crate) function: Arc<FunctionShared<P, R>>,
    pub(crate) version: Arc<Version<P, R>>,
    pub(crate) event: QueuedEvent<P>,
    pub(crate) result: Result<R, FunctionError>,
    pub(crate) attempt: u32,
    pub(crate) started: Timestamp,
    /// Whether it holds a slot of the unreserved pool.
    pub(crate) pool: bool,
}

struct Keyed<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Keyed<T> {
    // Reversed: the earliest (then the first scheduled) on top of the max-heap.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// What comes due in virtual time.
pub(crate) enum Due<P, R> {
    Arrival(Arrival<P, R>),
    Completion(Box<Completion<P, R>>),
}

struct Core<P, R> {
    arrivals: BinaryHeap<Keyed<Arrival<P, R>>>,
    completions: BinaryHeap<Keyed<Box<Completion<P, R>>>>,
    seq: u64,
    client: Option<u64>,
    ages: Vec<u64>,
    timeline: TimelineBuf,
}

/// The model's books: the heaps of what comes due, the client's call cursor, and the
/// statistics of the report.
pub(crate) struct Model<P, R> {
    pub(crate) options: ModelOptions,
    core: Mutex<Core<P, R>>,
    /// The earliest due time of either heap (`u64::MAX`: none), read without the lock.
    next_at: AtomicU64,
    first_call: AtomicU64,
    last_end: AtomicU64,
}

impl<P, R> Model<P, R> {
    pub(crate) fn new(options: ModelOptions) -> Self {
        let timeline = TimelineBuf::new(
            duration_nanos(options.timeline_resolution),
            options.timeline_points,
        );
        Model {
            options,
            core: Mutex::new(Core {
                arrivals: BinaryHeap::new(),
                completions: BinaryHeap::new(),
                seq: 0,
                client: None,
                ages: Vec::new(),
                timeline,
            }),
            next_at: AtomicU64::new(u64::MAX),
            first_call: AtomicU64::new(u64::MAX),
            last_end: AtomicU64::new(0),
        }
    }

    /// The client (code outside any handler) makes one invoke call at `now` or after its
    /// previous one: the time the call returns, when its event is accepted.
    pub(crate) fn client_call(&self, now: Timestamp) -> Timestamp {
        let mut core = self.core.lock();
        let start = core
            .client
            .map_or(now.as_nanos(), |c| c.max(now.as_nanos()));
        self.first_call.fetch_min(start, Ordering::Relaxed);
        core.timeline.start(start);
        let end = start.saturating_add(duration_nanos(self.options.invoke_latency));
        core.client = Some(end);
        Timestamp::from_nanos(end)
    }

    fn refresh_next(&self, core: &Core<P, R>) {
        let a = core.arrivals.peek().map_or(u64::MAX, |k| k.at);
        let c = core.completions.peek().map_or(u64::MAX, |k| k.at);
        self.next_at.store(a.min(c), Ordering::SeqCst);
    }

    pub(crate) fn push_arrival(
        &self,
        at: Timestamp,
        function: Arc<FunctionShared<P, R>>,
        event: QueuedEvent<P>,
    ) {
        let mut core = self.core.lock();
        core.seq += 1;
        let seq = core.seq;
        let at = at.as_nanos();
        core.arrivals.push(Keyed {
            at,
            seq,
            item: Arrival { function, event },
        });
        if at < self.next_at.load(Ordering::SeqCst) {
            self.next_at.store(at, Ordering::SeqCst);
        }
    }

    pub(crate) fn push_completion(&self, completion: Completion<P, R>) {
        let mut core = self.core.lock();
        core.seq += 1;
        let seq = core.seq;
        let at = completion.at;
        core.completions.push(Keyed {
            at,
            seq,
            item: Box::new(completion),
        });
        if at < self.next_at.load(Ordering::SeqCst) {
            self.next_at.store(at, Ordering::SeqCst);
        }
    }

    /// When something next comes due, if anything will.
    #[inline]
    pub(crate) fn next_at(&self) -> Option<Timestamp> {
        match self.next_at.load(Ordering::SeqCst) {
            u64::MAX => None,
            t => Some(Timestamp::from_nanos(t)),
        }
    }

    /// The earliest arrival or completion due by `now`, in time order (ties: in the order
    /// they were scheduled).
    pub(crate) fn pop_due(&self, now: Timestamp) -> Option<Due<P, R>> {
        if self.next_at.load(Ordering::SeqCst) > now.as_nanos() {
            return None;
        }
        let mut core = self.core.lock();
        let a = core.arrivals.peek().map(|k| (k.at, k.seq));
        let c = core.completions.peek().map(|k| (k.at, k.seq));
        let due = match (a, c) {
            (Some(a), Some(c)) if c < a && c.0 <= now.as_nanos() => {
                core.completions.pop().map(|k| Due::Completion(k.item))
            }
            (Some(a), _) if a.0 <= now.as_nanos() => {
                core.arrivals.pop().map(|k| Due::Arrival(k.item))
            }
            (None, Some(c)) if c.0 <= now.as_nanos() => {
                core.completions.pop().map(|k| Due::Completion(k.item))
            }
            _ => None,
        };
        self.refresh_next(&core);
        due
    }

    /// An execution started at `now` after its event waited `age_ns`; `running` executions
    /// (this one included) and `outstanding` events at this point.
    pub(crate) fn started(&self, now: Timestamp, age_ns: u64, running: u64, outstanding: u64) {
        let mut core = self.core.lock();
        core.ages.push(age_ns);
        let queued = outstanding.saturating_sub(running + core.arrivals.len() as u64);
        core.timeline.record(now.as_nanos(), running, queued);
    }

    /// Concurrency or the queues changed at `now` (an execution ended, an event throttled).
    pub(crate) fn observe(&self, now: Timestamp, running: u64, outstanding: u64) {
        let mut core = self.core.lock();
        let queued = outstanding.saturating_sub(running + core.arrivals.len() as u64);
        core.timeline.record(now.as_nanos(), running, queued);
    }

    /// Something ended at `at` (an execution, or an event's outcome).
    #[inline]
    pub(crate) fn note_end(&self, at: Timestamp) {
        self.last_end.fetch_max(at.as_nanos(), Ordering::Relaxed);
    }

    /// The span of the run: first invoke call to last end (both 0 before anything ran).
    pub(crate) fn span(&self) -> (Timestamp, Timestamp) {
        let end = self.last_end.load(Ordering::Relaxed);
        let start = match self.first_call.load(Ordering::Relaxed) {
            u64::MAX => end,
            s => s.min(end),
        };
        (Timestamp::from_nanos(start), Timestamp::from_nanos(end))
    }

    pub(crate) fn age_summary(&self) -> AgeSummary {
        let mut ages = self.core.lock().ages.clone();
        ages.sort_unstable();
        AgeSummary::of(&ages)
    }

    pub(crate) fn timeline(&self) -> Timeline {
        self.core.lock().timeline.export()
    }
}

/// Percentiles of `AsyncEventAge` (from an event's acceptance to each execution's start) over
/// every execution of a model run, by the nearest-rank method. They are exact: the model keeps
/// each execution's age, 8 bytes apiece (80 MB for ten million executions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgeSummary {
    /// Executions counted.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The oldest.
    pub max: Duration,
}

impl AgeSummary {
    fn of(sorted: &[u64]) -> Self {
        let rank = |p: u64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let n = sorted.len() as u64;
            let i = (p * n).div_ceil(100).max(1) - 1;
            Duration::from_nanos(sorted[i as usize])
        };
        AgeSummary {
            count: sorted.len() as u64,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: sorted
                .last()
                .map_or(Duration::ZERO, |n| Duration::from_nanos(*n)),
        }
    }
}

/// One function's lines of a [`ModelReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionReport {
    /// The function's name.
    pub name: String,
    /// Executions started (retries included).
    pub executions: u64,
    /// The most executions running at once.
    pub peak_concurrency: u64,
    /// Executions that needed a new environment.
    pub cold_starts: u64,
    /// Attempts refused an execution slot or a new environment, put back with backoff.
    pub throttles: u64,
    /// Retries scheduled after function errors.
    pub retries: u64,
    /// Events that ended in success.
    pub successes: u64,
    /// Events that ended without success, by condition (only those that happened).
    pub dropped: Vec<(Condition, u64)>,
}

/// What a model run did, for [`Runtime::model_report`](crate::Runtime::model_report).
///
/// Its [`Display`](fmt::Display) is a plain-text table; the same workload with the same seed
/// prints byte for byte the same report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReport {
    /// From the start of the first invoke call to the end of the last execution or outcome.
    pub makespan: Duration,
    /// Executions started, over all functions.
    pub executions: u64,
    /// The most executions running at once in the account.
    pub peak_concurrency: u64,
    /// Executions that needed a new environment.
    pub cold_starts: u64,
    /// Throttled attempts.
    pub throttles: u64,
    /// Retries scheduled after function errors.
    pub retries: u64,
    /// Events that ended in success.
    pub successes: u64,
    /// Events that ended without success, by condition (only those that happened).
    pub dropped: Vec<(Condition, u64)>,
    /// Events accepted and not yet ended when the report was made.
    pub outstanding: u64,
    /// Event ages at execution start.
    pub event_age: AgeSummary,
    /// Per function, in registration order.
    pub functions: Vec<FunctionReport>,
}

/// Seconds with millisecond precision, from integer nanoseconds (no float formatting, so the
/// text is the same on every machine).
fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

impl fmt::Display for ModelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "makespan          {}", secs(self.makespan))?;
        writeln!(f, "executions        {}", self.executions)?;
        writeln!(f, "peak concurrency  {}", self.peak_concurrency)?;
        writeln!(f, "cold starts       {}", self.cold_starts)?;
        writeln!(f, "throttles         {}", self.throttles)?;
        writeln!(f, "retries           {}", self.retries)?;
        writeln!(f, "successes         {}", self.successes)?;
        let dropped: u64 = self.dropped.iter().map(|(_, n)| n).sum();
        write!(f, "dropped           {dropped}")?;
        for (c, n) in &self.dropped {
            write!(f, " {c:?}={n}")?;
        }
        writeln!(f)?;
        if self.outstanding > 0 {
            writeln!(f, "outstanding       {}", self.outstanding)?;
        }
        let a = &self.event_age;
        writeln!(
            f,
            "event age         p50 {}  p90 {}  p99 {}  max {}",
            secs(a.p50),
            secs(a.p90),
            secs(a.p99),
            secs(a.max)
        )?;
        let width = self
            .functions
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max("function".len());
        writeln!(
            f,
            "{:<width$}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}",
            "function",
            "executions",
            "peak",
            "cold",
            "throttles",
            "retries",
            "successes",
            "dropped"
        )?;
        for r in &self.functions {
            let dropped: u64 = r.dropped.iter().map(|(_, n)| n).sum();
            writeln!(
                f,
                "{:<width$}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}",
                r.name,
                r.executions,
                r.peak_concurrency,
                r.cold_starts,
                r.throttles,
                r.retries,
                r.successes,
                dropped
            )?;
        }
        Ok(())
    }
}

/// A bounded timeline: buckets of a resolution that doubles whenever the run outgrows them.
struct TimelineBuf {
    origin: Option<u64>,
    width: u64,
    max: usize,
    /// Per bucket: the most executions running, and the most events queued, within it.
    buckets: Vec<(u64, u64)>,
    current: (u64, u64),
}

impl TimelineBuf {
    fn new(width: u64, max: usize) -> Self {
        TimelineBuf {
            origin: None,
            width,
            max,
            buckets: Vec::new(),
            current: (0, 0),
        }
    }

    fn start(&mut self, t: u64) {
        self.origin.get_or_insert(t);
    }

    fn record(&mut self, t: u64, running: u64, queued: u64) {
        let origin = *self.origin.get_or_insert(t);
        let mut index = t.saturating_sub(origin) / self.width;
        while index >= self.max as u64 {
            self.coarsen();
            index = t.saturating_sub(origin) / self.width;
        }
        let index = index as usize;
        while self.buckets.len() <= index {
            // A bucket nothing happened in holds what held at its start.
            self.buckets.push(self.current);
        }
        let b = &mut self.buckets[index];
        b.0 = b.0.max(running);
        b.1 = b.1.max(queued);
        self.current = (running, queued);
    }

    fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let merged = self
            .buckets
            .chunks(2)
            .map(|c| c.iter().fold((0, 0), |(r, q), b| (r.max(b.0), q.max(b.1))))
            .collect();
        self.buckets = merged;
    }

    fn export(&self) -> Timeline {
        let origin = self.origin.unwrap_or(0);
        Timeline {
            origin: Timestamp::from_nanos(origin),
            resolution: Duration::from_nanos(self.width),
            points: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, (running, queued))| TimelinePoint {
                    at: Duration::from_nanos(self.width.saturating_mul(i as u64)),
                    concurrency: *running,
                    queued: *queued,
                })
                .collect(),
        }
    }
}

/// A chart panel: its label, its colour, and what it plots.
type Series = (&'static str, &'static str, fn(&TimelinePoint) -> u64);

/// One bucket of a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePoint {
    /// The bucket's start, from the timeline's origin.
    pub at: Duration,
    /// The most executions running at once in the bucket.
    pub concurrency: u64,
    /// The most events waiting in queues (ready, delayed for a retry or backoff, or held) in
    /// the bucket, sampled at each execution start, end and throttle.
    pub queued: u64,
}

/// Concurrency and queue depth over the virtual time of a model run, from
/// [`Runtime::timeline`](crate::Runtime::timeline): export it as CSV or as an SVG chart.
///
/// # Examples
///
/// ```
/// use event_invoke::{CostModel, Function, ModelOptions, Runtime};
/// use std::time::Duration;
///
/// let rt: Runtime<u32> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
/// let f = Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(Duration::from_millis(5)));
/// rt.register(f).unwrap();
/// for i in 0..3 {
///     rt.invoke_async("f", i).unwrap();
/// }
/// rt.run_until_idle();
/// let timeline = rt.timeline().unwrap();
/// assert_eq!(timeline.points()[0].concurrency, 3);
/// // All three were queued, then all three started, at 0.
/// assert!(timeline.to_csv().starts_with("time_s,concurrency,queued\n0.000000,3,3\n"));
/// assert!(timeline.to_svg().starts_with("<svg"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    origin: Timestamp,
    resolution: Duration,
    points: Vec<TimelinePoint>,
}

impl Timeline {
    /// When the timeline starts (the first invoke call) on the runtime's clock.
    pub fn origin(&self) -> Timestamp {
        self.origin
    }

    /// The width of each bucket.
    pub fn resolution(&self) -> Duration {
        self.resolution
    }

    /// The buckets, in time order.
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }

    /// The timeline as CSV: `time_s,concurrency,queued`, one row per bucket, the time in
    /// seconds from the origin with microsecond precision.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("time_s,concurrency,queued\n");
        for p in &self.points {
            let us = p.at.as_micros();
            let _ = writeln!(
                out,
                "{}.{:06},{},{}",
                us / 1_000_000,
                us % 1_000_000,
                p.concurrency,
                p.queued
            );
        }
        out
    }

    /// The timeline as an SVG chart: concurrency above, queue depth below, over virtual time.
    pub fn to_svg(&self) -> String {
        const W: u64 = 900;
        const PANEL: u64 = 170;
        const LEFT: u64 = 70;
        const RIGHT: u64 = 20;
        const TOP: u64 = 40;
        const GAP: u64 = 50;
        let plot_w = W - LEFT - RIGHT;
        let height = TOP + 2 * PANEL + GAP + 40;
        let n = self.points.len().max(1) as u64;
        let span = self.resolution.saturating_mul(n as u32);
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            out,
            r##"<rect width="{W}" height="{height}" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="22" font-size="15">Model run: concurrency and queue depth over virtual time</text>"#
        );
        let series: [Series; 2] = [
            ("concurrent executions", "#1f77b4", |p| p.concurrency),
            ("queued events", "#d62728", |p| p.queued),
        ];
        for (k, (label, colour, value)) in series.iter().enumerate() {
            let top = TOP + k as u64 * (PANEL + GAP);
            let bottom = top + PANEL;
            let max = self.points.iter().map(value).max().unwrap_or(0).max(1);
            let _ = writeln!(
                out,
                r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#999999"/>"##
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{max}</text>"#,
                LEFT - 6,
                top + 10
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{bottom}" text-anchor="end">0</text>"#,
                LEFT - 6
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" fill="{colour}">{label} (peak {max})</text>"#,
                LEFT + 6,
                top - 6
            );
            // A step line: each bucket's value held across its width (points that fall on the
            // last pixel drawn are skipped, so a long timeline stays a short path).
            let mut path = String::new();
            let mut last = None;
            for (i, p) in self.points.iter().enumerate() {
                let x0 = LEFT + plot_w * i as u64 / n;
                let x1 = LEFT + plot_w * (i as u64 + 1) / n;
                let y = bottom - PANEL * value(p) / max;
                for point in [(x0, y), (x1, y)] {
                    if last != Some(point) {
                        let verb = if last.is_none() { "M" } else { "L" };
                        let _ = write!(path, "{verb}{},{} ", point.0, point.1);
                        last = Some(point);
                    }
                }
            }
            let _ = writeln!(
                out,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                path.trim_end()
            );
        }
        // Time ticks under the lower panel.
        let axis = TOP + 2 * PANEL + GAP;
        for t in 0..=4u64 {
            let x = LEFT + plot_w * t / 4;
            let at = span.mul_f64(t as f64 / 4.0);
            let _ = writeln!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
                axis + 16,
                secs(at)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">virtual time since the first invoke (bucket {})</text>"#,
            LEFT + plot_w / 2,
            axis + 34,
            secs(self.resolution)
        );
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_coarsens_and_keeps_peaks() {
        let mut t = TimelineBuf::new(10, 4);
        t.record(0, 1, 0);
        t.record(15, 5, 2);
        t.record(25, 0, 0);
        // The third bucket starts with 5 running (until 25): its peak is 5.
        assert_eq!(t.buckets, vec![(1, 0), (5, 2), (5, 2)]);
        t.record(45, 2, 1); // index 4 >= 4: buckets of 20
        assert_eq!(t.width, 20);
        assert_eq!(t.buckets, vec![(5, 2), (5, 2), (2, 1)]);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ages: Vec<u64> = (1..=100).collect();
        let s = AgeSummary::of(&ages);
        assert_eq!(s.p50, Duration::from_nanos(50));
        assert_eq!(s.p90, Duration::from_nanos(90));
        assert_eq!(s.p99, Duration::from_nanos(99));
        assert_eq!(s.max, Duration::from_nanos(100));
        assert_eq!(AgeSummary::of(&[]).count, 0);
    }
}
