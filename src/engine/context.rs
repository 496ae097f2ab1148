//! [`Context`]: what a handler knows about the attempt it runs, and its way to invoke others;
//! [`TestContext`]: a context without a runtime, for unit tests of one handler.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use super::admission::Invoker;
use super::dispatch::{Attempt, Call};
use super::executor::ExecutionLine;
use crate::engine::{FunctionHandle, FunctionShared, Runtime};
use crate::parts::clock::Timestamp;
use crate::parts::error::InvokeError;
use crate::parts::queue::Lineage;
use crate::parts::record::RequestId;

/// What a handler is told about the attempt it runs, and a handle to invoke other functions.
///
/// Invocations made through the context are one hop further down the invocation chain than
/// the event being handled, so the runtime's recursion guard can stop runaway chains.
///
/// # Examples
///
/// Multi-level fan-out: `parent` invokes `child` three times per event.
///
/// ```
/// use event_invoke::{Function, ManualClock, Runtime};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// let children = Arc::new(AtomicU32::new(0));
/// let seen = children.clone();
/// rt.register(Function::new("child", move |_: &u32, ctx| {
///     assert_eq!(ctx.chain_depth(), 2);
///     seen.fetch_add(1, Ordering::Relaxed);
///     Ok(())
/// }))
/// .unwrap();
/// rt.register(Function::new("parent", |n: &u32, ctx| {
///     assert_eq!(ctx.function_name(), "parent");
///     assert_eq!(ctx.approximate_invoke_count(), 1);
///     for i in 0..*n {
///         ctx.invoke_async("child", i).map_err(|e| e.to_string()).unwrap();
///     }
///     Ok(())
/// }))
/// .unwrap();
/// rt.invoke_async("parent", 3).unwrap();
/// rt.run_until_idle();
/// assert_eq!(children.load(Ordering::Relaxed), 3);
/// ```
pub struct Context<'a, P, R> {
    caller: Caller<'a, P, R>,
    function: &'a str,
    request_id: RequestId,
    attempt: u32,
    enqueued_at: Timestamp,
    started_at: Timestamp,
    code_version: u64,
    chain_depth: u32,
    /// The functions the event's chain reached (kept by the loop guard only).
    lineage: Option<&'a Arc<Lineage>>,
    timeout: Duration,
    duplicate: bool,
    cold_start: bool,
    /// Virtual time (model mode): where this execution is on its time line.
    line: Option<&'a dyn ExecutionLine>,
    /// The function this execution invoked by name first, resolved once: a handler that
    /// invokes one function many times looks its name up once.
    invoked: OnceLock<Arc<FunctionShared<P, R>>>,
}

/// Where a handler's invokes go: the runtime running it (with the function's shared name, for
/// the chain of the events it invokes), or a [`TestContext`]'s list.
enum Caller<'a, P, R> {
    Runtime(&'a Runtime<P, R>, &'a Arc<str>),
    Detached(&'a TestContext<P>),
}

impl<'a, P: Send + 'static, R: Send + 'static> Context<'a, P, R> {
    /// The context of `attempt` of the event `call` describes, run by `rt`.
    pub(crate) fn for_attempt(
        rt: &'a Runtime<P, R>,
        attempt: &'a Attempt<'_, P, R>,
        call: &Call<'a>,
        line: Option<&'a dyn ExecutionLine>,
    ) -> Self {
        Context {
            caller: Caller::Runtime(rt, &attempt.f.name),
            function: &attempt.f.name,
            request_id: call.request_id,
            attempt: attempt.number,
            enqueued_at: call.enqueued_at,
            started_at: attempt.started,
            code_version: attempt.version.number,
            chain_depth: call.chain_depth,
            lineage: call.lineage,
            timeout: attempt.version.config.timeout,
            duplicate: call.duplicate,
            cold_start: attempt.cold,
            line,
            invoked: OnceLock::new(),
        }
    }

