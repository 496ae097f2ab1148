//! [`InvocationQueue`]: one function's waiting events, ready and delayed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::parts::clock::Timestamp;
use crate::parts::error::Error;
use crate::parts::record::{FunctionError, RequestId};
use crate::parts::segments::SegmentedDeque;

/// One accepted event while it waits in an [`InvocationQueue`], with what a retry loop keeps
/// about it: its request id, when it was accepted (its age), how many times it ran and was
/// throttled, its position in an invocation chain, and the last attempt's error.
///
/// The [`Runtime`](crate::Runtime) keeps these for its own events; a loop of one's own keeps
/// them with [`record_attempt`](Self::record_attempt) (before each execution),
/// [`record_throttle`](Self::record_throttle) (when no slot was free) and
/// [`set_last_error`](Self::set_last_error), and feeds the counts to a
/// [`RetryPolicy`](crate::RetryPolicy).
///
/// # Examples
///
/// ```
/// use event_invoke::{QueuedEvent, RequestId, Timestamp};
///
/// let ev = QueuedEvent::new(RequestId::from_u64(1), "payload", Timestamp::ZERO);
/// assert_eq!(ev.attempts(), 0);
/// assert_eq!(*ev.payload(), "payload");
/// assert_eq!(ev.into_payload(), "payload");
/// ```
///
/// A loop of one's own: run, and on a function error ask the policy when to retry.
///
/// ```
/// use event_invoke::{FunctionError, InvocationQueue, QueuedEvent, RequestId, RetryPolicy, Timestamp};
/// use std::time::Duration;
///
/// let policy = RetryPolicy::lambda_default();
/// let mut queue = InvocationQueue::new(10).unwrap();
/// queue.push(QueuedEvent::new(RequestId::from_u64(1), "order", Timestamp::ZERO)).unwrap();
///
/// let now = Timestamp::ZERO;
/// let mut event = queue.pop_due(now).unwrap();
/// let attempt = event.record_attempt(); // 1: this execution's approximate invoke count
/// let error = FunctionError::new("Boom", "the handler failed");
/// let wait = policy.retry_delay_after(attempt, &error).unwrap();
/// assert_eq!(wait, Duration::from_secs(60));
/// assert!(!policy.is_expired(event.enqueued_at(), now + wait));
/// event.set_last_error(error);
/// queue.push_delayed(event, now + wait);
/// assert_eq!(queue.next_due(), Some(Timestamp::ZERO + Duration::from_secs(60)));
/// ```
pub struct QueuedEvent<P> {
    request_id: RequestId,
    enqueued_at: Timestamp,
    /// What only some events need (a retry's last error, throttles, the duplicate mark, a
    /// chain deeper than 65,534, the chain's functions), behind a pointer so that a plain event
    /// pays one word for it: a queued event is 32 bytes beside its payload. Shared (copied on
    /// the first change) by the events a fan-out puts at the same place of one chain, so that
    /// they allocate nothing of their own.
    history: Option<Arc<History>>,
    last_version: u32,
    attempts: u16,
    /// The chain depth, or [`DEEP`]: then it is in the history.
    chain_depth: u16,
    payload: P,
}

/// A `chain_depth` beside the event that says "the depth is in the history".
const DEEP: u16 = u16::MAX;

#[derive(Default, Clone)]
struct History {
    last_error: Option<FunctionError>,
    throttles: u32,
    duplicate: bool,
    /// The chain depth, when it is [`DEEP`] or more.
    depth: u32,
    /// The functions the chain reached so far (the runtime's loop guard; events invoked from
    /// a handler or a destination only).
    lineage: Option<Arc<Lineage>>,
}

/// The functions an invocation chain reached up to and including one event, each with how many
/// times: what the runtime's loop guard counts, like the lineage Lambda keeps in its trace
/// header. Functions are keyed by a hash of their name ([`function_key`]). Events with the
/// same chain share one (a duplicate delivery, and the siblings one execution invokes in the
/// same function).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// (function key, times reached), sorted by key.
    counts: Box<[(u64, u32)]>,
    /// How many times the chain reached the event's own function, this event included.
    times: u32,
}

