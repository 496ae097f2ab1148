//! Dispatch, the hot path: take a ready event, take its slots, run the handler.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::model::Cursor;
use crate::observe::TraceKind;
use crate::parts::clock::Timestamp;
use crate::parts::queue::QueuedEvent;
use crate::parts::record::{Condition, FunctionError, RequestId};

use super::{bump, Context, FunctionShared, Runtime, Slots, Tally, Task, Version, ZeroConcurrency};

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
    /// Model mode: the execution started and takes virtual time; it holds its slot and its
    /// outcome counts when the clock reaches `until`
    /// ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)).
    Running {
        /// When the execution ends.
        until: Timestamp,
    },
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// How many ready events a worker may take from `f` at once. Batching takes the function's
    /// lock and the run queue once for many events, and holds one execution slot across them;
    /// it is worth it, and harmless, only when the handler is fast: then the events a batch
    /// holds finish within microseconds. With slow handlers, or while faults are injected
    /// (whose draws must stay in a replayable order), it is one event a step.
    #[inline]
    pub(crate) fn batch_limit(&self, f: &FunctionShared<P, R>, ready: usize) -> usize {
        if self.inner.faults.as_ref().is_some_and(|f| f.active())
            || ready < 2
            || self.inner.model.is_some()
        {
            return 1;
        }
        // The recent mean, not the lifetime one: a handler that turned slow (or new code)
        // stops being batched at once.
        if f.recent_ns.load(Ordering::Relaxed) > BATCH_BELOW_NS {
            return 1;
        }
        // Leave some for the parked workers, so a small backlog still spreads out.
        let parked = self.inner.parked.load(Ordering::Relaxed);
        (ready / (parked + 1)).clamp(1, BATCH)
    }

    /// A worker step that may take several ready events of `f` at once (fast handlers only,
    /// see [`batch_limit`](Self::batch_limit)) and runs them back to back: one lock, one
    /// run-queue hand-off, one execution slot and one clock read per event instead of two.
    /// The events taken count as in flight until each ends or goes back to the queue.
    pub(crate) fn step_batch(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        batch: &mut Vec<QueuedEvent<P>>,
    ) -> u64 {
        let now = self.inner.clock.now();
        let (version, more) = {
            let mut st = f.state.lock();
            if st.paused || st.deleted {
                st.token.drop_token();
                return 0;
            }
            st.queue.promote_due(now);
            let limit = self.batch_limit(f, st.queue.ready_len());
            match self.inner.faults.as_ref() {
                // Fault seam: reordering takes a random ready event (no batching then).
                Some(faults) if limit == 1 => {
                    batch.extend(st.queue.pop_due_picked(now, |len| faults.pick(len)));
                }
                _ => {
                    while batch.len() < limit {
                        match st.queue.pop_due(now) {
                            Some(event) => batch.push(event),
                            None => break,
                        }
                    }
                }
            }
            if batch.is_empty() {
                st.token.keep(false);
                return 0;
            }
            let more = {
                let runnable = st.queue.ready_len() > 0;
                st.token.keep(runnable)
            };
            f.counters
                .in_hand
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            (Arc::clone(&st.current), more)
        };
        if more {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
        let mut held = None;
        let mut tally = Tally::default();
        let epoch = f.epoch.load(Ordering::SeqCst);
        let quiet = self.is_quiet() && version.config.on_success.is_none();
        let mut at = now;
        let mut dispatched = 0u64;
        let mut busy_ns = 0u64;
        let mut events = batch.drain(..);
        while let Some(event) = events.next() {
            let (step, ended) = self.dispatch(f, event, &version, at, &mut held, Some(&mut tally));
            dispatched += 1;
            let took = crate::parts::clock::duration_nanos(ended - at);
            busy_ns = busy_ns.saturating_add(took);
            // Give the rest back, untouched, when holding it would be wrong: an operator call
            // (pause, delete, new code or settings) came after the batch was taken, the
            // handler turned slow, or there was no slot (the others would only throttle too).
            let throttled = matches!(step.outcome, StepOutcome::Throttled { .. });
            if throttled || took > BATCH_BREAK_NS || f.epoch.load(Ordering::SeqCst) != epoch {
                let rest: Vec<_> = events.by_ref().collect();
                self.give_back(f, &version, rest);
                break;
            }
            // The next event starts when this one ended, unless something ran after the handler
            // (a record delivered, a trace, a retry scheduled): then a fresh reading, so that
            // time is nobody's run time.
            at = if quiet && step.outcome == StepOutcome::Ended(Condition::Success) {
                ended
            } else {
                self.inner.clock.now()
            };
        }
        drop(events);
        drop(held);
        let ended = tally.flush(&f.counters);
        self.release_outstanding_n(ended);
        let mean = busy_ns / dispatched.max(1);
        let old = f.recent_ns.load(Ordering::Relaxed);
        let recent = if old == u64::MAX {
            mean
        } else {
            (old.saturating_mul(3) + mean) / 4
        };
        f.recent_ns.store(recent, Ordering::Relaxed);
        dispatched
    }

    /// Puts events a worker took but did not start back at the front of `f`'s ready line (or
    /// ends them as `FunctionDeleted` if it was deleted meanwhile).
    pub(crate) fn give_back(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        events: Vec<QueuedEvent<P>>,
    ) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        let mut st = f.state.lock();
        if st.deleted {
            drop(st);
            let now = self.now();
            for event in events {
                self.finish(
                    f,
                    version,
                    event,
                    Condition::FunctionDeleted,
                    None,
                    true,
                    now,
                );
            }
            return;
        }
        st.queue.push_front_all(events);
        f.counters.in_hand.fetch_sub(n, Ordering::Relaxed);
        let runnable = !st.paused;
        let send = st.token.claim(runnable);
        drop(st);
        if send {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
    }

    /// One worker step on function `f`: take its next ready event and dispatch it. Keeps the
    /// function scheduled while it has more ready events, so another worker can run them in
    /// parallel.
    #[inline]
    pub(crate) fn step(&self, f: &Arc<FunctionShared<P, R>>) -> Option<Dispatched> {
        self.step_at(f, self.inner.clock.now())
    }

    #[inline]
    pub(crate) fn step_at(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        now: Timestamp,
    ) -> Option<Dispatched> {
        let faults = self.inner.faults.as_ref();
        let (event, version, more) = {
            let mut st = f.state.lock();
            if st.paused || st.deleted {
                st.token.drop_token();
                return None;
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
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
        let mut held = None;
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
        event: QueuedEvent<P>,
        version: &Arc<Version<P, R>>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
        tally: Option<&mut Tally>,
    ) -> (Dispatched, Timestamp) {
        let mut ended = now;
        let d = self.dispatch_inner(f, event, version, now, held, &mut ended, tally);
        (d, ended)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch_inner<'a>(
        &'a self,
        f: &'a Arc<FunctionShared<P, R>>,
        mut event: QueuedEvent<P>,
        version: &Arc<Version<P, R>>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
        ended: &mut Timestamp,
        mut tally: Option<&mut Tally>,
    ) -> Dispatched {
        let request_id = event.request_id();
        let config = &version.config;
        let faults = self.inner.faults.as_ref();
        let duplicate = event.is_duplicate();
        let end = |condition| Dispatched {
            request_id,
            outcome: StepOutcome::Ended(condition),
        };
        let guard = if self
            .recursion_limit()
            .is_some_and(|limit| event.chain_depth() > limit)
        {
            Some(Condition::RecursionLimit)
        } else if config.retry.is_expired(event.enqueued_at(), now) {
            Some(Condition::EventAgeExceeded)
        } else if config.reserved_concurrency == Some(0)
            && self.zero_concurrency() == ZeroConcurrency::Discard
        {
            Some(Condition::ZeroReservedConcurrency)
        } else {
            None
        };
        if let Some(condition) = guard {
            self.finish(f, version, event, condition, None, true, now);
            return if duplicate {
                Dispatched {
                    request_id,
                    outcome: StepOutcome::Duplicate,
                }
            } else {
                end(condition)
            };
        }
        if held.is_none() {
            *held = self.acquire_slots(f, version, now);
        }
        // Fault seam: a system error before the handler runs, handled like a throttle.
        let injected = held.is_some()
            && faults.is_some_and(|faults| faults.chance(faults.config.system_error));
        match held {
            Some(_) if !injected => {}
            _ => {
                // A throttle: back to the queue with backoff; it does not use up retry attempts.
                if injected {
                    bump(&f.counters.injected_errors);
                } else {
                    bump(&f.counters.throttles);
                }
                let throttles = event.bump_throttles();
                let mut delay = config.retry.throttle_delay(throttles, &mut *f.rng.lock());
                if let Some(faults) = faults {
                    delay += faults.extra_delay();
                }
                let due = now + delay;
                self.trace(f, request_id, now, TraceKind::Throttled { due, injected });
                let step = if config.retry.is_expired(event.enqueued_at(), due) {
                    self.finish(
                        f,
                        version,
                        event,
                        Condition::EventAgeExceeded,
                        None,
                        true,
                        now,
                    );
                    end(Condition::EventAgeExceeded)
                } else {
                    match self.requeue(f, version, event, due, now) {
                        None => Dispatched {
                            request_id,
                            outcome: StepOutcome::Throttled { due },
                        },
                        Some(c) => end(c),
                    }
                };
                if let Some(model) = &self.inner.model {
                    // After the event's fate is settled, so that one that ended is not counted.
                    model.observe(now, self.running(), self.outstanding());
                }
                return step;
            }
        }
        let attempt = event.bump_attempts();
        if !duplicate {
            event.set_last_version(version.number);
        }
        let age = crate::parts::clock::duration_nanos(now - event.enqueued_at());
        match tally.as_deref_mut() {
            Some(t) => t.started(age),
            None => f.counters.attempt_started(age),
        }
        self.trace(
            f,
            request_id,
            now,
            TraceKind::Started {
                attempt,
                duplicate,
                code_version: version.number,
            },
        );
        // A batch reuses its slots (and their environment): only its first event is cold.
        let cold = held.as_mut().is_some_and(|s| std::mem::take(&mut s.cold));
        let Some(model) = &self.inner.model else {
            let (result, ended_at) = self.run_handler(
                f,
                version,
                event.payload(),
                request_id,
                event.enqueued_at(),
                now,
                attempt,
                event.chain_depth(),
                duplicate,
                None,
                cold,
            );
            *ended = ended_at;
            return self.conclude(f, version, event, attempt, result, now, ended_at, tally);
        };
        // Model mode: the execution's virtual time line (see `CostModel`).
        model.started(now, age, self.running(), self.outstanding());
        let cost = config.cost.as_ref();
        let latency = cost
            .and_then(|c| c.latency())
            .unwrap_or(model.options.latency());
        let begin = match cost {
            Some(c) if cold => now + c.cold_start_time(),
            _ => now,
        };
        // The timeout counts from the end of the cold start: Lambda's init phase has its own
        // limit and does not use up the invoke's timeout.
        let deadline = begin + config.timeout;
        let cursor = crate::model::Cursor::new(begin, deadline, latency);
        let (mut result, _) = self.run_handler(
            f,
            version,
            event.payload(),
            request_id,
            event.enqueued_at(),
            now,
            attempt,
            event.chain_depth(),
            duplicate,
            Some(&cursor),
            cold,
        );
        let mut end = cursor.at();
        if let Some(cost) = cost {
            let mut rng = f.cost_rng.lock();
            end = end + std::time::Duration::from_nanos(cost.sample(&mut rng));
            if cost.draw_failure(&mut rng) && result.is_ok() {
                result = Err(crate::model::CostModel::failure());
            }
        }
        if end > deadline || cursor.timed_out() {
            end = deadline;
            result = Err(FunctionError::timeout(config.timeout));
        }
        if end == now {
            // Took no virtual time: it ends in this step, like a real execution. Its slots go
            // back first and its counts go straight to the counters (not to a batch tally, a
            // model batch is one event), so that the timeline sees it gone.
            *held = None;
            *ended = end;
            let _ = tally;
            let d = self.conclude(f, version, event, attempt, result, now, end, None);
            model.observe(now, self.running(), self.outstanding());
            return d;
        }
        // It ends later: its slots stay taken until then.
        let slots = held.take().map(|slots| self.own_slots(f, slots));
        model.push_completion(crate::model::Completion {
            at: end.as_nanos(),
            function: Arc::clone(f),
            version: Arc::clone(version),
            event,
            result,
            attempt,
            started: now,
            slots,
        });
        Dispatched {
            request_id,
            outcome: StepOutcome::Running { until: end },
        }
    }

    /// Executions running in the account now.
    pub(crate) fn running(&self) -> u64 {
        self.inner.account.in_flight() as u64
    }

    /// Runs the handler once under `catch_unwind`, measures it, and applies the timeout.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn run_handler(
        &self,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        payload: &P,
        request_id: RequestId,
        enqueued_at: Timestamp,
        started_at: Timestamp,
        attempt: u32,
        chain_depth: u32,
        duplicate: bool,
        cursor: Option<&Cursor>,
        cold_start: bool,
    ) -> (Result<R, FunctionError>, Timestamp) {
        let ctx = Context {
            cursor,
            cold_start,
            runtime: self,
            function: &f.name,
            request_id,
            attempt,
            enqueued_at,
            started_at,
            code_version: version.number,
            chain_depth,
            timeout: version.config.timeout,
            duplicate,
        };
        // Features `tracing` / `metrics`: the attempt's span, entered around the handler.
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let execution = crate::observe::Execution::start(
            &f.name,
            request_id,
            attempt,
            version.number,
            duplicate,
            started_at - enqueued_at,
        );
        // A panicking handler is a function error, not a dead worker: the slots are released
        // by their guard and the event goes on to its retry or record.
        let result = catch_unwind(AssertUnwindSafe(|| version.handler.handle(payload, &ctx)))
            .unwrap_or_else(|panic| Err(FunctionError::from_panic(panic)));
        let ended_at = self.inner.clock.now();
        let duration = ended_at - started_at;
        let result = if duration > version.config.timeout {
            Err(FunctionError::timeout(version.config.timeout))
        } else {
            result
        };
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        execution.finish(duration, &result);
        (result, ended_at)
    }
}
