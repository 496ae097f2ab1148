//! [`Runtime`]: the facade over the engine's modules, cheap to clone.

use std::fmt;
use std::sync::Arc;

use crate::parts::clock::{Clock, SystemClock, Timestamp};

use super::{Inner, RuntimeBuilder, ZeroConcurrency};

/// Lambda's default account concurrency.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// Lambda's unreserved floor: concurrency that reservations may never take.
pub const DEFAULT_UNRESERVED_FLOOR: u32 = 100;
/// Lambda's recursion limit: the longest invocation chain allowed.
pub const DEFAULT_RECURSION_LIMIT: u32 = 16;

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
            .field("functions", &self.inner.registry.read().len())
            .field("now", &self.inner.clock.now())
            .finish_non_exhaustive()
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
            #[cfg(feature = "model")]
            virtual_time: None,
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

    pub(crate) fn zero_concurrency(&self) -> ZeroConcurrency {
        self.inner.settings.zero_concurrency
    }

    pub(crate) fn recursion_limit(&self) -> Option<u32> {
        self.inner.settings.recursion_limit
    }
}