impl Lineage {
    /// The lineage of an event of the function keyed `to`, invoked from an event of the
    /// function keyed `from` whose lineage is `parent` (`None`: the first event of its chain,
    /// which reached `from` once).
    pub(crate) fn child(parent: Option<&Lineage>, from: u64, to: u64) -> Lineage {
        let mut counts = match parent {
            Some(p) => {
                let mut counts = Vec::with_capacity(p.counts.len() + 1);
                counts.extend_from_slice(&p.counts);
                counts
            }
            None => vec![(from, 1)],
        };
        let times = match counts.binary_search_by_key(&to, |c| c.0) {
            Ok(i) => {
                counts[i].1 = counts[i].1.saturating_add(1);
                counts[i].1
            }
            Err(i) => {
                counts.insert(i, (to, 1));
                1
            }
        };
        Lineage {
            counts: counts.into_boxed_slice(),
            times,
        }
    }

    /// How many times the chain reached the event's own function, this event included.
    pub(crate) fn times(&self) -> u32 {
        self.times
    }
}

/// A function's key in a [`Lineage`]: the 64-bit FNV-1a hash of its name (the same in every
/// run and every runtime).
pub(crate) fn function_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A new event's place in its invocation chain, when it is not the first: its depth, and the
/// functions the chain reached (kept only by the loop guard). Cheap to clone: the events at
/// the same place share it.
#[derive(Clone)]
pub(crate) struct Chain {
    depth: u32,
    /// The history every event at this place starts with, when it needs one (a lineage, or a
    /// depth too deep to sit beside the event).
    history: Option<Arc<History>>,
}

impl Chain {
    /// The place at `depth`, whose chain reached `lineage`.
    pub(crate) fn new(depth: u32, lineage: Option<Arc<Lineage>>) -> Self {
        let history = (lineage.is_some() || depth >= u32::from(DEEP)).then(|| {
            Arc::new(History {
                depth,
                lineage,
                ..History::default()
            })
        });
        Chain { depth, history }
    }

    /// The depth of the place.
    pub(crate) fn depth(&self) -> u32 {
        self.depth
    }
}

impl<P> QueuedEvent<P> {
    /// A fresh event: no attempts yet, first in its invocation chain.
    pub fn new(request_id: RequestId, payload: P, enqueued_at: Timestamp) -> Self {
        QueuedEvent {
            request_id,
            enqueued_at,
            history: None,
            last_version: 0,
            attempts: 0,
            chain_depth: 1,
            payload,
        }
    }

    /// The event's id.
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// When the event was accepted; its age counts from here.
    pub fn enqueued_at(&self) -> Timestamp {
        self.enqueued_at
    }

    /// Handler executions so far (the approximate invoke count of the last attempt).
    pub fn attempts(&self) -> u32 {
        u32::from(self.attempts)
    }

    /// Throttles so far (they do not use up retry attempts).
    pub fn throttles(&self) -> u32 {
        self.history.as_ref().map_or(0, |h| h.throttles)
    }

    /// Position in the invocation chain (1 when invoked from outside a handler).
    #[inline]
    pub fn chain_depth(&self) -> u32 {
        if self.chain_depth == DEEP {
            self.history.as_ref().map_or(u32::from(DEEP), |h| h.depth)
        } else {
            u32::from(self.chain_depth)
        }
    }

    /// Whether the event is deeper in its chain than `limit`, which must be below 65,535 (the
    /// recursion guard's limits are at most 10,000): one comparison, the history unread.
    #[inline]
    pub(crate) fn deeper_than(&self, limit: u32) -> bool {
        debug_assert!(limit < u32::from(DEEP));
        // A depth in the history is at least DEEP, past any such limit.
        u32::from(self.chain_depth) > limit
    }

    /// The functions the event's chain reached, if the runtime keeps them (see [`Lineage`]).
    #[inline]
    pub(crate) fn lineage(&self) -> Option<&Arc<Lineage>> {
        self.history.as_ref().and_then(|h| h.lineage.as_ref())
    }

    /// How many times the event's chain reached its function, the event included: 1 for an
    /// event without a [`Lineage`].
    #[inline]
    pub(crate) fn loop_count(&self) -> u32 {
        self.lineage().map_or(1, |l| l.times())
    }

    /// A fresh event at `chain`'s place in its invocation chain: it shares the place's
    /// history, if the place has one. Apart from [`new`](Self::new), so that a plain event's
    /// path stays as short as it was; inlined, so that a child event is built where it is
    /// queued instead of being returned and copied (a fan-out's child invoke).
    #[inline]
    pub(crate) fn chained(
        request_id: RequestId,
        payload: P,
        enqueued_at: Timestamp,
        chain: Chain,
    ) -> Self {
        QueuedEvent {
            chain_depth: u16::try_from(chain.depth).unwrap_or(DEEP),
            history: chain.history,
            ..Self::new(request_id, payload, enqueued_at)
        }
    }

