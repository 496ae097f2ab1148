//! What the engine keeps per function and for the whole runtime: the state every engine module
//! reads.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::executor::Executor;
use super::FaultSeam;
use crate::observe::TraceEvent;
use crate::parts::clock::{duration_nanos, Clock, Timestamp};
use crate::parts::limiter::{AccountLimiter, ConcurrencyLimiter};
use crate::parts::queue::{InvocationQueue, RunToken};
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
    pub(crate) seq: u64,
    pub(crate) received: u64,
    /// Whether this function is in the run queue (or about to be).
    pub(crate) token: RunToken,
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
    pub(crate) state: Mutex<FnState<P, R>>,
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