    /// The event's id, the same on every attempt.
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// The function being run.
    pub fn function_name(&self) -> &str {
        self.function
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, ... (Lambda's
    /// `approximateInvokeCount`).
    pub fn approximate_invoke_count(&self) -> u32 {
        self.attempt
    }

    /// Whether this run is an injected duplicate delivery of an event that already succeeded
    /// (see [`FaultInjection`](crate::FaultInjection)). Real Lambda does not tell: a handler
    /// should not need to look.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The event's age when this attempt started (Lambda's `AsyncEventAge`). On the
    /// [`SystemClock`](crate::SystemClock) on Linux and Android, up to about one scheduler
    /// tick more than the time the event waited (its docs say why).
    pub fn event_age(&self) -> Duration {
        self.started_at - self.enqueued_at
    }

    /// When the event was accepted (on the [`SystemClock`](crate::SystemClock), to the
    /// kernel's tick: see its docs).
    pub fn enqueued_at(&self) -> Timestamp {
        self.enqueued_at
    }

    /// When this attempt started, on the runtime's clock.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
    }

    /// The runtime clock's time now (a [`TestContext`]'s: the attempt's start).
    pub fn now(&self) -> Timestamp {
        match self.caller {
            Caller::Runtime(rt, _) => rt.now(),
            Caller::Detached(_) => self.started_at,
        }
    }

    /// The code version running (1 at registration, one more per
    /// [`Runtime::update_code`](crate::Runtime::update_code)).
    pub fn code_version(&self) -> u64 {
        self.code_version
    }

    /// The event's position in its invocation chain: 1 when invoked from outside a handler.
    pub fn chain_depth(&self) -> u32 {
        self.chain_depth
    }

    /// Time left before the timeout, on the runtime's clock (in model mode, on this
    /// execution's virtual time line: its calls and [`spend`](Self::spend)s so far; a cold
    /// start does not count against the timeout).
    pub fn remaining_time(&self) -> Duration {
        match self.line {
            Some(line) => line.remaining(),
            None => self.timeout.saturating_sub(self.now() - self.started_at),
        }
    }

    /// Whether this execution runs in a new execution environment (Lambda's cold start). Known
    /// only when environments are modelled (model mode, or a
    /// [`scaling_rate`](crate::RuntimeBuilder::scaling_rate)); otherwise `false`.
    pub fn is_cold_start(&self) -> bool {
        self.cold_start
    }

    /// Model mode: declares that the handler works for `d` at this point, so the calls it
    /// makes after return later and the execution ends later (see
    /// [`CostModel::declared`](crate::CostModel::declared)). Outside model mode it does
    /// nothing: the handler's real time is measured instead, so the same handler runs in both.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "model")] {
    /// use event_invoke::{CostModel, Function, ModelOptions, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u64> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
    /// let f = Function::new("resize", |megabytes: &u64, ctx| {
    ///     ctx.spend(Duration::from_millis(40 * megabytes));
    ///     Ok(())
    /// });
    /// rt.register(f.cost(CostModel::declared())).unwrap();
    /// rt.invoke_async("resize", 25).unwrap();
    /// rt.run_until_idle();
    /// assert_eq!(rt.model_report().unwrap().makespan, Duration::from_secs(1));
    /// # }
    /// ```
    pub fn spend(&self, d: Duration) {
        if let Some(line) = self.line {
            line.spend(d);
        }
    }

    /// The caller's side of an invoke on a virtual time line: when the call returns (`None`
    /// in real time), or the refusal with the payload handed back.
    fn charge_call(
        &self,
        name: &str,
        payload: P,
    ) -> Result<(Option<Timestamp>, P), InvokeError<P>> {
        let Some(line) = self.line else {
            return Ok((None, payload));
        };
        match line.call() {
            Some(at) => Ok((Some(at), payload)),
            #[cfg(feature = "model")]
            None => Err(InvokeError::CallerTimedOut {
                caller: self.function.to_string(),
                function: name.to_string(),
                timeout: self.timeout,
                payload,
            }),
            #[cfg(not(feature = "model"))]
            None => {
                let _ = name;
                Ok((None, payload))
            }
        }
    }

    /// The runtime running this handler; `None` for a [`TestContext`]'s.
    pub fn runtime(&self) -> Option<&'a Runtime<P, R>> {
        match self.caller {
            Caller::Runtime(rt, _) => Some(rt),
            Caller::Detached(_) => None,
        }
    }

    /// Invokes function `name` asynchronously, one hop further down this event's chain. The
    /// error converts into a [`FunctionError`](crate::FunctionError) with `?`, so a refused
    /// child invoke fails (and retries) the parent attempt. A [`TestContext`]'s context keeps
    /// the invoke for the test to read. A handler served on AWS Lambda (`run_on_lambda`,
    /// cargo feature `lambda`) has no runtime to invoke through: the call is refused with
    /// [`InvokeError::UnavailableOnLambda`], the payload handed back.
    ///
    /// In model mode the call costs this execution the invoke latency, and the event is
    /// accepted when the call returns (see [`CostModel`](crate::CostModel)).
    pub fn invoke_async(&self, name: &str, payload: P) -> Result<RequestId, InvokeError<P>> {
        let (rt, me) = match self.caller {
            Caller::Runtime(rt, me) => (rt, me),
            Caller::Detached(test) => return test.record(name, payload),
        };
        let (at, payload) = self.charge_call(name, payload)?;
        let from = Some(self.invoker(me));
        match self.invoked.get() {
            Some(f) if *f.name == *name => match rt.enqueue_at(f, payload, from, at) {
                // Deleted since: the name may belong to a new function now.
                Err(InvokeError::FunctionDeleted { payload, .. }) => {
                    rt.invoke_async_from(name, payload, from, at)
                }
                done => done,
            },
            Some(_) => rt.invoke_async_from(name, payload, from, at),
            None => match rt.lookup(name) {
                Some(f) => {
                    let done = rt.enqueue_at(&f, payload, from, at);
                    let _ = self.invoked.set(f);
                    done
                }
                None => rt.invoke_async_from(name, payload, from, at),
            },
        }
    }

