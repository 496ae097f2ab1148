//! The engine: a [`Runtime`](crate::Runtime) made of modules with one job each.
//!
//! The path of one event, file by file: [`admission`] (an event joins its function's queue)
//! -> the function's [`InvocationQueue`](crate::InvocationQueue) -> [`dispatch`] (a worker
//! takes a ready event and its [`slots`], and runs the handler) -> [`outcome`] (the record
//! and its destinations, or a retry) or [`timers`] (a retry or backoff due later) -> back to
//! the queue. [`driver`] runs workers and the single-threaded loop; [`operator`] has the
//! operator's calls; [`registry`] the functions by name.

mod admission;
mod builder;
mod context;
mod dispatch;
mod driver;
mod environments;
mod function;
mod handle;
mod metrics;
mod operator;
mod outcome;
mod registry;
mod runtime;
mod slots;
mod state;
mod timers;

pub use builder::RuntimeBuilder;
pub use context::Context;
pub use dispatch::{Dispatched, StepOutcome};
pub use driver::{StopSignal, Workers};
pub use function::{
    Function, FunctionConfig, Handler, ZeroConcurrency, DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT,
};
pub use handle::FunctionHandle;
pub use metrics::{FunctionMetrics, RuntimeMetrics};
pub use runtime::{
    Runtime, DEFAULT_ACCOUNT_CONCURRENCY, DEFAULT_RECURSION_LIMIT, DEFAULT_UNRESERVED_FLOOR,
};

pub(crate) use environments::Environments;
pub(crate) use metrics::{bump, Counters, Tally};
pub(crate) use registry::Registry;
pub(crate) use slots::{OwnedSlots, Slots};
pub(crate) use state::{CloneFn, FnState, FunctionShared, Inner, Observer, Task, Tracer, Version};
pub(crate) use timers::Timers;
