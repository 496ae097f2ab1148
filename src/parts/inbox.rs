//! [`Inbox`]: where producers append a function's new events without taking the function's
//! lock, with the function's run token.
//!
//! The protocol, between producers (invokes), the holder of the function's lock (a worker
//! step or an operator call) and the run queue:
//!
//! * **Append.** A producer asks [`admit`](Inbox::admit) for a place: under the inbox's own
//!   small lock (held for one `Vec` push, never while anything else runs) the events in the
//!   inbox plus the events in the function's queue ([`note_queued`](Inbox::note_queued)) must
//!   be below the capacity, and the event gets the next request-id number. The inbox lock is
//!   the one order of admission: request ids rise in the order events are appended. The
//!   queue's count is never too low, but may be too high (events taken since the last drain):
//!   a producer refused here asks again under the function's lock, where it is exact.
//! * **Drain.** Whoever takes the function's lock first moves the whole inbox into the queue
//!   ([`take_all`](Inbox::take_all): one swap of two `Vec`s), so nothing in the inbox is ever
//!   invisible to a lock holder.
//! * **Schedule.** After appending, a producer claims the run token ([`claim`](Inbox::claim))
//!   and sends the function to the run queue only when the token was not out. A worker that
//!   finds no ready event gives the token back with [`keep`](Inbox::keep)`(false)`, which
//!   looks at the inbox again after giving it back: a producer that appended meanwhile either
//!   sees the token back (and claims it), or is seen (and the worker claims it again). The two
//!   look-ups are ordered by the inbox lock, so one of them always sees the other.
//! * **Close.** Pause and delete [`close`](Inbox::close) the inbox, then drain it. A producer
//!   reads [`is_open`](Inbox::is_open) again after appending; one that finds it closed settles
//!   its event under the function's lock (held, or taken back and refused when deleted). By
//!   the same lock order, an event appended after the drain is always settled by its producer.

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(loom)]
type Lock<T> = loom::sync::Mutex<T>;
#[cfg(loom)]
type Guard<'a, T> = loom::sync::MutexGuard<'a, T>;
#[cfg(not(loom))]
type Lock<T> = parking_lot::Mutex<T>;
#[cfg(not(loom))]
type Guard<'a, T> = parking_lot::MutexGuard<'a, T>;

#[inline]
fn lock<T>(lock: &Lock<T>) -> Guard<'_, T> {
    #[cfg(loom)]
    {
        lock.lock().unwrap()
    }
    #[cfg(not(loom))]
    {
        lock.lock()
    }
}

/// How many events an inbox holds before the producer that appends the next moves them into
/// the queue itself (under the function's lock): the inbox stays a small buffer, so a deep
/// backlog lives in the queue, which grows a segment at a time, not in a doubling `Vec`.
pub const DRAIN_AT: usize = 64;

/// A function's inbox: events appended by producers and not yet moved into the function's
/// queue, the queue's capacity (which counts the inbox and the queue together), the request-id
/// sequence, the run token, and whether producers may append without the function's lock.
///
/// Public only for the loom model check (`--cfg loom`); not part of the API.
#[doc(hidden)]
pub struct Inbox<T> {
    items: Lock<Items<T>>,
    /// The length of the function's queue as its lock holders told it (stored under the
    /// function's lock; read under the inbox lock): exact after a drain, and never too low
    /// (events that left the queue may be told only at the next drain).
    queued: AtomicUsize,
    /// The queue's capacity: the most events inbox and queue may hold together.
    capacity: AtomicUsize,
    /// Whether the function's token is out: it sits in the run queue (or a worker is about to
    /// put it back) exactly while this is set, so it is queued at most once and never forgotten
    /// while it has ready events.
    token: AtomicBool,
    /// Whether producers may append without the function's lock (not paused, not deleted).
    open: AtomicBool,
}

struct Items<T> {
    events: Vec<T>,
    /// The last request-id number given.
    seq: u64,
}

