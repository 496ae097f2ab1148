//! Outcomes: an attempt's consequence (retry, backoff, or the end), the one record per event,
//! and its delivery to destinations.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::observe::{TraceEvent, TraceKind};
use crate::parts::clock::Timestamp;
use crate::parts::queue::{Chain, Lineage, QueuedEvent};
use crate::parts::record::{
    drop_panic, into_panic, Condition, Destination, FunctionError, InvocationRecord, LatePanic,
    RequestId,
};

use super::admission::Invoker;
use super::dispatch::Attempt;
use super::{bump, Dispatched, FunctionShared, Runtime, StepOutcome, Tally, Version};

#[cfg(feature = "model")]
use crate::parts::record::{late_panic, resume_late};
#[cfg(feature = "model")]
use std::cell::Cell;

#[cfg(feature = "model")]
thread_local! {
    /// Model mode: a panic of the user's code that came up while this thread concluded an
    /// execution, kept until the model has booked the execution's end
    /// ([`Runtime::conclude_virtual`]). One per thread, saved and restored around each
    /// conclusion, so that it goes on from the step it came from.
    static DEFERRED: Cell<Option<LatePanic>> = const { Cell::new(None) };
}

/// What [`Runtime::conclude_virtual`] made of an execution's end, with the panic of the user's
/// code that goes on once the caller has booked that end, if one came up.
#[cfg(feature = "model")]
pub(crate) enum Concluded {
    /// The event ended, or went back to its queue, as the step says.
    Ended(Dispatched, Option<LatePanic>),
    /// The end itself panicked (a payload's `Drop`); the event has ended all the same.
    Panicked(LatePanic),
}

#[cfg(feature = "model")]
impl Concluded {
    /// When the event's retry is due, if its end scheduled one.
    pub(crate) fn retry_due(&self) -> Option<Timestamp> {
        match self {
            Concluded::Ended(d, _) => match d.outcome {
                StepOutcome::RetryScheduled { due } => Some(due),
                _ => None,
            },
            Concluded::Panicked(_) => None,
        }
    }

    /// The panic to let go on, if any, without the step.
    pub(crate) fn into_late(self) -> Option<LatePanic> {
        match self {
            Concluded::Ended(_, late) => late,
            Concluded::Panicked(late) => Some(late),
        }
    }

    /// Lets the panic go on, if there is one; otherwise the step.
    pub(crate) fn go_on(self) -> Dispatched {
        match self {
            Concluded::Ended(d, late) => {
                resume_late(late);
                d
            }
            Concluded::Panicked(late) => resume_unwind(into_panic(late)),
        }
    }
}

/// Keeps `late` for the conclusion running on this thread; the first of two is kept, and the
/// later one is dropped ([`drop_panic`]), as `then_late_goes_on` does.
#[cfg(feature = "model")]
#[cold]
#[inline(never)]
fn defer_panic(late: LatePanic) {
    DEFERRED.with(|slot| match slot.take() {
        None => slot.set(Some(late)),
        Some(first) => {
            slot.set(Some(first));
            drop_panic(into_panic(late));
        }
    });
}

/// The record of `event` ending with `condition` at `at`; without a response of its own, the
/// last attempt's error stands in.
pub(crate) fn record_of<P, R>(
    f: &FunctionShared<P, R>,
    event: QueuedEvent<P>,
    condition: Condition,
    response: Option<Result<R, FunctionError>>,
    at: Timestamp,
) -> InvocationRecord<P, R> {
    let request_id = event.request_id();
    let enqueued_at = event.enqueued_at();
    let attempts = event.attempts();
    let chain_depth = event.chain_depth();
    let last_version = event.last_version();
    let (payload, last_error) = event.into_parts();
    InvocationRecord {
        request_id,
        function: Arc::clone(&f.name),
        condition,
        approximate_invoke_count: attempts,
        request_payload: payload,
        response: response.or_else(|| last_error.map(Err)),
        executed_version: (attempts > 0).then_some(last_version),
        enqueued_at,
        timestamp: at,
        chain_depth,
    }
}

/// How an event ends: its condition, when, whether a worker had taken it from its queue (the
/// books count it in hand until it ends), and the response or error of its last attempt when
/// that is what the record carries.
pub(crate) struct Ending<R> {
    condition: Condition,
    response: Option<Result<R, FunctionError>>,
    in_hand: bool,
    at: Timestamp,
}

