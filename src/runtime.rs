//! [`Runtime`]: the registry of functions, `invoke_async`, and the operator's controls.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::clock::{Clock, ManualClock, SystemClock, Timestamp};
use crate::context::Context;
use crate::error::{Error, InvokeError, InvokeSyncError};
use crate::fault::{FaultInjection, Faults, TraceEvent, TraceKind};
use crate::function::{Function, FunctionConfig, Handler, ZeroConcurrency};
use crate::limiter::{ConcurrencyLimiter, ScalingRate};
use crate::metrics::{bump, Counters, FunctionMetrics, RuntimeMetrics, Tally};
use crate::model::{
    Arrival, Cursor, Environments, FunctionReport, Model, ModelOptions, ModelReport, Timeline,
};
use crate::queue::{EventInfo, EventState, InvocationQueue, QueuedEvent, RunToken};
use crate::record::{Condition, Destination, FunctionError, InvocationRecord, RequestId};

/// Lambda's default account concurrency.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// Lambda's unreserved floor: concurrency that reservations may never take.
pub const DEFAULT_UNRESERVED_FLOOR: u32 = 100;
/// Lambda's recursion limit: the longest invocation chain allowed.
pub const DEFAULT_RECURSION_LIMIT: u32 = 16;

/// One code version of a function with the settings in force. Replaced whole (copy on write)
/// by `update_code` and `update_config`, so a worker reads both with one `Arc` clone.
pub(crate) struct Version<P, R> {
    pub(crate) handler: Arc<dyn Handler<P, R>>,
    pub(crate) number: u64,
    pub(crate) config: FunctionConfig<P, R>,
}

/// A function's mutable state, behind its own lock (no lock is shared by all functions on the
/// hot path).
pub(crate) struct FnState<P, R> {
    pub(crate) queue: InvocationQueue<P>,
    pub(crate) seq: u64,
    pub(crate) received: u64,
    /// Whether this function's `Task::Run` is in the run queue (or about to be).
    pub(crate) token: RunToken,
    pub(crate) paused: bool,
    pub(crate) deleted: bool,
    pub(crate) current: Arc<Version<P, R>>,
    /// Model mode: events whose invoke call has not returned yet. They count against the
    /// queue's capacity like the events in it.
    pub(crate) arriving: usize,
}

pub(crate) struct FunctionShared<P, R> {
    pub(crate) index: u32,
    pub(crate) name: Arc<str>,
    pub(crate) state: Mutex<FnState<P, R>>,
    /// Reserved concurrency, or unlimited (then it only counts this function's executions).
    pub(crate) limiter: ConcurrencyLimiter,
    pub(crate) counters: Counters,
    pub(crate) rng: Mutex<StdRng>,
    /// Bumped by every operator call that must reach events a worker already took in a batch
    /// (pause, delete, code and settings updates): the worker gives the rest back.
    pub(crate) epoch: AtomicU64,
    /// Recent mean handler time in nanoseconds (`u64::MAX`: not measured since the code last
    /// changed), which decides whether the function's events are batched.
    pub(crate) recent_ns: AtomicU64,
    /// Execution environments made (only counted when environments are modelled).
    pub(crate) environments: AtomicU64,
    /// Draws of the cost model (model mode), apart from `rng` so that a cost model does not
    /// change the throttle jitter.
    pub(crate) cost_rng: Mutex<StdRng>,
}

/// What the run queue carries: a function with ready events, or a nudge to look at the timers.
pub(crate) enum Task<P, R> {
    Run(Arc<FunctionShared<P, R>>),
    Tick,
}

pub(crate) struct TimerEntry<P, R> {
    pub(crate) due: Timestamp,
    pub(crate) seq: u64,
    pub(crate) function: Arc<FunctionShared<P, R>>,
}

impl<P, R> PartialEq for TimerEntry<P, R> {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl<P, R> Eq for TimerEntry<P, R> {}
impl<P, R> PartialOrd for TimerEntry<P, R> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<P, R> Ord for TimerEntry<P, R> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

pub(crate) struct Timers<P, R> {
    pub(crate) heap: BinaryHeap<TimerEntry<P, R>>,
    pub(crate) seq: u64,
}

struct Registry<P, R> {
    by_name: HashMap<Arc<str>, Arc<FunctionShared<P, R>>>,
    /// Every function ever registered, deleted ones included, in registration order.
    all: Vec<Arc<FunctionShared<P, R>>>,
    /// Names deleted and not registered again, so that invoking them says "deleted".
    deleted: HashSet<Arc<str>>,
    reserved_sum: u32,
    account_limit: u32,
}

impl<P, R> Registry<P, R> {
    /// Whether `f` is the function registered under its name now (not a deleted namesake).
    fn is_live(&self, f: &Arc<FunctionShared<P, R>>) -> bool {
        self.by_name
            .get(&*f.name)
            .is_some_and(|g| Arc::ptr_eq(g, f))
    }
}

type Observer<P, R> = Box<dyn Fn(&InvocationRecord<P, R>) + Send + Sync>;
type Tracer = Box<dyn Fn(&TraceEvent<'_>) + Send + Sync>;
type CloneFn<P> = fn(&P) -> P;

pub(crate) struct Inner<P, R> {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) is_virtual: bool,
    registry: RwLock<Registry<P, R>>,
    pub(crate) account: ConcurrencyLimiter,
    pub(crate) unreserved: ConcurrencyLimiter,
    unreserved_floor: u32,
    zero_concurrency: ZeroConcurrency,
    recursion_limit: Option<u32>,
    seed: u64,
    pub(crate) run_tx: Sender<Task<P, R>>,
    pub(crate) run_rx: Receiver<Task<P, R>>,
    pub(crate) timers: Mutex<Timers<P, R>>,
    /// The earliest timer's due time in nanoseconds (`u64::MAX`: none), read without the lock
    /// on every worker loop.
    pub(crate) next_timer: AtomicU64,
    /// Workers blocked in the run queue; a wake-up is sent only when one is.
    pub(crate) parked: AtomicUsize,
    /// Events accepted and not yet ended.
    outstanding: AtomicU64,
    idle_lock: Mutex<()>,
    idle_cv: Condvar,
    idle_waiters: AtomicUsize,
    keep_dead_letters: bool,
    dead_letters: Mutex<Vec<InvocationRecord<P, R>>>,
    observer: Option<Observer<P, R>>,
    tracer: Option<Tracer>,
    pub(crate) faults: Option<Faults<P>>,
    /// Model mode: virtual durations, invoke latency, the report.
    pub(crate) model: Option<Model<P, R>>,
    /// Environments, counted for cold starts and the scaling rate.
    pub(crate) environments: Option<Environments>,
}

/// The engine: functions, their invocation queues, the account's concurrency, the clock and
/// the metrics. Cheap to clone (an `Arc`); every clone drives the same engine.
///
/// Dropping the last clone drops the events still waiting, without records, like a process
/// that exits: drain it first ([`wait_idle`](Self::wait_idle), [`run_until_idle`](Self::run_until_idle))
/// or [`delete`](Self::delete) its functions to have them recorded.
///
/// A runtime never starts threads of its own. Drive it with
/// [`run_worker`](Runtime::run_worker) on threads you own (or [`spawn_workers`](Runtime::spawn_workers)),
/// with [`run_until_idle`](Runtime::run_until_idle) on the current thread, or one step at a
/// time with [`try_dispatch`](Runtime::try_dispatch).
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, FunctionError, ManualClock, Runtime};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let rt: Runtime<String> = Runtime::builder().clock(clock.clone()).build().unwrap();
/// rt.register(Function::new("flaky", |_: &String, ctx| {
///     if ctx.approximate_invoke_count() < 3 {
///         return Err(FunctionError::new("Flaky", "not yet"));
///     }
///     Ok(())
/// }))
/// .unwrap();
///
/// let id = rt.invoke_async("flaky", "order-1".to_string()).unwrap(); // Lambda's 202
/// rt.run_until_idle(); // runs attempt 1, then jumps 60 s and 120 s for the two retries
/// assert_eq!(clock.now().as_duration(), Duration::from_secs(180));
///
/// let m = rt.function_metrics("flaky").unwrap();
/// assert_eq!((m.invocations, m.errors, m.retries), (3, 2, 2));
/// assert_eq!(m.outcome(Condition::Success), 1);
/// # let _ = id;
/// # use event_invoke::Clock;
/// ```
pub struct Runtime<P, R = ()> {
    pub(crate) inner: Arc<Inner<P, R>>,
}

