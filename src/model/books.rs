//! The model's books: what comes due in virtual time (arrivals, execution ends) and the
//! statistics of the report.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::ages::{Ages, EXACT_LIMIT};
use super::due::DueQueue;
use super::timeline::Queue;
use super::{
    AgeSummary, Cursor, ModelOptions, ThrottleCauses, ThrottledEvents, Timeline, TimelineBuf,
};
use crate::engine::{
    Arrival, BackedOff, Completion, Due, ExecutionLine, FunctionConfig, Started, ThrottleCause,
    VirtualTime,
};
use crate::parts::clock::{duration_nanos, Timestamp};
use crate::parts::cost::CostModel;
use crate::parts::error::Error;
use crate::parts::record::FunctionError;
use crate::parts::rng::SeededRng;

struct Core<P, R> {
    arrivals: DueQueue<Arrival<P, R>>,
    completions: DueQueue<Completion<P, R>>,
    /// Ties between equal due times of either queue go to the one scheduled first.
    seq: u64,
    /// When each event put back to wait out a retry delay or a throttle backoff becomes
    /// ready; those due by the latest sample are gone.
    delayed: BinaryHeap<Reverse<u64>>,
    client: Option<u64>,
    /// Ages at the start of events' first attempts, and of later ones.
    first_ages: Ages,
    later_ages: Ages,
    /// When the latest first attempt started.
    last_first_start: Option<u64>,
    /// Per function (by registration index).
    functions: Vec<FunctionBooks>,
    timeline: TimelineBuf,
}

/// What the model counts of one function beside the engine's metrics.
#[derive(Default)]
struct FunctionBooks {
    throttles: ThrottleCauses,
    /// Due times of function-error retries not yet due (those events wait for the retry
    /// policy, not for capacity).
    retries_due: BinaryHeap<Reverse<u64>>,
    /// Reserved slots free at the last sample, and whether events waited for them then.
    idle_slots: u64,
    waiting: bool,
    sampled_at: u64,
    /// Reserved slot-nanoseconds that sat idle while events of the function waited.
    idle_slot_ns: u128,
}

impl<P, R> Core<P, R> {
    fn function(&mut self, index: u32) -> &mut FunctionBooks {
        let i = index as usize;
        if self.functions.len() <= i {
            self.functions.resize_with(i + 1, FunctionBooks::default);
        }
        &mut self.functions[i]
    }
}

/// The model's books: the heaps of what comes due, the client's call cursor, and the
/// statistics of the report.
pub(crate) struct Model<P, R> {
    pub(crate) options: ModelOptions,
    core: Mutex<Core<P, R>>,
    /// The earliest due time of either heap (`u64::MAX`: none), read without the lock.
    next_at: AtomicU64,
    first_call: AtomicU64,
    last_end: AtomicU64,
    /// Functions whose poller backed off ([`ThrottledEvents::PollerBacksOff`]).
    backed_off: BackedOff<P, R>,
}

impl<P, R> Model<P, R> {
    pub(crate) fn new(options: ModelOptions) -> Self {
        let timeline = TimelineBuf::new(
            duration_nanos(options.timeline_resolution),
            options.timeline_points,
        );
        Model {
            options,
            core: Mutex::new(Core {
                arrivals: DueQueue::new(),
                completions: DueQueue::new(),
                seq: 0,
                delayed: BinaryHeap::new(),
                client: None,
                first_ages: Ages::new(EXACT_LIMIT),
                later_ages: Ages::new(EXACT_LIMIT),
                last_first_start: None,
                functions: Vec::new(),
                timeline,
            }),
            next_at: AtomicU64::new(u64::MAX),
            first_call: AtomicU64::new(u64::MAX),
            last_end: AtomicU64::new(0),
            backed_off: BackedOff::default(),
        }
    }

    /// The client (code outside any handler) makes one invoke call at `now` or after its
    /// previous one: the time the call returns, when its event is accepted.
    pub(crate) fn client_call(&self, now: Timestamp) -> Timestamp {
        let mut core = self.core.lock();
        let start = core
            .client
            .map_or(now.as_nanos(), |c| c.max(now.as_nanos()));
        self.first_call.fetch_min(start, Ordering::Relaxed);
        core.timeline.start(start);
        let end = start.saturating_add(duration_nanos(self.options.invoke_latency));
        core.client = Some(end);
        Timestamp::from_nanos(end)
    }

