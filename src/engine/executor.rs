//! The seam between the engine and time: how an execution takes time.
//!
//! Dispatch decides *whether* an event runs (guards, slots, throttles); the executor decides
//! *how long* the run takes and *when* its outcome counts. There are two:
//!
//! | executor | an execution ends | its outcome counts | workers |
//! |---|---|---|---|
//! | `Executor::Threads` | when its handler returns, on the worker's thread | at once | any number of threads |
//! | `Executor::Virtual` (feature `model`) | at the virtual end its cost model gives | when virtual time gets there | the driving thread |
//!
//! The engine matches the executor in a few places only, the way crossbeam-channel matches
//! its flavors once per operation: when a client invokes (a virtual call takes the invoke
//! latency), when an execution starts (a virtual one keeps its slots until its end), when the
//! driver looks for due work, and when the timeline samples (and learns of an event put back
//! to wait out a retry or a backoff). Everything virtual time needs from the engine is in
//! [`VirtualTime`]; model mode (`crate::model`) implements it and reaches the engine only
//! through this seam and the public API.

use std::marker::PhantomData;

use crate::parts::clock::Timestamp;
#[cfg(feature = "model")]
pub(crate) use virtual_time::{
    Arrival, BackedOff, Completion, Due, Started, ThrottleCause, VirtualTime,
};

/// One execution's virtual time line, as its handler's [`Context`](crate::Context) sees it:
/// model mode's executions have one; real executions (`None`) run on the clock. `Sync`, so
/// that a [`Context`](crate::Context) stays `Send + Sync` for handlers that fan out from
/// threads of their own.
pub(crate) trait ExecutionLine: Sync {
    /// Virtual time left before the timeout.
    fn remaining(&self) -> std::time::Duration;
    /// The handler works for `d` here.
    fn spend(&self, d: std::time::Duration);
    /// Charges one invoke: when the call returns, or `None` past the timeout.
    fn call(&self) -> Option<Timestamp>;
}

/// How executions take time; see the module docs.
pub(crate) enum Executor<P, R> {
    /// Real time: an execution runs to its end on the worker thread that started it.
    Threads(PhantomData<fn() -> (P, R)>),
    /// Virtual time (model mode): executions take the time a cost model gives them.
    #[cfg(feature = "model")]
    Virtual(Box<dyn VirtualTime<P, R>>),
}

impl<P: Send + 'static, R: Send + 'static> Executor<P, R> {
    /// Whether executions take virtual time.
    #[inline]
    pub(crate) fn is_virtual(&self) -> bool {
        match self {
            Executor::Threads(_) => false,
            #[cfg(feature = "model")]
            Executor::Virtual(_) => true,
        }
    }

    /// The client (code outside any handler) makes an invoke call now: when the call returns
    /// and its event is accepted, or `None` for at once. `now` is read only in virtual time:
    /// the real-time invoke path reads the clock once, where the event is queued.
    #[inline]
    pub(crate) fn client_call(&self, now: impl FnOnce() -> Timestamp) -> Option<Timestamp> {
        match self {
            Executor::Threads(_) => {
                let _ = now;
                None
            }
            #[cfg(feature = "model")]
            Executor::Virtual(v) => Some(v.client_call(now())),
        }
    }

    /// When something of virtual time next comes due (an arrival, an execution's end).
    #[inline]
    pub(crate) fn next_at(&self) -> Option<Timestamp> {
        match self {
            Executor::Threads(_) => None,
            #[cfg(feature = "model")]
            Executor::Virtual(v) => v.next_at(),
        }
    }

    /// Something ended at `at` (an execution, or an event's outcome).
    #[inline]
    pub(crate) fn note_end(&self, at: Timestamp) {
        match self {
            Executor::Threads(_) => {
                let _ = at;
            }
            #[cfg(feature = "model")]
            Executor::Virtual(v) => v.note_end(at),
        }
    }

    /// An event was put back to wait until `due` (a retry delay or a throttle backoff).
    #[inline]
    pub(crate) fn delayed_until(&self, due: Timestamp) {
        match self {
            Executor::Threads(_) => {
                let _ = due;
            }
            #[cfg(feature = "model")]
            Executor::Virtual(v) => v.delayed_until(due),
        }
    }

    /// Concurrency or the queues changed at `now`: `counts` gives (running, outstanding), read
    /// only when virtual time keeps a timeline.
    #[inline]
    pub(crate) fn observe(&self, now: Timestamp, counts: impl FnOnce() -> (u64, u64)) {
        match self {
            Executor::Threads(_) => {
                let _ = (now, counts);
            }
            #[cfg(feature = "model")]
            Executor::Virtual(v) => {
                let (running, outstanding) = counts();
                v.observe(now, running, outstanding);
            }
        }
    }
}

#[cfg(feature = "model")]
mod virtual_time {
    use std::any::Any;
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::engine::{FunctionConfig, FunctionShared, OwnedSlots, Version};
    use crate::parts::clock::Timestamp;
    use crate::parts::error::Error;
    use crate::parts::queue::QueuedEvent;
    use crate::parts::record::FunctionError;
    use crate::parts::rng::SeededRng;

    use super::ExecutionLine;