impl<P, R> Clone for Runtime<P, R> {
    fn clone(&self) -> Self {
        Runtime {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<P, R> fmt::Debug for Runtime<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("functions", &self.inner.registry.read().by_name.len())
            .field("now", &self.inner.clock.now())
            .finish_non_exhaustive()
    }
}

/// Settings for a [`Runtime`]; see [`Runtime::builder`].
///
/// | setting | Lambda | default |
/// |---|---|---|
/// | `account_concurrency` | 1,000 | 1,000 (1 to 1,000,000) |
/// | `unreserved_floor` | 100 | 100 (0 to the account limit) |
/// | `zero_concurrency` | events go to on-failure (since 2021) | [`ZeroConcurrency::Discard`] |
/// | `recursion_limit` | about 16 hops, or `Allow` | `Some(16)` (1 to 10,000, or `None`: off) |
/// | `seed` | - | 0 (seeds the throttle jitter) |
/// | `keep_dead_letters` | - | true |
pub struct RuntimeBuilder<P, R> {
    clock: Arc<dyn Clock>,
    account_concurrency: u32,
    unreserved_floor: u32,
    zero_concurrency: ZeroConcurrency,
    recursion_limit: Option<u32>,
    seed: u64,
    keep_dead_letters: bool,
    observer: Option<Observer<P, R>>,
    tracer: Option<Tracer>,
    faults: Option<(FaultInjection, CloneFn<P>)>,
    clock_set: bool,
    model: Option<ModelOptions>,
    scaling: Option<ScalingRate>,
}

impl<P: Clone + Send + 'static, R: Send + 'static> RuntimeBuilder<P, R> {
    /// Injects faults (duplicates, errors, delays, reordering) from a seeded RNG; see
    /// [`FaultInjection`]. Needs `P: Clone` to deliver duplicates.
    pub fn fault_injection(mut self, faults: FaultInjection) -> Self {
        self.faults = Some((faults, P::clone));
        self
    }
}

impl<P: Send + 'static, R: Send + 'static> RuntimeBuilder<P, R> {
    /// The clock (default [`SystemClock`]). Pass a [`ManualClock`](crate::ManualClock) clone for
    /// virtual time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self.clock_set = true;
        self
    }

    /// Model mode: every execution takes the virtual time its function's
    /// [`CostModel`](crate::CostModel) gives it, every `invoke_async` costs its caller the
    /// invoke latency, and [`Runtime::model_report`] says what the run did. It needs a virtual
    /// clock: without [`clock`](Self::clock), a new [`ManualClock`] is used; a real clock is
    /// refused.
    ///
    /// Drive it with [`Runtime::run_until_idle`] (or `run_until`, `run_for`) on one thread:
    /// the run is then deterministic, one seed, one report. Model mode plays out asynchronous
    /// invocations only: [`Runtime::invoke`] is refused with
    /// [`InvokeSyncError::ModelMode`], and [`Runtime::spawn_workers`] with an error too.
    ///
    /// # Examples
    ///
    /// The seed's arithmetic: 10 ms per invoke, one function fanning out 1 -> 100 -> 100.
    ///
    /// ```
    /// use event_invoke::{Function, ModelOptions, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u32> = Runtime::builder()
    ///     .model(ModelOptions::new().invoke_latency(Duration::from_millis(10)))
    ///     .build()
    ///     .unwrap();
    /// rt.register(Function::new("function_3", |_: &u32, _ctx| Ok(()))).unwrap();
    /// for (name, child) in [("function_1", "function_2"), ("function_2", "function_3")] {
    ///     rt.register(Function::new(name, move |_: &u32, ctx| {
    ///         for i in 0..100 {
    ///             ctx.invoke_async(child, i)?;
    ///         }
    ///         Ok(())
    ///     }))
    ///     .unwrap();
    /// }
    /// rt.invoke_async("function_1", 0).unwrap();
    /// rt.run_until_idle();
    /// let report = rt.model_report().unwrap();
    /// assert_eq!(report.makespan, Duration::from_millis(2010));
    /// assert_eq!(report.executions, 1 + 100 + 10_000);
    /// ```
    pub fn model(mut self, options: ModelOptions) -> Self {
        self.model = Some(options);
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

    /// The longest invocation chain allowed, or `None` to switch the guard off (Lambda's
    /// `RecursiveLoop: Allow`).
    pub fn recursion_limit(mut self, limit: Option<u32>) -> Self {
        self.recursion_limit = limit;
        self
    }

    /// Seeds the runtime's random numbers (throttle jitter), so runs are reproducible.
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
    pub fn build(mut self) -> Result<Runtime<P, R>, Error> {
        if let Some(options) = &self.model {
            options.validate()?;
            if !self.clock_set {
                self.clock = Arc::new(ManualClock::new());
            } else if !self.clock.is_virtual() {
                return Err(Error::InvalidConfig {
                    field: "clock",
                    value: "a real clock".into(),
                    accepted: "a virtual clock in model mode: pass a ManualClock, or no clock",
                });
            }
        }
        if let Some((faults, _)) = &self.faults {
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
        if let Some(limit) = self.recursion_limit {
            if !(1..=10_000).contains(&limit) {
                return Err(Error::InvalidConfig {
                    field: "recursion_limit",
                    value: limit.to_string(),
                    accepted: "1 to 10,000, or None to switch the guard off (Lambda: 16)",
                });
            }
        }
        let (run_tx, run_rx) = crossbeam_channel::unbounded();
        let is_virtual = self.clock.is_virtual();
        let inner = Arc::new(Inner {
            clock: self.clock,
            is_virtual,
            registry: RwLock::new(Registry {
                by_name: HashMap::new(),
                all: Vec::new(),
                deleted: HashSet::new(),
                reserved_sum: 0,
                account_limit: self.account_concurrency,
            }),
            account: ConcurrencyLimiter::new(self.account_concurrency as usize),
            unreserved: ConcurrencyLimiter::new(self.account_concurrency as usize),
            unreserved_floor: self.unreserved_floor,
            zero_concurrency: self.zero_concurrency,
            recursion_limit: self.recursion_limit,
            seed: self.seed,
            run_tx,
            run_rx,
            timers: Mutex::new(Timers {
                heap: BinaryHeap::new(),
                seq: 0,
            }),
            next_timer: AtomicU64::new(u64::MAX),
            parked: AtomicUsize::new(0),
            outstanding: AtomicU64::new(0),
            idle_lock: Mutex::new(()),
            idle_cv: Condvar::new(),
            idle_waiters: AtomicUsize::new(0),
            keep_dead_letters: self.keep_dead_letters,
            dead_letters: Mutex::new(Vec::new()),
            observer: self.observer,
            tracer: self.tracer,
            faults: self
                .faults
                .map(|(config, clone)| Faults::new(config, clone)),
            environments: (self.model.is_some() || self.scaling.is_some())
                .then(|| Environments::new(self.scaling)),
            model: self.model.map(Model::new),
        });
        // Parked workers must hear when virtual time moves, or a retry that became due would
        // wait for the next invoke. The weak reference lets the runtime drop.
        let weak = Arc::downgrade(&inner);
        inner.clock.subscribe(Box::new(move || {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            if inner.parked.load(Ordering::SeqCst) > 0 {
                let _ = inner.run_tx.send(Task::Tick);
            }
            true
        }));
        Ok(Runtime { inner })
    }
}

/// A pre-resolved function: invoking through it skips the name lookup (no hashing, no
/// registry lock). Cheap to clone.
///
/// A handle keeps its runtime alive. A handler that captures a handle (for fan-out) therefore
/// makes a reference cycle through the runtime; [`Runtime::delete`] breaks it by dropping the
/// deleted function's handler, so delete such functions when you are done with a runtime that
/// should be freed before the process ends.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, ManualClock, Runtime};
///
/// let rt: Runtime<u64> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// let handle = rt.register(Function::new("f", |_: &u64, _ctx| Ok(()))).unwrap();
/// for i in 0..10 {
///     handle.invoke_async(i).unwrap();
/// }
/// assert_eq!(rt.run_until_idle(), 10);
/// ```
pub struct FunctionHandle<P, R> {
    runtime: Runtime<P, R>,
    shared: Arc<FunctionShared<P, R>>,
}

impl<P, R> Clone for FunctionHandle<P, R> {
    fn clone(&self) -> Self {
        FunctionHandle {
            runtime: self.runtime.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P, R> fmt::Debug for FunctionHandle<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionHandle({})", self.shared.name)
    }
}

impl<P: Send + 'static, R: Send + 'static> FunctionHandle<P, R> {
    /// The function's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Invokes the function asynchronously: the event is queued and its id returned at once.
    #[inline]
    pub fn invoke_async(&self, payload: P) -> Result<RequestId, InvokeError<P>> {
        match &self.runtime.inner.model {
            None => self.runtime.enqueue(&self.shared, payload, 1),
            Some(model) => {
                let at = model.client_call(self.runtime.now());
                self.runtime.enqueue_arriving(&self.shared, payload, 1, at)
            }
        }
    }

    /// Invokes the function synchronously on this thread (see [`Runtime::invoke`]).
    pub fn invoke(&self, payload: &P) -> Result<R, InvokeSyncError> {
        self.runtime.invoke_shared(&self.shared, payload)
    }

    pub(crate) fn enqueue_at_depth(
        &self,
        payload: P,
        depth: u32,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        match at {
            None => self.runtime.enqueue(&self.shared, payload, depth),
            Some(at) => self
                .runtime
                .enqueue_arriving(&self.shared, payload, depth, at),
        }
    }
}

/// The record of `event` ending with `condition` at `at`; without a response of its own, the
/// last attempt's error stands in.
fn record_of<P, R>(
    f: &FunctionShared<P, R>,
    event: QueuedEvent<P>,
    condition: Condition,
    response: Option<Result<R, FunctionError>>,
    at: Timestamp,
) -> InvocationRecord<P, R> {
    let request_id = event.request_id();
    let enqueued_at = event.enqueued_at();
    let attempts = event.attempts();
    let chain_depth = event.chain_depth();
    let last_version = event.last_version();
    let (payload, last_error) = event.into_parts();
    InvocationRecord {
        request_id,
        function: Arc::clone(&f.name),
        condition,
        approximate_invoke_count: attempts,
        request_payload: payload,
        response: response.or_else(|| last_error.map(Err)),
        executed_version: (attempts > 0).then_some(last_version),
        enqueued_at,
        timestamp: at,
        chain_depth,
    }
}

fn deleted_handler<P, R>(_: &P, ctx: &Context<'_, P, R>) -> Result<R, FunctionError> {
    Err(FunctionError::new(
        "ResourceNotFoundException",
        format!("function {} was deleted", ctx.function),
    ))
}

/// Execution slots held by one attempt, released on drop (also if anything panics).
pub(crate) struct Slots<'a> {
    function: &'a ConcurrencyLimiter,
    pool: Option<&'a ConcurrencyLimiter>,
    account: &'a ConcurrencyLimiter,
    /// Whether the execution needed a new environment (environments modelled only).
    pub(crate) cold: bool,
}

impl Slots<'_> {
    /// Keeps the slots taken past this guard (model mode: until the execution's virtual end,
    /// when [`Runtime::release_detached`] gives them back). Returns whether they include a
    /// slot of the unreserved pool.
    pub(crate) fn detach(self) -> bool {
        let pool = self.pool.is_some();
        // Only references inside: forgetting the guard leaks nothing but the release.
        std::mem::forget(self);
        pool
    }
}

impl Drop for Slots<'_> {
    #[inline]
    fn drop(&mut self) {
        self.account.release_raw();
        if let Some(pool) = self.pool {
            pool.release_raw();
        }
        self.function.release_raw();
    }
}