    /// This event, in function `me`, as the invoker of the events its handler invokes.
    fn invoker<'s>(&'s self, me: &'s Arc<str>) -> Invoker<'s> {
        Invoker {
            function: me,
            depth: self.chain_depth,
            lineage: self.lineage,
        }
    }

    /// Invokes a pre-resolved function asynchronously, one hop further down this event's chain.
    pub fn invoke_async_handle(
        &self,
        function: &FunctionHandle<P, R>,
        payload: P,
    ) -> Result<RequestId, InvokeError<P>> {
        let me = match self.caller {
            Caller::Runtime(_, me) => me,
            Caller::Detached(test) => return test.record(function.name(), payload),
        };
        // The handle's own runtime: a handle may belong to another runtime than this one.
        let (at, payload) = self.charge_call(function.name(), payload)?;
        function.enqueue_from(payload, Some(self.invoker(me)), at)
    }
}

impl<P, R> fmt::Debug for Context<'_, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("request_id", &self.request_id)
            .field("function", &self.function)
            .field("attempt", &self.attempt)
            .field("code_version", &self.code_version)
            .field("chain_depth", &self.chain_depth)
            .finish_non_exhaustive()
    }
}

/// A [`Context`] without a runtime, so that one handler can be called in a plain unit test:
/// set the attempt you want to test, call the handler with [`context`](Self::context), and
/// read the invokes it made with [`take_invocations`](Self::take_invocations).
///
/// Its clock stands still at the attempt's start ([`started_at`](Self::started_at)), and
/// [`Context::runtime`] is `None`: a handler that needs the runtime itself cannot be called
/// this way. Nothing runs the invoked functions, and nothing retries: that is the runtime's
/// job (or your own loop's: see the crate docs, "Build your own loop"). To
/// test a handler against retries, duplicates and event age, use a [`Runtime`] with a
/// [`ManualClock`](crate::ManualClock), or [`IdempotencyCheck`](crate::IdempotencyCheck).
///
/// # Examples
///
/// ```
/// use event_invoke::{Context, Function, FunctionError, TestContext};
///
/// let fan_out = Function::new("fan-out", |n: &u32, ctx: &Context<'_, u32, ()>| {
///     if ctx.approximate_invoke_count() > 2 {
///         return Err(FunctionError::new("GiveUp", "too many attempts"));
///     }
///     for i in 0..*n {
///         ctx.invoke_async("worker", i)?;
///     }
///     Ok(())
/// });
///
/// let test = TestContext::new("fan-out");
/// fan_out.call(&3, &test.context()).unwrap();
/// assert_eq!(
///     test.take_invocations(),
///     vec![("worker".to_string(), 0), ("worker".to_string(), 1), ("worker".to_string(), 2)]
/// );
///
/// let third = TestContext::new("fan-out").approximate_invoke_count(3);
/// let err = fan_out.call(&3, &third.context()).unwrap_err();
/// assert_eq!(err.error_type(), "GiveUp");
/// assert!(third.take_invocations().is_empty());
/// ```
pub struct TestContext<P> {
    function: String,
    request_id: RequestId,
    attempt: u32,
    chain_depth: u32,
    enqueued_at: Timestamp,
    event_age: Duration,
    timeout: Duration,
    code_version: u64,
    duplicate: bool,
    cold_start: bool,
    invocations: Mutex<Vec<(String, P)>>,
    next_id: AtomicU64,
    /// Served on AWS Lambda (`run_on_lambda`): invokes are refused instead of kept.
    on_lambda: bool,
}

impl<P> TestContext<P> {
    /// A first attempt (approximate invoke count 1) of request 1 of function `function`, at
    /// the top of its chain, on code version 1, with Lambda's default 3 s timeout.
    pub fn new(function: impl Into<String>) -> Self {
        TestContext {
            function: function.into(),
            request_id: RequestId::from_u64(1),
            attempt: 1,
            chain_depth: 1,
            enqueued_at: Timestamp::ZERO,
            event_age: Duration::ZERO,
            timeout: super::DEFAULT_TIMEOUT,
            code_version: 1,
            duplicate: false,
            cold_start: false,
            invocations: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            on_lambda: false,
        }
    }

