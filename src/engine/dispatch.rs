//! Dispatch, the hot path: take a ready event, take its slots, run the handler.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::observe::TraceKind;
use crate::parts::clock::Timestamp;
use crate::parts::queue::{Lineage, QueuedEvent};
use crate::parts::record::{Condition, FunctionError, RequestId};

use super::executor::{ExecutionLine, Executor};
use super::outcome::Ending;
use super::slots::NoSlot;
use super::{
    bump, Context, FunctionShared, RecursionGuard, Runtime, Slots, Tally, Version, ZeroConcurrency,
};

/// The most ready events a worker takes from one function at once.
pub(crate) const BATCH: usize = 16;
/// Handlers faster than this on average (in nanoseconds) are run in batches.
const BATCH_BELOW_NS: u64 = 20_000;
/// A batched event that took longer than this ends its batch (the handler turned slow).
const BATCH_BREAK_NS: u64 = 10 * BATCH_BELOW_NS;

/// What one dispatch step did with one event.
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, ManualClock, Runtime, StepOutcome};
///
/// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
/// let id = rt.invoke_async("f", 1).unwrap();
/// let step = rt.try_dispatch().unwrap();
/// assert_eq!(step.request_id, id);
/// assert_eq!(step.outcome, StepOutcome::Ended(Condition::Success));
/// assert!(rt.try_dispatch().is_none()); // nothing left
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatched {
    /// The event handled.
    pub request_id: RequestId,
    /// What became of it.
    pub outcome: StepOutcome,
}