impl<P: Send + 'static> Runtime<P, ()> {
    /// A runtime with Lambda's defaults and the system clock.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the default settings are valid"))
    }
}

impl<P: Send + 'static> Default for Runtime<P, ()> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// A builder with Lambda's defaults (see [`RuntimeBuilder`]).
    pub fn builder() -> RuntimeBuilder<P, R> {
        RuntimeBuilder {
            clock: Arc::new(SystemClock::new()),
            account_concurrency: DEFAULT_ACCOUNT_CONCURRENCY,
            unreserved_floor: DEFAULT_UNRESERVED_FLOOR,
            zero_concurrency: ZeroConcurrency::Discard,
            recursion_limit: Some(DEFAULT_RECURSION_LIMIT),
            seed: 0,
            keep_dead_letters: true,
            observer: None,
            tracer: None,
            faults: None,
            clock_set: false,
            model: None,
            scaling: None,
        }
    }

    /// The runtime's current time.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The runtime's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    // ----- registry -----------------------------------------------------------------------

    /// Registers a function and returns a handle to it. Checks its settings, its destinations
    /// and its reserved concurrency against the account; on error nothing changes.
    pub fn register(&self, function: Function<P, R>) -> Result<FunctionHandle<P, R>, Error> {
        let Function {
            name,
            handler,
            config,
        } = function;
        config.validate(&name)?;
        self.check_cost(&config)?;
        let mut reg = self.inner.registry.write();
        if reg.by_name.contains_key(name.as_str()) {
            return Err(Error::FunctionExists(name));
        }
        self.check_destinations(&reg, &name, &config)?;
        let reserved = config.reserved_concurrency.unwrap_or(0);
        self.check_reservation(&reg, &name, reserved, 0)?;
        let index = u32::try_from(reg.all.len())
            .ok()
            .filter(|i| *i < (1 << 24))
            .ok_or(Error::InvalidConfig {
                field: "name",
                value: "one more function".into(),
                accepted: "at most 16,777,216 functions registered over a runtime's life",
            })?;
        let queue = InvocationQueue::new(config.queue_capacity)?;
        let limit = config
            .reserved_concurrency
            .map_or(usize::MAX, |n| n as usize);
        let name: Arc<str> = Arc::from(name);
        let shared = Arc::new(FunctionShared {
            index,
            name: Arc::clone(&name),
            state: Mutex::new(FnState {
                queue,
                seq: 0,
                received: 0,
                token: RunToken::new(),
                paused: false,
                deleted: false,
                arriving: 0,
                current: Arc::new(Version {
                    handler,
                    number: 1,
                    config,
                }),
            }),
            limiter: ConcurrencyLimiter::new(limit),
            counters: Counters::default(),
            epoch: AtomicU64::new(0),
            recent_ns: AtomicU64::new(u64::MAX),
            rng: Mutex::new(StdRng::seed_from_u64(
                self.inner
                    .seed
                    .wrapping_add(u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )),
            environments: AtomicU64::new(0),
            cost_rng: Mutex::new(StdRng::seed_from_u64(
                (self.inner.seed ^ 0x6D6F_6465_6C00_0000)
                    .wrapping_add(u64::from(index).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            )),
        });
        reg.reserved_sum += reserved;
        self.inner
            .unreserved
            .set_limit((reg.account_limit - reg.reserved_sum) as usize);
        reg.deleted.remove(&name);
        reg.by_name.insert(name, Arc::clone(&shared));
        reg.all.push(Arc::clone(&shared));
        Ok(FunctionHandle {
            runtime: self.clone(),
            shared,
        })
    }

    fn check_cost(&self, config: &FunctionConfig<P, R>) -> Result<(), Error> {
        if config.cost.is_some() && self.inner.model.is_none() {
            return Err(Error::InvalidConfig {
                field: "cost",
                value: "a cost model".into(),
                accepted: "no cost model outside model mode: build the runtime with RuntimeBuilder::model, or drop Function::cost",
            });
        }
        Ok(())
    }

    fn check_destinations(
        &self,
        reg: &Registry<P, R>,
        name: &str,
        config: &FunctionConfig<P, R>,
    ) -> Result<(), Error> {
        for dest in [&config.on_success, &config.on_failure]
            .into_iter()
            .flatten()
        {
            if let Some(target) = dest.function_name() {
                if target != name && !reg.by_name.contains_key(target) {
                    return Err(Error::UnknownDestination {
                        function: name.to_string(),
                        destination: target.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_reservation(
        &self,
        reg: &Registry<P, R>,
        name: &str,
        requested: u32,
        current: u32,
    ) -> Result<(), Error> {
        let elsewhere = reg.reserved_sum - current;
        let available = reg
            .account_limit
            .saturating_sub(self.inner.unreserved_floor)
            .saturating_sub(elsewhere);
        if requested > available {
            return Err(Error::ReservedConcurrencyExceeded {
                function: name.to_string(),
                requested,
                available,
                account_limit: reg.account_limit,
                reserved_elsewhere: elsewhere,
                unreserved_floor: self.inner.unreserved_floor,
            });
        }
        Ok(())
    }

    /// A handle to function `name`.
    pub fn function(&self, name: &str) -> Option<FunctionHandle<P, R>> {
        self.lookup(name).map(|shared| FunctionHandle {
            runtime: self.clone(),
            shared,
        })
    }

    /// The names of the registered functions, in registration order.
    pub fn function_names(&self) -> Vec<String> {
        let reg = self.inner.registry.read();
        reg.all
            .iter()
            .filter(|f| reg.is_live(f))
            .map(|f| f.name.to_string())
            .collect()
    }

    fn lookup(&self, name: &str) -> Option<Arc<FunctionShared<P, R>>> {
        self.inner.registry.read().by_name.get(name).cloned()
    }

    fn was_deleted(&self, name: &str) -> bool {
        self.inner.registry.read().deleted.contains(name)
    }

    fn require(&self, name: &str) -> Result<Arc<FunctionShared<P, R>>, Error> {
        self.lookup(name)
            .ok_or_else(|| Error::UnknownFunction(name.to_string()))
    }

    // ----- invoking -----------------------------------------------------------------------

    /// Invokes function `name` asynchronously (`InvocationType=Event`): the event is queued and
    /// its request id returned at once, like Lambda's HTTP 202. No concurrency check happens
    /// here; the event runs when a worker and an execution slot are free.
    ///
    /// Refused (with the payload handed back) when the function is unknown or deleted, or its
    /// queue is full.
    ///
    /// In model mode this is the client's call: the client makes its calls one after the other,
    /// each costing the invoke latency, and each event is accepted when its call returns. A
    /// handler invokes through its [`Context`] instead, which charges the handler's own time
    /// line.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<&'static str> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// rt.register(Function::new("greet", |name: &&str, _ctx| Ok(()))).unwrap();
    /// let id = rt.invoke_async("greet", "world").unwrap();
    /// assert_eq!(rt.queue_snapshot("greet").unwrap()[0].request_id, id);
    /// ```
    pub fn invoke_async(&self, name: &str, payload: P) -> Result<RequestId, InvokeError<P>> {
        match &self.inner.model {
            None => self.invoke_async_at_depth(name, payload, 1, None),
            Some(model) => {
                let at = model.client_call(self.now());
                self.invoke_async_at_depth(name, payload, 1, Some(at))
            }
        }
    }

    /// Invokes `name` one hop down a chain; in model mode `at` is when the invoke call returns
    /// (the event is accepted then).
    pub(crate) fn invoke_async_at_depth(
        &self,
        name: &str,
        payload: P,
        depth: u32,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        match self.lookup(name) {
            Some(f) => match at {
                None => self.enqueue(&f, payload, depth),
                Some(at) => self.enqueue_arriving(&f, payload, depth, at),
            },
            None if self.was_deleted(name) => Err(InvokeError::FunctionDeleted {
                name: name.to_string(),
                payload,
            }),
            None => Err(InvokeError::UnknownFunction {
                name: name.to_string(),
                payload,
            }),
        }
    }

    /// The hot path of every invoke: one lock of the function's own state, no allocation but
    /// the queue slot, and a run-queue send only when the function was not already scheduled.
    #[inline]
    pub(crate) fn enqueue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        depth: u32,
    ) -> Result<RequestId, InvokeError<P>> {
        let now = self.inner.clock.now();
        let mut st = f.state.lock();
        if st.deleted {
            return Err(InvokeError::FunctionDeleted {
                name: f.name.to_string(),
                payload,
            });
        }
        if st.arriving > 0 && st.queue.len() + st.arriving >= st.queue.capacity() {
            // Model mode: the events still on their way hold their places.
            return Err(InvokeError::QueueFull {
                function: f.name.to_string(),
                capacity: st.queue.capacity(),
                payload,
            });
        }
        let id = RequestId::new(f.index, st.seq + 1);
        let mut event = QueuedEvent::new(id, payload, now);
        event.set_chain_depth(depth);
        if let Err(event) = st.queue.push(event) {
            return Err(InvokeError::QueueFull {
                function: f.name.to_string(),
                capacity: st.queue.capacity(),
                payload: event.into_payload(),
            });
        }
        st.seq += 1;
        st.received += 1;
        // Counted before the lock is released, so no worker can end the event first.
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        self.joined_queue(f, st, id, now, depth);
        if let Some(model) = &self.inner.model {
            model.observe(
                now,
                self.inner.account.in_flight() as u64,
                self.outstanding(),
            );
        }
        Ok(id)
    }

    /// An event just joined `f`'s queue (`st` is its lock, released here): schedules the
    /// function unless it is paused or already scheduled, arms a paused function's first
    /// expiry, and traces the acceptance.
    #[inline]
    fn joined_queue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        mut st: parking_lot::MutexGuard<'_, FnState<P, R>>,
        id: RequestId,
        now: Timestamp,
        depth: u32,
    ) {
        let schedule = {
            let runnable = !st.paused;
            st.token.claim(runnable)
        };
        let arm_expiry = st.paused && st.queue.len() == 1;
        let max_age = st.current.config.retry.maximum_event_age();
        drop(st);
        if schedule {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
        if arm_expiry {
            self.arm_timer(f, now + max_age);
        }
        self.trace(f, id, now, TraceKind::Accepted { chain_depth: depth });
    }

    /// Model mode: an invoke whose call returns at `at`. The request id is given now; the
    /// event is accepted (counted as received, queued, traced) when virtual time reaches `at`.
    /// The queue's capacity is checked now, against the events already accepted.
    pub(crate) fn enqueue_arriving(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        depth: u32,
        at: Timestamp,
    ) -> Result<RequestId, InvokeError<P>> {
        let Some(model) = &self.inner.model else {
            return self.enqueue(f, payload, depth);
        };
        if at <= self.inner.clock.now() {
            return self.enqueue(f, payload, depth);
        }
        let id = {
            let mut st = f.state.lock();
            if st.deleted {
                return Err(InvokeError::FunctionDeleted {
                    name: f.name.to_string(),
                    payload,
                });
            }
            if st.queue.len() + st.arriving >= st.queue.capacity() {
                return Err(InvokeError::QueueFull {
                    function: f.name.to_string(),
                    capacity: st.queue.capacity(),
                    payload,
                });
            }
            st.seq += 1;
            st.arriving += 1;
            RequestId::new(f.index, st.seq)
        };
        // Outstanding from the call on, so that nobody finds the runtime idle meanwhile.
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        let mut event = QueuedEvent::new(id, payload, at);
        event.set_chain_depth(depth);
        model.push_arrival(at, Arc::clone(f), event);
        Ok(id)
    }

    /// Model mode: an event's invoke call returned; it joins its function's queue now.
    pub(crate) fn accept_arrival(&self, arrival: Arrival<P, R>) {
        let Arrival { function: f, event } = arrival;
        let now = event.enqueued_at();
        let id = event.request_id();
        let depth = event.chain_depth();
        let mut st = f.state.lock();
        st.received += 1;
        st.arriving -= 1;
        if st.deleted {
            // Deleted while the call was on its way: it still ends with a record.
            let version = Arc::clone(&st.current);
            drop(st);
            self.trace(&f, id, now, TraceKind::Accepted { chain_depth: depth });
            self.finish(
                &f,
                &version,
                event,
                Condition::FunctionDeleted,
                None,
                false,
                now,
            );
            return;
        }
        st.queue.push_unbounded(event);
        self.joined_queue(&f, st, id, now, depth);
        if let Some(model) = &self.inner.model {
            model.observe(
                now,
                self.inner.account.in_flight() as u64,
                self.outstanding(),
            );
        }
    }

    /// What a model run did so far: makespan, executions, peak concurrency, cold starts,
    /// throttles, retries, drops by reason and event ages, in total and per function.
    /// [`Error::NotModelMode`] unless the runtime was built with
    /// [`RuntimeBuilder::model`].
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, CostModel, Function, ModelOptions, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u32> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
    /// let always_fails = CostModel::fixed(Duration::from_secs(1)).failure_rate(1.0);
    /// rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).cost(always_fails)).unwrap();
    /// rt.invoke_async("f", 1).unwrap();
    /// rt.run_until_idle();
    /// let report = rt.model_report().unwrap();
    /// // 1 s, a minute's wait, 1 s, two minutes' wait, 1 s.
    /// assert_eq!(report.makespan, Duration::from_secs(183));
    /// assert_eq!((report.executions, report.retries), (3, 2));
    /// assert_eq!(report.dropped, vec![(Condition::RetriesExhausted, 1)]);
    /// ```
    pub fn model_report(&self) -> Result<ModelReport, Error> {
        let model = self.inner.model.as_ref().ok_or(Error::NotModelMode)?;
        let all: Vec<_> = self.inner.registry.read().all.clone();
        let mut functions = Vec::with_capacity(all.len());
        let mut outcomes = [0u64; 7];
        let mut report = ModelReport {
            makespan: Duration::ZERO,
            executions: 0,
            peak_concurrency: self.inner.account.peak() as u64,
            cold_starts: 0,
            throttles: 0,
            retries: 0,
            successes: 0,
            dropped: Vec::new(),
            outstanding: self.outstanding(),
            event_age: model.age_summary(),
            functions: Vec::new(),
        };
        for f in &all {
            let m = self.snapshot_function(f);
            let dropped: Vec<_> = Condition::ALL
                .iter()
                .filter(|c| c.is_failure())
                .map(|c| (*c, m.outcome(*c)))
                .filter(|(_, n)| *n > 0)
                .collect();
            for (o, n) in outcomes.iter_mut().zip(m.outcomes) {
                *o += n;
            }
            let r = FunctionReport {
                name: f.name.to_string(),
                executions: m.invocations,
                peak_concurrency: m.peak_concurrent_executions,
                cold_starts: f.environments.load(Ordering::Relaxed),
                throttles: m.throttles,
                retries: m.retries,
                successes: m.outcome(Condition::Success),
                dropped,
            };
            report.executions += r.executions;
            report.cold_starts += r.cold_starts;
            report.throttles += r.throttles;
            report.retries += r.retries;
            report.successes += r.successes;
            functions.push(r);
        }
        report.dropped = Condition::ALL
            .iter()
            .filter(|c| c.is_failure())
            .map(|c| (*c, outcomes[c.index()]))
            .filter(|(_, n)| *n > 0)
            .collect();
        let (start, end) = model.span();
        report.makespan = end - start;
        report.functions = functions;
        Ok(report)
    }

    /// Concurrency and queue depth over the virtual time of a model run (see [`Timeline`]).
    /// [`Error::NotModelMode`] unless the runtime is in model mode.
    pub fn timeline(&self) -> Result<Timeline, Error> {
        let model = self.inner.model.as_ref().ok_or(Error::NotModelMode)?;
        Ok(model.timeline())
    }

    /// Invokes function `name` synchronously (Lambda's `RequestResponse`) on this thread, under
    /// the same concurrency limits. Never queued and never retried: when no execution slot is
    /// free it fails at once with [`InvokeSyncError::Throttled`]. No record is made; metrics
    /// count the invocation, error or throttle.
    pub fn invoke(&self, name: &str, payload: &P) -> Result<R, InvokeSyncError> {
        match self.lookup(name) {
            Some(f) => self.invoke_shared(&f, payload),
            None if self.was_deleted(name) => {
                Err(InvokeSyncError::FunctionDeleted(name.to_string()))
            }
            None => Err(InvokeSyncError::UnknownFunction(name.to_string())),
        }
    }

    pub(crate) fn invoke_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: &P,
    ) -> Result<R, InvokeSyncError> {
        if self.inner.model.is_some() {
            return Err(InvokeSyncError::ModelMode(f.name.to_string()));
        }
        let (version, id) = {
            let mut st = f.state.lock();
            if st.deleted {
                return Err(InvokeSyncError::FunctionDeleted(f.name.to_string()));
            }
            if st.paused {
                return Err(InvokeSyncError::Paused(f.name.to_string()));
            }
            st.seq += 1;
            (Arc::clone(&st.current), RequestId::new(f.index, st.seq))
        };
        let now = self.inner.clock.now();
        let Some(slots) = self.acquire_slots(f, &version, now) else {
            bump(&f.counters.throttles);
            return Err(InvokeSyncError::Throttled(f.name.to_string()));
        };
        f.counters.attempt_started(0);
        let (result, ended_at) = self.run_handler(
            f, &version, payload, id, now, now, 1, 1, false, None, slots.cold,
        );
        f.counters
            .attempt_finished(crate::clock::duration_nanos(ended_at - now));
        drop(slots);
        result.map_err(|e| {
            bump(&f.counters.errors);
            InvokeSyncError::Function(e)
        })
    }

    /// Takes an execution slot: the function's reserved share (or its counter and the shared
    /// unreserved pool), and the account. `None` is a throttle.
    #[inline]
    pub(crate) fn acquire_slots<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) -> Option<Slots<'a>> {
        if let Some(envs) = &self.inner.environments {
            if envs.refuses(f, f.limiter.in_flight() + 1, now) {
                return None;
            }
        }
        if !f.limiter.try_acquire_raw() {
            return None;
        }
        let pool = if version.config.reserved_concurrency.is_none() {
            if !self.inner.unreserved.try_acquire_raw() {
                f.limiter.release_raw();
                return None;
            }
            Some(&self.inner.unreserved)
        } else {
            None
        };
        // The account check is a safety net: reservations are carved so that the pools alone
        // keep within it, but a lowered limit takes effect while old executions finish.
        if !self.inner.account.try_acquire_raw() {
            if let Some(pool) = pool {
                pool.release_raw();
            }
            f.limiter.release_raw();
            return None;
        }
        let mut slots = Slots {
            function: &f.limiter,
            pool,
            account: &self.inner.account,
            cold: false,
        };
        if let Some(envs) = &self.inner.environments {
            // Dropping `slots` on a refusal gives the slots back.
            slots.cold = envs.claim(f, f.limiter.in_flight(), now)?;
        }
        Some(slots)
    }

    /// Gives back slots kept by [`Slots::detach`].
    pub(crate) fn release_detached(&self, f: &FunctionShared<P, R>, pool: bool) {
        self.inner.account.release_raw();
        if pool {
            self.inner.unreserved.release_raw();
        }
        f.limiter.release_raw();
    }

    /// Runs the handler once under `catch_unwind`, measures it, and applies the timeout.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn run_handler(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        payload: &P,
        request_id: RequestId,
        enqueued_at: Timestamp,
        started_at: Timestamp,
        attempt: u32,
        chain_depth: u32,
        duplicate: bool,
        cursor: Option<&Cursor>,
        cold_start: bool,
    ) -> (Result<R, FunctionError>, Timestamp) {
        let ctx = Context {
            cursor,
            cold_start,
            runtime: self,
            function: &f.name,
            request_id,
            attempt,
            enqueued_at,
            started_at,
            code_version: version.number,
            chain_depth,
            timeout: version.config.timeout,
            duplicate,
        };
        // Features `tracing` / `metrics`: the attempt's span, entered around the handler.
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let execution = crate::observe::Execution::start(
            &f.name,
            request_id,
            attempt,
            version.number,
            duplicate,
            started_at - enqueued_at,
        );
        // A panicking handler is a function error, not a dead worker: the slots are released
        // by their guard and the event goes on to its retry or record.
        let result = catch_unwind(AssertUnwindSafe(|| version.handler.handle(payload, &ctx)))
            .unwrap_or_else(|panic| Err(FunctionError::from_panic(panic)));
        let ended_at = self.inner.clock.now();
        let duration = ended_at - started_at;
        let result = if duration > version.config.timeout {
            Err(FunctionError::timeout(version.config.timeout))
        } else {
            result
        };
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        execution.finish(duration, &result);
        (result, ended_at)
    }

    // ----- outcomes -----------------------------------------------------------------------

    /// Ends an event at `at`: one record, one count, one delivery. `in_hand` says whether a
    /// worker had taken it from the queue.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        condition: Condition,
        response: Option<Result<R, FunctionError>>,
        in_hand: bool,
        at: Timestamp,
    ) {
        if let Some(model) = &self.inner.model {
            model.note_end(at);
        }
        if event.is_duplicate() {
            // However it ends (run, purged, aged out, deleted), a duplicate delivery makes no
            // record: its event already has one.
            if in_hand {
                f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
            }
            bump(&f.counters.duplicates_finished);
            self.release_outstanding();
            return;
        }
        f.counters.outcome(condition);
        if in_hand {
            f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
        }
        self.trace(
            f,
            event.request_id(),
            at,
            TraceKind::Ended {
                condition,
                approximate_invoke_count: event.attempts(),
            },
        );
        // The common case, a success nobody listens for, needs no record: skip building one.
        if condition.is_failure()
            || self.inner.observer.is_some()
            || version.config.on_success.is_some()
        {
            let record = record_of(f, event, condition, response, at);
            self.deliver(f, version, record);
        }
        self.release_outstanding();
    }

    /// Ends a success inside a worker batch: as [`finish`](Self::finish), but its counts go to
    /// the batch's tally (the caller flushes it, and releases `outstanding`, after the batch).
    pub(crate) fn finish_success_tallied(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        response: R,
        at: Timestamp,
        tally: &mut Tally,
    ) {
        tally.successes += 1;
        self.trace(
            f,
            event.request_id(),
            at,
            TraceKind::Ended {
                condition: Condition::Success,
                approximate_invoke_count: event.attempts(),
            },
        );
        if self.inner.observer.is_some() || version.config.on_success.is_some() {
            let record = record_of(f, event, Condition::Success, Some(Ok(response)), at);
            self.deliver(f, version, record);
        }
    }

    /// Queues a duplicate delivery of `event` (which just succeeded): same id, same invoke
    /// count, a copy of the payload.
    pub(crate) fn inject_duplicate(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        event: &QueuedEvent<P>,
        clone: fn(&P) -> P,
        now: Timestamp,
    ) {
        let mut copy = QueuedEvent::new(
            event.request_id(),
            clone(event.payload()),
            event.enqueued_at(),
        );
        copy.set_attempts(event.attempts().saturating_sub(1));
        copy.set_chain_depth(event.chain_depth());
        copy.mark_duplicate();
        // Traced first, so that no worker's "started" line can come before it.
        self.trace(f, event.request_id(), now, TraceKind::DuplicateInjected);
        let mut st = f.state.lock();
        if st.deleted {
            return;
        }
        st.queue.push_unbounded(copy);
        bump(&f.counters.duplicates);
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        let schedule = {
            let runnable = !st.paused;
            st.token.claim(runnable)
        };
        drop(st);
        if schedule {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
    }

    /// Whether a success makes no work after its handler: no observer, no tracer, no
    /// observability feature (a destination is checked per function).
    #[inline]
    pub(crate) fn is_quiet(&self) -> bool {
        self.inner.observer.is_none()
            && self.inner.tracer.is_none()
            && !cfg!(any(feature = "tracing", feature = "metrics"))
    }

    /// Reports one step of an event's life to the tracer, if there is one, and to the
    /// `tracing` and `metrics` features when they are on.
    #[inline]
    pub(crate) fn trace(
        &self,
        f: &FunctionShared<P, R>,
        request_id: RequestId,
        at: Timestamp,
        kind: TraceKind<'_>,
    ) {
        let event = TraceEvent {
            request_id,
            function: &f.name,
            at,
            kind,
        };
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        crate::observe::on_trace(&f.name, &event);
        if let Some(tracer) = &self.inner.tracer {
            let _ = catch_unwind(AssertUnwindSafe(|| tracer(&event)));
        }
    }

    fn release_outstanding(&self) {
        self.release_outstanding_n(1);
    }

    /// `n` events ended.
    pub(crate) fn release_outstanding_n(&self, n: u64) {
        // Last, so that a waiter woken by `wait_idle` finds every record delivered.
        if n > 0
            && self.inner.outstanding.fetch_sub(n, Ordering::SeqCst) == n
            && self.inner.idle_waiters.load(Ordering::SeqCst) > 0
        {
            let _guard = self.inner.idle_lock.lock();
            self.inner.idle_cv.notify_all();
        }
    }

    fn deliver(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        record: InvocationRecord<P, R>,
    ) {
        if let Some(observer) = &self.inner.observer {
            let _ = catch_unwind(AssertUnwindSafe(|| observer(&record)));
        }
        let failure = record.condition.is_failure();
        let destination = if failure {
            &version.config.on_failure
        } else {
            &version.config.on_success
        };
        let (request_id, at) = (record.request_id, record.timestamp);
        let undelivered = match destination {
            None => failure.then_some(record),
            Some(Destination::Closure(c)) => match catch_unwind(AssertUnwindSafe(|| c(&record))) {
                Ok(()) => None,
                Err(_) => Some(record),
            },
            // try_send: a full bounded channel must not block the worker; it is a failed
            // delivery like a disconnected one.
            Some(Destination::Channel(tx)) => tx.try_send(record).err().map(|e| e.into_inner()),
            Some(Destination::Function { name, map }) => {
                match catch_unwind(AssertUnwindSafe(|| map(&record))) {
                    Ok(payload) => self
                        .invoke_async_at_depth(name, payload, record.chain_depth + 1, None)
                        .err()
                        .map(|_| record),
                    Err(_) => Some(record),
                }
            }
        };
        if let Some(d) = destination {
            let kind = TraceKind::DestinationDelivery {
                on_failure: failure,
                function: d.function_name(),
                delivered: undelivered.is_none(),
            };
            self.trace(f, request_id, at, kind);
        }
        if let Some(record) = undelivered {
            if destination.is_some() {
                bump(&f.counters.delivery_failures);
            }
            if self.inner.keep_dead_letters {
                self.inner.dead_letters.lock().push(record);
            }
        }
    }

    /// Takes the runtime's own dead-letter queue: failure records that had no on-failure
    /// destination, and any record (success or failure) whose destination could not take it.
    /// Nothing fails silently.
    pub fn drain_dead_letters(&self) -> Vec<InvocationRecord<P, R>> {
        std::mem::take(&mut *self.inner.dead_letters.lock())
    }

    /// Events accepted and not yet ended (queued, delayed, held or running), over all
    /// functions.
    pub fn outstanding(&self) -> u64 {
        self.inner.outstanding.load(Ordering::SeqCst)
    }

    /// Blocks until every accepted event has ended ([`outstanding`](Self::outstanding) is 0).
    /// Events held by a paused function, or delayed under a manual clock nobody advances,
    /// keep it waiting: use [`wait_idle_timeout`](Self::wait_idle_timeout) then.
    pub fn wait_idle(&self) {
        self.wait_idle_inner(None);
    }

    /// Like [`wait_idle`](Self::wait_idle), for at most `timeout` of real time. Returns whether
    /// the runtime became idle.
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        self.wait_idle_inner(Some(timeout))
    }

    fn wait_idle_inner(&self, timeout: Option<Duration>) -> bool {
        let inner = &self.inner;
        if inner.outstanding.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        inner.idle_waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = inner.idle_lock.lock();
        let mut idle = true;
        while inner.outstanding.load(Ordering::SeqCst) > 0 {
            match deadline {
                None => inner.idle_cv.wait(&mut guard),
                Some(d) => {
                    if inner.idle_cv.wait_until(&mut guard, d).timed_out() {
                        idle = inner.outstanding.load(Ordering::SeqCst) == 0;
                        break;
                    }
                }
            }
        }
        drop(guard);
        inner.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }

    // ----- timers ---------------------------------------------------------------------------

    /// Asks for `f` to be looked at when `due` comes. Never called with `f`'s lock held (the
    /// lock order is timers, then a function).
    pub(crate) fn arm_timer(&self, f: &Arc<FunctionShared<P, R>>, due: Timestamp) {
        let earlier = {
            let mut timers = self.inner.timers.lock();
            timers.seq += 1;
            let seq = timers.seq;
            timers.heap.push(TimerEntry {
                due,
                seq,
                function: Arc::clone(f),
            });
            let earlier = due.as_nanos() < self.inner.next_timer.load(Ordering::SeqCst);
            if earlier {
                self.inner
                    .next_timer
                    .store(due.as_nanos(), Ordering::SeqCst);
            }
            earlier
        };
        // A parked worker waits for the old earliest timer; nudge it to re-read.
        if earlier && self.inner.parked.load(Ordering::SeqCst) > 0 {
            let _ = self.inner.run_tx.send(Task::Tick);
        }
    }

    /// Fires every timer due at `now`. Cheap when none is: one atomic load.
    #[inline]
    pub(crate) fn fire_timers(&self, now: Timestamp) {
        if self.inner.next_timer.load(Ordering::SeqCst) > now.as_nanos() {
            return;
        }
        let due: Vec<Arc<FunctionShared<P, R>>> = {
            let mut timers = self.inner.timers.lock();
            let mut due = Vec::new();
            while timers.heap.peek().is_some_and(|t| t.due <= now) {
                if let Some(t) = timers.heap.pop() {
                    due.push(t.function);
                }
            }
            let next = timers.heap.peek().map_or(u64::MAX, |t| t.due.as_nanos());
            self.inner.next_timer.store(next, Ordering::SeqCst);
            due
        };
        for f in due {
            self.on_timer(&f, now);
        }
    }

    /// A timer of `f` came due: promote its due retries; if it is paused, end the held events
    /// that aged out and arm the next expiry.
    fn on_timer(&self, f: &Arc<FunctionShared<P, R>>, now: Timestamp) {
        let mut st = f.state.lock();
        if st.deleted {
            return;
        }
        st.queue.promote_due(now);
        if st.paused {
            let version = Arc::clone(&st.current);
            let retry = &version.config.retry;
            let expired = st
                .queue
                .remove_where(|e| retry.is_expired(e.enqueued_at(), now));
            f.counters
                .in_hand
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            let next = st
                .queue
                .oldest_enqueued_at()
                .map(|t| t + retry.maximum_event_age());
            drop(st);
            let aged_out = !expired.is_empty();
            for e in expired {
                self.finish(f, &version, e, Condition::EventAgeExceeded, None, true, now);
            }
            if let Some(next) = next {
                self.arm_timer(f, next);
            }
            if let Some(model) = self.inner.model.as_ref().filter(|_| aged_out) {
                model.observe(
                    now,
                    self.inner.account.in_flight() as u64,
                    self.outstanding(),
                );
            }
        } else {
            let runnable = st.queue.ready_len() > 0;
            if st.token.claim(runnable) {
                drop(st);
                let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
            }
        }
    }

    /// The earliest live timers, skipping (and dropping) stale ones: `(any, unheld)`, where
    /// `any` may belong to a paused function (a held event's age deadline) and `unheld` is the
    /// earliest that does not. `any <= unheld` whenever both exist.
    pub(crate) fn next_wake(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let mut timers = self.inner.timers.lock();
        let mut set_aside = Vec::new();
        let (mut any, mut unheld) = (None, None);
        while let Some(top) = timers.heap.peek() {
            let due = top.due;
            let (deleted, paused, next_due, empty) = {
                let st = top.function.state.lock();
                (
                    st.deleted,
                    st.paused,
                    st.queue.next_due(),
                    st.queue.is_empty(),
                )
            };
            // A timer is live if a delayed event is due by then; a paused function's timer if it
            // holds any event (finding its exact oldest would cost a scan per timer: a stale
            // one only stops time once for nothing).
            let live = !deleted
                && if paused {
                    !empty
                } else {
                    next_due.is_some_and(|d| d <= due)
                };
            if !live {
                timers.heap.pop();
                continue;
            }
            any.get_or_insert(due);
            if paused {
                if let Some(t) = timers.heap.pop() {
                    set_aside.push(t);
                }
                continue;
            }
            unheld = Some(due);
            break;
        }
        timers.heap.extend(set_aside);
        let next = timers.heap.peek().map_or(u64::MAX, |t| t.due.as_nanos());
        self.inner.next_timer.store(next, Ordering::SeqCst);
        (any, unheld)
    }

    // ----- operator controls ----------------------------------------------------------------

    /// Holds function `name`'s events: none run or throttle until [`resume`](Self::resume).
    /// Held events still age: one that reaches the maximum event age ends as
    /// `EventAgeExceeded`. New invokes are accepted and held too. An execution already running
    /// finishes; the rest of a worker's batch (see [`run_worker`](Self::run_worker)) goes back
    /// to the queue, held.
    ///
    /// Pause, [`update_code`](Self::update_code), resume is the seed's "fix the code while the
    /// events wait" workflow (in 2018 done by setting reserved concurrency to 0).
    pub fn pause(&self, name: &str) -> Result<(), Error> {
        let f = self.require(name)?;
        let expiry = {
            let mut st = f.state.lock();
            st.paused = true;
            f.epoch.fetch_add(1, Ordering::SeqCst);
            let age = st.current.config.retry.maximum_event_age();
            st.queue.oldest_enqueued_at().map(|t| t + age)
        };
        if let Some(t) = expiry {
            self.arm_timer(&f, t);
        }
        Ok(())
    }

    /// Lets a paused function's events run again, on whatever code is current.
    pub fn resume(&self, name: &str) -> Result<(), Error> {
        let f = self.require(name)?;
        let now = self.now();
        let mut st = f.state.lock();
        st.paused = false;
        st.queue.promote_due(now);
        let runnable = st.queue.ready_len() > 0;
        if st.token.claim(runnable) {
            drop(st);
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(&f)));
        }
        Ok(())
    }

    /// Whether function `name` is paused.
    pub fn is_paused(&self, name: &str) -> Result<bool, Error> {
        Ok(self.require(name)?.state.lock().paused)
    }

    /// Replaces function `name`'s code. Queued events, and retries of events that failed on
    /// the old code, run the new code; executions already running finish on the old one.
    /// Returns the new code version (the first is 1).
    pub fn update_code<F>(&self, name: &str, handler: F) -> Result<u64, Error>
    where
        F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
    {
        self.update_handler(name, handler)
    }

    /// [`update_code`](Self::update_code) with a [`Handler`] value.
    pub fn update_handler(&self, name: &str, handler: impl Handler<P, R>) -> Result<u64, Error> {
        let f = self.require(name)?;
        let mut st = f.state.lock();
        f.epoch.fetch_add(1, Ordering::SeqCst);
        f.recent_ns.store(u64::MAX, Ordering::Relaxed);
        let number = st.current.number + 1;
        st.current = Arc::new(Version {
            handler: Arc::new(handler),
            number,
            config: st.current.config.clone(),
        });
        Ok(number)
    }

    /// A copy of function `name`'s settings.
    pub fn config(&self, name: &str) -> Result<FunctionConfig<P, R>, Error> {
        Ok(self.require(name)?.state.lock().current.config.clone())
    }

    /// Changes function `name`'s settings: `edit` gets a copy, which is checked like a
    /// registration (ranges, destinations, reserved concurrency) and then applied whole, or not
    /// at all. Events already queued keep their place and run under the new settings. `edit`
    /// runs with no lock held; of two concurrent updates of one function, the last applied
    /// wins.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<()> = Runtime::new();
    /// rt.register(Function::new("f", |_: &(), _ctx| Ok(()))).unwrap();
    /// rt.update_config("f", |c| c.reserved_concurrency = Some(0)).unwrap(); // throttle to 0
    /// assert!(rt.update_config("f", |c| c.reserved_concurrency = Some(5000)).is_err());
    /// assert_eq!(rt.config("f").unwrap().reserved_concurrency, Some(0));
    /// ```
    pub fn update_config(
        &self,
        name: &str,
        edit: impl FnOnce(&mut FunctionConfig<P, R>),
    ) -> Result<(), Error> {
        // `edit` is the caller's code: run it on a copy with no lock held, so it may call the
        // runtime, and so it stalls nobody.
        let f = self.require(name)?;
        let mut config = f.state.lock().current.config.clone();
        edit(&mut config);
        config.validate(name)?;
        self.check_cost(&config)?;
        let mut reg = self.inner.registry.write();
        if !reg.is_live(&f) {
            return Err(Error::UnknownFunction(name.to_string()));
        }
        let mut st = f.state.lock();
        self.check_destinations(&reg, name, &config)?;
        let old = st.current.config.reserved_concurrency.unwrap_or(0);
        let new = config.reserved_concurrency.unwrap_or(0);
        self.check_reservation(&reg, name, new, old)?;
        st.queue.set_capacity(config.queue_capacity)?;
        reg.reserved_sum = reg.reserved_sum - old + new;
        self.inner
            .unreserved
            .set_limit((reg.account_limit - reg.reserved_sum) as usize);
        f.limiter.set_limit(
            config
                .reserved_concurrency
                .map_or(usize::MAX, |n| n as usize),
        );
        let rearm = st.paused && config.retry != st.current.config.retry;
        f.epoch.fetch_add(1, Ordering::SeqCst);
        st.current = Arc::new(Version {
            handler: Arc::clone(&st.current.handler),
            number: st.current.number,
            config,
        });
        let expiry = if rearm {
            let age = st.current.config.retry.maximum_event_age();
            st.queue.oldest_enqueued_at().map(|t| t + age)
        } else {
            None
        };
        let wake = {
            let runnable = !st.paused && st.queue.ready_len() > 0;
            st.token.claim(runnable)
        };
        drop(st);
        drop(reg);
        if wake {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(&f)));
        }
        if let Some(t) = expiry {
            self.arm_timer(&f, t);
        }
        Ok(())
    }

    /// Sets function `name`'s reserved concurrency (`None` returns it to the unreserved pool).
    /// Shorthand for [`update_config`](Self::update_config).
    pub fn set_reserved_concurrency(&self, name: &str, n: Option<u32>) -> Result<(), Error> {
        self.update_config(name, |c| c.reserved_concurrency = n)
    }

    /// Changes the account concurrency limit. It must cover every reservation plus the
    /// unreserved floor. Executions already running finish; new ones wait for room.
    pub fn set_account_concurrency(&self, n: u32) -> Result<(), Error> {
        let mut reg = self.inner.registry.write();
        if n > 1_000_000 {
            return Err(Error::InvalidConfig {
                field: "account_concurrency",
                value: n.to_string(),
                accepted: "1 to 1,000,000 (Lambda's default: 1,000)",
            });
        }
        let minimum = reg.reserved_sum + self.inner.unreserved_floor;
        if n < minimum.max(1) {
            return Err(Error::AccountConcurrencyTooLow {
                requested: n,
                reserved: reg.reserved_sum,
                unreserved_floor: self.inner.unreserved_floor,
                minimum: minimum.max(1),
            });
        }
        reg.account_limit = n;
        self.inner.account.set_limit(n as usize);
        self.inner
            .unreserved
            .set_limit((n - reg.reserved_sum) as usize);
        Ok(())
    }

    /// The account concurrency limit.
    pub fn account_concurrency(&self) -> u32 {
        self.inner.registry.read().account_limit
    }

    /// Removes every event waiting in function `name`'s queue (ready, delayed or held). Each
    /// ends as `Purged`, with a record sent to the on-failure destination (or the dead
    /// letters). Returns how many were purged. Events a worker has already taken in a batch
    /// (see [`run_worker`](Self::run_worker)) are in flight, not waiting, and run. Lambda
    /// offers no such call.
    pub fn purge(&self, name: &str) -> Result<usize, Error> {
        self.remove_queued_where(name, |_| true)
    }

    /// Removes the waiting event `request_id` from function `name`'s queue; it ends as
    /// `Purged`. Returns whether it was waiting there.
    pub fn remove_queued(&self, name: &str, request_id: RequestId) -> Result<bool, Error> {
        let (removed, _) = self.purge_where(name, |e| e.request_id() == request_id)?;
        Ok(removed > 0)
    }

    /// Removes the waiting events of function `name` for which `pred` is true; each ends as
    /// `Purged`. Returns how many (injected duplicate deliveries go too, without a record and
    /// uncounted). `pred` runs under the function's lock: it must not call the runtime (that
    /// would deadlock) and should be quick.
    pub fn remove_queued_where(
        &self,
        name: &str,
        pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> Result<usize, Error> {
        Ok(self.purge_where(name, pred)?.1)
    }

    /// Removes matching waiting events; returns (all removed, those that made a record).
    fn purge_where(
        &self,
        name: &str,
        pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> Result<(usize, usize), Error> {
        let f = self.require(name)?;
        let (removed, version) = {
            let mut st = f.state.lock();
            let removed = st.queue.remove_where(pred);
            // In hand until each is recorded, so the books balance meanwhile.
            f.counters
                .in_hand
                .fetch_add(removed.len() as u64, Ordering::Relaxed);
            (removed, Arc::clone(&st.current))
        };
        let total = removed.len();
        let recorded = removed.iter().filter(|e| !e.is_duplicate()).count();
        let now = self.now();
        for e in removed {
            self.finish(&f, &version, e, Condition::Purged, None, true, now);
        }
        Ok((total, recorded))
    }

    /// Edits the payload of waiting event `request_id` in function `name`'s queue. Returns
    /// whether it was waiting there. `edit` runs under the function's lock: it must not call
    /// the runtime (that would deadlock) and should be quick.
    pub fn edit_queued(
        &self,
        name: &str,
        request_id: RequestId,
        edit: impl FnOnce(&mut P),
    ) -> Result<bool, Error> {
        Ok(self
            .require(name)?
            .state
            .lock()
            .queue
            .edit(request_id, edit))
    }

    /// A view of function `name`'s waiting events: ready ones in order, then delayed ones by
    /// due time. While the function is paused every event shows as held.
    pub fn queue_snapshot(&self, name: &str) -> Result<Vec<EventInfo>, Error> {
        let f = self.require(name)?;
        let st = f.state.lock();
        let mut events = st.queue.snapshot();
        if st.paused {
            for e in &mut events {
                e.state = EventState::Held;
            }
        }
        Ok(events)
    }

    /// Reads function `name`'s queue, payloads included, under its lock: keep `read` short,
    /// and do not call the runtime from it (that would deadlock).
    pub fn inspect_queue<T>(
        &self,
        name: &str,
        read: impl FnOnce(&InvocationQueue<P>) -> T,
    ) -> Result<T, Error> {
        Ok(read(&self.require(name)?.state.lock().queue))
    }

    /// Deletes function `name`. Its waiting events end as `FunctionDeleted` (records to its
    /// on-failure destination, or the dead letters); executions already running finish, and a
    /// retry they would need ends as `FunctionDeleted` too. Later invokes are refused. The name
    /// can be registered again. Returns how many waiting events were discarded.
    pub fn delete(&self, name: &str) -> Result<usize, Error> {
        let f = {
            let mut reg = self.inner.registry.write();
            let f = reg
                .by_name
                .remove(name)
                .ok_or_else(|| Error::UnknownFunction(name.to_string()))?;
            reg.deleted.insert(Arc::clone(&f.name));
            let reserved = f
                .state
                .lock()
                .current
                .config
                .reserved_concurrency
                .unwrap_or(0);
            reg.reserved_sum -= reserved;
            self.inner
                .unreserved
                .set_limit((reg.account_limit - reg.reserved_sum) as usize);
            f
        };
        let (removed, version) = {
            let mut st = f.state.lock();
            st.deleted = true;
            f.epoch.fetch_add(1, Ordering::SeqCst);
            let version = Arc::clone(&st.current);
            // Drop the handler (once running executions finish): a handler that captured a
            // FunctionHandle would otherwise keep the runtime alive in a reference cycle.
            st.current = Arc::new(Version {
                handler: Arc::new(deleted_handler::<P, R>),
                number: version.number,
                config: version.config.clone(),
            });
            let removed = st.queue.purge();
            f.counters
                .in_hand
                .fetch_add(removed.len() as u64, Ordering::Relaxed);
            (removed, version)
        };
        let n = removed.iter().filter(|e| !e.is_duplicate()).count();
        let now = self.now();
        for e in removed {
            self.finish(&f, &version, e, Condition::FunctionDeleted, None, true, now);
        }
        Ok(n)
    }

    // ----- metrics --------------------------------------------------------------------------

    fn snapshot_function(&self, f: &FunctionShared<P, R>) -> FunctionMetrics {
        let mut m = FunctionMetrics {
            name: f.name.to_string(),
            ..FunctionMetrics::default()
        };
        {
            let st = f.state.lock();
            m.events_received = st.received;
            m.queue_ready = st.queue.ready_len() as u64;
            m.queue_delayed = st.queue.delayed_len() as u64;
            m.paused = st.paused;
        }
        f.counters.fill(&mut m);
        m.concurrent_executions = f.limiter.in_flight() as u64;
        m.peak_concurrent_executions = f.limiter.peak() as u64;
        m
    }

    /// A snapshot of function `name`'s metrics.
    pub fn function_metrics(&self, name: &str) -> Result<FunctionMetrics, Error> {
        let f = self.require(name)?;
        Ok(self.snapshot_function(&f))
    }

    /// A snapshot of every function's metrics and the runtime's totals. Costs one short lock
    /// per function.
    pub fn metrics(&self) -> RuntimeMetrics {
        let all: Vec<_> = {
            let reg = self.inner.registry.read();
            reg.all
                .iter()
                .map(|f| (Arc::clone(f), reg.is_live(f)))
                .collect()
        };
        let mut total = FunctionMetrics {
            name: "*".to_string(),
            ..FunctionMetrics::default()
        };
        let mut functions = Vec::new();
        for (f, live) in all {
            let m = self.snapshot_function(&f);
            total.add(&m);
            if live {
                functions.push(m);
            }
        }
        total.concurrent_executions = self.inner.account.in_flight() as u64;
        total.peak_concurrent_executions = self.inner.account.peak() as u64;
        RuntimeMetrics { functions, total }
    }

    pub(crate) fn zero_concurrency(&self) -> ZeroConcurrency {
        self.inner.zero_concurrency
    }

    pub(crate) fn recursion_limit(&self) -> Option<u32> {
        self.inner.recursion_limit
    }
}
