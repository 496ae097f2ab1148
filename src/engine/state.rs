//! What the engine keeps per function and for the whole runtime: the state every engine module
//! reads.

use std::ops::DerefMut;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::executor::Executor;
use super::FaultSeam;
use crate::observe::TraceEvent;
use crate::parts::clock::{duration_nanos, Clock, Timestamp};
use crate::parts::inbox::{Arrivals, Inbox, MOST_ARRIVALS};
use crate::parts::limiter::{AccountLimiter, ConcurrencyLimiter};
use crate::parts::queue::{InvocationQueue, QueuedEvent};
use crate::parts::record::InvocationRecord;
use crate::parts::rng::SeededRng;
use crate::parts::run_queue::RunQueue;

use super::{
    Counters, Environments, FunctionConfig, Handler, RecursionGuard, Registry, Timers,
    ZeroConcurrency,
};

/// One code version of a function with the settings in force. Replaced whole (copy on write)
/// by `update_code` and `update_config`, so a worker reads both with one `Arc` clone.
pub(crate) struct Version<P, R> {
    pub(crate) handler: Arc<dyn Handler<P, R>>,
    pub(crate) number: u64,
    pub(crate) config: FunctionConfig<P, R>,
    /// `config.timeout` and the retry policy's maximum event age in nanoseconds, read by
    /// every attempt: compared as plain integers.
    timeout_ns: u64,
    maximum_event_age_ns: u64,
}

impl<P, R> Version<P, R> {
    pub(crate) fn new(
        handler: Arc<dyn Handler<P, R>>,
        number: u64,
        config: FunctionConfig<P, R>,
    ) -> Self {
        Version {
            handler,
            number,
            timeout_ns: duration_nanos(config.timeout),
            maximum_event_age_ns: duration_nanos(config.retry.maximum_event_age()),
            config,
        }
    }

    /// Whether an event accepted at `enqueued_at` is too old to start an attempt at `at`
    /// ([`RetryPolicy::is_expired`](crate::RetryPolicy::is_expired), in nanoseconds).
    #[inline]
    pub(crate) fn is_expired(&self, enqueued_at: Timestamp, at: Timestamp) -> bool {
        at.nanos_since(enqueued_at) >= self.maximum_event_age_ns
    }

    /// Whether an execution that took `took_ns` ran past the timeout.
    #[inline]
    pub(crate) fn timed_out(&self, took_ns: u64) -> bool {
        took_ns > self.timeout_ns
    }
}

/// A function's mutable state, behind its own lock (no lock is shared by all functions on the
/// hot path).
pub(crate) struct FnState<P, R> {
    pub(crate) queue: InvocationQueue<P>,
    /// Events accepted, those on their way in the inbox excepted (each is counted when it
    /// joins the queue: [`FunctionShared::lock`] counts them all).
    pub(crate) received: u64,
    /// The buffer the inbox's events are swapped into on their way to the queue: kept empty,
    /// with its room, between swaps.
    pub(crate) spare: Vec<QueuedEvent<P>>,
    pub(crate) paused: bool,
    pub(crate) deleted: bool,
    pub(crate) current: Arc<Version<P, R>>,
    /// Model mode: events whose invoke call has not returned yet. They count against the
    /// queue's capacity like the events in it.
    pub(crate) arriving: usize,
    /// Model mode: the function's poller backed off after a throttle. Until this time it
    /// reads the next event only when an execution slot is free for it (events wait in the
    /// queue, not throttled); then it polls again on its own.
    #[cfg(feature = "model")]
    pub(crate) poller_until: Option<Timestamp>,
}