/// What became of an event in one dispatch step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// It ended with this condition (after running, or without running: age, zero
    /// concurrency, recursion).
    Ended(Condition),
    /// The handler failed; a retry is scheduled at `due`.
    RetryScheduled {
        /// When the retry becomes due.
        due: Timestamp,
    },
    /// No execution slot was free; the event comes back at `due`.
    Throttled {
        /// When the event becomes due again.
        due: Timestamp,
    },
    /// An injected duplicate delivery ran (or was dropped unrun); its event had already ended,
    /// and this makes no record ([`FaultInjection`](crate::FaultInjection)).
    Duplicate,
    /// Model mode only (cargo feature `model`): the execution started and takes virtual time;
    /// it holds its slot and its outcome counts when the clock reaches `until`
    /// ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)).
    #[cfg(feature = "model")]
    Running {
        /// When the execution ends.
        until: Timestamp,
    },
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// How many ready events of `f` a worker may run back to back in one step. Batching takes
    /// the run queue once for many events, and holds one execution slot across them; it is
    /// worth it only when the handler is fast (judged on real time). The events not yet
    /// started stay in the queue meanwhile, so an idle worker never waits for them. With slow
    /// handlers, or while faults are injected (whose draws must stay in a replayable order),
    /// it is one event a step.
    #[inline]
    pub(crate) fn batch_limit(&self, f: &FunctionShared<P, R>, ready: usize) -> usize {
        if self.inner.faults.as_ref().is_some_and(|f| f.active())
            || ready < 2
            || self.inner.executor.is_virtual()
        {
            return 1;
        }
        // The recent mean, not the lifetime one: a handler that turned slow (or new code)
        // stops being batched at once.
        if f.recent_ns.load(Ordering::Relaxed) > BATCH_BELOW_NS {
            return 1;
        }
        // The events not yet started stay in the queue, where idle workers take them: no
        // share needs to be left for them.
        BATCH
    }

    /// A worker step that may run several ready events of `f` back to back (fast handlers
    /// only, see [`batch_limit`](Self::batch_limit)) under one execution slot and one
    /// run-queue hand-off, with one clock read per event instead of two. The events not yet
    /// started stay in the queue, where an idle worker may take them: the worker takes each
    /// next one only when the previous one ended, so none waits behind an event that turns
    /// out slow. The event taken counts as in flight until it ends or goes back to the queue.
    ///
    /// `now` is the step's start: the reading the caller took for its timers before it took
    /// `f` from the run queue (a fresh one if code of the user's may have run since: a record
    /// delivered when a timer fired), one reading fewer per step. Returns how many events it
    /// dispatched and, when nothing but the engine ran since the last event ended (a quiet
    /// success, with payload and response types that have no `Drop`, and no fault injected),
    /// that ending's reading, which a worker takes for its next look at the timers and, unless
    /// code of the user's runs there, for its next step's start.
    pub(crate) fn step_batch(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        batch: &mut Vec<QueuedEvent<P>>,
        now: Timestamp,
    ) -> (u64, Option<Timestamp>) {
        // Declared before the slots, so that even a panic unwinding the step gives them back
        // before the batch's ended events are released.
        let mut ends = Ends {
            rt: self,
            f,
            tally: Tally::default(),
        };
        let mut held = None;
        let Some((version, limit)) = self.take_batch(f, batch, now, &mut held) else {
            return (0, None);
        };
        let epoch = f.epoch.load(Ordering::SeqCst);
        let quiet = self.is_quiet() && version.config.on_success.is_none();
        let mut at = now;
        let mut dispatched = 0u64;
        let mut busy_ns = 0u64;
        // The last event's ending reading, while nothing but the engine ran since: handed to
        // the caller only when the event's payload and response have no `Drop` of their own
        // (they are dropped after that reading) and no fault is injected (the duplicate seam
        // runs the user's filter and `Clone` after it), so that their time never becomes
        // another function's.
        let carry = !std::mem::needs_drop::<P>()
            && !std::mem::needs_drop::<R>()
            && self.inner.faults.is_none();
        let mut fresh = None;
        // Under a virtual clock a handler takes the time it moves the clock by, which says
        // nothing of how long it holds a worker thread: there, speed is judged on real time
        // too. A run the caller drives (`run_until_idle`, `try_dispatch`) has no other thread
        // that could take the rest of a batch, so it keeps to the runtime clock and stays
        // replayable.
        let mut real =
            (self.inner.is_virtual && crate::engine::driver::on_worker_thread()).then(Instant::now);
        while let Some(event) = batch.pop() {
            let tally = Some(&mut ends.tally);
            let (step, ended) = self.dispatch(f, event, &version, at, &mut held, tally);
            dispatched += 1;
            let mut took = ended.nanos_since(at);
            if let Some(started) = real.as_mut() {
                let now = Instant::now();
                let real_ns = u64::try_from((now - *started).as_nanos()).unwrap_or(u64::MAX);
                took = took.max(real_ns);
                *started = now;
            }
            busy_ns = busy_ns.saturating_add(took);
            let reused = quiet && step.outcome == StepOutcome::Ended(Condition::Success);
            fresh = (reused && carry).then_some(ended);
            // Stop when going on would be wrong: an operator call (pause, delete, new code or
            // settings) came after the first event was taken, the handler turned slow, or
            // there was no slot (the others would only throttle too).
            let throttled = matches!(step.outcome, StepOutcome::Throttled { .. });
            if dispatched >= limit
                || throttled
                || took > BATCH_BREAK_NS
                || f.epoch.load(Ordering::SeqCst) != epoch
            {
                break;
            }
            // The next event starts when this one ended, unless something ran after the handler
            // (a record delivered, a trace, a retry scheduled): then a fresh reading, so that
            // time is nobody's run time.
            at = if reused {
                ended
            } else {
                self.inner.clock.now()
            };
            self.take_next(f, &version, batch, at);
        }
        drop(held);
        drop(ends);
        note_speed(f, busy_ns / dispatched.max(1));
        (dispatched, fresh)
    }

    /// Takes `f`'s next ready event into `batch` and keeps the function scheduled while more
    /// are ready, so another worker can run them in parallel. Returns the code version to run
    /// it on and how many events this step may run back to back
    /// ([`batch_limit`](Self::batch_limit)), or `None` when there was nothing to take.
    ///
    /// In wait mode ([`ConcurrencyLimitExceeded::Wait`](crate::ConcurrencyLimitExceeded)) it
    /// takes the execution slot first, into `held`, and takes no event without one: the
    /// function then waits for a slot ([`slot_first`](Self::slot_first)).
    #[inline]
    fn take_batch<'a>(
        &'a self,
        f: &'a Arc<FunctionShared<P, R>>,
        batch: &mut Vec<QueuedEvent<P>>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
    ) -> Option<(Arc<Version<P, R>>, u64)> {
        let (version, limit, more) = {
            let mut st = f.state.lock();
            if st.paused || st.deleted {
                st.token.drop_token();
                return None;
            }
            st.queue.promote_due(now);
            // Model mode: a poller that backed off after a throttle waits for a free slot.
            #[cfg(feature = "model")]
            if self.poller_waits(f, &mut st, now) {
                st.token.drop_token();
                return None;
            }
            if self.inner.settings.wait_for_slots && st.queue.ready_len() > 0 {
                if let Err(NoSlot::Waits) = self.slot_first(f, &st.current, now, held) {
                    return None;
                }
            }
            let limit = self.batch_limit(f, st.queue.ready_len());
            let event = match self.inner.faults.as_ref() {
                // Fault seam: reordering takes a random ready event.
                Some(faults) => st.queue.pop_due_picked(now, |len| faults.pick(len)),
                None => st.queue.pop_due(now),
            };
            let Some(event) = event else {
                st.token.keep(false);
                return None;
            };
            batch.push(event);
            let more = {
                let runnable = st.queue.ready_len() > 0;
                st.token.keep(runnable)
            };
            f.counters.in_hand.fetch_add(1, Ordering::Relaxed);
            (Arc::clone(&st.current), limit as u64, more)
        };
        if more {
            self.inner.schedule(f);
        }
        Some((version, limit))
    }

    /// The next event of a step that runs several back to back: `f`'s next ready event, into
    /// `batch`, unless an operator call came meanwhile (pause, delete, new code or settings:
    /// the step ends, and the event waits for the next step). Leaves the run token alone:
    /// whoever holds it keeps `f` scheduled.
    #[inline]
    fn take_next(
        &self,
        f: &FunctionShared<P, R>,
        version: &Arc<Version<P, R>>,
        batch: &mut Vec<QueuedEvent<P>>,
        now: Timestamp,
    ) {
        let mut st = f.state.lock();
        if st.paused || st.deleted || !Arc::ptr_eq(&st.current, version) {
            return;
        }
        if let Some(event) = st.queue.pop_due(now) {
            batch.push(event);
            // Counted under the lock so that queued + in hand never misses the event.
            f.counters.in_hand.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One worker step on function `f` at `now`: take its next ready event and dispatch it.
    /// Keeps the function scheduled while it has more ready events, so another worker can run
    /// them in parallel.
    #[inline]
    pub(crate) fn step_at(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        now: Timestamp,
    ) -> Option<Dispatched> {
        let faults = self.inner.faults.as_ref();
        let mut held = None;
        let (event, version, more) = {
            let mut st = f.state.lock();
            if st.paused || st.deleted {
                st.token.drop_token();
                return None;
            }
            #[cfg(feature = "model")]
            if self.poller_waits(f, &mut st, now) {
                st.token.drop_token();
                return None;
            }
            // Wait mode: the slot first (see `take_batch`).
            // Due retries are promoted here only when no event is ready without them: the pop
            // below promotes them anyway, and a due retry's timer (`on_timer`) has usually
            // promoted it already, which keeps its place in line when this step waits.
            if self.inner.settings.wait_for_slots
                && (st.queue.ready_len() > 0 || st.queue.promote_due(now) > 0)
            {
                if let Err(NoSlot::Waits) = self.slot_first(f, &st.current, now, &mut held) {
                    return None;
                }
            }
            let event = match faults {
                None => st.queue.pop_due(now),
                // Fault seam: reordering takes a random ready event.
                Some(faults) => st.queue.pop_due_picked(now, |len| faults.pick(len)),
            };
            let Some(event) = event else {
                st.token.keep(false);
                return None;
            };
            let more = {
                let runnable = st.queue.ready_len() > 0;
                st.token.keep(runnable)
            };
            // Counted under the lock so that queued + in hand never misses the event.
            f.counters.in_hand.fetch_add(1, Ordering::Relaxed);
            (event, Arc::clone(&st.current), more)
        };
        if more {
            self.inner.schedule(f);
        }
        Some(self.dispatch(f, event, &version, now, &mut held, None).0)
    }

    /// Decides one event's attempt: the guards (recursion, age, zero concurrency), the slots,
    /// the handler, and the consequence (record, retry or backoff). The fault seams sit where
    /// Lambda's own failures happen: a system error before the handler, a lost response after
    /// it, a duplicate delivery after a success, a late retry.
    /// `held` carries an execution slot from one event of a batch to the next; the caller
    /// drops it after the batch. Returns what happened and when the step ended.
    pub(crate) fn dispatch<'a>(
        &'a self,
        f: &'a Arc<FunctionShared<P, R>>,
        mut event: QueuedEvent<P>,
        version: &Arc<Version<P, R>>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
        mut tally: Option<&mut Tally>,
    ) -> (Dispatched, Timestamp) {
        let request_id = event.request_id();
        if let Some(condition) = self.guard(version, &event, now) {
            let outcome = if event.is_duplicate() {
                StepOutcome::Duplicate
            } else {
                StepOutcome::Ended(condition)
            };
            if tally.is_none() {
                *held = None;
            }
            self.finish_in(f, version, event, Ending::taken(condition, now), tally);
            return (
                Dispatched {
                    request_id,
                    outcome,
                },
                now,
            );
        }
        if held.is_none() {
            self.acquire_slots_into(f, version, now, held);
            if held.is_none() && self.inner.settings.wait_for_slots {
                self.refused(f, version);
            }
        }
        // Fault seam: a system error before the handler runs, handled like a throttle.
        let faults = self.inner.faults.as_ref();
        let injected = held.is_some() && faults.is_some_and(|x| x.system_error());
        if held.is_none() || injected {
            // An injected error's slot goes back before the event may end (batches of one
            // event only: fault injection turns batching off).
            *held = None;
            return (self.throttle(f, version, event, now, injected), now);
        }
        let number = self.start_attempt(f, version, &mut event, now, tally.as_deref_mut());
        // A batch reuses its slots (and their environment): only its first event is cold.
        let cold = held.as_mut().is_some_and(|s| std::mem::take(&mut s.cold));
        let attempt = Attempt {
            f,
            version,
            started: now,
            number,
            cold,
        };
        // The seam: how long the execution takes, and when its outcome counts.
        match &self.inner.executor {
            Executor::Threads(_) => {
                let call = Call::of(&event);
                let (result, ended) = self.run_handler(&attempt, call, event.payload(), None);
                // The execution is over: a single step gives its slots back before the event
                // ends, so that whoever `wait_idle` wakes finds them free. A batch keeps them
                // for its next event, and its `tally` holds the events' ends until it gave
                // them back.
                if tally.is_none() {
                    *held = None;
                }
                (self.conclude(&attempt, event, result, ended, tally), ended)
            }
            #[cfg(feature = "model")]
            Executor::Virtual(v) => (self.execute_virtual(&**v, &attempt, event, held), now),
        }
    }

    /// Whether `event` ends before it runs: stopped by the recursion guard, too old, or its
    /// function reserved at zero with [`ZeroConcurrency::Discard`].
    #[inline]
    fn guard(
        &self,
        version: &Version<P, R>,
        event: &QueuedEvent<P>,
        now: Timestamp,
    ) -> Option<Condition> {
        let config = &version.config;
        let recursion = match self.recursion_guard() {
            // A chain no deeper than the limit cannot have reached a function more often, so
            // a plain event never looks further than its depth.
            RecursionGuard::Loops(limit) => event.deeper_than(limit) && event.loop_count() > limit,
            RecursionGuard::Hops(limit) => event.deeper_than(limit),
            RecursionGuard::Off => false,
        };
        if recursion {
            Some(Condition::RecursionLimit)
        } else if version.is_expired(event.enqueued_at(), now) {
            Some(Condition::EventAgeExceeded)
        } else if config.reserved_concurrency == Some(0)
            && self.zero_concurrency() == ZeroConcurrency::Discard
        {
            Some(Condition::ZeroReservedConcurrency)
        } else {
            None
        }
    }

    /// A throttle (or an injected system error): back to the queue with backoff; it does not
    /// use up retry attempts. Too old by the time it would come back, it ends now. Out of
    /// line: inlined, it would take the inlining budget of the step.
    #[inline(never)]
    fn throttle(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        mut event: QueuedEvent<P>,
        now: Timestamp,
        injected: bool,
    ) -> Dispatched {
        let request_id = event.request_id();
        let config = &version.config;
        if injected {
            bump(&f.counters.injected_errors);
        } else {
            bump(&f.counters.throttles);
        }
        let throttles = event.record_throttle();
        // Drawn only when there is jitter: an exact backoff leaves the function's seeded
        // random sequence untouched.
        let draw = if config.retry.throttle_jitter() == 0.0 {
            0.0
        } else {
            f.rng.lock().unit()
        };
        let mut delay = config.retry.throttle_delay(throttles, draw);
        if let Some(faults) = self.inner.faults.as_ref() {
            delay += faults.extra_delay();
        }
        let due = now + delay;
        self.trace(f, request_id, now, || TraceKind::Throttled {
            due,
            injected,
        });
        let outcome = if config.retry.is_expired(event.enqueued_at(), due) {
            let condition = Condition::EventAgeExceeded;
            self.finish(f, version, event, Ending::taken(condition, now));
            StepOutcome::Ended(condition)
        } else {
            match self.requeue(f, version, event, due, now) {
                None => StepOutcome::Throttled { due },
                Some(c) => StepOutcome::Ended(c),
            }
        };
        // Model mode: the throttle's cause, and the poller's backoff.
        #[cfg(feature = "model")]
        if !injected {
            let requeued = matches!(outcome, StepOutcome::Throttled { .. });
            self.throttled_virtual(f, version, now, due, requeued);
        }
        // After the event's fate is settled, so that one that ended is not counted.
        self.observe_time(now);
        Dispatched {
            request_id,
            outcome,
        }
    }

    /// Counts the start of an attempt of `event` and traces it; returns its number.
    #[inline]
    fn start_attempt(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        event: &mut QueuedEvent<P>,
        now: Timestamp,
        tally: Option<&mut Tally>,
    ) -> u32 {
        let attempt = event.record_attempt();
        let duplicate = event.is_duplicate();
        if !duplicate {
            event.set_last_version(version.number);
        }
        let age = now.nanos_since(event.enqueued_at());
        match tally {
            Some(t) => t.started(age),
            None => f.counters.attempt_started(age),
        }
        self.trace(f, event.request_id(), now, || TraceKind::Started {
            attempt,
            duplicate,
            code_version: version.number,
        });
        attempt
    }

    /// Executions running in the account now.
    pub(crate) fn running(&self) -> u64 {
        self.inner.account.in_flight() as u64
    }

    /// Lets virtual time sample concurrency and queue depth at `now` (nothing in real time).
    #[inline]
    pub(crate) fn observe_time(&self, now: Timestamp) {
        self.inner
            .executor
            .observe(now, || (self.running(), self.outstanding()));
    }

    /// Runs the handler once under `catch_unwind`, measures it, and applies the timeout. In
    /// virtual time `line` is the execution's time line, which its context reads and moves.
    /// A panic's payload, or a response past the timeout, is dropped here: a panic of its
    /// `Drop` rides with the error to the event's end ([`FunctionError::take_late`]).
    #[inline(always)]
    pub(crate) fn run_handler(
        &self,
        attempt: &Attempt<'_, P, R>,
        call: Call<'_>,
        payload: &P,
        line: Option<&dyn ExecutionLine>,
    ) -> (Result<R, FunctionError>, Timestamp) {
        let version = attempt.version;
        let ctx = Context::for_attempt(self, attempt, &call, line);
        // Features `tracing` / `metrics`: the attempt's span, entered around the handler.
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let execution = crate::observe::Execution::start(
            &attempt.f.name,
            call.request_id,
            attempt.number,
            version.number,
            call.duplicate,
            attempt.started - call.enqueued_at,
        );
        // A panicking handler is a function error, not a dead worker: the slots are released
        // by their guard and the event goes on to its retry or record. The scope lets the
        // quiet panic hook (`quiet_handler_panics`) know the panic is a handler's.
        let caught = {
            let _scope = super::quiet::HandlerScope::enter();
            catch_unwind(AssertUnwindSafe(|| version.handler.handle(payload, &ctx)))
        };
        let result = caught.unwrap_or_else(|panic| Err(panicked(panic)));
        let ended_at = self.inner.clock.now();
        let took_ns = ended_at.nanos_since(attempt.started);
        let result = if version.timed_out(took_ns) {
            Err(timed_out(result, version.config.timeout))
        } else {
            result
        };
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        execution.finish(std::time::Duration::from_nanos(took_ns), &result);
        (result, ended_at)
    }
}