    /// What virtual time provides the engine: implemented by model mode.
    pub(crate) trait VirtualTime<P, R>: Send + Sync + 'static {
        /// For model mode's own calls on the runtime (its report and timeline).
        fn as_any(&self) -> &dyn Any;
        /// Checks the settings when the runtime is built.
        fn validate(&self) -> Result<(), Error>;
        /// The client makes an invoke call at `now`: when it returns.
        fn client_call(&self, now: Timestamp) -> Timestamp;
        /// Runs one execution that starts at `now` on a virtual time line, under `config`:
        /// `handler` runs the handler against that line, and `draws` is the function's own
        /// random stream for its cost model. Returns the result and the virtual end.
        fn execute(
            &self,
            draws: &Mutex<SeededRng>,
            config: &FunctionConfig<P, R>,
            now: Timestamp,
            cold: bool,
            handler: &mut dyn FnMut(&dyn ExecutionLine) -> Result<R, FunctionError>,
        ) -> (Result<R, FunctionError>, Timestamp);
        /// Keeps an event on its way to a queue until its call returns.
        fn push_arrival(&self, arrival: Arrival<P, R>);
        /// Keeps an execution until its virtual end.
        fn push_completion(&self, completion: Completion<P, R>);
        /// The earliest arrival or execution end due by `now`.
        fn pop_due(&self, now: Timestamp) -> Option<Due<P, R>>;
        /// [`observe`](Self::observe) at `at`, then [`pop_due`](Self::pop_due) at `now`: the
        /// driver does both after each arrival or execution end it runs.
        fn observe_then_pop_due(
            &self,
            at: Timestamp,
            running: u64,
            outstanding: u64,
            now: Timestamp,
        ) -> Option<Due<P, R>> {
            self.observe(at, running, outstanding);
            self.pop_due(now)
        }
        /// When something next comes due.
        fn next_at(&self) -> Option<Timestamp>;
        /// An execution started at `now`.
        fn started(&self, now: Timestamp, start: Started);
        /// An attempt of the function registered `function`-th was throttled for `cause`.
        /// Returns whether the function's poller backs off (reads no more of its events
        /// until capacity frees or the throttled event comes back).
        fn throttled(&self, function: u32, cause: ThrottleCause) -> bool;
        /// A function-error retry of the function registered `function`-th is due at `due`.
        fn retry_scheduled(&self, function: u32, due: Timestamp);
        /// A function with reserved concurrency `reserved` runs `running` executions and holds
        /// `queued` events (ready or delayed) at `now`.
        fn observe_reserved(
            &self,
            now: Timestamp,
            function: u32,
            reserved: u64,
            running: u64,
            queued: u64,
        );
        /// Functions whose poller backed off, to look at again when capacity frees.
        fn backed_off(&self) -> &BackedOff<P, R>;
        /// Concurrency or the queues changed at `now`.
        fn observe(&self, now: Timestamp, running: u64, outstanding: u64);
        /// Something ended at `at`.
        fn note_end(&self, at: Timestamp);
        /// An event was put back to wait until `due` (a retry delay or a throttle backoff).
        fn delayed_until(&self, due: Timestamp);
    }

    /// An event on its way to a queue: its invoke call returns at `at`.
    pub(crate) struct Arrival<P, R> {
        pub(crate) at: Timestamp,
        pub(crate) function: Arc<FunctionShared<P, R>>,
        pub(crate) event: QueuedEvent<P>,
    }

    /// An execution that started and ends at `at`, holding its slots until then.
    pub(crate) struct Completion<P, R> {
        pub(crate) at: Timestamp,
        pub(crate) function: Arc<FunctionShared<P, R>>,
        pub(crate) version: Arc<Version<P, R>>,
        pub(crate) event: QueuedEvent<P>,
        /// Its result. [`FunctionError`] is one boxed word, so a completion (moved in and out
        /// of the model's queue a million times in a big model) stays small.
        pub(crate) result: Result<R, FunctionError>,
        pub(crate) attempt: u32,
        pub(crate) started: Timestamp,
        /// Its execution slots, given back when it ends (or when the completion is dropped).
        pub(crate) slots: Option<OwnedSlots>,
    }

    /// Functions whose poller backed off after a throttle (model mode's
    /// `ThrottledEvents::PollerBacksOff`); `any` lets an execution's end skip the lock when
    /// there are none.
    pub(crate) struct BackedOff<P, R> {
        pub(crate) list: Mutex<Vec<Arc<FunctionShared<P, R>>>>,
        pub(crate) any: std::sync::atomic::AtomicBool,
    }

    impl<P, R> Default for BackedOff<P, R> {
        fn default() -> Self {
            BackedOff {
                list: Mutex::new(Vec::new()),
                any: std::sync::atomic::AtomicBool::new(false),
            }
        }
    }

    /// What an execution's start tells the model.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Started {
        /// How long its event waited since it was accepted.
        pub(crate) age_ns: u64,
        /// Whether it is the event's first attempt.
        pub(crate) first: bool,
        /// Executions running in the account (this one included).
        pub(crate) running: u64,
        /// Events accepted and not ended.
        pub(crate) outstanding: u64,
    }

    /// Why an attempt found no execution slot.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum ThrottleCause {
        /// The function's reserved concurrency was all in use.
        Reserved,
        /// The account's limit (or the unreserved pool) was all in use.
        Account,
        /// The scaling rate refused a new execution environment.
        Scaling,
    }

    /// What comes due in virtual time.
    pub(crate) enum Due<P, R> {
        Arrival(Arrival<P, R>),
        Completion(Completion<P, R>),
    }
}