    fn refresh_next(&self, core: &Core<P, R>) {
        let a = core.arrivals.peek_at().unwrap_or(u64::MAX);
        let c = core.completions.peek_at().unwrap_or(u64::MAX);
        // Written under the lock only, so read back as it is: most takes leave it unchanged
        // (a thousand items due at one instant), and the store would be a full barrier.
        if self.next_at.load(Ordering::Relaxed) != a.min(c) {
            self.next_at.store(a.min(c), Ordering::SeqCst);
        }
    }

    pub(crate) fn push_arrival(&self, arrival: Arrival<P, R>) {
        let mut core = self.core.lock();
        core.seq += 1;
        let seq = core.seq;
        let at = arrival.at.as_nanos();
        core.arrivals.push(at, seq, arrival);
        if at < self.next_at.load(Ordering::SeqCst) {
            self.next_at.store(at, Ordering::SeqCst);
        }
    }

    pub(crate) fn push_completion(&self, completion: Completion<P, R>) {
        let mut core = self.core.lock();
        core.seq += 1;
        let seq = core.seq;
        let at = completion.at.as_nanos();
        core.completions.push(at, seq, completion);
        if at < self.next_at.load(Ordering::SeqCst) {
            self.next_at.store(at, Ordering::SeqCst);
        }
    }

    /// When something next comes due, if anything will.
    #[inline]
    pub(crate) fn next_at(&self) -> Option<Timestamp> {
        match self.next_at.load(Ordering::SeqCst) {
            u64::MAX => None,
            t => Some(Timestamp::from_nanos(t)),
        }
    }

    /// The earliest arrival or completion due by `now`, in time order (ties: in the order
    /// they were scheduled).
    pub(crate) fn pop_due(&self, now: Timestamp) -> Option<Due<P, R>> {
        if self.next_at.load(Ordering::SeqCst) > now.as_nanos() {
            return None;
        }
        let mut core = self.core.lock();
        self.pop_due_locked(&mut core, now)
    }

    /// [`observe`](Self::observe) at `at`, then [`pop_due`](Self::pop_due) at `now`, under
    /// one lock.
    pub(crate) fn observe_then_pop_due(
        &self,
        at: Timestamp,
        running: u64,
        outstanding: u64,
        now: Timestamp,
    ) -> Option<Due<P, R>> {
        let mut core = self.core.lock();
        Self::observe_locked(&mut core, at, running, outstanding);
        if self.next_at.load(Ordering::SeqCst) > now.as_nanos() {
            return None;
        }
        self.pop_due_locked(&mut core, now)
    }

    fn pop_due_locked(&self, core: &mut Core<P, R>, now: Timestamp) -> Option<Due<P, R>> {
        let now = now.as_nanos();
        let completion_first = match (core.arrivals.peek_at(), core.completions.peek_at()) {
            // Due at once: the one scheduled first.
            (Some(a), Some(c)) if a == c => core.completions.peek_key() < core.arrivals.peek_key(),
            (Some(a), Some(c)) => c < a,
            (None, c) => c.is_some(),
            (Some(_), None) => false,
        };
        let due = if completion_first {
            core.completions
                .pop_due(now)
                .map(|(_, c)| Due::Completion(c))
        } else {
            core.arrivals.pop_due(now).map(|(_, a)| Due::Arrival(a))
        };
        self.refresh_next(core);
        due
    }

    /// The queue at a sample at `now` with `queued` events waiting: the delays ended by then
    /// are forgotten, and the rest (at most `queued`: an event purged while delayed is not
    /// told apart) counted as delayed.
    fn queue_at(core: &mut Core<P, R>, now: u64, queued: u64) -> Queue {
        while core.delayed.peek().is_some_and(|d| d.0 <= now) {
            core.delayed.pop();
        }
        Queue {
            queued,
            delayed: (core.delayed.len() as u64).min(queued),
        }
    }

    /// An event was put back to wait until `due` (a retry delay or a throttle backoff).
    pub(crate) fn delayed_until(&self, due: Timestamp) {
        self.core.lock().delayed.push(Reverse(due.as_nanos()));
    }