/// The error for a handler that panicked. Its panic's payload is dropped here: a panic of its
/// `Drop` (the user's code) rides with the error to the event's end
/// ([`FunctionError::replacing`]).
#[cold]
#[inline(never)]
fn panicked(panic: Box<dyn std::any::Any + Send>) -> FunctionError {
    FunctionError::from_panic(&*panic).replacing(panic)
}

/// The error for a handler that ran past its `timeout`. What it returned is dropped here: a
/// panic of a response's `Drop` (the user's code) rides with the error to the event's end
/// ([`FunctionError::replacing_result`]).
#[cold]
#[inline(never)]
fn timed_out<R>(result: Result<R, FunctionError>, timeout: std::time::Duration) -> FunctionError {
    FunctionError::timeout(timeout).replacing_result(result)
}

/// A batch's tally: flushed, and the events it ended released, when dropped, after the batch
/// gave its slots back, or while a panic (a payload's `Drop`, the user's code) unwinds the
/// step, so that no ended event stays outstanding.
struct Ends<'a, P: Send + 'static, R: Send + 'static> {
    rt: &'a Runtime<P, R>,
    f: &'a FunctionShared<P, R>,
    tally: Tally,
}

impl<P: Send + 'static, R: Send + 'static> Drop for Ends<'_, P, R> {
    #[inline]
    fn drop(&mut self) {
        let ended = self.tally.flush(&self.f.counters);
        self.rt.release_outstanding_n(ended);
    }
}