    /// Whether this is an injected duplicate delivery of an event that already ended (see
    /// [`FaultInjection`](crate::FaultInjection)).
    pub fn is_duplicate(&self) -> bool {
        self.history.as_ref().is_some_and(|h| h.duplicate)
    }

    /// The payload.
    pub fn payload(&self) -> &P {
        &self.payload
    }

    /// The payload, mutably (for queue edits).
    pub fn payload_mut(&mut self) -> &mut P {
        &mut self.payload
    }

    /// The payload, by value.
    pub fn into_payload(self) -> P {
        self.payload
    }

    /// The event's own history, to change: made on first use, and copied first when shared.
    fn history(&mut self) -> &mut History {
        Arc::make_mut(self.history.get_or_insert_with(Arc::default))
    }

    /// The same event at position `depth` of an invocation chain (1 when invoked from outside
    /// a handler, 2 when invoked by a handler of a depth-1 event, and so on). A depth past
    /// 65,534 is kept in the history that rare events already have behind a pointer, so the
    /// event stays 32 bytes beside its payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{QueuedEvent, RequestId, Timestamp};
    ///
    /// let ev = QueuedEvent::new(RequestId::from_u64(7), (), Timestamp::ZERO).with_chain_depth(3);
    /// assert_eq!(ev.chain_depth(), 3);
    /// let deep = QueuedEvent::new(RequestId::from_u64(8), (), Timestamp::ZERO).with_chain_depth(70_000);
    /// assert_eq!(deep.chain_depth(), 70_000);
    /// ```
    #[must_use]
    pub fn with_chain_depth(mut self, depth: u32) -> Self {
        match u16::try_from(depth) {
            Ok(shallow) if shallow < DEEP => self.chain_depth = shallow,
            _ => {
                self.chain_depth = DEEP;
                self.history().depth = depth;
            }
        }
        self
    }

    /// The event's age at `now`: the time since it was accepted (zero for a `now` before
    /// that). What [`RetryPolicy::is_expired`](crate::RetryPolicy::is_expired) compares with
    /// the maximum event age.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{QueuedEvent, RequestId, Timestamp};
    /// use std::time::Duration;
    ///
    /// let ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::from_secs(10));
    /// assert_eq!(ev.age(Timestamp::from_secs(70)), Duration::from_secs(60));
    /// assert_eq!(ev.age(Timestamp::ZERO), Duration::ZERO);
    /// ```
    pub fn age(&self, now: Timestamp) -> Duration {
        now - self.enqueued_at
    }

    /// Counts an execution of the event, and returns the new count. Call it as an execution
    /// starts, like the runtime: the count is then that attempt's approximate invoke count
    /// (1 for the first), and, should the attempt fail, the number of the retry to ask
    /// [`RetryPolicy::retry_delay`](crate::RetryPolicy::retry_delay) about. It stops counting
    /// at 65,535.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{QueuedEvent, RequestId, RetryPolicy, Timestamp};
    /// use std::time::Duration;
    ///
    /// let policy = RetryPolicy::lambda_default();
    /// let mut ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    /// let first = ev.record_attempt();
    /// assert_eq!(first, 1);
    /// assert_eq!(policy.retry_delay(first), Some(Duration::from_secs(60)));
    /// assert_eq!(ev.record_attempt(), 2);
    /// assert_eq!(ev.attempts(), 2);
    /// ```
    pub fn record_attempt(&mut self) -> u32 {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts()
    }

    pub(crate) fn set_attempts(&mut self, n: u32) {
        self.attempts = u16::try_from(n).unwrap_or(u16::MAX);
    }

    /// Counts a throttle of the event (no execution slot was free), and returns the new count:
    /// the number to ask [`RetryPolicy::throttle_delay`](crate::RetryPolicy::throttle_delay)
    /// about. Throttles do not use up retry attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{QueuedEvent, RequestId, RetryPolicy, Timestamp};
    /// use std::time::Duration;
    ///
    /// let policy = RetryPolicy::lambda_default();
    /// let mut ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    /// ev.record_throttle();
    /// let throttles = ev.record_throttle();
    /// assert_eq!(throttles, 2);
    /// assert_eq!(policy.throttle_delay_nominal(throttles), Duration::from_secs(2));
    /// assert_eq!(ev.attempts(), 0);
    /// ```
    pub fn record_throttle(&mut self) -> u32 {
        let h = self.history();
        h.throttles = h.throttles.saturating_add(1);
        h.throttles
    }

