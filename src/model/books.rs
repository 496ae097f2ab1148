//! The model's books: what comes due in virtual time (arrivals, execution ends) and the
//! statistics of the report.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::due::DueQueue;
use super::timeline::Queue;
use super::{AgeSummary, Cursor, ModelOptions, Timeline, TimelineBuf};
use crate::engine::{Arrival, Completion, Due, ExecutionLine, FunctionConfig, VirtualTime};
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
    ages: Vec<u64>,
    timeline: TimelineBuf,
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
                ages: Vec::new(),
                timeline,
            }),
            next_at: AtomicU64::new(u64::MAX),
            first_call: AtomicU64::new(u64::MAX),
            last_end: AtomicU64::new(0),
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
        let a = core.arrivals.peek_key().map_or(u64::MAX, |k| k.0);
        let c = core.completions.peek_key().map_or(u64::MAX, |k| k.0);
        self.next_at.store(a.min(c), Ordering::SeqCst);
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
        let now = now.as_nanos();
        let a = core.arrivals.peek_key();
        let c = core.completions.peek_key();
        let completion_first = match (a, c) {
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
        self.refresh_next(&core);
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

    /// An execution started at `now` after its event waited `age_ns`; `running` executions
    /// (this one included) and `outstanding` events at this point.
    pub(crate) fn started(&self, now: Timestamp, age_ns: u64, running: u64, outstanding: u64) {
        let mut core = self.core.lock();
        core.ages.push(age_ns);
        let queued = outstanding.saturating_sub(running + core.arrivals.len() as u64);
        let queue = Self::queue_at(&mut core, now.as_nanos(), queued);
        core.timeline.record(now.as_nanos(), running, queue);
    }

    /// Concurrency or the queues changed at `now` (an execution ended, an event throttled).
    pub(crate) fn observe(&self, now: Timestamp, running: u64, outstanding: u64) {
        let mut core = self.core.lock();
        let queued = outstanding.saturating_sub(running + core.arrivals.len() as u64);
        let queue = Self::queue_at(&mut core, now.as_nanos(), queued);
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

    pub(crate) fn age_summary(&self) -> AgeSummary {
        let mut ages = self.core.lock().ages.clone();
        ages.sort_unstable();
        AgeSummary::of(&ages)
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
            let mut rng = draws.lock();
            end = end + std::time::Duration::from_nanos(cost.sample(&mut rng));
            if cost.draw_failure(&mut rng) && result.is_ok() {
                result = Err(CostModel::failure());
            }
        }
        if end > deadline || cursor.timed_out() {
            end = deadline;
            result = Err(FunctionError::timeout(config.timeout));
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

    fn next_at(&self) -> Option<Timestamp> {
        Model::next_at(self)
    }

    fn started(&self, now: Timestamp, age_ns: u64, running: u64, outstanding: u64) {
        Model::started(self, now, age_ns, running, outstanding);
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