/// A place in an [`Inbox`], held under its lock: [`push`](Admission::push) appends the event.
pub struct Admission<'a, T> {
    items: Guard<'a, Items<T>>,
}

impl<T> Admission<'_, T> {
    /// The request-id number the event appended next gets.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.items.seq + 1
    }

    /// Appends `event` (made with [`seq`](Self::seq)); returns how many events the inbox
    /// holds now.
    #[inline]
    pub fn push(mut self, event: T) -> usize {
        self.items.seq += 1;
        self.items.events.push(event);
        self.items.events.len()
    }
}

impl<T> Inbox<T> {
    /// An empty, open inbox for a queue of `capacity` events, its token not out.
    pub fn new(capacity: usize) -> Self {
        Inbox {
            items: Lock::new(Items {
                events: Vec::new(),
                seq: 0,
            }),
            queued: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity),
            token: AtomicBool::new(false),
            open: AtomicBool::new(true),
        }
    }

    /// A place for one more event, or `None` when inbox and queue together hold the capacity.
    #[inline]
    pub fn admit(&self) -> Option<Admission<'_, T>> {
        let items = lock(&self.items);
        let held = items.events.len() + self.queued.load(Ordering::Acquire);
        if held >= self.capacity.load(Ordering::Acquire) {
            return None;
        }
        Some(Admission { items })
    }

    /// The most events inbox and queue may hold together.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    /// The next request-id number, for an event that does not go through the inbox.
    pub fn next_seq(&self) -> u64 {
        let mut items = lock(&self.items);
        items.seq += 1;
        items.seq
    }

    /// Moves every appended event into `spare` (empty), in order; `queued` is the length of
    /// the function's queue before they join it. Returns how many moved. Call it under the
    /// function's lock.
    #[inline]
    pub fn take_all(&self, spare: &mut Vec<T>, queued: usize) -> usize {
        let mut items = lock(&self.items);
        let n = items.events.len();
        if n > 0 {
            std::mem::swap(&mut items.events, spare);
            self.queued.store(queued + n, Ordering::Release);
        }
        n
    }

    /// Whether events wait in the inbox.
    pub fn is_empty(&self) -> bool {
        lock(&self.items).events.is_empty()
    }

    /// The function's queue now holds `len` events (under the function's lock).
    #[inline]
    pub fn note_queued(&self, len: usize) {
        self.queued.store(len, Ordering::Release);
    }

    /// A new capacity for inbox and queue together (under the function's lock).
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Release);
    }

    /// Whether producers may append without the function's lock.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Producers must take the function's lock from now on (paused or deleted); drain the
    /// inbox after this.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }

    /// Producers may append without the function's lock again (resumed).
    pub fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Claims the run token: `true` when it was not out and the caller must send the function
    /// to the run queue.
    #[inline]
    pub fn claim(&self) -> bool {
        !self.token.load(Ordering::Acquire) && !self.token.swap(true, Ordering::AcqRel)
    }

    /// [`claim`](Self::claim) when `runnable`.
    #[inline]
    pub fn claim_if(&self, runnable: bool) -> bool {
        runnable && self.claim()
    }

    /// A worker that took the function from the run queue has taken an event (or found none):
    /// `true` when the caller must send the function again (ready events remain, or events
    /// were appended to the inbox after the caller drained it). Call it under the function's
    /// lock, after draining.
    #[inline]
    pub fn keep(&self, more_ready: bool) -> bool {
        if more_ready {
            return true;
        }
        self.token.store(false, Ordering::Release);
        // A producer that appended before this look-up saw the token out and left the
        // function to us; one that appends after it sees the token back.
        !self.is_empty() && self.claim()
    }

    /// A worker found the function paused or deleted: the token is dropped until a resume
    /// (producers settle their own events while the inbox is closed).
    #[inline]
    pub fn drop_token(&self) {
        self.token.store(false, Ordering::Release);
    }
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("capacity", &self.capacity.load(Ordering::Relaxed))
            .field("token", &self.token.load(Ordering::Relaxed))
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Admission<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}