impl<R> Ending<R> {
    /// An event a worker (or an operator call) took from its queue ends at `at`.
    #[inline]
    pub(crate) fn taken(condition: Condition, at: Timestamp) -> Self {
        Ending {
            condition,
            response: None,
            in_hand: true,
            at,
        }
    }

    /// An event ends at `at` on its way to a queue (virtual time), never taken from one.
    #[cfg(feature = "model")]
    pub(crate) fn arrived(condition: Condition, at: Timestamp) -> Self {
        Ending {
            in_hand: false,
            ..Self::taken(condition, at)
        }
    }

    /// The record carries this response or error (else the last attempt's error, if any).
    #[inline]
    pub(crate) fn response(mut self, response: Result<R, FunctionError>) -> Self {
        self.response = Some(response);
        self
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// The consequence of `attempt`, which ran until `ended_at`: its counts and trace, then
    /// its record, retry or (for an injected duplicate) nothing.
    #[inline(always)]
    pub(crate) fn conclude(
        &self,
        attempt: &Attempt<'_, P, R>,
        event: QueuedEvent<P>,
        mut result: Result<R, FunctionError>,
        ended_at: Timestamp,
        mut tally: Option<&mut Tally>,
    ) -> Dispatched {
        let Attempt { f, version, .. } = *attempt;
        let request_id = event.request_id();
        let duplicate = event.is_duplicate();
        let took = ended_at.nanos_since(attempt.started);
        match tally.as_deref_mut() {
            Some(t) => t.finished(took),
            None => f.counters.attempt_finished(took),
        }
        if self.inner.faults.is_some() && result.is_ok() {
            result = self.lose_response(f, result);
        }
        let number = attempt.number;
        if result.is_err() {
            bump(&f.counters.errors);
            if duplicate {
                // No retry and no record follow: counted apart (see `duplicate_errors`).
                bump(&f.counters.duplicate_errors);
            }
        }
        self.trace(f, request_id, ended_at, || match &result {
            Err(error) => TraceKind::Failed {
                attempt: number,
                duplicate,
                error,
            },
            Ok(_) => TraceKind::Succeeded {
                attempt: number,
                duplicate,
            },
        });
        let outcome = if duplicate {
            self.end_duplicate(f, version, event, result, ended_at, tally)
        } else {
            match result {
                Ok(response) => self.succeed(f, version, event, response, ended_at, tally),
                Err(error) => self.fail(attempt, event, error, ended_at, tally),
            }
        };
        Dispatched {
            request_id,
            outcome,
        }
    }

    /// [`conclude`](Self::conclude) out of line, for the virtual executor: the threads' step
    /// keeps its own copy inlined. A panic of the user's code that comes up on the way (the
    /// `Drop` of a value an error replaced, the duplicate seam, or the end itself: a payload's
    /// `Drop`) is handed back instead of going on, so that the caller first does its own books
    /// of the execution's end, then lets it go on ([`Concluded::go_on`]).
    #[cfg(feature = "model")]
    #[inline(never)]
    pub(crate) fn conclude_virtual(
        &self,
        attempt: &Attempt<'_, P, R>,
        event: QueuedEvent<P>,
        result: Result<R, FunctionError>,
        ended_at: Timestamp,
    ) -> Concluded {
        // The slot is this thread's, and saved around the conclusion: a step nested in it (an
        // observer's `try_dispatch`) or another thread's conclusion never takes its panic.
        let outer = DEFERRED.with(Cell::take);
        let concluded = catch_unwind(AssertUnwindSafe(|| {
            self.conclude(attempt, event, result, ended_at, None)
        }));
        // Kept by `let_panic_go_on` or the duplicate seam during the conclusion, if anything was.
        let kept = DEFERRED.with(|slot| slot.replace(outer));
        match (concluded, kept) {
            (Ok(d), kept) => Concluded::Ended(d, kept),
            // The first goes on, as in `then_late_goes_on`.
            (Err(later), Some(first)) => {
                drop_panic(later);
                Concluded::Panicked(first)
            }
            (Err(panic), None) => Concluded::Panicked(late_panic(panic)),
        }
    }

    /// Fault seam: the handler did its work, but its response is lost (when fault injection
    /// draws it so). Out of line, like every fault seam: the common step inlines none of it.
    #[cold]
    #[inline(never)]
    fn lose_response(
        &self,
        f: &FunctionShared<P, R>,
        result: Result<R, FunctionError>,
    ) -> Result<R, FunctionError> {
        match self.inner.faults.as_ref() {
            Some(faults) if faults.function_error() => {
                bump(&f.counters.injected_errors);
                Err(injected_error(result))
            }
            _ => result,
        }
    }

    /// A duplicate delivery ran: it is never retried and makes no record (`finish` knows). Its
    /// response goes along, to be dropped before the end counts; a panic that rode with its
    /// error goes on after the end.
    #[cold]
    #[inline(never)]
    fn end_duplicate(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        mut result: Result<R, FunctionError>,
        ended_at: Timestamp,
        tally: Option<&mut Tally>,
    ) -> StepOutcome {
        let late = result.as_mut().err().and_then(FunctionError::take_late);
        let ending = Ending::taken(Condition::Success, ended_at).response(result);
        match late {
            None => self.finish_in(f, version, event, ending, tally),
            Some(late) => self.then_late_goes_on(late, || {
                self.finish_in(f, version, event, ending, tally);
            }),
        }
        StepOutcome::Duplicate
    }

    /// An attempt succeeded: the event ends as `Success` (its counts go to the batch's tally,
    /// if any), and fault injection may deliver it once more.
    #[inline(always)]
    fn succeed(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        response: R,
        ended_at: Timestamp,
        tally: Option<&mut Tally>,
    ) -> StepOutcome {
        // A duplicate delivery's success ends in `end_duplicate`.
        debug_assert!(!event.is_duplicate());
        // The seam borrows the event: handing the event itself to an out-of-line function,
        // even on this cold branch, measured about 3 ns more per step on the common path.
        let duplicating = if self.inner.faults.is_some() {
            self.duplicate_seam(f, &event, ended_at)
        } else {
            None
        };
        match tally {
            Some(t) => self.finish_success_tallied(f, version, event, response, ended_at, t),
            // `!is_duplicate()` cannot be false here (see the `debug_assert!` above). It stays:
            // without it the one-thread step ran 3 instructions fewer, but the two-worker
            // fan-out measured 0.2-0.7 % slower (code layout), and timed runs decide.
            None if self.inner.hooks.observer.is_none()
                && version.config.on_success.is_none()
                && !event.is_duplicate() =>
            {
                self.finish_quiet_success(f, event, response, ended_at);
            }
            None => {
                let success = Ending::taken(Condition::Success, ended_at).response(Ok(response));
                self.finish(f, version, event, success);
            }
        }
        // Once the event has ended.
        if let Some(panic) = duplicating {
            resume_unwind(panic);
        }
        StepOutcome::Ended(Condition::Success)
    }

    /// Fault seam: at-least-once delivery runs the event once more (when fault injection draws
    /// it so). The user's code on the way (the duplicate filter, the payload's `Clone`, the
    /// `Drop` of a copy that a deleted function does not take) may panic: the panic is handed
    /// back, for [`succeed`](Self::succeed) to let go on once the event has ended (in model
    /// mode it is kept for [`conclude_virtual`](Self::conclude_virtual) instead, which hands it
    /// to its caller to let go on once the model has booked the execution).
    #[cold]
    #[inline(never)]
    fn duplicate_seam(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        event: &QueuedEvent<P>,
        ended_at: Timestamp,
    ) -> Option<Box<dyn Any + Send>> {
        let panic = catch_unwind(AssertUnwindSafe(|| {
            if let Some(faults) = self.inner.faults.as_ref() {
                if let Some(copy) = faults.duplicate(event.request_id(), event.payload()) {
                    self.inject_duplicate(f, event, copy, ended_at);
                }
            }
        }))
        .err()?;
        #[cfg(feature = "model")]
        if self.inner.executor.is_virtual() {
            defer_panic(late_panic(panic));
            return None;
        }
        Some(panic)
    }

    /// An attempt failed: a retry after the policy's wait, or the end (`RetriesExhausted`, or
    /// `EventAgeExceeded` when the retry would start too late). A panic that rode with the
    /// error (the `Drop` of what it took the place of) goes on once the event has ended or
    /// gone back to its queue ([`then_late_goes_on`](Self::then_late_goes_on)).
    fn fail(
        &self,
        attempt: &Attempt<'_, P, R>,
        event: QueuedEvent<P>,
        mut error: FunctionError,
        ended_at: Timestamp,
        tally: Option<&mut Tally>,
    ) -> StepOutcome {
        match error.take_late() {
            None => self.retry_or_end(attempt, event, error, ended_at, tally),
            Some(late) => self.then_late_goes_on(late, || {
                self.retry_or_end(attempt, event, error, ended_at, tally)
            }),
        }
    }

    /// Runs `end` (the rest of an event's end, or its way back to its queue), then lets `late`,
    /// a panic that rode with the event's error, go on ([`let_panic_go_on`](Self::let_panic_go_on)).
    /// Should `end` panic too (a payload's `Drop` at the end: the event has ended all the
    /// same), `late` goes on at once and the later panic is dropped: Rust unwinds one panic
    /// at a time, and the first is the one that came from the attempt, as
    /// [`finish_all`](Self::finish_all) hands back the first of its ends' panics.
    #[cold]
    #[inline(never)]
    fn then_late_goes_on<T>(&self, late: LatePanic, end: impl FnOnce() -> T) -> T {
        match catch_unwind(AssertUnwindSafe(end)) {
            Ok(value) => {
                self.let_panic_go_on(late);
                value
            }
            Err(later) => {
                drop_panic(later);
                resume_unwind(into_panic(late))
            }
        }
    }

    /// Lets a panic of the user's code go on once the event it came from has ended (or gone
    /// back to its queue); in model mode, keeps it until the model has booked the execution's
    /// end ([`conclude_virtual`](Self::conclude_virtual)).
    #[cold]
    #[inline(never)]
    fn let_panic_go_on(&self, late: LatePanic) {
        #[cfg(feature = "model")]
        if self.inner.executor.is_virtual() {
            return defer_panic(late);
        }
        resume_unwind(into_panic(late))
    }

    /// [`fail`](Self::fail)'s consequence: a retry, or the end.
    #[inline(always)]
    fn retry_or_end(
        &self,
        attempt: &Attempt<'_, P, R>,
        mut event: QueuedEvent<P>,
        error: FunctionError,
        ended_at: Timestamp,
        mut tally: Option<&mut Tally>,
    ) -> StepOutcome {
        let Attempt { f, version, .. } = *attempt;
        let retry = &version.config.retry;
        // The schedule is the user's code: a panic in it gives up, like `None`.
        let wait = catch_unwind(AssertUnwindSafe(|| {
            retry.retry_delay_after(attempt.number, &error)
        }));
        let Some(mut wait) = wait.ok().flatten() else {
            let condition = Condition::RetriesExhausted;
            self.finish_in(
                f,
                version,
                event,
                Ending::taken(condition, ended_at).response(Err(error)),
                tally.as_deref_mut(),
            );
            return StepOutcome::Ended(condition);
        };
        if let Some(faults) = self.inner.faults.as_ref() {
            wait += faults.extra_delay();
        }
        let due = ended_at + wait;
        if retry.is_expired(event.enqueued_at(), due) {
            // Lambda does not schedule a retry that would start past the age limit.
            let condition = Condition::EventAgeExceeded;
            self.finish_in(
                f,
                version,
                event,
                Ending::taken(condition, ended_at).response(Err(error)),
                tally.as_deref_mut(),
            );
            return StepOutcome::Ended(condition);
        }
        event.set_last_error(error);
        self.trace(f, event.request_id(), ended_at, || {
            TraceKind::RetryScheduled { due }
        });
        // Every other way out of here ends the event in `finish`, which notes it.
        self.inner.executor.note_end(ended_at);
        match self.requeue_in(f, version, event, due, ended_at, tally) {
            None => {
                bump(&f.counters.retries);
                StepOutcome::RetryScheduled { due }
            }
            Some(c) => StepOutcome::Ended(c),
        }
    }

    /// Puts an event back as delayed until `due`, or ends it as `FunctionDeleted` when the
    /// function went away meanwhile (returned then).
    pub(crate) fn requeue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        due: Timestamp,
        now: Timestamp,
    ) -> Option<Condition> {
        self.requeue_in(f, version, event, due, now, None)
    }

