//! Timers: due retries and backoffs, and the age deadlines of held events.

use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::parts::clock::Timestamp;
use crate::parts::record::Condition;

use super::outcome::Ending;
use super::{FunctionShared, Runtime, Task};

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

pub(crate) struct Timers<P, R> {
    pub(crate) heap: BinaryHeap<TimerEntry<P, R>>,
    pub(crate) seq: u64,
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Asks for `f` to be looked at when `due` comes. Never called with `f`'s lock held (the
    /// lock order is timers, then a function).
    pub(crate) fn arm_timer(&self, f: &Arc<FunctionShared<P, R>>, due: Timestamp) {
        let earlier = {
            let mut timers = self.inner.timers.lock();
            timers.seq += 1;
            let seq = timers.seq;
            timers.heap.push(TimerEntry {
                due,
                seq,
                function: Arc::clone(f),
            });
            let earlier = due.as_nanos() < self.inner.next_timer.load(Ordering::SeqCst);
            if earlier {
                self.inner
                    .next_timer
                    .store(due.as_nanos(), Ordering::SeqCst);
            }
            earlier
        };
        // A parked worker waits for the old earliest timer; nudge it to re-read.
        if earlier && self.inner.parked.load(Ordering::SeqCst) > 0 {
            let _ = self.inner.run_tx.send(Task::Tick);
        }
    }

    /// Fires every timer due at `now`. Cheap when none is: one atomic load.
    #[inline]
    pub(crate) fn fire_timers(&self, now: Timestamp) {
        if self.inner.next_timer.load(Ordering::SeqCst) > now.as_nanos() {
            return;
        }
        let due: Vec<Arc<FunctionShared<P, R>>> = {
            let mut timers = self.inner.timers.lock();
            let mut due = Vec::new();
            while timers.heap.peek().is_some_and(|t| t.due <= now) {
                if let Some(t) = timers.heap.pop() {
                    due.push(t.function);
                }
            }
            let next = timers.heap.peek().map_or(u64::MAX, |t| t.due.as_nanos());
            self.inner.next_timer.store(next, Ordering::SeqCst);
            due
        };
        for f in due {
            self.on_timer(&f, now);
        }
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
            let expired = st
                .queue
                .remove_where(|e| retry.is_expired(e.enqueued_at(), now));
            f.counters
                .in_hand
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            let next = st
                .queue
                .oldest_enqueued_at()
                .map(|t| t + retry.maximum_event_age());
            drop(st);
            let aged_out = !expired.is_empty();
            for e in expired {
                self.finish(
                    f,
                    &version,
                    e,
                    Ending::taken(Condition::EventAgeExceeded, now),
                );
            }
            if let Some(next) = next {
                self.arm_timer(f, next);
            }
            if aged_out {
                self.observe_time(now);
            }
        } else {
            let runnable = st.queue.ready_len() > 0;
            if st.token.claim(runnable) {
                drop(st);
                let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
            }
        }
    }

    /// The earliest live timers, skipping (and dropping) stale ones: `(any, unheld)`, where
    /// `any` may belong to a paused function (a held event's age deadline) and `unheld` is the
    /// earliest that does not. `any <= unheld` whenever both exist.
    pub(crate) fn next_wake(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let mut timers = self.inner.timers.lock();
        let mut set_aside = Vec::new();
        let (mut any, mut unheld) = (None, None);
        while let Some(top) = timers.heap.peek() {
            let due = top.due;
            let (deleted, paused, next_due, empty) = {
                let st = top.function.state.lock();
                (
                    st.deleted,
                    st.paused,
                    st.queue.next_due(),
                    st.queue.is_empty(),
                )
            };
            // A timer is live if a delayed event is due by then; a paused function's timer if it
            // holds any event (finding its exact oldest would cost a scan per timer: a stale
            // one only stops time once for nothing).
            let live = !deleted
                && if paused {
                    !empty
                } else {
                    next_due.is_some_and(|d| d <= due)
                };
            if !live {
                timers.heap.pop();
                continue;
            }
            any.get_or_insert(due);
            if paused {
                if let Some(t) = timers.heap.pop() {
                    set_aside.push(t);
                }
                continue;
            }
            unheld = Some(due);
            break;
        }
        timers.heap.extend(set_aside);
        let next = timers.heap.peek().map_or(u64::MAX, |t| t.due.as_nanos());
        self.inner.next_timer.store(next, Ordering::SeqCst);
        (any, unheld)
    }
}
