//! The run queue: what has work ready (the engine's functions with ready events), in the order
//! it became ready, and the threads parked until something is.
//!
//! One lock guards both, so that a thread that finds the queue empty counts itself as parked
//! in the same step: whoever pushes after that finds it and unparks it, and whoever pushed
//! before left an item it found. No wake-up is lost and none is sent when nobody is parked,
//! which keeps the common hand-off (one thread pushes, another or the same pops) to a lock, a
//! `VecDeque` push and a pop. Callers decide what goes in: the engine's run token keeps a
//! function in it at most once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::parts::sync::{
    current, fence, park, park_timeout, AtomicBool, AtomicUsize, Mutex, Ordering, Thread,
};

/// Items ready to run, first in first out, and the threads parked waiting for one.
pub struct RunQueue<T> {
    shared: Mutex<Shared<T>>,
    /// `sleepers.len()`, readable without the lock: a timer armed or a clock moved wakes a
    /// parked thread only when there is one (see [`wake_one`](Self::wake_one)).
    parked: AtomicUsize,
}

struct Shared<T> {
    ready: VecDeque<T>,
    /// Threads parked (or about to park) until an item comes; each is unparked at most once
    /// per registration, by whoever takes it out of this list.
    sleepers: Vec<Sleeper>,
}

impl<T> std::fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue")
            .field("parked", &self.parked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RunQueue<T> {
    /// An empty queue with no thread parked.
    pub fn new() -> Self {
        RunQueue {
            shared: Mutex::new(Shared {
                ready: VecDeque::new(),
                sleepers: Vec::new(),
            }),
            parked: AtomicUsize::new(0),
        }
    }

    /// Appends `item`, and unparks one parked thread if there is one.
    #[inline]
    pub fn push(&self, item: T) {
        let sleeper = {
            let mut shared = self.shared.lock();
            shared.ready.push_back(item);
            if shared.sleepers.is_empty() {
                return;
            }
            self.take_sleeper(&mut shared)
        };
        if let Some(sleeper) = sleeper {
            sleeper.unpark();
        }
    }

    /// Appends every item under one lock, and unparks as many parked threads as items came
    /// (or all there are), the oldest first.
    pub fn push_all(&self, items: impl IntoIterator<Item = T>) {
        let woken = {
            let mut shared = self.shared.lock();
            let before = shared.ready.len();
            shared.ready.extend(items);
            let added = shared.ready.len() - before;
            // The oldest sleepers, as `take_sleeper` takes them.
            let wake = added.min(shared.sleepers.len());
            let woken: Vec<Sleeper> = shared.sleepers.drain(..wake).collect();
            self.parked.store(shared.sleepers.len(), Ordering::SeqCst);
            woken
        };
        for sleeper in woken {
            sleeper.unpark();
        }
    }

    /// The oldest item, if any.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        self.shared.lock().ready.pop_front()
    }

    /// The oldest item; or, when there is none, counts `me` (the calling thread) as parked, in
    /// the same step. After `None` the caller parks ([`Sleeper::park`], with a timeout if it
    /// likes), and once awake, for whatever reason, calls [`unparked`](Self::unparked) before
    /// looking again. A push after this call unparks a parked thread, so the caller's park
    /// returns (at once if the push came first).
    #[inline]
    pub fn pop_or_park(&self, me: &Sleeper) -> Option<T> {
        let mut shared = self.shared.lock();
        if let Some(item) = shared.ready.pop_front() {
            return Some(item);
        }
        // A wake-up from before this registration is not for it.
        me.inner.woken.store(false, Ordering::SeqCst);
        shared.sleepers.push(me.clone());
        self.parked.store(shared.sleepers.len(), Ordering::SeqCst);
        drop(shared);
        // The count is published before the caller looks at what else it waits for (timers,
        // the clock); `wake_one` has the matching fence (see there).
        fence(Ordering::SeqCst);
        None
    }

    /// `me` is awake again (unparked, timed out, or woken for no reason): it no longer counts
    /// as parked. Call it after every park that followed a [`pop_or_park`](Self::pop_or_park)
    /// returning `None`, and before that call again.
    #[inline]
    pub fn unparked(&self, me: &Sleeper) {
        // Cheap when a push took us out already: nobody is parked at all. (We counted
        // ourselves in; only a later removal of every sleeper can make this read 0.)
        if self.parked.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut shared = self.shared.lock();
        if let Some(at) = shared.sleepers.iter().position(|s| s.is(me)) {
            // In order: the oldest sleeper is woken first (see `take_sleeper`).
            shared.sleepers.remove(at);
            self.parked.store(shared.sleepers.len(), Ordering::SeqCst);
        }
    }

    /// Unparks one parked thread, if there is one, to look again at what else it waits for (a
    /// timer armed earlier, a clock moved). Call it after that change: a fence here and one in
    /// [`pop_or_park`](Self::pop_or_park) (between counting the thread parked and its look)
    /// order the two, so either the parked thread sees the change or this sees it parked.
    /// Returns whether a thread was unparked.
    pub fn wake_one(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let sleeper = self.take_sleeper(&mut self.shared.lock());
        match sleeper {
            Some(sleeper) => {
                sleeper.unpark();
                true
            }
            None => false,
        }
    }

    /// How many threads are parked.
    #[cfg(any(test, loom))]
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    /// How many items wait.
    #[cfg(any(test, loom))]
    pub fn len(&self) -> usize {
        self.shared.lock().ready.len()
    }

    /// Whether no item waits.
    #[cfg(any(test, loom))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the thread parked first, keeping the count in step. The oldest, not the warmest:
    /// a thread woken to look at an earlier timer parks again last, knowing its deadline, so
    /// work goes to the threads that parked before that timer (sleeping with no deadline, or
    /// a later one) and the thread that knows it stays parked for it.
    #[inline]
    fn take_sleeper(&self, shared: &mut Shared<T>) -> Option<Sleeper> {
        if shared.sleepers.is_empty() {
            return None;
        }
        let sleeper = shared.sleepers.remove(0);
        self.parked.store(shared.sleepers.len(), Ordering::SeqCst);
        Some(sleeper)
    }
}

