//! Cargo features `tracing` and `metrics`: every step the engine reports through
//! [`Runtime::trace`](crate::Runtime), and every handler execution, turned into `tracing` spans
//! and events and into Lambda's CloudWatch metrics through the `metrics` facade.
//!
//! The runtime calls in here from a few `cfg`-gated lines; with both features off this module
//! does not exist and the engine's code is unchanged. What is reported, at which level and
//! under which name, is documented in the crate docs ("Observing it").
//!
//! The subscriber and the recorder are the user's code, called on a worker in the middle of
//! an event's life: a panic in them is contained here, at the boundary, so that it costs that
//! one report and never the event, its record, or the rest of the worker's batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::observe::{TraceEvent, TraceKind};
use crate::parts::record::{Condition, FunctionError, RequestId};

/// Where this crate's `tracing` spans and events go.
#[cfg(feature = "tracing")]
const TARGET: &str = "event_invoke";

/// One `tracing` event with the fields every step has, then the step's own.
#[cfg(feature = "tracing")]
macro_rules! step {
    ($level:ident, $event:expr, $($rest:tt)+) => {
        ::tracing::event!(
            target: TARGET,
            ::tracing::Level::$level,
            request_id = %$event.request_id,
            function = $event.function,
            at = ?$event.at.as_duration(),
            $($rest)+
        )
    };
}

/// A duration in milliseconds, Lambda's unit for `Duration` and `AsyncEventAge`.
#[cfg(feature = "metrics")]
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reports one step of an event's life: a `tracing` event and the metrics it moves. A panic
/// in the subscriber or the recorder loses that report only.
#[inline]
pub(crate) fn on_trace(name: &Arc<str>, event: &TraceEvent<'_>) {
    #[cfg(feature = "tracing")]
    contained(|| trace_step(event));
    #[cfg(feature = "metrics")]
    contained(|| count_step(name, event));
    #[cfg(not(feature = "metrics"))]
    let _ = name;
}

/// Runs a call into the user's subscriber or recorder; a panic in it is dropped here (the
/// panic hook has already reported it).
#[inline]
fn contained<T>(report: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(report)).ok()
}

/// Traces one step at the level its kind warrants (see the crate docs, "Observing it").
#[cfg(feature = "tracing")]
fn trace_step(event: &TraceEvent<'_>) {
    match event.kind {
        TraceKind::Accepted { chain_depth } => step!(DEBUG, event, chain_depth, "event accepted"),
        TraceKind::Started {
            attempt,
            duplicate,
            code_version,
        } => step!(
            DEBUG,
            event,
            attempt,
            code_version,
            duplicate,
            "attempt started"
        ),
        TraceKind::Succeeded { attempt, duplicate } => {
            step!(DEBUG, event, attempt, duplicate, "attempt succeeded")
        }
        TraceKind::Failed {
            attempt,
            duplicate,
            error,
        } => step!(
            INFO,
            event,
            attempt,
            duplicate,
            error_type = error.error_type(),
            error_message = error.message(),
            "attempt failed"
        ),
        TraceKind::RetryScheduled { due } => {
            step!(INFO, event, delay = ?(due - event.at), "retry scheduled")
        }
        TraceKind::Throttled {
            due,
            injected: false,
        } => step!(INFO, event, backoff = ?(due - event.at), "throttled"),
        TraceKind::Throttled {
            due,
            injected: true,
        } => step!(INFO, event, backoff = ?(due - event.at), "injected system error"),
        TraceKind::DuplicateInjected => step!(INFO, event, "duplicate delivery injected"),
        TraceKind::Ended {
            condition,
            approximate_invoke_count,
        } => trace_end(event, condition, approximate_invoke_count),
        TraceKind::DestinationDelivery {
            on_failure,
            function,
            delivered,
        } => trace_delivery(event, on_failure, function, delivered),
    }
}

/// Traces an event's end: a success at `DEBUG`, any other condition as a drop at `WARN`.
#[cfg(feature = "tracing")]
fn trace_end(event: &TraceEvent<'_>, condition: Condition, approximate_invoke_count: u32) {
    if condition == Condition::Success {
        step!(DEBUG, event, approximate_invoke_count, "event succeeded")
    } else {
        step!(
            WARN,
            event,
            condition = condition.as_str(),
            approximate_invoke_count,
            "event dropped"
        )
    }
}

/// Traces a record handed to a destination: at `DEBUG` when taken, at `WARN` when refused.
#[cfg(feature = "tracing")]
fn trace_delivery(
    event: &TraceEvent<'_>,
    on_failure: bool,
    function: Option<&str>,
    delivered: bool,
) {
    let destination = if on_failure { "OnFailure" } else { "OnSuccess" };
    if delivered {
        step!(
            DEBUG,
            event,
            destination,
            destination_function = function,
            "record delivered"
        )
    } else {
        step!(
            WARN,
            event,
            destination,
            destination_function = function,
            "destination delivery failed"
        )
    }
}

#[cfg(feature = "metrics")]
fn count_step(name: &Arc<str>, event: &TraceEvent<'_>) {
    let function = || Arc::clone(name);
    match event.kind {
        TraceKind::Accepted { .. } => {
            ::metrics::counter!("AsyncEventsReceived", "function_name" => function()).increment(1);
        }
        TraceKind::Throttled {
            injected: false, ..
        } => {
            ::metrics::counter!("Throttles", "function_name" => function()).increment(1);
        }
        TraceKind::Ended { condition, .. } if condition.is_failure() => {
            ::metrics::counter!(
                "AsyncEventsDropped",
                "function_name" => function(),
                "condition" => condition.as_str()
            )
            .increment(1);
            if condition == Condition::RecursionLimit {
                ::metrics::counter!("RecursiveInvocationsDropped", "function_name" => function())
                    .increment(1);
            }
        }
        TraceKind::DestinationDelivery {
            delivered: false, ..
        } => {
            ::metrics::counter!("DestinationDeliveryFailures", "function_name" => function())
                .increment(1);
        }
        _ => {}
    }
}

