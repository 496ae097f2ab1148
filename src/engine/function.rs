//! [`Function`]: a name, a handler and its configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Context;
#[cfg(feature = "model")]
use crate::parts::cost::CostModel;
use crate::parts::error::Error;
use crate::parts::record::{Destination, FunctionError};
use crate::parts::retry::RetryPolicy;

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The default admission limit of a function's invocation queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1_000_000;

/// The code of a function: called with each event's payload and a [`Context`].
///
/// Any `Fn(&P, &Context<P, R>) -> Result<R, FunctionError>` closure that is `Send + Sync` is a
/// handler; implement the trait on your own type when the handler carries state or needs a
/// name. One handler value is shared by every worker thread, so it may run on several threads
/// at once: keep shared state behind a lock or an atomic.
///
/// # Examples
///
/// ```
/// use event_invoke::{Context, Function, FunctionError, Handler, Runtime};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// struct Sum(AtomicU64);
///
/// impl Handler<u64, ()> for Sum {
///     fn handle(&self, n: &u64, _ctx: &Context<'_, u64, ()>) -> Result<(), FunctionError> {
///         self.0.fetch_add(*n, Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let rt: Runtime<u64> = Runtime::new();
/// rt.register(Function::from_handler("sum", Sum(AtomicU64::new(0)))).unwrap();
/// ```
pub trait Handler<P, R>: Send + Sync + 'static {
    /// Runs one attempt of one event.
    fn handle(&self, payload: &P, ctx: &Context<'_, P, R>) -> Result<R, FunctionError>;
}

impl<P, R, F> Handler<P, R> for F
where
    F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
{
    #[inline]
    fn handle(&self, payload: &P, ctx: &Context<'_, P, R>) -> Result<R, FunctionError> {
        self(payload, ctx)
    }
}

/// What happens to events of a function whose reserved concurrency is 0.
///
/// # Examples
///
/// ```
/// use event_invoke::{Runtime, ZeroConcurrency};
///
/// // The 2018 behaviour: events wait, throttled, until concurrency is raised or they age out.
/// let rt: Runtime<()> = Runtime::builder().zero_concurrency(ZeroConcurrency::Throttle).build().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroConcurrency {
    /// Today's Lambda (since 2021): each event goes straight to on-failure with condition
    /// `ZeroReservedConcurrency`, without retries.
    #[default]
    Discard,
    /// Lambda in 2018: events stay queued as throttled and come back with backoff until
    /// concurrency is raised or their age runs out. This is what made "set concurrency to 0,
    /// fix, raise it again" work; prefer [`Runtime::pause`](crate::Runtime::pause) for that now.
    Throttle,
}

/// What an event meets when its function, the unreserved pool or the account has no execution
/// slot free on real threads: Lambda's error is `TooManyRequestsException` with reason
/// `ReservedFunctionConcurrentInvocationLimitExceeded` or `ConcurrentInvocationLimitExceeded`.
///
/// The worker threads are a local resource, not a Lambda setting: with the default,
/// [`Wait`](Self::Wait), an event whose slots are all taken stays at the front of its queue
/// and its function waits for a slot to be given back, so that starting more workers than
/// there are slots never slows a run nor counts a throttle. [`Throttle`](Self::Throttle) is
/// Lambda's asynchronous poller taken literally: the event goes into throttle backoff (1 s,
/// doubling up to 5 minutes) and counts in the `Throttles` metric.
///
/// Model mode always throttles: there the poller is what is modelled. So does reserved
/// concurrency 0 under [`ZeroConcurrency::Throttle`], a concurrency limit of 0, a new
/// environment refused by the [`ScalingRate`](crate::ScalingRate), and an injected system
/// error: no slot given back would end those.
///
/// # Examples
///
/// ```
/// use event_invoke::{ConcurrencyLimitExceeded, Runtime};
///
/// // Lambda's throttle backoff on real threads, as in model mode.
/// let rt: Runtime<()> = Runtime::builder()
///     .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
///     .build()
///     .unwrap();
/// # drop(rt);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrencyLimitExceeded {
    /// The event waits at the front of its queue for a slot; a worker meanwhile runs other
    /// functions or parks until a slot is given back. Not counted as a throttle.
    #[default]
    Wait,
    /// The event is throttled: back to its queue with Lambda's throttle backoff, counted in
    /// `Throttles`.
    Throttle,
}

/// A function's settings (everything but its name and code).
///
/// Change a registered function's settings with
/// [`Runtime::update_config`](crate::Runtime::update_config), which checks them like
/// registration does. New settings may be added in minor releases, so it cannot be written as
/// a struct literal outside this crate: start from [`FunctionConfig::default`] (or a
/// function's [`config`](crate::Runtime::config)) and set fields.
#[non_exhaustive]
pub struct FunctionConfig<P, R> {
    /// Reserved concurrency: `None` draws from the account's unreserved pool; `Some(0)` stops
    /// the function (see [`ZeroConcurrency`]).
    pub reserved_concurrency: Option<u32>,
    /// The handler timeout (default 3 s).
    pub timeout: Duration,
    /// Retries and maximum event age.
    pub retry: RetryPolicy,
    /// Where success records go.
    pub on_success: Option<Destination<P, R>>,
    /// Where failure records go; without one they are kept as dead letters.
    pub on_failure: Option<Destination<P, R>>,
    /// The invocation queue's admission limit.
    pub queue_capacity: usize,
    /// What an execution costs in model mode (see [`CostModel`]); `None` there: no time but
    /// the invoke latency. Only a runtime in model mode accepts one.
    #[cfg(feature = "model")]
    pub cost: Option<CostModel>,
}

