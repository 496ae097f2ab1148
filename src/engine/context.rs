//! [`Context`]: what a handler knows about the attempt it runs, and its way to invoke others.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{FunctionHandle, Runtime};
use crate::model::Cursor;
use crate::parts::clock::Timestamp;
use crate::parts::error::InvokeError;
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
    pub(crate) runtime: &'a Runtime<P, R>,
    pub(crate) function: &'a Arc<str>,
    pub(crate) request_id: RequestId,
    pub(crate) attempt: u32,
    pub(crate) enqueued_at: Timestamp,
    pub(crate) started_at: Timestamp,
    pub(crate) code_version: u64,
    pub(crate) chain_depth: u32,
    pub(crate) timeout: Duration,
    pub(crate) duplicate: bool,
    /// Model mode: where this execution is in virtual time.
    pub(crate) cursor: Option<&'a Cursor>,
    pub(crate) cold_start: bool,
}

impl<'a, P: Send + 'static, R: Send + 'static> Context<'a, P, R> {
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

    /// The event's age when this attempt started (Lambda's `AsyncEventAge`).
    pub fn event_age(&self) -> Duration {
        self.started_at - self.enqueued_at
    }

    /// When the event was accepted.
    pub fn enqueued_at(&self) -> Timestamp {
        self.enqueued_at
    }

    /// When this attempt started, on the runtime's clock.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
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
        match self.cursor {
            Some(cursor) => cursor.remaining(),
            None => self
                .timeout
                .saturating_sub(self.runtime.now() - self.started_at),
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
    /// ```
    pub fn spend(&self, d: Duration) {
        if let Some(cursor) = self.cursor {
            cursor.spend(d);
        }
    }

    /// The caller's side of a model-mode invoke: when the call returns (`Ok(None)` outside
    /// model mode), or the refusal with the payload handed back.
    pub(crate) fn charge_call(
        &self,
        name: &str,
        payload: P,
    ) -> Result<(Option<Timestamp>, P), InvokeError<P>> {
        let Some(cursor) = self.cursor else {
            return Ok((None, payload));
        };
        match cursor.call() {
            Some(at) => Ok((Some(at), payload)),
            None => Err(InvokeError::CallerTimedOut {
                caller: self.function.to_string(),
                function: name.to_string(),
                timeout: self.timeout,
                payload,
            }),
        }
    }

    /// The runtime running this handler.
    pub fn runtime(&self) -> &Runtime<P, R> {
        self.runtime
    }

    /// Invokes function `name` asynchronously, one hop further down this event's chain. The
    /// error converts into a [`FunctionError`](crate::FunctionError) with `?`, so a refused
    /// child invoke fails (and retries) the parent attempt.
    ///
    /// In model mode the call costs this execution the invoke latency, and the event is
    /// accepted when the call returns (see [`CostModel`](crate::CostModel)).
    pub fn invoke_async(&self, name: &str, payload: P) -> Result<RequestId, InvokeError<P>> {
        let (at, payload) = self.charge_call(name, payload)?;
        self.runtime
            .invoke_async_at_depth(name, payload, self.chain_depth + 1, at)
    }

    /// Invokes a pre-resolved function asynchronously, one hop further down this event's chain.
    pub fn invoke_async_handle(
        &self,
        function: &FunctionHandle<P, R>,
        payload: P,
    ) -> Result<RequestId, InvokeError<P>> {
        // The handle's own runtime: a handle may belong to another runtime than this one.
        let (at, payload) = self.charge_call(function.name(), payload)?;
        function.enqueue_at_depth(payload, self.chain_depth + 1, at)
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
