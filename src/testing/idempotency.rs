//! [`IdempotencyCheck`]: does a handler leave the same effect when Lambda's at-least-once
//! delivery does its worst?

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::engine::Context;
use crate::engine::Function;
use crate::engine::Runtime;
use crate::parts::clock::ManualClock;
use crate::parts::record::{FunctionError, RequestId};
use crate::testing::FaultInjection;
use crate::testing::OutcomeAudit;

/// One handler run seen by an [`IdempotencyCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Which of the check's events (its index in the list given to
    /// [`IdempotencyCheck::new`]).
    pub event: usize,
    /// The event's request id.
    pub request_id: RequestId,
    /// The approximate invoke count of this run.
    pub attempt: u32,
    /// Whether it was an injected duplicate delivery.
    pub duplicate: bool,
}

/// Proof that a handler is not idempotent: the seed that breaks it, what a clean run left,
/// what the faulty run left, and the deliveries in the order they ran.
///
/// Its `Display` is the report to read: replay the run with
/// [`IdempotencyCheck::replay`] and the same seed.
#[derive(Clone)]
#[non_exhaustive]
pub struct IdempotencyViolation<S> {
    /// The seed whose faults broke the handler.
    pub seed: u64,
    /// The effect of a clean run (every event once, in order, no fault).
    pub expected: S,
    /// The effect under the seed's faults.
    pub actual: S,
    /// Every handler run of the faulty run, in order.
    pub deliveries: Vec<Delivery>,
    /// The step-by-step timeline of every event of the faulty run.
    pub timeline: String,
}

impl<S: fmt::Debug> fmt::Display for IdempotencyViolation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the handler is not idempotent: with fault seed {} it leaves a different effect than a clean run",
            self.seed
        )?;
        writeln!(f, "  clean run:  {:?}", self.expected)?;
        writeln!(f, "  seed {}: {:?}", self.seed, self.actual)?;
        writeln!(
            f,
            "  deliveries in order (event index, attempt, duplicate?):"
        )?;
        for d in &self.deliveries {
            writeln!(
                f,
                "    event {} ({}) attempt {}{}",
                d.event,
                d.request_id,
                d.attempt,
                if d.duplicate { " duplicate" } else { "" }
            )?;
        }
        writeln!(
            f,
            "  replay it with IdempotencyCheck::replay(Some({}), ..)",
            self.seed
        )
    }
}

impl<S: fmt::Debug> fmt::Debug for IdempotencyViolation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<S: fmt::Debug> std::error::Error for IdempotencyViolation<S> {}

/// What a passing [`IdempotencyCheck`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdempotencyReport {
    /// Seeds run, each with the same effect as the clean run.
    pub seeds: u64,
    /// Handler runs over all seeds.
    pub deliveries: u64,
    /// Duplicate deliveries injected over all seeds.
    pub duplicates: u64,
    /// Function and system errors injected over all seeds.
    pub injected_errors: u64,
}

/// Checks that a handler is idempotent: it runs a list of events once cleanly, then again under
/// many seeds of duplicate deliveries, injected failures (the handler's work done, its response
/// lost), late retries and reordering, and compares the effect each run leaves with the clean
/// run's. The first seed that leaves a different effect is reported with the deliveries in the
/// order they ran, so it can be replayed.
///
/// "The effect" is whatever you extract: the state your handler writes (a map behind a mutex,
/// rows in a fake store), or a value computed from it. Each run gets a fresh handler and fresh
/// state from your `setup` closure, on a fresh runtime with a manual clock, driven from one
/// thread, so runs are deterministic.
///
/// A handler whose effect depends on the order of events is reported too: Lambda does not
/// promise an order either.
///
/// # Examples
///
/// A handler that counts deliveries is caught; one that deduplicates by request id passes.
///
/// ```
/// use event_invoke::IdempotencyCheck;
/// use std::collections::HashSet;
/// use std::sync::{Arc, Mutex};
///
/// let check = IdempotencyCheck::new(vec![10u64, 20, 30]).seeds(0..50);
///
/// // Not idempotent: a duplicate delivery adds twice.
/// let counter = check.run(|| {
///     let total = Arc::new(Mutex::new(0u64));
///     let t = total.clone();
///     let handler = move |amount: &u64, _ctx: &event_invoke::Context<'_, u64, ()>| {
///         *t.lock().unwrap() += amount;
///         Ok(())
///     };
///     (handler, move || *total.lock().unwrap())
/// });
/// let violation = counter.unwrap_err();
/// assert_eq!(violation.expected, 60);
/// assert!(violation.actual > 60);
///
/// // Idempotent: remember which requests were applied.
/// let deduped = check.run(|| {
///     let state = Arc::new(Mutex::new((HashSet::new(), 0u64)));
///     let s = state.clone();
///     let handler = move |amount: &u64, ctx: &event_invoke::Context<'_, u64, ()>| {
///         let mut s = s.lock().unwrap();
///         if s.0.insert(ctx.request_id()) {
///             s.1 += amount;
///         }
///         Ok(())
///     };
///     (handler, move || state.lock().unwrap().1)
/// });
/// assert_eq!(deduped.unwrap().seeds, 50);
/// ```
#[derive(Debug, Clone)]
pub struct IdempotencyCheck<P> {
    events: Vec<P>,
    seeds: Range<u64>,
    faults: FaultInjection,
}