impl<P, R> FunctionConfig<P, R> {
    pub(crate) fn validate(&self, name: &str) -> Result<(), Error> {
        validate_name(name)?;
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(24 * 3600) {
            return Err(Error::InvalidConfig {
                field: "timeout",
                value: format!("{:?}", self.timeout),
                accepted: "greater than 0 and at most 24 h (Lambda: 1 s to 900 s)",
            });
        }
        if self.queue_capacity == 0 {
            return Err(Error::InvalidConfig {
                field: "queue_capacity",
                value: "0".into(),
                accepted: "at least 1",
            });
        }
        self.retry.to_builder().build()?;
        #[cfg(feature = "model")]
        if let Some(cost) = &self.cost {
            cost.validate()?;
        }
        Ok(())
    }
}

impl<P, R> Default for FunctionConfig<P, R> {
    fn default() -> Self {
        FunctionConfig {
            reserved_concurrency: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::lambda_default(),
            on_success: None,
            on_failure: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            #[cfg(feature = "model")]
            cost: None,
        }
    }
}

impl<P, R> Clone for FunctionConfig<P, R> {
    fn clone(&self) -> Self {
        FunctionConfig {
            reserved_concurrency: self.reserved_concurrency,
            timeout: self.timeout,
            retry: self.retry.clone(),
            on_success: self.on_success.clone(),
            on_failure: self.on_failure.clone(),
            queue_capacity: self.queue_capacity,
            #[cfg(feature = "model")]
            cost: self.cost.clone(),
        }
    }
}

impl<P, R> fmt::Debug for FunctionConfig<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FunctionConfig");
        d.field("reserved_concurrency", &self.reserved_concurrency)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("on_success", &self.on_success)
            .field("on_failure", &self.on_failure)
            .field("queue_capacity", &self.queue_capacity);
        #[cfg(feature = "model")]
        d.field("cost", &self.cost);
        d.finish_non_exhaustive()
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field: "name",
            value: format!("{name:?}"),
            accepted: "1 to 64 characters: letters, digits, '-' and '_' (Lambda's rule)",
        })
    }
}

/// Pins a closure to the handler signature, so that it can be written before it is passed to
/// [`Function::new`] (in a `let`, or returned from a function) and still be a [`Handler`].
///
/// A closure written inside `Function::new(...)` takes its signature from there: its context
/// is a `&Context<'_, P, R>` for *any* lifetime, as a handler needs. A closure written on its
/// own takes its signature from its body instead, with one particular lifetime for its
/// untyped context parameter, and `Function::new` then refuses it with "implementation of
/// `Fn` is not general enough". `handler(|payload, ctx| ...)` gives the closure the handler's
/// signature where it is written; it returns the closure itself, at no cost. Typing the
/// context parameter does the same: `|n: &u32, ctx: &Context<'_, u32, u32>|`.
///
/// # Examples
///
/// ```
/// use event_invoke::{handler, Function, FunctionError, ManualClock, Runtime};
///
/// // Written first, registered later (and twice): the payload and the response are inferred.
/// let double = handler(|n: &u32, ctx| {
///     if ctx.approximate_invoke_count() > 1 {
///         return Err(FunctionError::new("Retried", "not the first attempt"));
///     }
///     Ok(n * 2)
/// });
/// let rt: Runtime<u32, u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(Function::new("double", double.clone())).unwrap();
/// rt.register(Function::new("double-too", double)).unwrap();
/// assert_eq!(rt.invoke("double", &21).unwrap(), 42);
/// ```
///
/// Without it (or a typed context), the same `let` does not compile:
///
/// ```compile_fail
/// use event_invoke::{Function, Runtime};
///
/// let double = |n: &u32, _ctx| Ok(n * 2);
/// let rt: Runtime<u32, u32> = Runtime::builder().build().unwrap();
/// rt.register(Function::new("double", double)).unwrap(); // `Fn` is not general enough
/// ```
#[inline]
pub fn handler<P, R, F>(f: F) -> F
where
    F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError>,
{
    f
}

