//! [`Runtime`]: the facade over the engine's modules, cheap to clone.

use std::fmt;
use std::sync::Arc;

use crate::parts::clock::{Clock, Timestamp};

use super::{ConcurrencyLimitExceeded, Inner, RuntimeBuilder, ZeroConcurrency};

/// Lambda's default account concurrency.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// Lambda's unreserved floor: concurrency that reservations may never take.
pub const DEFAULT_UNRESERVED_FLOOR: u32 = 100;
/// Lambda's recursion limit: how many times one invocation chain may reach the same function
/// (the default [`RecursionGuard::Loops`]).
pub const DEFAULT_RECURSION_LIMIT: u32 = 16;

/// What the recursion guard counts in an invocation chain before it stops the chain's next
/// event (which then ends as [`Condition::RecursionLimit`](crate::Condition::RecursionLimit),
/// without running). Set with [`RuntimeBuilder::recursion_guard`](crate::RuntimeBuilder::recursion_guard).
///
/// A chain is an event invoked from outside a handler and every event invoked from it, hop by
/// hop, through [`Context::invoke_async`](crate::Context::invoke_async) or a
/// [function destination](crate::Destination::function). Lambda's recursive loop detection
/// stops a *loop*: it counts, along each chain, how many times each function was reached, and
/// stops the event that would reach one function a 17th time. A pipeline of different
/// functions is no loop, however long: Lambda runs it. [`Loops`](Self::Loops), the default,
/// is that rule; [`Hops`](Self::Hops) is a plain limit on a chain's length, whatever
/// functions it passes through.
///
/// Each path of a fan-out counts on its own: siblings do not add to each other's counts.
/// Functions are told apart by name.
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, ManualClock, RecursionGuard, Runtime};
///
/// // Three different functions in a row, then "again" invoking itself for ever.
/// let build = |guard| -> Runtime<u32> {
///     let rt = Runtime::builder().clock(ManualClock::new()).recursion_guard(guard).build().unwrap();
///     for (me, next) in [("a", "b"), ("b", "c"), ("c", "again"), ("again", "again")] {
///         rt.register(Function::new(me, move |n: &u32, ctx| {
///             ctx.invoke_async(next, n + 1)?;
///             Ok(())
///         }))
///         .unwrap();
///     }
///     rt.invoke_async("a", 1).unwrap();
///     rt.run_until_idle();
///     rt
/// };
/// // Lambda's rule: "again" runs twice; its third event is stopped, at depth 6.
/// let rt = build(RecursionGuard::Loops(2));
/// let stopped = rt.drain_dead_letters();
/// assert_eq!((&*stopped[0].function, stopped[0].chain_depth), ("again", 6));
/// // A hop limit stops the chain after two hops, whatever the functions.
/// let rt = build(RecursionGuard::Hops(2));
/// let stopped = rt.drain_dead_letters();
/// assert_eq!((&*stopped[0].function, stopped[0].condition), ("c", Condition::RecursionLimit));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecursionGuard {
    /// Lambda's recursive loop detection (`RecursiveLoop: Terminate`): an event is stopped when
    /// its chain has already reached its function this many times (Lambda: 16). 1 to 10,000.
    Loops(u32),
    /// A plain limit on a chain's length: an event deeper than this many hops is stopped,
    /// whatever functions the chain passed through. 1 to 10,000.
    Hops(u32),
    /// No guard (Lambda's `RecursiveLoop: Allow`): chains run for as long as their handlers
    /// invoke.
    Off,
}

impl Default for RecursionGuard {
    /// Lambda's: [`Loops`](Self::Loops)`(16)`.
    fn default() -> Self {
        RecursionGuard::Loops(DEFAULT_RECURSION_LIMIT)
    }
}

/// The engine: functions, their invocation queues, the account's concurrency, the clock and
/// the metrics. Cheap to clone (an `Arc`); every clone drives the same engine.
///
/// Dropping the last clone drops the events still waiting, without records, like a process
/// that exits: drain it first ([`wait_idle`](Self::wait_idle), [`run_until_idle`](Self::run_until_idle))
/// or [`delete`](Self::delete) its functions to have them recorded. In model mode that takes
/// the executions virtual time has not yet ended too (their payloads and responses are
/// dropped like a waiting event's), and with one of them the panic of a `Drop` of yours that
/// it carries (a response its timeout replaced, dropped at its start): such a panic goes on
/// only once its event has ended, which then never comes.
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
            clock: None,
            account_concurrency: DEFAULT_ACCOUNT_CONCURRENCY,
            unreserved_floor: DEFAULT_UNRESERVED_FLOOR,
            zero_concurrency: ZeroConcurrency::Discard,
            concurrency_limit_exceeded: ConcurrencyLimitExceeded::Wait,
            recursion_guard: RecursionGuard::default(),
            seed: 0,
            keep_dead_letters: true,
            observer: None,
            tracer: None,
            faults: None,
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
        self.inner.clock.as_dyn()
    }

    pub(crate) fn zero_concurrency(&self) -> ZeroConcurrency {
        self.inner.settings.zero_concurrency
    }

    pub(crate) fn recursion_guard(&self) -> RecursionGuard {
        self.inner.settings.recursion_guard
    }
}