    /// [`requeue`](Self::requeue) inside a dispatch step (see [`finish_in`](Self::finish_in)).
    pub(crate) fn requeue_in(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        due: Timestamp,
        now: Timestamp,
        tally: Option<&mut Tally>,
    ) -> Option<Condition> {
        {
            let mut st = f.state.lock();
            if !st.deleted {
                st.queue.push_delayed(event, due);
                f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
                drop(st);
                self.inner.executor.delayed_until(due);
                self.arm_timer(f, due);
                return None;
            }
        }
        self.finish_in(
            f,
            version,
            event,
            Ending::taken(Condition::FunctionDeleted, now),
            tally,
        );
        Some(Condition::FunctionDeleted)
    }

    /// Ends an event: one record, one count, one delivery (see [`Ending`]).
    ///
    /// `finish_quiet_success` repeats the steps of this function that a success without a
    /// record takes, in the same order: a step added here may be needed there too.
    pub(crate) fn finish(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        ending: Ending<R>,
    ) {
        self.finish_in(f, version, event, ending, None);
    }

    /// Ends every one of `events` as `condition` at `at`, one record each (purge, delete, age
    /// out). A `Drop` that panics (the user's code) stops none of the others from ending: the
    /// first panic is handed back, for the caller to resume once it has done its own work.
    #[must_use]
    pub(crate) fn finish_all(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        events: Vec<QueuedEvent<P>>,
        condition: Condition,
        at: Timestamp,
    ) -> Option<Box<dyn Any + Send>> {
        let mut first = None;
        for event in events {
            let ended = catch_unwind(AssertUnwindSafe(|| {
                self.finish(f, version, event, Ending::taken(condition, at));
            }));
            if let Err(panic) = ended {
                first.get_or_insert(panic);
            }
        }
        first
    }

