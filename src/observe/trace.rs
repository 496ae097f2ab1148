//! [`TraceEvent`]: one step of an event's life, as the engine reports it.

use std::fmt;

use crate::parts::clock::Timestamp;
use crate::parts::record::{Condition, FunctionError, RequestId};

/// One step in the life of an event, reported to
/// [`RuntimeBuilder::on_trace`](crate::RuntimeBuilder::on_trace): the raw material of an
/// [`OutcomeAudit`](crate::OutcomeAudit) timeline, a log line or a tracing span.
///
/// Its `Display` is one timeline line (time, function, what happened) without the request id,
/// which an [`OutcomeAudit`](crate::OutcomeAudit) timeline already names; prefix
/// `request_id` when logging many requests together.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TraceEvent<'a> {
    /// The event.
    pub request_id: RequestId,
    /// Its function.
    pub function: &'a str,
    /// When it happened, on the runtime's clock. For [`TraceKind::Accepted`] it is the
    /// event's stamp, which on the [`SystemClock`](crate::SystemClock) may read up to about a
    /// scheduler tick earlier (see its docs): a child's acceptance may then read earlier than
    /// its parent's start.
    pub at: Timestamp,
    /// What happened.
    pub kind: TraceKind<'a>,
}

/// What happened to an event; see [`TraceEvent`]. New steps may be reported in minor releases:
/// a `match` needs a `_` arm.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TraceKind<'a> {
    /// `invoke_async` accepted it.
    Accepted {
        /// Its position in the invocation chain.
        chain_depth: u32,
    },
    /// The handler started.
    Started {
        /// The approximate invoke count of this attempt.
        attempt: u32,
        /// Whether this is an injected duplicate delivery.
        duplicate: bool,
        /// The code version running.
        code_version: u64,
    },
    /// The handler finished with a response.
    Succeeded {
        /// The attempt.
        attempt: u32,
        /// Whether this was a duplicate delivery.
        duplicate: bool,
    },
    /// The handler failed (or an injected error replaced its success).
    Failed {
        /// The attempt.
        attempt: u32,
        /// Whether this was a duplicate delivery.
        duplicate: bool,
        /// The error.
        error: &'a FunctionError,
    },
    /// A retry was scheduled.
    RetryScheduled {
        /// When it becomes due.
        due: Timestamp,
    },
    /// No slot was free (or a system error was injected); the event comes back at `due`.
    Throttled {
        /// When it becomes due again.
        due: Timestamp,
        /// Whether the throttle was an injected system error.
        injected: bool,
    },
    /// A duplicate delivery was injected; it will run once more.
    DuplicateInjected,
    /// The event ended.
    Ended {
        /// How.
        condition: Condition,
        /// Handler executions (duplicates excluded).
        approximate_invoke_count: u32,
    },
    /// The event's record was handed to its destination (on-success for a success, on-failure
    /// otherwise), right after [`Ended`](Self::Ended). Reported only when the function has a
    /// destination for the record; a failure with none goes to the dead letters.
    DestinationDelivery {
        /// Whether it was the on-failure destination (else the on-success one).
        on_failure: bool,
        /// The destination function's name; `None` for a closure or a channel.
        function: Option<&'a str>,
        /// Whether the destination took the record. When it did not (a full or closed channel,
        /// a panicking closure, a destination function that refused the invoke), the record
        /// went to the dead letters and counts in
        /// [`FunctionMetrics::destination_delivery_failures`](crate::FunctionMetrics::destination_delivery_failures).
        delivered: bool,
    },
}

impl fmt::Display for TraceEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>12?}  {}  ", self.at.as_duration(), self.function)?;
        match self.kind {
            TraceKind::Accepted { chain_depth } => {
                write!(f, "accepted (chain depth {chain_depth})")
            }
            TraceKind::Started {
                attempt,
                duplicate,
                code_version,
            } => write!(
                f,
                "attempt {attempt} started on code version {code_version}{}",
                duplicate_note(duplicate)
            ),
            TraceKind::Succeeded { attempt, duplicate } => write!(
                f,
                "attempt {attempt} succeeded{}",
                duplicate_note(duplicate)
            ),
            TraceKind::Failed {
                attempt,
                duplicate,
                error,
            } => write!(
                f,
                "attempt {attempt} failed: {error}{}",
                duplicate_note(duplicate)
            ),
            TraceKind::RetryScheduled { due } => {
                write!(f, "retry scheduled for {:?}", due.as_duration())
            }
            TraceKind::Throttled { due, injected } => write!(
                f,
                "{} until {:?}",
                if injected {
                    "injected system error, back off"
                } else {
                    "throttled, back off"
                },
                due.as_duration()
            ),
            TraceKind::DuplicateInjected => write!(f, "duplicate delivery injected"),
            TraceKind::Ended {
                condition,
                approximate_invoke_count,
            } => write!(
                f,
                "ended {condition} after {approximate_invoke_count} execution(s)"
            ),
            TraceKind::DestinationDelivery {
                on_failure,
                function,
                delivered,
            } => write_delivery(f, on_failure, function, delivered),
        }
    }
}

/// What an attempt's line ends with: a mark for a duplicate delivery, nothing otherwise.
fn duplicate_note(duplicate: bool) -> &'static str {
    if duplicate {
        " (duplicate delivery)"
    } else {
        ""
    }
}

/// Writes a delivery's line: which destination, whether it took the record, and its function.
fn write_delivery(
    f: &mut fmt::Formatter<'_>,
    on_failure: bool,
    function: Option<&str>,
    delivered: bool,
) -> fmt::Result {
    let which = if on_failure {
        "on-failure"
    } else {
        "on-success"
    };
    if delivered {
        write!(f, "record delivered to the {which} destination")?;
    } else {
        write!(f, "delivery to the {which} destination failed")?;
    }
    match function {
        Some(name) => write!(f, " (function {name})"),
        None => Ok(()),
    }
}