/// A function to register with a [`Runtime`](crate::Runtime): a name, a [`Handler`] and its
/// settings, set with builder methods. Settings are checked when the function is registered.
///
/// A closure written inside `Function::new(...)` needs no types but its payload's. One
/// written first, in a `let`, needs its context typed as `&Context<'_, P, R>` (or to be
/// wrapped in [`handler`], which does that for you); without either, registering it fails
/// to compile with "implementation of `Fn` is not general enough".
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, RetryPolicy, Runtime};
/// use std::time::Duration;
///
/// let rt: Runtime<String> = Runtime::new();
/// let f = Function::new("resize-image", |key: &String, ctx| {
///     assert!(ctx.approximate_invoke_count() >= 1);
///     let _ = key;
///     Ok(())
/// })
/// .reserved_concurrency(10)
/// .timeout(Duration::from_secs(30))
/// .retry_policy(RetryPolicy::builder().maximum_retry_attempts(1).build().unwrap());
/// let handle = rt.register(f).unwrap();
/// assert_eq!(handle.name(), "resize-image");
/// ```
///
/// A handler defined before the function, in a `let`: type its context, or wrap it in
/// [`handler`].
///
/// ```
/// use event_invoke::{handler, Context, Function, Runtime};
///
/// let typed = |key: &String, ctx: &Context<'_, String, ()>| {
///     println!("attempt {} for {key}", ctx.approximate_invoke_count());
///     Ok(())
/// };
/// let pinned = handler(|key: &String, _ctx| {
///     let _ = key;
///     Ok(())
/// });
/// let rt: Runtime<String> = Runtime::new();
/// rt.register(Function::new("typed", typed)).unwrap();
/// rt.register(Function::new("pinned", pinned)).unwrap();
/// ```
#[must_use = "a function does nothing until it is registered with Runtime::register"]
pub struct Function<P, R> {
    pub(crate) name: String,
    pub(crate) handler: Arc<dyn Handler<P, R>>,
    pub(crate) config: FunctionConfig<P, R>,
}

impl<P: Send + 'static, R: Send + 'static> Function<P, R> {
    /// A function running the closure `handler`, with Lambda's default settings.
    pub fn new<F>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
    {
        Self::from_handler(name, handler)
    }

    /// Calls the handler once with `ctx`, on this thread, as a plain function call: no
    /// runtime, no retry, no timeout, and a panic is not caught. For unit tests of one handler,
    /// with a [`TestContext`](crate::TestContext)'s context.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, TestContext};
    ///
    /// let double = Function::new("double", |n: &u32, _ctx| Ok(n * 2));
    /// assert_eq!(double.call(&21, &TestContext::new("double").context()), Ok(42));
    /// ```
    pub fn call(&self, payload: &P, ctx: &Context<'_, P, R>) -> Result<R, FunctionError> {
        self.handler.handle(payload, ctx)
    }

    /// A function running a [`Handler`] value.
    pub fn from_handler(name: impl Into<String>, handler: impl Handler<P, R>) -> Self {
        Function {
            name: name.into(),
            handler: Arc::new(handler),
            config: FunctionConfig::default(),
        }
    }
}

impl<P, R> Function<P, R> {
    /// Reserves `n` concurrent executions for this function, carved out of the account limit.
    /// 0 stops it from running at all (see [`ZeroConcurrency`]).
    pub fn reserved_concurrency(mut self, n: u32) -> Self {
        self.config.reserved_concurrency = Some(n);
        self
    }

    /// The handler timeout (default 3 s). A handler cannot be stopped mid-run: one that returns
    /// after its timeout has its result replaced by a `Sandbox.Timedout` function error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The retry policy (default [`RetryPolicy::lambda_default`]). It replaces the whole policy,
    /// including what [`maximum_retry_attempts`](Self::maximum_retry_attempts) or
    /// [`maximum_event_age`](Self::maximum_event_age) set before it: call those after.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Shorthand for the retry policy's `maximum_retry_attempts`.
    pub fn maximum_retry_attempts(mut self, n: u32) -> Self {
        self.config.retry = self
            .config
            .retry
            .to_builder()
            .maximum_retry_attempts(n)
            .build_unchecked();
        self
    }

    /// Shorthand for the retry policy's `maximum_event_age`.
    pub fn maximum_event_age(mut self, age: Duration) -> Self {
        self.config.retry = self
            .config
            .retry
            .to_builder()
            .maximum_event_age(age)
            .build_unchecked();
        self
    }

    /// Where success records go.
    pub fn on_success(mut self, destination: Destination<P, R>) -> Self {
        self.config.on_success = Some(destination);
        self
    }

    /// Where failure records go. Without one, failures are kept in the runtime's dead-letter
    /// list.
    pub fn on_failure(mut self, destination: Destination<P, R>) -> Self {
        self.config.on_failure = Some(destination);
        self
    }

    /// The invocation queue's admission limit (default 1,000,000).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity;
        self
    }

    /// What an execution costs in model mode ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)).
    /// A runtime not in model mode refuses a function with a cost model.
    #[cfg(feature = "model")]
    pub fn cost(mut self, cost: CostModel) -> Self {
        self.config.cost = Some(cost);
        self
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings so far.
    pub fn config(&self) -> &FunctionConfig<P, R> {
        &self.config
    }
}

impl<P, R> fmt::Debug for Function<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