    /// The error of the last failed attempt, if one was kept with
    /// [`set_last_error`](Self::set_last_error).
    pub fn last_error(&self) -> Option<&FunctionError> {
        self.history.as_ref().and_then(|h| h.last_error.as_ref())
    }

    /// Keeps the error of a failed attempt before the event waits for its retry: the runtime
    /// puts it in the record of an event that ends without another response (for instance
    /// when its retry would start past the maximum event age).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{FunctionError, QueuedEvent, RequestId, Timestamp};
    ///
    /// let mut ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    /// assert!(ev.last_error().is_none());
    /// ev.set_last_error(FunctionError::new("Boom", "attempt 1"));
    /// assert_eq!(ev.last_error().unwrap().message(), "attempt 1");
    /// ```
    pub fn set_last_error(&mut self, error: FunctionError) {
        self.history().last_error = Some(error);
    }

    /// The code version of the last execution.
    pub(crate) fn last_version(&self) -> u64 {
        u64::from(self.last_version)
    }

    pub(crate) fn set_last_version(&mut self, version: u64) {
        self.last_version = u32::try_from(version).unwrap_or(u32::MAX);
    }

    pub(crate) fn mark_duplicate(&mut self) {
        self.history().duplicate = true;
    }

    pub(crate) fn into_parts(self) -> (P, Option<FunctionError>) {
        // A shared history never has an error of its own (a change copies it first).
        let last_error = self.history.and_then(|h| match Arc::try_unwrap(h) {
            Ok(h) => h.last_error,
            Err(shared) => shared.last_error.clone(),
        });
        (self.payload, last_error)
    }

    fn info(&self, state: EventState) -> EventInfo {
        EventInfo {
            request_id: self.request_id,
            enqueued_at: self.enqueued_at,
            attempts: self.attempts(),
            throttles: self.throttles(),
            chain_depth: self.chain_depth(),
            state,
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for QueuedEvent<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedEvent")
            .field("request_id", &self.request_id)
            .field("enqueued_at", &self.enqueued_at)
            .field("attempts", &self.attempts())
            .field("throttles", &self.throttles())
            .field("chain_depth", &self.chain_depth())
            .field("payload", &self.payload)
            .finish()
    }
}

/// Where a waiting event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventState {
    /// Waiting for a worker and an execution slot.
    Ready,
    /// Waiting for its retry or throttle backoff to run out.
    Delayed {
        /// When it becomes ready.
        due: Timestamp,
    },
    /// Held by a paused function (it still ages).
    Held,
}

/// A view of one waiting event, without its payload: what a queue snapshot lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventInfo {
    /// The event's id.
    pub request_id: RequestId,
    /// When it was accepted (on the [`SystemClock`](crate::SystemClock), to the kernel's
    /// tick: see its docs).
    pub enqueued_at: Timestamp,
    /// Handler executions so far.
    pub attempts: u32,
    /// Throttles so far.
    pub throttles: u32,
    /// Position in the invocation chain.
    pub chain_depth: u32,
    /// Ready, delayed or held.
    pub state: EventState,
}

struct Delayed<P> {
    due: Timestamp,
    /// Breaks ties between equal due times in insertion order, so equal-due events stay FIFO.
    seq: u64,
    event: QueuedEvent<P>,
}

impl<P> PartialEq for Delayed<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<P> Eq for Delayed<P> {}
impl<P> PartialOrd for Delayed<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for Delayed<P> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest due on top.
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// One function's waiting events: ready events in FIFO order, and delayed events (retries and
/// throttle backoffs) ordered by the time they become due.
///
/// The queue is a plain data structure with no locking and no clock: the
/// [`Runtime`](crate::Runtime) keeps one per function behind that function's own lock and hands
/// it the time. Taking the next event is O(1) for ready events and O(log n) for delayed ones,
/// whatever the depth. The ready line grows a segment (4 KiB) at a time instead of doubling
/// one buffer, and gives segments back as it drains: a ready event takes its
/// [`QueuedEvent`]'s size (32 bytes beside its payload) plus about 1 byte of overhead, at any
/// depth, and an event once queued is never copied to make room for others.
///
/// Capacity bounds *admission*: [`push`](Self::push) refuses a new event when the queue holds
/// `capacity` events and hands it back. A retry of an event already accepted
/// ([`push_delayed`](Self::push_delayed)) is never refused, since refusing it would lose an
/// event the caller was told was accepted.
///
/// # Examples
///
/// ```
/// use event_invoke::{InvocationQueue, QueuedEvent, RequestId, Timestamp};
/// use std::time::Duration;
///
/// let mut q = InvocationQueue::new(2).unwrap();
/// let t0 = Timestamp::ZERO;
/// q.push(QueuedEvent::new(RequestId::from_u64(1), "a", t0)).unwrap();
/// q.push_delayed(QueuedEvent::new(RequestId::from_u64(2), "b", t0), t0 + Duration::from_secs(60));
/// let full = q.push(QueuedEvent::new(RequestId::from_u64(3), "c", t0)).unwrap_err();
/// assert_eq!(full.into_payload(), "c"); // handed back, never dropped
///
/// assert_eq!((q.ready_len(), q.delayed_len()), (1, 1));
/// assert_eq!(*q.pop_due(t0).unwrap().payload(), "a");
/// assert!(q.pop_due(t0).is_none()); // "b" is not due yet
/// assert_eq!(*q.pop_due(t0 + Duration::from_secs(60)).unwrap().payload(), "b");
/// ```
pub struct InvocationQueue<P> {
    /// The ready line, in order: it grows and shrinks a segment at a time, never doubling.
    ready: SegmentedDeque<QueuedEvent<P>>,
    delayed: BinaryHeap<Delayed<P>>,
    capacity: usize,
    seq: u64,
    /// While the runtime holds the events (a paused function): all of them, ordered by age as
    /// well, so that those past their maximum age leave at O(log n) each. `ready` and
    /// `delayed` are empty meanwhile.
    held: Option<Box<Held<P>>>,
}