    /// An execution started at `now` (see [`Started`]).
    pub(crate) fn started(&self, now: Timestamp, s: Started) {
        let mut core = self.core.lock();
        if s.first {
            core.first_ages.push(s.age_ns);
            let at = now.as_nanos();
            core.last_first_start = Some(core.last_first_start.map_or(at, |l| l.max(at)));
        } else {
            core.later_ages.push(s.age_ns);
        }
        let queued = s
            .outstanding
            .saturating_sub(s.running + core.arrivals.len() as u64);
        let queue = Self::queue_at(&mut core, now.as_nanos(), queued);
        core.timeline.record(now.as_nanos(), s.running, queue);
    }

    /// Counts a throttle by cause; whether the function's poller now backs off.
    pub(crate) fn throttled(&self, function: u32, cause: ThrottleCause) -> bool {
        let mut core = self.core.lock();
        let t = &mut core.function(function).throttles;
        match cause {
            ThrottleCause::Reserved => t.reserved_pool += 1,
            ThrottleCause::Account => t.account += 1,
            ThrottleCause::Scaling => t.scaling_rate += 1,
        }
        self.options.throttled_events == ThrottledEvents::PollerBacksOff
    }

    pub(crate) fn retry_scheduled(&self, function: u32, due: Timestamp) {
        let mut core = self.core.lock();
        core.function(function)
            .retries_due
            .push(Reverse(due.as_nanos()));
    }

    /// A sample of a function with reserved concurrency: the idle slots since the last sample
    /// count if its events waited then; events waiting now are the queued ones less those
    /// waiting out a function-error retry.
    pub(crate) fn observe_reserved(
        &self,
        now: Timestamp,
        function: u32,
        reserved: u64,
        running: u64,
        queued: u64,
    ) {
        let now = now.as_nanos();
        let mut core = self.core.lock();
        let b = core.function(function);
        if b.waiting && now > b.sampled_at {
            b.idle_slot_ns += u128::from(b.idle_slots) * u128::from(now - b.sampled_at);
        }
        while b.retries_due.peek().is_some_and(|Reverse(d)| *d <= now) {
            b.retries_due.pop();
        }
        let waiting = queued.saturating_sub(b.retries_due.len() as u64);
        b.waiting = waiting > 0;
        b.idle_slots = reserved.saturating_sub(running);
        b.sampled_at = now;
    }

    /// One function's throttles by cause, and its reserved slot-time left idle while its
    /// events waited.
    pub(crate) fn function_books(&self, function: u32) -> (ThrottleCauses, std::time::Duration) {
        let core = self.core.lock();
        match core.functions.get(function as usize) {
            None => Default::default(),
            Some(b) => (
                b.throttles,
                std::time::Duration::from_nanos(u64::try_from(b.idle_slot_ns).unwrap_or(u64::MAX)),
            ),
        }
    }

    /// When the latest first attempt started, if any did.
    pub(crate) fn last_first_start(&self) -> Option<Timestamp> {
        self.core.lock().last_first_start.map(Timestamp::from_nanos)
    }

    /// Concurrency or the queues changed at `now` (an execution ended, an event throttled).
    pub(crate) fn observe(&self, now: Timestamp, running: u64, outstanding: u64) {
        Self::observe_locked(&mut self.core.lock(), now, running, outstanding);
    }

    fn observe_locked(core: &mut Core<P, R>, now: Timestamp, running: u64, outstanding: u64) {
        let queued = outstanding.saturating_sub(running + core.arrivals.len() as u64);
        let queue = Self::queue_at(core, now.as_nanos(), queued);
        core.timeline.record(now.as_nanos(), running, queue);
    }

    /// Something ended at `at` (an execution, or an event's outcome).
    #[inline]
    pub(crate) fn note_end(&self, at: Timestamp) {
        self.last_end.fetch_max(at.as_nanos(), Ordering::Relaxed);
    }

    /// The span of the run: first invoke call to last end (both 0 before anything ran).
    pub(crate) fn span(&self) -> (Timestamp, Timestamp) {
        let end = self.last_end.load(Ordering::Relaxed);
        let start = match self.first_call.load(Ordering::Relaxed) {
            u64::MAX => end,
            s => s.min(end),
        };
        (Timestamp::from_nanos(start), Timestamp::from_nanos(end))
    }

