//! What the engine keeps per function and for the whole runtime: the state every engine module
//! reads.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::executor::Executor;
use super::FaultSeam;
use crate::observe::TraceEvent;
use crate::parts::clock::Clock;
#[cfg(feature = "model")]
use crate::parts::clock::Timestamp;
use crate::parts::inbox::Inbox;
use crate::parts::limiter::ConcurrencyLimiter;
use crate::parts::queue::{InvocationQueue, QueuedEvent};
use crate::parts::record::InvocationRecord;
use crate::parts::rng::SeededRng;

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
}

/// A function's mutable state, behind its own lock (no lock is shared by all functions on the
/// hot path). Taken with [`FunctionShared::lock`], which first moves the inbox into the queue.
pub(crate) struct FnState<P, R> {
    pub(crate) queue: InvocationQueue<P>,
    /// Events that joined the queue (through the inbox or not).
    pub(crate) received: u64,
    /// An empty buffer the inbox's events are swapped into, kept for its allocation.
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
    /// Take it with [`lock`](Self::lock), never directly: that moves the inbox into the queue
    /// first and keeps the inbox's view of the queue's length.
    pub(crate) state: Mutex<FnState<P, R>>,
    /// New events appended without `state`'s lock, the request-id sequence, the queue's
    /// capacity and the run token ([`Inbox`]).
    pub(crate) inbox: Inbox<QueuedEvent<P>>,
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
    /// The function's state under its lock, with every event appended to the inbox moved into
    /// the queue first (in order, after those already there), so that nothing accepted is
    /// invisible to the lock's holder.
    #[inline]
    pub(crate) fn lock(&self) -> FnGuard<'_, P, R> {
        let mut st = self.state.lock();
        drain_inbox(&self.inbox, &mut st);
        self.guard(st)
    }

    /// The lock for a worker's take (`take_batch`, `take_next`, `step_at`): the inbox is moved
    /// into the queue only when no event is ready there. Every event in the inbox is newer than
    /// the queue's ready line, so the next ready event is the same either way, and a worker
    /// that keeps up with its producers leaves the inbox (and its cache line) to them; whoever
    /// else takes the lock, or this worker once the ready line runs dry, moves them.
    #[inline]
    pub(crate) fn lock_to_take(&self) -> FnGuard<'_, P, R> {
        let mut st = self.state.lock();
        if st.queue.ready_len() == 0 {
            drain_inbox(&self.inbox, &mut st);
        }
        self.guard(st)
    }

    #[inline]
    fn guard<'a>(&'a self, st: MutexGuard<'a, FnState<P, R>>) -> FnGuard<'a, P, R> {
        FnGuard {
            at_lock: st.queue.len(),
            st,
            inbox: &self.inbox,
        }
    }
}

/// Moves `inbox` into `st`'s queue (`st` is the function's state, under its lock).
#[inline]
pub(crate) fn drain_inbox<P, R>(inbox: &Inbox<QueuedEvent<P>>, st: &mut FnState<P, R>) {
    let len = st.queue.len();
    if inbox.take_all(&mut st.spare, len) == 0 {
        return;
    }
    let FnState {
        queue,
        spare,
        received,
        ..
    } = st;
    *received += spare.len() as u64;
    // Admitted against the capacity when appended: they join whatever it is now.
    for event in spare.drain(..) {
        queue.push_unbounded(event);
    }
}

/// A function's state under its lock ([`FunctionShared::lock`]). When released with more
/// events in the queue than when taken, it tells the inbox the queue's length, which the
/// inbox's admission counts against the capacity. Events that left are not told (that would
/// write the producers' cache line on every take): the inbox's count is then too high, never
/// too low, until the next drain sets it exactly; a producer it refuses asks again under the
/// lock ([`enqueue`](crate::Runtime::invoke_async)).
pub(crate) struct FnGuard<'a, P, R> {
    st: MutexGuard<'a, FnState<P, R>>,
    inbox: &'a Inbox<QueuedEvent<P>>,
    /// The queue's length when the lock was taken (after the drain).
    at_lock: usize,
}

impl<P, R> FnGuard<'_, P, R> {
    /// Moves what producers appended since the lock was taken into the queue.
    #[inline]
    pub(crate) fn drain(&mut self) {
        drain_inbox(self.inbox, &mut self.st);
    }

    /// Tells the inbox the queue's exact length now (see [`FnGuard`]).
    #[inline]
    pub(crate) fn note_queued(&self) {
        self.inbox.note_queued(self.st.queue.len());
    }
}

impl<P, R> Deref for FnGuard<'_, P, R> {
    type Target = FnState<P, R>;

    #[inline]
    fn deref(&self) -> &FnState<P, R> {
        &self.st
    }
}

impl<P, R> DerefMut for FnGuard<'_, P, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut FnState<P, R> {
        &mut self.st
    }
}

impl<P, R> Drop for FnGuard<'_, P, R> {
    #[inline]
    fn drop(&mut self) {
        // Still under the lock (the guard's field is dropped after this).
        let len = self.st.queue.len();
        if len > self.at_lock {
            self.inbox.note_queued(len);
        }
    }
}

/// What the run queue carries: a function with ready events, or a nudge to look at the timers.
pub(crate) enum Task<P, R> {
    Run(Arc<FunctionShared<P, R>>),
    Tick,
}

pub(crate) type Observer<P, R> = Box<dyn Fn(&InvocationRecord<P, R>) + Send + Sync>;
pub(crate) type Tracer = Box<dyn Fn(&TraceEvent<'_>) + Send + Sync>;

pub(crate) struct Inner<P, R> {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) is_virtual: bool,
    pub(crate) registry: RwLock<Registry<P, R>>,
    /// The account's and the unreserved pool's slots, in `Arc`s like functions' limiters.
    pub(crate) account: Arc<ConcurrencyLimiter>,
    pub(crate) unreserved: Arc<ConcurrencyLimiter>,
    /// The runtime's settings that never change after `build`.
    pub(crate) settings: Settings,
    pub(crate) run_tx: Sender<Task<P, R>>,
    pub(crate) run_rx: Receiver<Task<P, R>>,
    /// Due retries and backoffs, and held events' age deadlines.
    pub(crate) timers: Timers<P, R>,
    /// Functions waiting for an execution slot to be given back (wait mode): each is out of
    /// the run queue but keeps its run token, and goes back to the run queue when a slot of a
    /// limiter it marked ([`ConcurrencyLimiter::wait_for_slot`]) is given back.
    pub(crate) slot_waiters: Mutex<Vec<Arc<FunctionShared<P, R>>>>,
    /// Workers blocked in the run queue; a wake-up is sent only when one is.
    pub(crate) parked: AtomicUsize,
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