type Run<S> = (S, Vec<Delivery>, OutcomeAudit, IdempotencyReport);

impl<P: Clone + Send + 'static> IdempotencyCheck<P> {
    /// A check of these events with the default faults (duplicates 30 %, lost responses 20 %,
    /// system errors 10 %, retries up to 30 s late, reordering 50 %) over seeds 0 to 199.
    pub fn new(events: impl IntoIterator<Item = P>) -> Self {
        IdempotencyCheck {
            events: events.into_iter().collect(),
            seeds: 0..200,
            faults: FaultInjection::new(0)
                .duplicates(0.3)
                .function_errors(0.2)
                .system_errors(0.1)
                .retry_delay(Duration::from_secs(30))
                .reorder(0.5),
        }
    }

    /// The seeds to try.
    pub fn seeds(mut self, seeds: Range<u64>) -> Self {
        self.seeds = seeds;
        self
    }

    /// The faults to inject (their seed is replaced by each seed tried). Settings out of range
    /// are refused here, naming the field.
    pub fn faults(mut self, faults: FaultInjection) -> Result<Self, crate::Error> {
        faults.validate()?;
        self.faults = faults;
        Ok(self)
    }

    /// Runs the check. `setup` makes a fresh handler and a way to read the effect it left; it
    /// is called once for the clean run and once per seed.
    pub fn run<R, S, H, O>(
        &self,
        setup: impl Fn() -> (H, O),
    ) -> Result<IdempotencyReport, IdempotencyViolation<S>>
    where
        R: Send + 'static,
        S: PartialEq + fmt::Debug,
        H: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
        O: FnOnce() -> S,
    {
        let (expected, _, _, _) = self.run_once(None, &setup);
        let mut report = IdempotencyReport::default();
        for seed in self.seeds.clone() {
            let (actual, deliveries, audit, counts) = self.run_once(Some(seed), &setup);
            report.seeds += 1;
            report.deliveries += counts.deliveries;
            report.duplicates += counts.duplicates;
            report.injected_errors += counts.injected_errors;
            if actual != expected {
                let timeline = audit
                    .accepted()
                    .into_iter()
                    .map(|id| audit.timeline(id))
                    .collect();
                return Err(IdempotencyViolation {
                    seed,
                    expected,
                    actual,
                    deliveries,
                    timeline,
                });
            }
        }
        Ok(report)
    }

    /// Runs the events once under `seed`'s faults (or cleanly with `None`) and returns the
    /// effect, the deliveries in order, and the timeline of every event: the replay of a
    /// reported violation.
    pub fn replay<R, S, H, O>(
        &self,
        seed: Option<u64>,
        setup: impl Fn() -> (H, O),
    ) -> (S, Vec<Delivery>, String)
    where
        R: Send + 'static,
        H: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
        O: FnOnce() -> S,
    {
        let (effect, deliveries, audit, _) = self.run_once(seed, &setup);
        let timeline = audit
            .accepted()
            .into_iter()
            .map(|id| audit.timeline(id))
            .collect();
        (effect, deliveries, timeline)
    }

    fn run_once<R, S, H, O>(&self, seed: Option<u64>, setup: &impl Fn() -> (H, O)) -> Run<S>
    where
        R: Send + 'static,
        H: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
        O: FnOnce() -> S,
    {
        let (handler, observe) = setup();
        let audit = OutcomeAudit::new();
        let mut builder = Runtime::<P, R>::builder()
            .clock(ManualClock::new())
            .keep_dead_letters(false)
            .on_trace(audit.tracer());
        if let Some(seed) = seed {
            builder = builder.fault_injection(self.faults.clone().with_seed(seed));
        }
        let Ok(rt) = builder.build() else {
            unreachable!("the check's runtime settings are valid")
        };
        let ids: Arc<Mutex<Vec<RequestId>>> = Arc::default();
        let log: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let (seen_ids, seen) = (Arc::clone(&ids), Arc::clone(&log));
        let function = Function::new("handler", move |p: &P, ctx: &Context<'_, P, R>| {
            let event = seen_ids
                .lock()
                .iter()
                .position(|id| *id == ctx.request_id())
                .unwrap_or(usize::MAX);
            seen.lock().push(Delivery {
                event,
                request_id: ctx.request_id(),
                attempt: ctx.approximate_invoke_count(),
                duplicate: ctx.is_duplicate(),
            });
            handler(p, ctx)
        })
        .queue_capacity(self.events.len().max(1));
        let registered = rt.register(function);
        if let Ok(handle) = registered {
            for event in &self.events {
                if let Ok(id) = handle.invoke_async(event.clone()) {
                    ids.lock().push(id);
                }
            }
            rt.run_until_idle();
        }
        let effect = observe();
        let m = rt.metrics().total;
        let counts = IdempotencyReport {
            seeds: 0,
            deliveries: m.invocations,
            duplicates: m.duplicates,
            injected_errors: m.injected_errors,
        };
        let deliveries = std::mem::take(&mut *log.lock());
        (effect, deliveries, audit, counts)
    }
}
