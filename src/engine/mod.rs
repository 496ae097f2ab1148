//! The engine: a [`Runtime`](crate::Runtime) made of modules with one job each.
//!
//! The path of one event, file by file: [`admission`] (an event joins its function's queue)
//! -> the function's [`InvocationQueue`](crate::InvocationQueue) -> [`dispatch`] (a worker
//! takes a ready event and its [`slots`], and runs the handler) -> [`outcome`] (the record
//! and its destinations, or a retry) or [`timers`] (a retry or backoff due later) -> back to
//! the queue. [`executor`] is the seam between the engine and time: real threads, or
//! virtual time (model mode). [`driver`] runs workers and the single-threaded loop; [`operator`] has the
//! operator's calls; [`registry`] the functions by name.

mod admission;
mod builder;
mod by_name;
mod context;
mod dispatch;
mod driver;
mod environments;
mod executor;
mod faults;
mod function;
mod handle;
mod metrics;
mod operator;
mod outcome;
mod quiet;
mod registry;
mod runtime;
mod slots;
mod state;
mod timers;
#[cfg(feature = "model")]
mod virtual_run;

pub use builder::RuntimeBuilder;
pub use context::{Context, TestContext};
pub use dispatch::{Dispatched, StepOutcome};
pub use driver::{StopSignal, Workers};
pub use function::{
    handler, ConcurrencyLimitExceeded, Function, FunctionConfig, Handler, ZeroConcurrency,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT,
};
pub use handle::FunctionHandle;
pub use metrics::{FunctionMetrics, RuntimeMetrics};
pub use quiet::quiet_handler_panics;
pub use runtime::{
    RecursionGuard, Runtime, DEFAULT_ACCOUNT_CONCURRENCY, DEFAULT_RECURSION_LIMIT,
    DEFAULT_UNRESERVED_FLOOR,
};

pub(crate) use environments::Environments;
#[cfg(all(feature = "lambda", not(feature = "model")))]
pub(crate) use executor::ExecutionLine;
#[cfg(feature = "model")]
pub(crate) use executor::{
    Arrival, BackedOff, Completion, Due, ExecutionLine, Started, ThrottleCause, VirtualTime,
};
pub(crate) use faults::FaultSeam;
pub(crate) use metrics::{bump, Counters, Tally};
pub(crate) use registry::Registry;
#[cfg(feature = "model")]
pub(crate) use slots::OwnedSlots;
pub(crate) use slots::Slots;
pub(crate) use state::{
    FnState, FunctionShared, Hooks, IdleWait, Inner, Observer, OwnLine, Settings, Tracer, Version,
};
pub(crate) use timers::Timers;