/// One attempt being made: the function, the code version it runs, when it started, which
/// attempt it is, and whether it needed a new environment.
pub(crate) struct Attempt<'a, P, R> {
    pub(crate) f: &'a Arc<FunctionShared<P, R>>,
    pub(crate) version: &'a Arc<Version<P, R>>,
    pub(crate) started: Timestamp,
    pub(crate) number: u32,
    pub(crate) cold: bool,
}

/// What a handler's context tells about the event it runs.
#[derive(Clone, Copy)]
pub(crate) struct Call<'e> {
    pub(crate) request_id: RequestId,
    pub(crate) enqueued_at: Timestamp,
    pub(crate) chain_depth: u32,
    /// The functions the event's chain reached (loop guard only), for the events it invokes.
    pub(crate) lineage: Option<&'e Arc<Lineage>>,
    pub(crate) duplicate: bool,
}

impl<'e> Call<'e> {
    pub(crate) fn of<P>(event: &'e QueuedEvent<P>) -> Self {
        Call {
            request_id: event.request_id(),
            enqueued_at: event.enqueued_at(),
            chain_depth: event.chain_depth(),
            lineage: event.lineage(),
            duplicate: event.is_duplicate(),
        }
    }
}

/// Folds a batch's mean handler time into `f`'s recent mean, which decides whether its events
/// are batched: the recent mean, not the lifetime one, so that a handler that turned slow (or
/// new code) stops being batched at once.
fn note_speed<P, R>(f: &FunctionShared<P, R>, mean_ns: u64) {
    let old = f.recent_ns.load(Ordering::Relaxed);
    let recent = if old == u64::MAX {
        mean_ns
    } else {
        (old.saturating_mul(3) + mean_ns) / 4
    };
    f.recent_ns.store(recent, Ordering::Relaxed);
}