    /// [`finish`](Self::finish) inside a dispatch step that holds execution slots: with a
    /// `tally`, the event's end counts there and the step releases `outstanding` once it gave
    /// its slots back, so that whoever `wait_idle` wakes finds the execution ended too.
    pub(crate) fn finish_in(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        ending: Ending<R>,
        tally: Option<&mut Tally>,
    ) {
        let Ending {
            condition,
            response,
            in_hand,
            at,
        } = ending;
        self.inner.executor.note_end(at);
        if event.is_duplicate() {
            // However it ends (run, purged, aged out, deleted), a duplicate delivery makes no
            // record: its event already has one.
            if in_hand {
                f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
            }
            bump(&f.counters.duplicates_finished);
            self.drop_then_end((event, response), tally);
            return;
        }
        f.counters.outcome(condition);
        if in_hand {
            f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
        }
        self.trace(f, event.request_id(), at, || TraceKind::Ended {
            condition,
            approximate_invoke_count: event.attempts(),
        });
        // The common case, a success nobody listens for, needs no record: skip building one.
        if condition.is_failure()
            || self.inner.hooks.observer.is_some()
            || version.config.on_success.is_some()
        {
            // A record not kept is dropped on the way, payload and all: the end counts after.
            let _end = EndGuard { rt: self, tally };
            let lineage = event.lineage().cloned();
            let record = record_of(f, event, condition, response, at);
            self.deliver(f, version, record, lineage.as_ref());
        } else {
            self.drop_then_end((event, response), tally);
        }
    }