/// Where a held event would stand were it not held.
#[derive(Clone, Copy)]
enum Place {
    /// In the ready line, ordered by this ticket (front first).
    Ready(i64),
    /// Delayed until `due`; `seq` keeps equal due times in order.
    Delayed { due: Timestamp, seq: u64 },
}

/// A held event's key in the age order: when it was accepted, then the order it was held in.
type AgeKey = (Timestamp, u64);

struct HeldEntry<P> {
    event: QueuedEvent<P>,
    place: Place,
}

/// The events of a held queue: by age, and by their place in the ready line or the delayed
/// order (the same order they keep when released).
struct Held<P> {
    by_age: BTreeMap<AgeKey, HeldEntry<P>>,
    ready: BTreeMap<i64, AgeKey>,
    delayed: BTreeMap<(Timestamp, u64), AgeKey>,
    /// The next ticket at the back of the ready line.
    back: i64,
    /// Tells apart events accepted at the same instant, in the order they were held.
    next_key: u64,
}

impl<P> Held<P> {
    fn new() -> Self {
        Held {
            by_age: BTreeMap::new(),
            ready: BTreeMap::new(),
            delayed: BTreeMap::new(),
            back: 0,
            next_key: 0,
        }
    }

    fn insert(&mut self, event: QueuedEvent<P>, place: Place) {
        let key = (event.enqueued_at, self.next_key);
        self.next_key += 1;
        match place {
            Place::Ready(ticket) => {
                self.ready.insert(ticket, key);
            }
            Place::Delayed { due, seq } => {
                self.delayed.insert((due, seq), key);
            }
        }
        self.by_age.insert(key, HeldEntry { event, place });
    }

    fn push_back(&mut self, event: QueuedEvent<P>) {
        let ticket = self.back;
        self.back += 1;
        self.insert(event, Place::Ready(ticket));
    }

    fn promote_due(&mut self, now: Timestamp) -> usize {
        let mut moved = 0;
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            let ticket = self.back;
            self.back += 1;
            self.ready.insert(ticket, key);
            if let Some(held) = self.by_age.get_mut(&key) {
                held.place = Place::Ready(ticket);
            }
            moved += 1;
        }
        moved
    }

    /// Removes the event at `key` from every order.
    fn remove(&mut self, key: &AgeKey) -> Option<HeldEntry<P>> {
        let entry = self.by_age.remove(key)?;
        match entry.place {
            Place::Ready(ticket) => self.ready.remove(&ticket),
            Place::Delayed { due, seq } => self.delayed.remove(&(due, seq)),
        };
        Some(entry)
    }

    /// Every key, ready ones in line order, then delayed ones by due time.
    fn keys_in_place_order(&self) -> impl Iterator<Item = &AgeKey> {
        self.ready.values().chain(self.delayed.values())
    }

    fn iter(&self) -> impl Iterator<Item = &HeldEntry<P>> {
        self.keys_in_place_order()
            .filter_map(move |key| self.by_age.get(key))
    }
}

