//! Where model mode meets the engine: arrivals join their queues, executions end at their
//! virtual end.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Arrival;
use crate::engine::{FunctionShared, Runtime};
use crate::observe::TraceKind;
use crate::parts::clock::Timestamp;
use crate::parts::error::InvokeError;
use crate::parts::queue::QueuedEvent;
use crate::parts::record::{Condition, RequestId};

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Model mode: an invoke whose call returns at `at`. The request id is given now; the
    /// event is accepted (counted as received, queued, traced) when virtual time reaches `at`.
    /// The queue's capacity is checked now, against the events already accepted.
    pub(crate) fn enqueue_arriving(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        depth: u32,
        at: Timestamp,
    ) -> Result<RequestId, InvokeError<P>> {
        let Some(model) = &self.inner.model else {
            return self.enqueue(f, payload, depth);
        };
        if at <= self.inner.clock.now() {
            return self.enqueue(f, payload, depth);
        }
        let id = {
            let mut st = f.state.lock();
            if st.deleted {
                return Err(InvokeError::FunctionDeleted {
                    name: f.name.to_string(),
                    payload,
                });
            }
            if st.queue.len() + st.arriving >= st.queue.capacity() {
                return Err(InvokeError::QueueFull {
                    function: f.name.to_string(),
                    capacity: st.queue.capacity(),
                    payload,
                });
            }
            st.seq += 1;
            st.arriving += 1;
            RequestId::new(f.index, st.seq)
        };
        // Outstanding from the call on, so that nobody finds the runtime idle meanwhile.
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        let mut event = QueuedEvent::new(id, payload, at);
        event.set_chain_depth(depth);
        model.push_arrival(at, Arc::clone(f), event);
        Ok(id)
    }

    /// Model mode: an event's invoke call returned; it joins its function's queue now.
    pub(crate) fn accept_arrival(&self, arrival: Arrival<P, R>) {
        let Arrival { function: f, event } = arrival;
        let now = event.enqueued_at();
        let id = event.request_id();
        let depth = event.chain_depth();
        let mut st = f.state.lock();
        st.received += 1;
        st.arriving -= 1;
        if st.deleted {
            // Deleted while the call was on its way: it still ends with a record.
            let version = Arc::clone(&st.current);
            drop(st);
            self.trace(&f, id, now, TraceKind::Accepted { chain_depth: depth });
            self.finish(
                &f,
                &version,
                event,
                Condition::FunctionDeleted,
                None,
                false,
                now,
            );
            return;
        }
        st.queue.push_unbounded(event);
        self.joined_queue(&f, st, id, now, depth);
        if let Some(model) = &self.inner.model {
            model.observe(
                now,
                self.inner.account.in_flight() as u64,
                self.outstanding(),
            );
        }
    }

    /// Model mode: an execution reached its virtual end. Its slots go back, then its outcome
    /// counts as if it had just returned.
    pub(crate) fn complete(&self, c: crate::model::Completion<P, R>) {
        let crate::model::Completion {
            at,
            function: f,
            version,
            event,
            result,
            attempt,
            started,
            slots,
        } = c;
        let at = Timestamp::from_nanos(at);
        drop(slots);
        self.conclude(&f, &version, event, attempt, result, started, at, None);
        if let Some(model) = &self.inner.model {
            model.observe(at, self.running(), self.outstanding());
        }
    }

    /// Runs everything of model mode that is due at `now`: arrivals join their queues and
    /// executions end, in virtual-time order. Cheap when nothing is due: one atomic load.
    #[inline]
    pub(crate) fn model_due(&self, now: Timestamp) {
        let Some(model) = &self.inner.model else {
            return;
        };
        while let Some(due) = model.pop_due(now) {
            match due {
                crate::model::Due::Arrival(a) => self.accept_arrival(a),
                crate::model::Due::Completion(c) => self.complete(*c),
            }
        }
    }
}