pub(crate) struct FunctionShared<P, R> {
    pub(crate) index: u32,
    pub(crate) name: Arc<str>,
    /// The function's own lock: its queue and settings. Whoever reads the queue takes it with
    /// [`lock`](Self::lock), which moves the events waiting in the inbox in first.
    pub(crate) state: Mutex<FnState<P, R>>,
    /// Where invokes put new events without the function's lock (see `parts::inbox`), with
    /// the request ids' sequence and the run token (whether the function is in the run
    /// queue, or about to be).
    pub(crate) inbox: Inbox<QueuedEvent<P>>,
    /// Whether invokes may use the inbox at all: not in model mode (arrivals hold places in
    /// the queue) nor under fault injection (duplicates join the queue under the lock).
    pub(crate) unlocked_admission: bool,
    /// Reserved concurrency, or unlimited (then it only counts this function's executions).
    /// In an `Arc` so that model mode can keep an execution's permit until its virtual end.
    pub(crate) limiter: Arc<ConcurrencyLimiter>,
    pub(crate) counters: Counters,
    pub(crate) rng: Mutex<SeededRng>,
    /// Bumped by every operator call that must reach events a worker already took in a batch
    /// (pause, delete, code and settings updates): the worker gives the rest back.
    pub(crate) epoch: AtomicU64,
    /// Recent mean handler time in nanoseconds (`u64::MAX`: not measured since the code last
    /// changed), which decides whether the function's events are batched.
    pub(crate) recent_ns: AtomicU64,
    /// Execution environments made (only counted when environments are modelled).
    pub(crate) environments: AtomicU64,
    /// Draws of the cost model (model mode), apart from `rng` so that a cost model does not
    /// change the throttle jitter.
    #[cfg(feature = "model")]
    pub(crate) cost_rng: Mutex<SeededRng>,
}

impl<P, R> FunctionShared<P, R> {
    /// The function's state, locked, with every event that arrived in the inbox moved into
    /// its queue: what whoever reads or changes the queue takes (views, purges, edits,
    /// timers, metrics, operator calls).
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, FnState<P, R>> {
        let mut st = self.state.lock();
        self.take_arrivals(&mut st);
        st
    }

    /// Moves the events that arrived in the inbox into the queue (`st` is the function's
    /// lock), and gives the inbox its room anew. Call it again after changing what the room
    /// depends on (pause, resume, delete, the queue's capacity).
    #[inline]
    pub(crate) fn take_arrivals(&self, st: &mut FnState<P, R>) {
        let moved = {
            let mut arrivals = self.inbox.lock();
            self.settle(st, &mut arrivals)
        };
        if moved > 0 {
            let FnState { queue, spare, .. } = st;
            queue.append_arrivals(spare);
        }
    }

    /// [`take_arrivals`](Self::take_arrivals), keeping the inbox locked: while the caller
    /// holds it nothing arrives, so it may give the run token back without looking again
    /// ([`RunToken::keep`](crate::parts::queue::RunToken::keep) on the guard's token).
    #[inline]
    pub(crate) fn lock_arrivals(
        &self,
        st: &mut FnState<P, R>,
    ) -> impl DerefMut<Target = Arrivals<QueuedEvent<P>>> + '_ {
        let mut arrivals = self.inbox.lock();
        if self.settle(st, &mut arrivals) > 0 {
            let FnState { queue, spare, .. } = st;
            queue.append_arrivals(spare);
        }
        arrivals
    }

    /// Takes the inbox's events into `st.spare` (moved into the queue by the caller), counts
    /// them received, and sets the inbox's room; returns how many.
    #[inline]
    pub(crate) fn settle(
        &self,
        st: &mut FnState<P, R>,
        arrivals: &mut Arrivals<QueuedEvent<P>>,
    ) -> usize {
        let moved = if arrivals.is_empty() {
            0
        } else {
            arrivals.take_into(&mut st.spare)
        };
        st.received += moved as u64;
        arrivals.set_room(self.room(st, moved));
        moved
    }

    /// How many events may arrive in the inbox before the lock holder looks again: none
    /// while admission must be decided under the lock (paused, deleted, model mode, fault
    /// injection); otherwise the queue's capacity less the events queued, those on their way
    /// in (`moving`), and those workers hold (in hand: each may come back for a retry or a
    /// throttle), so that an event admitted through the inbox never finds the queue full.
    #[inline]
    fn room(&self, st: &FnState<P, R>, moving: usize) -> usize {
        if !self.unlocked_admission || st.paused || st.deleted || st.arriving > 0 {
            return 0;
        }
        // Read under the function's lock, where events are taken in hand: never below the
        // events in hand now (an event leaves the hand later, or under the lock too).
        let in_hand =
            usize::try_from(self.counters.in_hand.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        st.queue
            .capacity()
            .saturating_sub(st.queue.len())
            .saturating_sub(moving)
            .saturating_sub(in_hand)
            .min(MOST_ARRIVALS)
    }

    /// Claims the run token when events became `runnable`: `true` when the caller must put
    /// the function in the run queue (it was not there yet).
    #[inline]
    pub(crate) fn claim_token(&self, runnable: bool) -> bool {
        runnable && self.inbox.lock().token().claim(true)
    }

    /// A worker holding the run token took an event (or found none), with `st` locked:
    /// `true` when ready events remain (in the queue, or arrived in the inbox meanwhile:
    /// moved in) and the caller must put the function in the run queue again; otherwise the
    /// token goes back, under the inbox's lock, so that the next arrival claims it.
    #[inline]
    pub(crate) fn keep_token(&self, st: &mut FnState<P, R>, ready: bool) -> bool {
        if ready {
            // The token is out (this worker holds it): it stays out.
            return true;
        }
        let moved = {
            let mut arrivals = self.inbox.lock();
            if arrivals.is_empty() {
                return arrivals.token().keep(false);
            }
            self.settle(st, &mut arrivals)
        };
        let FnState { queue, spare, .. } = st;
        queue.append_arrivals(spare);
        debug_assert!(moved > 0);
        true
    }

    /// A worker found the function paused or deleted: the token goes back until a resume.
    #[inline]
    pub(crate) fn drop_token(&self) {
        self.inbox.lock().token().drop_token();
    }
}