    /// The request id the handler sees.
    pub fn request_id(mut self, id: RequestId) -> Self {
        self.request_id = id;
        self
    }

    /// Which attempt this is (1 for the first run, 3 for Lambda's last retry).
    pub fn approximate_invoke_count(mut self, n: u32) -> Self {
        self.attempt = n;
        self
    }

    /// The event's position in its invocation chain.
    pub fn chain_depth(mut self, depth: u32) -> Self {
        self.chain_depth = depth;
        self
    }

    /// How long the event waited before this attempt: the attempt starts `age` after the
    /// event's [`enqueued_at`](Self::enqueued_at).
    pub fn event_age(mut self, age: Duration) -> Self {
        self.event_age = age;
        self
    }

    /// When the event was accepted, on a clock of your own (default [`Timestamp::ZERO`]).
    pub fn enqueued_at(mut self, at: Timestamp) -> Self {
        self.enqueued_at = at;
        self
    }

    /// When this attempt starts, on a clock of your own: sets the event's age to the time
    /// since [`enqueued_at`](Self::enqueued_at) (zero if `at` is earlier).
    pub fn started_at(mut self, at: Timestamp) -> Self {
        self.event_age = at.saturating_duration_since(self.enqueued_at);
        self
    }

    /// The handler's timeout (what [`Context::remaining_time`] starts from).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The code version the handler sees.
    pub fn code_version(mut self, version: u64) -> Self {
        self.code_version = version;
        self
    }

    /// Whether the attempt is an injected duplicate delivery.
    pub fn duplicate(mut self, duplicate: bool) -> Self {
        self.duplicate = duplicate;
        self
    }

    /// Whether the attempt runs in a new execution environment.
    pub fn cold_start(mut self, cold: bool) -> Self {
        self.cold_start = cold;
        self
    }

    /// The context to pass to the handler. Its clock stands still at the attempt's start.
    pub fn context<R>(&self) -> Context<'_, P, R> {
        let started_at = self.enqueued_at + self.event_age;
        Context {
            caller: Caller::Detached(self),
            function: &self.function,
            request_id: self.request_id,
            attempt: self.attempt,
            enqueued_at: self.enqueued_at,
            started_at,
            code_version: self.code_version,
            chain_depth: self.chain_depth,
            lineage: None,
            timeout: self.timeout,
            duplicate: self.duplicate,
            cold_start: self.cold_start,
            line: None,
            invoked: OnceLock::new(),
        }
    }

    /// The context to pass to a handler served on AWS Lambda (feature `lambda`): as
    /// [`context`](Self::context), with [`Context::remaining_time`] read from `line` (the time
    /// left before Lambda's deadline).
    #[cfg(feature = "lambda")]
    pub(crate) fn context_on<'s, R>(&'s self, line: &'s dyn ExecutionLine) -> Context<'s, P, R> {
        let mut context = self.context();
        context.line = Some(line);
        context
    }

    /// The invokes the handler made through its context so far, in order, as (function name,
    /// payload); the list is emptied.
    pub fn take_invocations(&self) -> Vec<(String, P)> {
        std::mem::take(&mut *self.invocations.lock())
    }

    /// The context of a handler served on AWS Lambda: its invokes are refused with
    /// [`InvokeError::UnavailableOnLambda`] (nothing would run them there).
    #[cfg(feature = "lambda")]
    pub(crate) fn on_lambda(mut self) -> Self {
        self.on_lambda = true;
        self
    }

    fn record(&self, name: &str, payload: P) -> Result<RequestId, InvokeError<P>> {
        if self.on_lambda {
            return Err(InvokeError::UnavailableOnLambda {
                function: name.to_string(),
                payload,
            });
        }
        self.invocations.lock().push((name.to_string(), payload));
        // Ids apart from the event's own, so that a handler keying on them sees new ones.
        Ok(RequestId::from_u64(
            u64::MAX - self.next_id.fetch_add(1, Ordering::Relaxed),
        ))
    }
}

impl<P> fmt::Debug for TestContext<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestContext")
            .field("function", &self.function)
            .field("request_id", &self.request_id)
            .field("approximate_invoke_count", &self.attempt)
            .field("chain_depth", &self.chain_depth)
            .field("invocations", &self.invocations.lock().len())
            .finish_non_exhaustive()
    }
}