    /// Drops what is left of an ended event, then counts its end: a waiter woken by it finds
    /// no payload or response still being dropped. A `Drop` that panics (the user's code)
    /// still counts the end before the panic goes on.
    #[inline(always)]
    fn drop_then_end<T>(&self, rest: T, tally: Option<&mut Tally>) {
        let _end = EndGuard { rt: self, tally };
        drop(rest);
    }

    /// Ends a success that makes no record (nobody listens for it: no observer, no on-success
    /// destination; not a duplicate delivery): [`finish`](Self::finish)'s steps for it, in the
    /// same order, without carrying the response there.
    #[inline(always)]
    fn finish_quiet_success(
        &self,
        f: &FunctionShared<P, R>,
        event: QueuedEvent<P>,
        response: R,
        at: Timestamp,
    ) {
        self.inner.executor.note_end(at);
        f.counters.outcome(Condition::Success);
        f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
        self.trace(f, event.request_id(), at, || TraceKind::Ended {
            condition: Condition::Success,
            approximate_invoke_count: event.attempts(),
        });
        // Dropped before the end is counted, as `finish` does.
        self.drop_then_end((event, response), None);
    }

    /// Ends a success inside a worker batch: as [`finish`](Self::finish), but its counts go to
    /// the batch's tally (the caller flushes it, and releases `outstanding`, after the batch).
    pub(crate) fn finish_success_tallied(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        response: R,
        at: Timestamp,
        tally: &mut Tally,
    ) {
        tally.successes += 1;
        self.trace(f, event.request_id(), at, || TraceKind::Ended {
            condition: Condition::Success,
            approximate_invoke_count: event.attempts(),
        });
        if self.inner.hooks.observer.is_some() || version.config.on_success.is_some() {
            let lineage = event.lineage().cloned();
            let record = record_of(f, event, Condition::Success, Some(Ok(response)), at);
            self.deliver(f, version, record, lineage.as_ref());
        }
    }