/// One handler execution, from just before the handler runs to just after: the `attempt` span
/// (entered meanwhile) and the `ConcurrentExecutions` gauge (decremented when it ends).
///
/// Each call into the subscriber or the recorder is contained on its own, so a panic in one
/// loses that report only: a span that failed to start is `None` (the handler runs all the
/// same, outside it), and a gauge that failed to go up does not come down. (A subscriber that
/// panics when a span is left *and again* when it is closed still aborts: the second panic
/// comes while the first unwinds, inside `tracing`'s own guard.)
pub(crate) struct Execution {
    #[cfg(feature = "tracing")]
    span: Option<::tracing::span::EnteredSpan>,
    #[cfg(feature = "metrics")]
    function: Arc<str>,
    #[cfg(feature = "metrics")]
    concurrent: Option<::metrics::Gauge>,
}

impl Execution {
    /// Enters the span and counts the execution; `age` is the event's age now.
    #[inline]
    pub(crate) fn start(
        name: &Arc<str>,
        request_id: RequestId,
        attempt: u32,
        code_version: u64,
        duplicate: bool,
        age: Duration,
    ) -> Self {
        #[cfg(not(feature = "tracing"))]
        let _ = (request_id, attempt, code_version, duplicate);
        #[cfg(not(feature = "metrics"))]
        let _ = age;
        #[cfg(feature = "metrics")]
        let concurrent = contained(|| {
            let function = || Arc::clone(name);
            ::metrics::counter!("Invocations", "function_name" => function()).increment(1);
            ::metrics::histogram!("AsyncEventAge", "function_name" => function())
                .record(millis(age));
            let gauge = ::metrics::gauge!("ConcurrentExecutions", "function_name" => function());
            gauge.increment(1.0);
            gauge
        });
        Execution {
            #[cfg(feature = "tracing")]
            span: contained(|| {
                ::tracing::info_span!(
                    target: TARGET,
                    "attempt",
                    request_id = %request_id,
                    function = &**name,
                    attempt,
                    code_version,
                    duplicate,
                    error_type = ::tracing::field::Empty,
                )
                .entered()
            }),
            #[cfg(feature = "metrics")]
            function: Arc::clone(name),
            #[cfg(feature = "metrics")]
            concurrent,
        }
    }

    /// Records how the execution went (after the timeout check), then leaves the span.
    #[inline]
    pub(crate) fn finish<R>(self, duration: Duration, result: &Result<R, FunctionError>) {
        #[cfg(not(feature = "metrics"))]
        let _ = duration;
        #[cfg(feature = "tracing")]
        if let (Some(span), Err(error)) = (&self.span, result) {
            contained(|| span.record("error_type", error.error_type()));
        }
        #[cfg(feature = "metrics")]
        contained(|| {
            ::metrics::histogram!("Duration", "function_name" => Arc::clone(&self.function))
                .record(millis(duration));
            if result.is_err() {
                ::metrics::counter!("Errors", "function_name" => Arc::clone(&self.function))
                    .increment(1);
            }
        });
        #[cfg(not(any(feature = "tracing", feature = "metrics")))]
        let _ = result;
        // Dropped here: the gauge comes down and the span is left and closed (see `Drop`).
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        if let Some(gauge) = self.concurrent.take() {
            contained(move || gauge.decrement(1.0));
        }
        #[cfg(feature = "tracing")]
        if let Some(span) = self.span.take() {
            contained(move || drop(span));
        }
    }
}

/// Registers the unit and a description of every metric this crate reports with the installed
/// `metrics` recorder, so that exporters can show them (Prometheus `# HELP` lines, for
/// instance). Call it once after installing the recorder; the metrics work without it.
///
/// `Duration` and `AsyncEventAge` are histograms in milliseconds, Lambda's unit for them.
///
/// # Examples
///
/// ```
/// // With a recorder installed (`metrics::set_global_recorder`, or an exporter's installer):
/// event_invoke::describe_metrics();
/// ```
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe_metrics() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "AsyncEventsReceived",
        Unit::Count,
        "Events accepted onto a function's queue by invoke_async."
    );
    describe_counter!(
        "AsyncEventsDropped",
        Unit::Count,
        "Events that ended without success, by condition."
    );
    describe_counter!(
        "Invocations",
        Unit::Count,
        "Handler executions started (retries, duplicate deliveries and synchronous invokes included)."
    );
    describe_counter!(
        "Errors",
        Unit::Count,
        "Handler executions that failed: an error returned, a panic, or a timeout."
    );
    describe_counter!(
        "Throttles",
        Unit::Count,
        "Attempts that found no free execution slot and were put back with backoff."
    );
    describe_counter!(
        "DestinationDeliveryFailures",
        Unit::Count,
        "Records that their on-success or on-failure destination refused."
    );
    describe_counter!(
        "RecursiveInvocationsDropped",
        Unit::Count,
        "Events dropped because their invocation chain passed the recursion limit."
    );
    describe_histogram!(
        "Duration",
        Unit::Milliseconds,
        "How long each handler execution took."
    );
    describe_histogram!(
        "AsyncEventAge",
        Unit::Milliseconds,
        "How long each event had waited since it was accepted, at each execution's start."
    );
    describe_gauge!(
        "ConcurrentExecutions",
        Unit::Count,
        "Handler executions running now."
    );
}