impl<P> InvocationQueue<P> {
    /// An empty queue admitting at most `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Result<Self, Error> {
        check_capacity(capacity)?;
        Ok(InvocationQueue {
            ready: SegmentedDeque::new(),
            delayed: BinaryHeap::new(),
            capacity,
            seq: 0,
            held: None,
        })
    }

    /// Adds a new event at the back of the ready line, or hands it back when the queue is full.
    #[inline]
    pub fn push(&mut self, event: QueuedEvent<P>) -> Result<(), QueuedEvent<P>> {
        if self.len() >= self.capacity {
            return Err(event);
        }
        match &mut self.held {
            None => self.ready.push_back(event),
            Some(held) => held.push_back(event),
        }
        Ok(())
    }

    /// Adds an event that becomes ready at `due` (a retry or a throttle backoff). Never refused.
    pub fn push_delayed(&mut self, event: QueuedEvent<P>, due: Timestamp) {
        self.seq += 1;
        let seq = self.seq;
        match &mut self.held {
            None => self.delayed.push(Delayed { due, seq, event }),
            Some(held) => held.insert(event, Place::Delayed { due, seq }),
        }
    }

    /// Moves every delayed event due at `now` to the back of the ready line, earliest first.
    /// Returns how many moved.
    pub fn promote_due(&mut self, now: Timestamp) -> usize {
        if let Some(held) = &mut self.held {
            return held.promote_due(now);
        }
        let mut moved = 0;
        while self.delayed.peek().is_some_and(|d| d.due <= now) {
            if let Some(d) = self.delayed.pop() {
                self.ready.push_back(d.event);
                moved += 1;
            }
        }
        moved
    }

    /// The next event due at `now`: delayed events due by then join the ready line first.
    #[inline]
    pub fn pop_due(&mut self, now: Timestamp) -> Option<QueuedEvent<P>> {
        if self.held.is_some() {
            return self.pop_held(now);
        }
        // Peek is O(1): a queue with no due retry pays one comparison.
        if self.delayed.peek().is_some_and(|d| d.due <= now) {
            self.promote_due(now);
        }
        // A drained backlog gives its memory back a segment at a time.
        self.ready.pop_front()
    }

    /// Like [`pop_due`](Self::pop_due), but takes the ready event at position `pick(len)` (taken
    /// modulo the ready count) instead of the oldest: how fault injection reorders.
    pub(crate) fn pop_due_picked(
        &mut self,
        now: Timestamp,
        pick: impl FnOnce(usize) -> usize,
    ) -> Option<QueuedEvent<P>> {
        if self.held.is_some() {
            return self.pop_held(now);
        }
        if self.delayed.peek().is_some_and(|d| d.due <= now) {
            self.promote_due(now);
        }
        let len = self.ready.len();
        if len == 0 {
            return None;
        }
        self.ready.remove(pick(len) % len)
    }

    /// Adds an event at the back of the ready line whatever the capacity (a duplicate delivery
    /// of an event already accepted).
    pub(crate) fn push_unbounded(&mut self, event: QueuedEvent<P>) {
        match &mut self.held {
            None => self.ready.push_back(event),
            Some(held) => held.push_back(event),
        }
    }

    /// Events ready now.
    pub fn ready_len(&self) -> usize {
        match &self.held {
            None => self.ready.len(),
            Some(held) => held.ready.len(),
        }
    }

    /// Events waiting for a delay to run out.
    pub fn delayed_len(&self) -> usize {
        match &self.held {
            None => self.delayed.len(),
            Some(held) => held.delayed.len(),
        }
    }

    /// All waiting events.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.held {
            None => self.ready.len() + self.delayed.len(),
            Some(held) => held.by_age.len(),
        }
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The admission limit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the admission limit (at least 1). Events already queued stay.
    pub fn set_capacity(&mut self, capacity: usize) -> Result<(), Error> {
        check_capacity(capacity)?;
        self.capacity = capacity;
        Ok(())
    }

    /// When the earliest delayed event becomes due.
    pub fn next_due(&self) -> Option<Timestamp> {
        match &self.held {
            None => self.delayed.peek().map(|d| d.due),
            Some(held) => held.delayed.keys().next().map(|k| k.0),
        }
    }

    /// When the oldest waiting event was accepted (O(n): for views, not the hot path; O(log n)
    /// while the runtime holds the events of a paused function).
    pub fn oldest_enqueued_at(&self) -> Option<Timestamp> {
        match &self.held {
            None => self.iter().map(|e| e.enqueued_at).min(),
            Some(held) => held.by_age.keys().next().map(|k| k.0),
        }
    }

    /// The age of the oldest waiting event at `now`.
    pub fn oldest_age(&self, now: Timestamp) -> Option<Duration> {
        self.oldest_enqueued_at().map(|t| now - t)
    }

    /// Every waiting event: the ready ones in order, then the delayed ones in no set order.
    pub fn iter(&self) -> impl Iterator<Item = &QueuedEvent<P>> {
        let held = self.held.iter().flat_map(|h| h.iter().map(|e| &e.event));
        self.ready
            .iter()
            .chain(self.delayed.iter().map(|d| &d.event))
            .chain(held)
    }

    /// A view of every waiting event, ready ones first in order, then delayed ones by due time.
    pub fn snapshot(&self) -> Vec<EventInfo> {
        if let Some(held) = &self.held {
            return held
                .iter()
                .map(|e| match e.place {
                    Place::Ready(_) => e.event.info(EventState::Ready),
                    Place::Delayed { due, .. } => e.event.info(EventState::Delayed { due }),
                })
                .collect();
        }
        let mut delayed: Vec<&Delayed<P>> = self.delayed.iter().collect();
        delayed.sort_by_key(|d| (d.due, d.seq));
        self.ready
            .iter()
            .map(|e| e.info(EventState::Ready))
            .chain(
                delayed
                    .into_iter()
                    .map(|d| d.event.info(EventState::Delayed { due: d.due })),
            )
            .collect()
    }

    /// Removes the event with this id.
    pub fn remove(&mut self, request_id: RequestId) -> Option<QueuedEvent<P>> {
        self.remove_where(|e| e.request_id == request_id).pop()
    }

    /// Removes every event for which `pred` is true, and returns them.
    pub fn remove_where(
        &mut self,
        mut pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> Vec<QueuedEvent<P>> {
        if let Some(held) = &mut self.held {
            let keys: Vec<AgeKey> = held
                .keys_in_place_order()
                .filter(|k| held.by_age.get(k).is_some_and(|e| pred(&e.event)))
                .copied()
                .collect();
            return keys
                .iter()
                .filter_map(|k| held.remove(k).map(|e| e.event))
                .collect();
        }
        let mut removed = Vec::new();
        let mut kept = SegmentedDeque::new();
        for e in std::mem::take(&mut self.ready) {
            if pred(&e) {
                removed.push(e);
            } else {
                kept.push_back(e);
            }
        }
        self.ready = kept;
        if !self.delayed.is_empty() {
            let mut kept = Vec::with_capacity(self.delayed.len());
            for d in std::mem::take(&mut self.delayed).into_vec() {
                if pred(&d.event) {
                    removed.push(d.event);
                } else {
                    kept.push(d);
                }
            }
            self.delayed = BinaryHeap::from(kept);
        }
        removed
    }

    /// Applies `edit` to the payload of the event with this id; `false` if no such event waits.
    pub fn edit(&mut self, request_id: RequestId, edit: impl FnOnce(&mut P)) -> bool {
        if let Some(held) = &mut self.held {
            let key = held
                .keys_in_place_order()
                .find(|k| {
                    held.by_age
                        .get(k)
                        .is_some_and(|e| e.event.request_id == request_id)
                })
                .copied();
            return match key.and_then(|k| held.by_age.get_mut(&k)) {
                Some(e) => {
                    edit(&mut e.event.payload);
                    true
                }
                None => false,
            };
        }
        if let Some(e) = self.ready.iter_mut().find(|e| e.request_id == request_id) {
            edit(&mut e.payload);
            return true;
        }
        // BinaryHeap has no iter_mut; the payload is not part of the ordering, so rebuild.
        if self
            .delayed
            .iter()
            .any(|d| d.event.request_id == request_id)
        {
            let mut all = std::mem::take(&mut self.delayed).into_vec();
            if let Some(d) = all.iter_mut().find(|d| d.event.request_id == request_id) {
                edit(&mut d.event.payload);
            }
            self.delayed = BinaryHeap::from(all);
            return true;
        }
        false
    }

    /// Removes and returns every waiting event: ready ones in order, then delayed ones by due
    /// time.
    pub fn purge(&mut self) -> Vec<QueuedEvent<P>> {
        if self.held.is_some() {
            return self.remove_where(|_| true);
        }
        let mut out: Vec<QueuedEvent<P>> = Vec::with_capacity(self.len());
        out.extend(std::mem::take(&mut self.ready));
        let mut delayed = std::mem::take(&mut self.delayed).into_vec();
        delayed.sort_by_key(|d| (d.due, d.seq));
        out.extend(delayed.into_iter().map(|d| d.event));
        out
    }
}