    /// Queues a duplicate delivery of `event` (which just succeeded): same id, same invoke
    /// count, a copy of the payload.
    pub(crate) fn inject_duplicate(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        event: &QueuedEvent<P>,
        payload: P,
        now: Timestamp,
    ) {
        // The same place in the same chain: the copy's invokes count as the original's would.
        let chain = Chain::new(event.chain_depth(), event.lineage().cloned());
        let mut copy =
            QueuedEvent::chained(event.request_id(), payload, event.enqueued_at(), chain);
        copy.set_attempts(event.attempts().saturating_sub(1));
        copy.mark_duplicate();
        // Traced first, so that no worker's "started" line can come before it.
        self.trace(f, event.request_id(), now, || TraceKind::DuplicateInjected);
        let mut st = f.state.lock();
        if st.deleted {
            return;
        }
        st.queue.push_unbounded(copy);
        bump(&f.counters.duplicates);
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        let schedule = {
            let runnable = !st.paused;
            st.token.claim(runnable)
        };
        drop(st);
        if schedule {
            self.inner.schedule(f);
        }
    }

    /// Whether a success makes no work after its handler: no observer, no tracer, no
    /// observability feature (a destination is checked per function).
    #[inline]
    pub(crate) fn is_quiet(&self) -> bool {
        self.inner.hooks.observer.is_none()
            && self.inner.hooks.tracer.is_none()
            && !cfg!(any(feature = "tracing", feature = "metrics"))
    }

