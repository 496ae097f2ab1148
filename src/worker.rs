//! Driving the engine: the worker step, [`Runtime::run_worker`], [`Runtime::run_until_idle`],
//! [`Runtime::try_dispatch`], and [`StopSignal`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::clock::Timestamp;
use crate::fault::TraceKind;
use crate::function::ZeroConcurrency;
use crate::metrics::{bump, Tally};
use crate::queue::QueuedEvent;
use crate::record::FunctionError;
use crate::record::{Condition, RequestId};
use crate::runtime::{FunctionShared, Runtime, Slots, Task, Version};

/// The most ready events a worker takes from one function at once.
const BATCH: usize = 16;
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

/// Tells worker loops to return. Clones share one signal; stopping is permanent.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, Runtime, StopSignal};
///
/// let rt: Runtime<u32> = Runtime::new();
/// rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
/// let stop = StopSignal::new();
/// let worker = {
///     let (rt, stop) = (rt.clone(), stop.clone());
///     std::thread::spawn(move || rt.run_worker(&stop))
/// };
/// rt.invoke_async("f", 1).unwrap();
/// rt.wait_idle();
/// stop.stop();
/// assert_eq!(worker.join().unwrap(), 1);
/// ```
#[derive(Clone)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

struct StopInner {
    stopped: AtomicBool,
    // Dropping the sender disconnects the channel, which wakes every parked worker at once.
    tx: Mutex<Option<Sender<()>>>,
    rx: Receiver<()>,
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        StopSignal {
            inner: Arc::new(StopInner {
                stopped: AtomicBool::new(false),
                tx: Mutex::new(Some(tx)),
                rx,
            }),
        }
    }

    /// Asks every worker using this signal to return after its current step (one event, or a
    /// batch of a fast function's events).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.tx.lock().take();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSignal")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Worker threads started by [`Runtime::spawn_workers`]. Dropping it stops and joins them.
pub struct Workers {
    stop: StopSignal,
    threads: Vec<JoinHandle<u64>>,
}

