//! [`OutcomeAudit`]: every step of every event, for assertions and readable timelines.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::observe::{TraceEvent, TraceKind};
use crate::parts::clock::Timestamp;
use crate::parts::record::{Condition, RequestId};

#[derive(Default)]
struct Log {
    /// Request ids in the order they were accepted.
    accepted: Vec<RequestId>,
    /// Each request's steps as timeline lines, and its endings.
    steps: HashMap<RequestId, Steps>,
}

#[derive(Default)]
struct Steps {
    lines: Vec<String>,
    ended: Vec<(Condition, u32, Timestamp)>,
}

/// Collects every step of every event of a runtime, then asserts on outcomes and prints the
/// timeline of a request when an assertion fails.
///
/// Attach it with [`RuntimeBuilder::on_trace`](crate::RuntimeBuilder::on_trace); clones share
/// one log.
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, FunctionError, ManualClock, OutcomeAudit, Runtime};
///
/// let audit = OutcomeAudit::new();
/// let rt: Runtime<u32> = Runtime::builder()
///     .clock(ManualClock::new())
///     .on_trace(audit.tracer())
///     .build()
///     .unwrap();
/// rt.register(Function::new("f", |n: &u32, ctx| {
///     if *n == 0 && ctx.approximate_invoke_count() < 2 {
///         return Err(FunctionError::new("Zero", "not yet"));
///     }
///     Ok(())
/// }))
/// .unwrap();
/// let zero = rt.invoke_async("f", 0).unwrap();
/// let one = rt.invoke_async("f", 1).unwrap();
/// rt.run_until_idle();
///
/// audit.assert_each_ended_once();
/// audit.assert_ended(zero, Condition::Success, 2);
/// audit.assert_ended(one, Condition::Success, 1);
/// println!("{}", audit.timeline(zero)); // accepted, attempt 1 failed, retry at 60 s, ...
/// assert!(audit.timeline(zero).contains("retry scheduled"));
/// ```
#[derive(Clone, Default)]
pub struct OutcomeAudit {
    log: Arc<Mutex<Log>>,
}

impl OutcomeAudit {
    /// An empty audit.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tracer to pass to [`RuntimeBuilder::on_trace`](crate::RuntimeBuilder::on_trace).
    pub fn tracer(&self) -> impl Fn(&TraceEvent<'_>) + Send + Sync + 'static {
        let log = Arc::clone(&self.log);
        move |event: &TraceEvent<'_>| {
            let mut log = log.lock();
            if let TraceKind::Accepted { .. } = event.kind {
                log.accepted.push(event.request_id);
            }
            let steps = log.steps.entry(event.request_id).or_default();
            steps.lines.push(event.to_string());
            if let TraceKind::Ended {
                condition,
                approximate_invoke_count,
            } = event.kind
            {
                steps
                    .ended
                    .push((condition, approximate_invoke_count, event.at));
            }
        }
    }

    /// Request ids accepted so far, in order.
    pub fn accepted(&self) -> Vec<RequestId> {
        self.log.lock().accepted.clone()
    }

    /// How request `id` ended: `(condition, approximate invoke count)`, once per ending (more
    /// than one would be a bug).
    pub fn endings(&self, id: RequestId) -> Vec<(Condition, u32)> {
        self.log
            .lock()
            .steps
            .get(&id)
            .map(|s| s.ended.iter().map(|(c, n, _)| (*c, *n)).collect())
            .unwrap_or_default()
    }

    /// How many accepted events ended with each condition.
    pub fn count(&self, condition: Condition) -> usize {
        self.log
            .lock()
            .steps
            .values()
            .flat_map(|s| &s.ended)
            .filter(|(c, _, _)| *c == condition)
            .count()
    }

    /// The steps of request `id`, one line each: when, which function, what happened.
    pub fn timeline(&self, id: RequestId) -> String {
        let log = self.log.lock();
        let mut out = format!("timeline of request {id}:\n");
        match log.steps.get(&id) {
            None => out.push_str("  (no step recorded)\n"),
            Some(steps) => {
                for line in &steps.lines {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        out
    }

    /// Panics, with the offenders' timelines, unless every accepted request ended exactly once.
    pub fn assert_each_ended_once(&self) {
        let offenders: Vec<(RequestId, usize)> = {
            let log = self.log.lock();
            log.accepted
                .iter()
                .map(|id| (*id, log.steps.get(id).map_or(0, |s| s.ended.len())))
                .filter(|(_, n)| *n != 1)
                .collect()
        };
        if offenders.is_empty() {
            return;
        }
        let mut message = format!("{} request(s) did not end exactly once:\n", offenders.len());
        for (id, n) in offenders.iter().take(5) {
            let _ = writeln!(message, "request {id} ended {n} time(s)");
            message.push_str(&self.timeline(*id));
        }
        panic!("{message}");
    }

    /// Panics, with the request's timeline, unless request `id` ended exactly once with
    /// `condition` after `approximate_invoke_count` executions.
    pub fn assert_ended(&self, id: RequestId, condition: Condition, approximate_invoke_count: u32) {
        let endings = self.endings(id);
        if endings != [(condition, approximate_invoke_count)] {
            panic!(
                "request {id}: expected to end once as {condition} after {approximate_invoke_count} execution(s), but its endings are {endings:?}\n{}",
                self.timeline(id)
            );
        }
    }
}

impl std::fmt::Debug for OutcomeAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = self.log.lock();
        f.debug_struct("OutcomeAudit")
            .field("accepted", &log.accepted.len())
            .finish()
    }
}