    /// Reports one step of an event's life to the tracer, if there is one, and to the
    /// `tracing` and `metrics` features when they are on. `kind` is built only then: nobody
    /// listens in the common case, and a step should not even write what it would have said.
    #[inline(always)]
    pub(crate) fn trace<'k>(
        &self,
        f: &FunctionShared<P, R>,
        request_id: RequestId,
        at: Timestamp,
        kind: impl FnOnce() -> TraceKind<'k>,
    ) {
        if self.inner.hooks.tracer.is_none() && !cfg!(any(feature = "tracing", feature = "metrics"))
        {
            return;
        }
        self.trace_to_listeners(f, request_id, at, kind());
    }

    /// [`trace`](Self::trace) when somebody listens. Out of line, so that the steps that
    /// trace keep only the check inlined.
    #[inline(never)]
    fn trace_to_listeners(
        &self,
        f: &FunctionShared<P, R>,
        request_id: RequestId,
        at: Timestamp,
        kind: TraceKind<'_>,
    ) {
        let event = TraceEvent {
            request_id,
            function: &f.name,
            at,
            kind,
        };
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        crate::observe::on_trace(&f.name, &event);
        if let Some(tracer) = &self.inner.hooks.tracer {
            let _ = catch_unwind(AssertUnwindSafe(|| tracer(&event)));
        }
    }

    pub(crate) fn release_outstanding(&self) {
        self.release_outstanding_n(1);
    }

    /// `n` events ended.
    #[inline]
    pub(crate) fn release_outstanding_n(&self, n: u64) {
        // Last, so that a waiter woken by `wait_idle` finds every record delivered.
        if n > 0
            && self.inner.outstanding.fetch_sub(n, Ordering::SeqCst) == n
            && self.inner.idle.waiters.load(Ordering::SeqCst) > 0
        {
            self.wake_idle_waiters();
        }
    }

    /// The runtime went idle while somebody waits for it (`wait_idle`).
    #[cold]
    #[inline(never)]
    fn wake_idle_waiters(&self) {
        let _guard = self.inner.idle.lock.lock();
        self.inner.idle.cv.notify_all();
    }

    /// Delivers the record of an event whose chain reached `lineage` (loop guard only): to
    /// the observer, then its destination. A function destination's event is one hop further
    /// down the same chain.
    pub(crate) fn deliver(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        record: InvocationRecord<P, R>,
        lineage: Option<&Arc<Lineage>>,
    ) {
        if let Some(observer) = &self.inner.hooks.observer {
            let _ = catch_unwind(AssertUnwindSafe(|| observer(&record)));
        }
        let failure = record.condition.is_failure();
        let destination = if failure {
            &version.config.on_failure
        } else {
            &version.config.on_success
        };
        let (request_id, at) = (record.request_id, record.timestamp);
        let undelivered = match destination {
            None => failure.then_some(record),
            Some(Destination::Closure(c)) => match catch_unwind(AssertUnwindSafe(|| c(&record))) {
                Ok(()) => None,
                Err(_) => Some(record),
            },
            // try_send: a full bounded channel must not block the worker; it is a failed
            // delivery like a disconnected one.
            Some(Destination::Channel(tx)) => tx.try_send(record).err().map(|e| e.into_inner()),
            // An mpsc::Sender is unbounded: send never blocks.
            Some(Destination::StdChannel(tx)) => tx.send(record).err().map(|e| e.0),
            Some(Destination::Function { name, map }) => {
                match catch_unwind(AssertUnwindSafe(|| map(&record))) {
                    Ok(payload) => {
                        let from = Invoker {
                            function: &f.name,
                            depth: record.chain_depth,
                            lineage,
                        };
                        self.invoke_async_from(name, payload, Some(from), None)
                            .err()
                            .map(|_| record)
                    }
                    Err(_) => Some(record),
                }
            }
        };
        if let Some(d) = destination {
            let delivered = undelivered.is_none();
            self.trace(f, request_id, at, || TraceKind::DestinationDelivery {
                on_failure: failure,
                function: d.function_name(),
                delivered,
            });
        }
        if let Some(record) = undelivered {
            if destination.is_some() {
                bump(&f.counters.delivery_failures);
            }
            if self.inner.settings.keep_dead_letters {
                self.inner.dead_letters.lock().push(record);
            }
        }
    }

    /// Takes the runtime's own dead-letter queue: failure records that had no on-failure
    /// destination, and any record (success or failure) whose destination could not take it.
    /// Nothing fails silently.
    pub fn drain_dead_letters(&self) -> Vec<InvocationRecord<P, R>> {
        std::mem::take(&mut *self.inner.dead_letters.lock())
    }
}

/// Counts one event's end when dropped: released at once, or in the step's `tally`, which
/// releases it after the step gave its execution slots back. Made before what is left of the
/// event is dropped, so that a `Drop` that panics (the user's code) still counts the end.
struct EndGuard<'a, 't, P: Send + 'static, R: Send + 'static> {
    rt: &'a Runtime<P, R>,
    tally: Option<&'t mut Tally>,
}

impl<P: Send + 'static, R: Send + 'static> Drop for EndGuard<'_, '_, P, R> {
    #[inline]
    fn drop(&mut self) {
        match self.tally.as_deref_mut() {
            Some(t) => t.ended += 1,
            None => self.rt.release_outstanding(),
        }
    }
}

/// Fault injection's lost response: a function error takes the place of `result`'s response,
/// which is dropped on the way ([`FunctionError::replacing_result`]).
#[cold]
#[inline(never)]
fn injected_error<R>(result: Result<R, FunctionError>) -> FunctionError {
    FunctionError::new(
        "Injected.FunctionError",
        "fault injection replaced a successful response",
    )
    .replacing_result(result)
}