    /// Ages at the start of first attempts, and of later attempts (retries, and attempts
    /// after a retry's throttle).
    pub(crate) fn all_ages(&self) -> AgeSummary {
        let core = self.core.lock();
        Ages::summary_of(&[&core.first_ages, &core.later_ages])
    }

    pub(crate) fn age_summaries(&self) -> (AgeSummary, AgeSummary) {
        let core = self.core.lock();
        (core.first_ages.summary(), core.later_ages.summary())
    }

    pub(crate) fn timeline(&self) -> Timeline {
        self.core.lock().timeline.export()
    }
}

impl<P: Send + 'static, R: Send + 'static> VirtualTime<P, R> for Model<P, R> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn validate(&self) -> Result<(), Error> {
        self.options.validate()
    }

    fn client_call(&self, now: Timestamp) -> Timestamp {
        Model::client_call(self, now)
    }

    /// The execution's virtual time line (see [`CostModel`]): its cold start, then its
    /// handler's calls in order (each one invoke latency), then the drawn duration; a failure
    /// drawn at the failure rate; the timeout cutting it at its deadline.
    fn execute(
        &self,
        draws: &Mutex<SeededRng>,
        config: &FunctionConfig<P, R>,
        now: Timestamp,
        cold: bool,
        handler: &mut dyn FnMut(&dyn ExecutionLine) -> Result<R, FunctionError>,
    ) -> (Result<R, FunctionError>, Timestamp) {
        let cost = config.cost.as_ref();
        let latency = cost
            .and_then(|c| c.latency())
            .unwrap_or(self.options.latency());
        let begin = match cost {
            Some(c) if cold => now + c.cold_start_time(),
            _ => now,
        };
        // The timeout counts from the end of the cold start: Lambda's init phase has its own
        // limit and does not use up the invoke's timeout.
        let deadline = begin + config.timeout;
        let cursor = Cursor::new(begin, deadline, latency);
        let mut result = handler(&cursor);
        let mut end = cursor.at();
        if let Some(cost) = cost {
            if let Some(ns) = cost.undrawn() {
                // Nothing to draw: no lock of the function's random sequence.
                end = end + std::time::Duration::from_nanos(ns);
            } else {
                let mut rng = draws.lock();
                end = end + std::time::Duration::from_nanos(cost.sample(&mut rng));
                if cost.draw_failure(&mut rng) && result.is_ok() {
                    // Dropped on the way: a panic of its `Drop` rides with the error.
                    result = Err(CostModel::failure().replacing_result(result));
                }
            }
        }
        if end > deadline || cursor.timed_out() {
            end = deadline;
            result = Err(FunctionError::timeout(config.timeout).replacing_result(result));
        }
        (result, end)
    }

    fn push_arrival(&self, arrival: Arrival<P, R>) {
        Model::push_arrival(self, arrival);
    }

    fn push_completion(&self, completion: Completion<P, R>) {
        Model::push_completion(self, completion);
    }

    fn pop_due(&self, now: Timestamp) -> Option<Due<P, R>> {
        Model::pop_due(self, now)
    }

    fn observe_then_pop_due(
        &self,
        at: Timestamp,
        running: u64,
        outstanding: u64,
        now: Timestamp,
    ) -> Option<Due<P, R>> {
        Model::observe_then_pop_due(self, at, running, outstanding, now)
    }

    fn next_at(&self) -> Option<Timestamp> {
        Model::next_at(self)
    }

    fn started(&self, now: Timestamp, start: Started) {
        Model::started(self, now, start);
    }

    fn throttled(&self, function: u32, cause: ThrottleCause) -> bool {
        Model::throttled(self, function, cause)
    }

    fn retry_scheduled(&self, function: u32, due: Timestamp) {
        Model::retry_scheduled(self, function, due);
    }

    fn observe_reserved(
        &self,
        now: Timestamp,
        function: u32,
        reserved: u64,
        running: u64,
        queued: u64,
    ) {
        Model::observe_reserved(self, now, function, reserved, running, queued);
    }

    fn backed_off(&self) -> &BackedOff<P, R> {
        &self.backed_off
    }

    fn observe(&self, now: Timestamp, running: u64, outstanding: u64) {
        Model::observe(self, now, running, outstanding);
    }

    fn note_end(&self, at: Timestamp) {
        Model::note_end(self, at);
    }

    fn delayed_until(&self, due: Timestamp) {
        Model::delayed_until(self, due);
    }
}