impl<P> InvocationQueue<P> {
    /// Holds the events (a paused function): from now on they are kept by age as well, so
    /// that [`take_aged`](Self::take_aged) takes those past their age at O(log n) each. Every
    /// view and edit of the queue stays the same. O(n log n) once; nothing if already held.
    pub(crate) fn hold(&mut self) {
        if self.held.is_some() {
            return;
        }
        let mut held = Held::new();
        for event in std::mem::take(&mut self.ready) {
            held.push_back(event);
        }
        let mut delayed = std::mem::take(&mut self.delayed).into_vec();
        delayed.sort_by_key(|d| (d.due, d.seq));
        for d in delayed {
            held.insert(
                d.event,
                Place::Delayed {
                    due: d.due,
                    seq: d.seq,
                },
            );
        }
        self.held = Some(Box::new(held));
    }

    /// Ends [`hold`](Self::hold): the events go back to the ready line and the delayed order
    /// they would have had (O(n log n) once).
    pub(crate) fn release(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        let ready = std::mem::take(&mut held.ready);
        self.ready = ready
            .values()
            .filter_map(|key| held.by_age.remove(key).map(|e| e.event))
            .collect();
        self.delayed = std::mem::take(&mut held.by_age)
            .into_values()
            .filter_map(|e| match e.place {
                Place::Delayed { due, seq } => Some(Delayed {
                    due,
                    seq,
                    event: e.event,
                }),
                Place::Ready(_) => None,
            })
            .collect();
    }

