//! Observation: the [`TraceEvent`]s the engine reports at every step of an event's life, and
//! (cargo features `tracing` and `metrics`) their translation into `tracing` spans and events
//! and Lambda's CloudWatch metrics.

#[cfg(any(feature = "tracing", feature = "metrics"))]
mod adapters;
mod trace;

#[cfg(feature = "metrics")]
pub use adapters::describe_metrics;
#[cfg(any(feature = "tracing", feature = "metrics"))]
pub(crate) use adapters::{on_trace, Execution};
pub use trace::{TraceEvent, TraceKind};
