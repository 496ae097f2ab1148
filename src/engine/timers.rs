//! Timers: due retries and backoffs, and the age deadlines of held events.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::sync::Arc;

use crate::parts::clock::Timestamp;
use crate::parts::record::Condition;

use super::{FunctionShared, Runtime};

pub(crate) struct TimerEntry<P, R> {
    pub(crate) due: Timestamp,
    pub(crate) seq: u64,
    pub(crate) function: Arc<FunctionShared<P, R>>,
}

impl<P, R> PartialEq for TimerEntry<P, R> {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl<P, R> Eq for TimerEntry<P, R> {}
impl<P, R> PartialOrd for TimerEntry<P, R> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<P, R> Ord for TimerEntry<P, R> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// Where a timer stands when the driver looks for the next time to wake.
pub(crate) enum Standing {
    /// Nothing is due by then any more (the function was deleted, or its events left): drop it.
    Stale,
    /// A paused function's timer: a held event's age deadline.
    Held,
    /// A delayed event becomes ready by then.
    Ready,
}

/// The runtime's timers: when each function must be looked at again (a due retry or backoff,
/// a held event's age deadline). A heap behind a lock, and the earliest due time readable
/// without it, which every worker loop checks.
pub(crate) struct Timers<P, R> {
    heap: Mutex<Heap<P, R>>,
    /// The earliest timer's due time in nanoseconds (`u64::MAX`: none).
    next: AtomicU64,
}

struct Heap<P, R> {
    entries: BinaryHeap<TimerEntry<P, R>>,
    /// Breaks ties between equal due times in the order they were armed.
    seq: u64,
}

impl<P, R> Heap<P, R> {
    fn earliest(&self) -> u64 {
        self.entries.peek().map_or(u64::MAX, |t| t.due.as_nanos())
    }
}

impl<P, R> Timers<P, R> {
    pub(crate) fn new() -> Self {
        Timers {
            heap: Mutex::new(Heap {
                entries: BinaryHeap::new(),
                seq: 0,
            }),
            next: AtomicU64::new(u64::MAX),
        }
    }

    /// The earliest timer's due time in nanoseconds (`u64::MAX`: none), without the lock.
    #[inline]
    pub(crate) fn next_nanos(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Arms a timer for `f` at `due`; returns whether it is now the earliest.
    fn arm(&self, f: &Arc<FunctionShared<P, R>>, due: Timestamp) -> bool {
        let mut heap = self.heap.lock();
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(TimerEntry {
            due,
            seq,
            function: Arc::clone(f),
        });
        let earlier = due.as_nanos() < self.next.load(Ordering::SeqCst);
        if earlier {
            self.next.store(due.as_nanos(), Ordering::SeqCst);
        }
        earlier
    }

    /// Takes the functions of every timer due at `now`.
    fn take_due(&self, now: Timestamp) -> Vec<Arc<FunctionShared<P, R>>> {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while heap.entries.peek().is_some_and(|t| t.due <= now) {
            if let Some(t) = heap.entries.pop() {
                due.push(t.function);
            }
        }
        self.next.store(heap.earliest(), Ordering::SeqCst);
        due
    }

    /// The earliest live timers, dropping stale ones on the way: `(any, unheld)`, where `any`
    /// may be a held event's age deadline and `unheld` is the earliest that is not.
    /// `standing` says where a timer stands; it runs under the timers' lock.
    fn earliest_live(
        &self,
        standing: impl Fn(&TimerEntry<P, R>) -> Standing,
    ) -> (Option<Timestamp>, Option<Timestamp>) {
        let mut heap = self.heap.lock();
        let mut set_aside = Vec::new();
        let (mut any, mut unheld) = (None, None);
        while let Some(top) = heap.entries.peek() {
            let due = top.due;
            match standing(top) {
                Standing::Stale => {
                    heap.entries.pop();
                }
                Standing::Held => {
                    any.get_or_insert(due);
                    set_aside.extend(heap.entries.pop());
                }
                Standing::Ready => {
                    any.get_or_insert(due);
                    unheld = Some(due);
                    break;
                }
            }
        }
        heap.entries.extend(set_aside);
        self.next.store(heap.earliest(), Ordering::SeqCst);
        (any, unheld)
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Asks for `f` to be looked at when `due` comes. Never called with `f`'s lock held (the
    /// lock order is timers, then a function).
    pub(crate) fn arm_timer(&self, f: &Arc<FunctionShared<P, R>>, due: Timestamp) {
        let earlier = self.inner.timers.arm(f, due);
        // A parked worker waits for the old earliest timer; nudge it to re-read.
        if earlier {
            self.inner.run_queue.wake_one();
        }
    }

    /// Fires every timer due at `now`. Cheap when none is: one atomic load. Returns whether
    /// any fired: then code of the user's may have run (a held event's record delivered to a
    /// closure), and a step must not start at `now`.
    #[inline]
    pub(crate) fn fire_timers(&self, now: Timestamp) -> bool {
        if self.inner.timers.next_nanos() > now.as_nanos() {
            return false;
        }
        let due = self.inner.timers.take_due(now);
        let fired = !due.is_empty();
        for f in due {
            self.on_timer(&f, now);
        }
        fired
    }

    /// A timer of `f` came due: promote its due retries; if it is paused, end the held events
    /// that aged out and arm the next expiry.
    pub(crate) fn on_timer(&self, f: &Arc<FunctionShared<P, R>>, now: Timestamp) {
        let mut st = f.state.lock();
        if st.deleted {
            return;
        }
        st.queue.promote_due(now);
        if st.paused {
            let version = Arc::clone(&st.current);
            let retry = &version.config.retry;
            // Held events leave by age, the oldest first: O(log n) each.
            let expired = st
                .queue
                .take_aged(|enqueued_at| retry.is_expired(enqueued_at, now));
            f.counters
                .in_hand
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            let next = st
                .queue
                .oldest_enqueued_at()
                .map(|t| t + retry.maximum_event_age());
            drop(st);
            let aged_out = !expired.is_empty();
            let aged = Condition::EventAgeExceeded;
            let panic = self.finish_all(f, &version, expired, aged, now);
            if let Some(next) = next {
                self.arm_timer(f, next);
            }
            if aged_out {
                self.observe_time(now);
            }
            // After the next deadline is armed: the events still held age out on time.
            if let Some(panic) = panic {
                std::panic::resume_unwind(panic);
            }
        } else {
            let runnable = st.queue.ready_len() > 0;
            if st.token.claim(runnable) {
                drop(st);
                self.inner.schedule(f);
            }
        }
    }

    /// The earliest live timers, skipping (and dropping) stale ones: `(any, unheld)`, where
    /// `any` may belong to a paused function (a held event's age deadline) and `unheld` is the
    /// earliest that does not. `any <= unheld` whenever both exist.
    pub(crate) fn next_wake(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        self.inner.timers.earliest_live(|timer| {
            let st = timer.function.state.lock();
            // A timer is live if a delayed event is due by then; a paused function's timer if
            // it holds any event (finding its exact oldest would cost a scan per timer: a stale
            // one only stops time once for nothing).
            if st.deleted {
                Standing::Stale
            } else if st.paused {
                if st.queue.is_empty() {
                    Standing::Stale
                } else {
                    Standing::Held
                }
            } else if st.queue.next_due().is_some_and(|d| d <= timer.due) {
                Standing::Ready
            } else {
                Standing::Stale
            }
        })
    }
}