pub(crate) type Observer<P, R> = Box<dyn Fn(&InvocationRecord<P, R>) + Send + Sync>;
pub(crate) type Tracer = Box<dyn Fn(&TraceEvent<'_>) + Send + Sync>;

pub(crate) struct Inner<P, R> {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) is_virtual: bool,
    pub(crate) registry: RwLock<Registry<P, R>>,
    /// The account's and the unreserved pool's slots (one word), in an `Arc` like functions'
    /// limiters.
    pub(crate) account: Arc<AccountLimiter>,
    /// The runtime's settings that never change after `build`.
    pub(crate) settings: Settings,
    /// Functions with ready events (each at most once: its run token), and the workers parked
    /// until one comes.
    pub(crate) run_queue: RunQueue<Arc<FunctionShared<P, R>>>,
    /// Due retries and backoffs, and held events' age deadlines.
    pub(crate) timers: Timers<P, R>,
    /// Functions waiting for an execution slot to be given back (wait mode): each is out of
    /// the run queue but keeps its run token, and goes back to the run queue when a slot of a
    /// limiter it marked ([`ConcurrencyLimiter::wait_for_slot`]) is given back.
    pub(crate) slot_waiters: Mutex<Vec<Arc<FunctionShared<P, R>>>>,
    /// Events accepted and not yet ended.
    pub(crate) outstanding: AtomicU64,
    /// Where `wait_idle` waits for `outstanding` to reach 0.
    pub(crate) idle: IdleWait,
    pub(crate) dead_letters: Mutex<Vec<InvocationRecord<P, R>>>,
    /// The caller's `on_record` and `on_trace` hooks.
    pub(crate) hooks: Hooks<P, R>,
    pub(crate) faults: Option<Box<dyn FaultSeam<P>>>,
    /// How executions take time: real threads, or virtual time (model mode).
    pub(crate) executor: Executor<P, R>,
    /// Environments, counted for cold starts and the scaling rate.
    pub(crate) environments: Option<Environments>,
}

/// The runtime's settings that never change after `build` (see [`RuntimeBuilder`](crate::RuntimeBuilder)).
pub(crate) struct Settings {
    pub(crate) unreserved_floor: u32,
    pub(crate) zero_concurrency: ZeroConcurrency,
    /// Whether an event with no free slot waits for one (`ConcurrencyLimitExceeded::Wait` on
    /// real threads) rather than being throttled.
    pub(crate) wait_for_slots: bool,
    pub(crate) recursion_guard: RecursionGuard,
    /// Seeds each function's random numbers (throttle jitter, cost models).
    pub(crate) seed: u64,
    pub(crate) keep_dead_letters: bool,
}

/// Where `wait_idle` waits: a waiter sleeps on `cv` under `lock`; the last event to end
/// notifies only when `waiters` says somebody waits.
#[derive(Default)]
pub(crate) struct IdleWait {
    pub(crate) lock: Mutex<()>,
    pub(crate) cv: Condvar,
    pub(crate) waiters: AtomicUsize,
}

/// The caller's hooks: every record (`on_record`) and every step (`on_trace`).
pub(crate) struct Hooks<P, R> {
    pub(crate) observer: Option<Observer<P, R>>,
    pub(crate) tracer: Option<Tracer>,
}