/// A thread that parks on a [`RunQueue`], with a wake-up of its own.
///
/// `std::thread`'s park token is shared with all code the thread runs, and a park anywhere
/// uses it up: a [`Clock`](crate::Clock) of the caller's that parked inside `now` (a blocking
/// receive parks too), read between counting the thread parked and parking, could take the
/// token of the push meant to wake it, and the thread, already out of the sleepers, would sleep
/// on. So whoever wakes a sleeper first sets its `woken` flag, then unparks it; a sleeper parks
/// only while the flag is down, and the flag goes down each time it counts itself parked
/// ([`RunQueue::pop_or_park`]). A wake-up whose token was used up elsewhere still finds the
/// flag up.
#[derive(Clone, Debug)]
pub struct Sleeper {
    inner: Arc<SleeperInner>,
}

#[derive(Debug)]
struct SleeperInner {
    thread: Thread,
    /// Woken (by a waker that took it out of the sleepers, or by a stop) since it last counted
    /// itself parked.
    woken: AtomicBool,
}

impl Sleeper {
    /// The calling thread.
    pub fn current() -> Self {
        Sleeper {
            inner: Arc::new(SleeperInner {
                thread: current(),
                woken: AtomicBool::new(false),
            }),
        }
    }

    /// Whether `other` is this sleeper (a clone of it), not merely one of the same thread.
    pub fn is(&self, other: &Sleeper) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Wakes the thread: its current [`park`](Self::park), or its next one before it counts
    /// itself parked again, returns, even if other code used up its park token first.
    pub fn unpark(&self) {
        self.inner.woken.store(true, Ordering::SeqCst);
        self.inner.thread.unpark();
    }

    /// Parks the calling thread (this sleeper's) until it is woken
    /// ([`unpark`](Self::unpark)); at once if it was woken since it last counted itself parked.
    /// A token left by a wake-up it saw without parking is used up on the way, so the next
    /// park does not return for it.
    pub fn park(&self) {
        debug_assert_eq!(current().id(), self.inner.thread.id());
        while !self.inner.woken.load(Ordering::SeqCst) {
            park();
        }
    }

    /// [`park`](Self::park), for at most `timeout`.
    pub fn park_timeout(&self, timeout: Duration) {
        debug_assert_eq!(current().id(), self.inner.thread.id());
        let deadline = Instant::now() + timeout;
        while !self.inner.woken.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            park_timeout(deadline - now);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use super::{RunQueue, Sleeper};

    #[test]
    fn items_come_out_in_the_order_they_went_in() {
        let q = RunQueue::new();
        q.push(1);
        q.push_all([2, 3]);
        q.push(4);
        assert_eq!(q.len(), 4);
        let out: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_thread_that_found_nothing_counts_as_parked_until_it_says_it_is_awake() {
        let q: RunQueue<u32> = RunQueue::new();
        let me = Sleeper::current();
        assert_eq!(q.pop_or_park(&me), None);
        assert_eq!(q.parked(), 1);
        q.unparked(&me);
        assert_eq!(q.parked(), 0);
        // Awake twice is harmless.
        q.unparked(&me);
        assert_eq!(q.parked(), 0);
        assert!(!q.wake_one(), "nobody is parked");
    }

    #[test]
    fn a_push_takes_one_parked_thread_out_and_unparks_it() {
        let q = Arc::new(RunQueue::new());
        let worker = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let me = Sleeper::current();
                loop {
                    if let Some(item) = q.pop_or_park(&me) {
                        return item;
                    }
                    me.park();
                    q.unparked(&me);
                }
            })
        };
        while q.parked() == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        q.push(7);
        assert_eq!(worker.join().unwrap(), 7);
        assert_eq!(q.parked(), 0);
    }

    #[test]
    fn pushing_many_wakes_as_many_parked_threads_as_items() {
        let q: RunQueue<u32> = RunQueue::new();
        let me = Sleeper::current();
        assert_eq!(q.pop_or_park(&me), None);
        let other = thread::spawn(Sleeper::current).join().unwrap();
        assert_eq!(q.pop_or_park(&other), None);
        assert_eq!(q.parked(), 2);
        q.push_all([1]);
        assert_eq!(q.parked(), 1);
        q.push_all([2, 3]);
        assert_eq!(q.parked(), 0);
        // The unpark reached this thread, or the other one (whose handle outlives it).
        q.unparked(&me);
        assert_eq!(q.len(), 3);
    }
}