    /// Removes the events for which `aged` is true, given that it is true of every event
    /// accepted before one it is true of (an age limit): the oldest first, checking one more
    /// than it takes. They come back in queue order: ready ones in line order, then delayed ones
    /// by due time. O(log n) per event taken on a held queue (see [`hold`](Self::hold)), O(n)
    /// otherwise.
    pub(crate) fn take_aged(
        &mut self,
        mut aged: impl FnMut(Timestamp) -> bool,
    ) -> Vec<QueuedEvent<P>> {
        let Some(held) = &mut self.held else {
            return self.remove_where(|e| aged(e.enqueued_at));
        };
        let mut taken = Vec::new();
        while let Some(entry) = held.by_age.first_entry() {
            if !aged(entry.key().0) {
                break;
            }
            let entry = entry.remove();
            match entry.place {
                Place::Ready(ticket) => held.ready.remove(&ticket),
                Place::Delayed { due, seq } => held.delayed.remove(&(due, seq)),
            };
            taken.push(entry);
        }
        taken.sort_by_key(|e| match e.place {
            Place::Ready(ticket) => (0, ticket, Timestamp::ZERO, 0),
            Place::Delayed { due, seq } => (1, 0, due, seq),
        });
        taken.into_iter().map(|e| e.event).collect()
    }

    /// [`pop_due`](Self::pop_due) on a held queue: the front of its ready line.
    #[cold]
    fn pop_held(&mut self, now: Timestamp) -> Option<QueuedEvent<P>> {
        let held = self.held.as_mut()?;
        held.promote_due(now);
        let key = *held.ready.values().next()?;
        held.remove(&key).map(|e| e.event)
    }
}

/// Whether a function's token is out: the function sits in the runtime's run queue (or a
/// worker is about to put it back) exactly while this is set, so it is queued at most once and
/// never forgotten while it has ready events. Kept under the function's lock with its queue.
///
/// Public only for the loom model check (`--cfg loom`); not part of the API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RunToken {
    out: bool,
}

impl RunToken {
    /// A fresh token, not out.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events became runnable: `true` when the caller must send the function to the run queue
    /// (it was not there yet).
    #[inline]
    pub fn claim(&mut self, runnable: bool) -> bool {
        let send = runnable && !self.out;
        self.out |= send;
        send
    }

    /// A worker that took the function from the run queue has popped an event (or found none):
    /// `true` when ready events remain and the caller must send the function again.
    #[inline]
    pub fn keep(&mut self, more_ready: bool) -> bool {
        self.out = more_ready;
        more_ready
    }

    /// A worker found the function paused or deleted: the token is dropped until a resume.
    #[inline]
    pub fn drop_token(&mut self) {
        self.out = false;
    }
}

fn check_capacity(capacity: usize) -> Result<(), Error> {
    if capacity == 0 {
        return Err(Error::InvalidConfig {
            field: "queue_capacity",
            value: "0".into(),
            accepted: "at least 1",
        });
    }
    Ok(())
}

impl<P> fmt::Debug for InvocationQueue<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationQueue")
            .field("ready", &self.ready_len())
            .field("delayed", &self.delayed_len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