impl Workers {
    /// Stops the workers, waits for them, and returns how many events they dispatched.
    pub fn stop(mut self) -> u64 {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> u64 {
        self.stop.stop();
        self.threads.drain(..).map(|t| t.join().unwrap_or(0)).sum()
    }

    /// How many worker threads run.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no worker thread runs.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Runs events on the calling thread until `stop` is given; returns how many events it
    /// dispatched. Any number of threads may run it at once.
    ///
    /// When nothing is due it blocks without spinning: it wakes for a new event, for the next
    /// retry's due time (real clock), when a [`ManualClock`](crate::ManualClock) moves, and when
    /// stopped.
    ///
    /// For a function whose handler is fast (under 20 µs on average lately), a worker takes up
    /// to 16 ready events at once and runs them back to back under one execution slot. The
    /// rest of such a batch goes back to the queue, untouched, as soon as an operator call
    /// (pause, delete, new code or settings) reaches the function, an event is throttled, or
    /// the handler turns slow.
    ///
    /// In model mode ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)) a worker never
    /// moves virtual time, so executions waiting for their virtual end wait for whoever moves
    /// the clock, and the run is no longer deterministic: drive a model with
    /// [`run_until_idle`](Self::run_until_idle) on one thread instead.
    pub fn run_worker(&self, stop: &StopSignal) -> u64 {
        let inner = &self.inner;
        let mut dispatched = 0;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if stop.is_stopped() {
                return dispatched;
            }
            let now = inner.clock.now();
            self.model_due(now);
            self.fire_timers(now);
            match inner.run_rx.try_recv() {
                Ok(task) => {
                    dispatched += self.run_batch(task, &mut batch);
                    continue;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return dispatched,
            }
            // Park. Count ourselves first, then re-check the timers: whoever arms an earlier
            // timer or moves the virtual clock after this point sees `parked > 0` and sends a
            // Tick, so no wake-up is lost.
            inner.parked.fetch_add(1, Ordering::SeqCst);
            let next = inner.next_timer.load(Ordering::SeqCst);
            let now = inner.clock.now();
            if next <= now.as_nanos() {
                inner.parked.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let timeout = if inner.is_virtual || next == u64::MAX {
                crossbeam_channel::never()
            } else {
                crossbeam_channel::after(Timestamp::from_nanos(next) - now)
            };
            crossbeam_channel::select! {
                recv(inner.run_rx) -> task => {
                    inner.parked.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(task) = task {
                        dispatched += self.run_batch(task, &mut batch);
                    }
                }
                recv(stop.inner.rx) -> _ => {
                    inner.parked.fetch_sub(1, Ordering::SeqCst);
                    return dispatched;
                }
                recv(timeout) -> _ => {
                    inner.parked.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Starts `n` threads running [`run_worker`](Self::run_worker) (at least one). Fails when
    /// the operating system refuses a thread (the threads already started are stopped), and
    /// for a runtime in model mode, which runs on the calling thread
    /// ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)).
    pub fn spawn_workers(&self, n: usize) -> std::io::Result<Workers> {
        if self.inner.model.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a runtime in model mode runs on the calling thread: drive it with \
                 run_until_idle, run_until or run_for instead of worker threads",
            ));
        }
        let mut workers = Workers {
            stop: StopSignal::new(),
            threads: Vec::with_capacity(n.max(1)),
        };
        for i in 0..n.max(1) {
            let rt = self.clone();
            let stop = workers.stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("event-invoke-worker-{i}"))
                .spawn(move || rt.run_worker(&stop))?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Dispatches at most one event that is due now, on the calling thread: the single step.
    /// `None` when nothing is due.
    pub fn try_dispatch(&self) -> Option<Dispatched> {
        let now = self.inner.clock.now();
        self.model_due(now);
        self.fire_timers(now);
        loop {
            match self.inner.run_rx.try_recv() {
                Ok(Task::Run(f)) => {
                    if let Some(d) = self.step(&f) {
                        return Some(d);
                    }
                }
                Ok(Task::Tick) => {}
                Err(_) => return None,
            }
        }
    }

    /// Runs every event on the calling thread until nothing is left to run, and returns how
    /// many dispatch steps it took (attempts, throttles and events ended without running).
    ///
    /// Under a [`ManualClock`](crate::ManualClock) it jumps virtual time to the next retry or
    /// backoff whenever nothing is due, so hours of retries take milliseconds. Under the system
    /// clock it waits for them. Events held by a paused function do not keep it running (it
    /// does not jump time to age them out: use [`run_for`](Self::run_for)).
    ///
    /// Meant for one driving thread. Alongside worker threads it may return while their
    /// executions are still running; use [`wait_idle`](Self::wait_idle) there.
    pub fn run_until_idle(&self) -> u64 {
        self.run_inner(None)
    }

    /// Runs events on the calling thread until the clock reaches `deadline`, then returns how
    /// many it dispatched. Under a [`ManualClock`](crate::ManualClock) it moves time to each due
    /// point and finally to `deadline`, ageing out held events on the way: this is how to
    /// "wait for events to age out" in a test.
    pub fn run_until(&self, deadline: Timestamp) -> u64 {
        self.run_inner(Some(deadline))
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&self, d: Duration) -> u64 {
        self.run_until(self.now() + d)
    }

    fn run_inner(&self, deadline: Option<Timestamp>) -> u64 {
        let inner = &self.inner;
        let mut dispatched = 0;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let now = inner.clock.now();
            self.model_due(now);
            self.fire_timers(now);
            if let Ok(task) = inner.run_rx.try_recv() {
                dispatched += self.run_batch(task, &mut batch);
                continue;
            }
            // Nothing is runnable now.
            if deadline.is_some_and(|d| now >= d) {
                return dispatched;
            }
            let (any, unheld) = self.next_wake();
            // Model mode: arrivals and execution ends are work that keeps the run going.
            let (any, unheld) = match inner.model.as_ref().and_then(|m| m.next_at()) {
                None => (any, unheld),
                Some(m) => (
                    Some(any.map_or(m, |a| a.min(m))),
                    Some(unheld.map_or(m, |u| u.min(m))),
                ),
            };
            let timers_seen = inner.next_timer.load(Ordering::SeqCst);
            let target = match (deadline, unheld) {
                // Time passes up to the deadline, held events' age deadlines included.
                (Some(d), _) => any.map_or(d, |w| w.min(d)),
                // Only work that can run keeps us going; but on the way to it, time stops at
                // each held event's age deadline, so it ages out when `run_for` would have
                // ended it.
                (None, Some(w)) => any.map_or(w, |a| a.min(w)),
                (None, None) => return dispatched,
            };
            if inner.clock.advance_to(target) {
                continue;
            }
            // A real clock: wait for the target, or for an event from another thread. Counted
            // as parked so that a thread arming an earlier timer nudges us.
            inner.parked.fetch_add(1, Ordering::SeqCst);
            let task = if inner.next_timer.load(Ordering::SeqCst) != timers_seen {
                None // a timer was armed meanwhile: look again
            } else {
                inner.run_rx.recv_timeout(target - now).ok()
            };
            inner.parked.fetch_sub(1, Ordering::SeqCst);
            if let Some(task) = task {
                dispatched += self.run_batch(task, &mut batch);
            }
        }
    }

    /// Runs one task from the run queue: a batch of a function's ready events (see
    /// [`step_batch`](Self::step_batch)), or nothing for a Tick. Returns the events dispatched.
    #[inline]
    fn run_batch(&self, task: Task<P, R>, batch: &mut Vec<QueuedEvent<P>>) -> u64 {
        match task {
            Task::Run(f) => self.step_batch(&f, batch),
            Task::Tick => 0,
        }
    }

    /// How many ready events a worker may take from `f` at once. Batching takes the function's
    /// lock and the run queue once for many events, and holds one execution slot across them;
    /// it is worth it, and harmless, only when the handler is fast: then the events a batch
    /// holds finish within microseconds. With slow handlers, or while faults are injected
    /// (whose draws must stay in a replayable order), it is one event a step.
    #[inline]
    fn batch_limit(&self, f: &FunctionShared<P, R>, ready: usize) -> usize {
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
    fn step_batch(&self, f: &Arc<FunctionShared<P, R>>, batch: &mut Vec<QueuedEvent<P>>) -> u64 {
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
            let took = crate::clock::duration_nanos(ended - at);
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
    fn give_back(
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
    fn step_at(&self, f: &Arc<FunctionShared<P, R>>, now: Timestamp) -> Option<Dispatched> {
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
    fn dispatch<'a>(
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
    fn dispatch_inner<'a>(
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
        let age = crate::clock::duration_nanos(now - event.enqueued_at());
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
        let pool = held.take().is_some_and(|slots| slots.detach());
        model.push_completion(crate::model::Completion {
            at: end.as_nanos(),
            function: Arc::clone(f),
            version: Arc::clone(version),
            event,
            result,
            attempt,
            started: now,
            pool,
        });
        Dispatched {
            request_id,
            outcome: StepOutcome::Running { until: end },
        }
    }

    /// Model mode: an execution reached its virtual end. Its slots go back, then its outcome
    /// counts as if it had just returned.
    pub(crate) fn complete(&self, c: crate::model::Completion<P, R>) {
        let crate::model::Completion {
            at,
            function: f,
            version,
            event,
            result,
            attempt,
            started,
            pool,
        } = c;
        let at = Timestamp::from_nanos(at);
        self.release_detached(&f, pool);
        self.conclude(&f, &version, event, attempt, result, started, at, None);
        if let Some(model) = &self.inner.model {
            model.observe(at, self.running(), self.outstanding());
        }
    }

    /// Runs everything of model mode that is due at `now`: arrivals join their queues and
    /// executions end, in virtual-time order. Cheap when nothing is due: one atomic load.
    #[inline]
    pub(crate) fn model_due(&self, now: Timestamp) {
        let Some(model) = &self.inner.model else {
            return;
        };
        while let Some(due) = model.pop_due(now) {
            match due {
                crate::model::Due::Arrival(a) => self.accept_arrival(a),
                crate::model::Due::Completion(c) => self.complete(*c),
            }
        }
    }

    /// Executions running in the account now.
    fn running(&self) -> u64 {
        self.inner.account.in_flight() as u64
    }

    /// The consequence of an attempt that ran (from `started` to `ended_at`): its counts and
    /// trace, then its record, retry or (for an injected duplicate) nothing.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Arc<Version<P, R>>,
        mut event: QueuedEvent<P>,
        attempt: u32,
        mut result: Result<R, FunctionError>,
        started: Timestamp,
        ended_at: Timestamp,
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
        let took = crate::clock::duration_nanos(ended_at - started);
        match tally.as_deref_mut() {
            Some(t) => t.finished(took),
            None => f.counters.attempt_finished(took),
        }
        if let Some(faults) = faults {
            // Fault seam: the handler did its work, but its response is lost.
            if result.is_ok() && faults.chance(faults.config.function_error) {
                bump(&f.counters.injected_errors);
                result = Err(FunctionError::new(
                    "Injected.FunctionError",
                    "fault injection replaced a successful response",
                ));
            }
        }
        if let Err(error) = &result {
            bump(&f.counters.errors);
            let kind = TraceKind::Failed {
                attempt,
                duplicate,
                error,
            };
            self.trace(f, request_id, ended_at, kind);
        } else {
            let kind = TraceKind::Succeeded { attempt, duplicate };
            self.trace(f, request_id, ended_at, kind);
        }
        if duplicate {
            // A duplicate delivery is never retried and makes no record (`finish` knows).
            self.finish(f, version, event, Condition::Success, None, true, ended_at);
            return Dispatched {
                request_id,
                outcome: StepOutcome::Duplicate,
            };
        }
        match result {
            Ok(response) => {
                if let Some(faults) = faults {
                    // Fault seam: at-least-once delivery runs the event once more.
                    if faults.duplicate(request_id) {
                        self.inject_duplicate(f, &event, faults.clone, ended_at);
                    }
                }
                match tally {
                    Some(t) => {
                        self.finish_success_tallied(f, version, event, response, ended_at, t)
                    }
                    None => self.finish(
                        f,
                        version,
                        event,
                        Condition::Success,
                        Some(Ok(response)),
                        true,
                        ended_at,
                    ),
                }
                end(Condition::Success)
            }
            Err(error) => {
                let Some(mut wait) = config.retry.retry_delay(attempt) else {
                    self.finish(
                        f,
                        version,
                        event,
                        Condition::RetriesExhausted,
                        Some(Err(error)),
                        true,
                        ended_at,
                    );
                    return end(Condition::RetriesExhausted);
                };
                if let Some(faults) = faults {
                    wait += faults.extra_delay();
                }
                let due = ended_at + wait;
                if config.retry.is_expired(event.enqueued_at(), due) {
                    // Lambda does not schedule a retry that would start past the age limit.
                    self.finish(
                        f,
                        version,
                        event,
                        Condition::EventAgeExceeded,
                        Some(Err(error)),
                        true,
                        ended_at,
                    );
                    return end(Condition::EventAgeExceeded);
                }
                event.set_last_error(error);
                self.trace(f, request_id, ended_at, TraceKind::RetryScheduled { due });
                if let Some(model) = &self.inner.model {
                    // Every other way out of here ends the event in `finish`, which notes it.
                    model.note_end(ended_at);
                }
                match self.requeue(f, version, event, due, ended_at) {
                    None => {
                        bump(&f.counters.retries);
                        Dispatched {
                            request_id,
                            outcome: StepOutcome::RetryScheduled { due },
                        }
                    }
                    Some(c) => end(c),
                }
            }
        }
    }

    /// Puts an event back as delayed until `due`, or ends it as `FunctionDeleted` when the
    /// function went away meanwhile (returned then).
    fn requeue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        event: QueuedEvent<P>,
        due: Timestamp,
        now: Timestamp,
    ) -> Option<Condition> {
        {
            let mut st = f.state.lock();
            if !st.deleted {
                st.queue.push_delayed(event, due);
                f.counters.in_hand.fetch_sub(1, Ordering::Relaxed);
                drop(st);
                self.arm_timer(f, due);
                return None;
            }
        }
        self.finish(
            f,
            version,
            event,
            Condition::FunctionDeleted,
            None,
            true,
            now,
        );
        Some(Condition::FunctionDeleted)
    }
}
