//! The engine's side of virtual time (cargo feature `model`): an execution that takes virtual
//! time keeps its slots until its end, an invoke call's event arrives when the call returns,
//! and the driver runs both when virtual time reaches them. What the time is comes from the
//! [`VirtualTime`] behind the executor seam.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::admission::Place;
use super::dispatch::{Attempt, Call};
use super::executor::{Arrival, Completion, Due, Executor, VirtualTime};
use super::outcome::Ending;
use super::{Dispatched, FunctionMetrics, FunctionShared, Runtime, Slots, StepOutcome};
use crate::observe::TraceKind;
use crate::parts::clock::{duration_nanos, Timestamp};
use crate::parts::error::InvokeError;
use crate::parts::queue::QueuedEvent;
use crate::parts::record::{Condition, RequestId};

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Runs `attempt` on a virtual time line. An execution that takes no virtual time ends in
    /// this step, like a real one; a longer one keeps its slots and ends when virtual time
    /// reaches its end.
    pub(crate) fn execute_virtual<'a>(
        &'a self,
        v: &dyn VirtualTime<P, R>,
        attempt: &Attempt<'_, P, R>,
        event: QueuedEvent<P>,
        held: &mut Option<Slots<'a>>,
    ) -> Dispatched {
        let now = attempt.started;
        let age = duration_nanos(now - event.enqueued_at());
        v.started(now, age, self.running(), self.outstanding());
        let call = Call::of(&event);
        let config = &attempt.version.config;
        let (result, end) = v.execute(
            &attempt.f.cost_rng,
            config,
            now,
            attempt.cold,
            &mut |line| {
                self.run_handler(attempt, call, event.payload(), Some(line))
                    .0
            },
        );
        if end == now {
            // Its slots go back first and its counts go straight to the counters (a virtual
            // batch is one event), so that the timeline sees it gone.
            *held = None;
            let d = self.conclude(attempt, event, result, end, None);
            self.observe_time(now);
            return d;
        }
        // It ends later: its slots stay taken until then.
        let slots = held.take().map(|slots| self.own_slots(attempt.f, slots));
        let request_id = event.request_id();
        v.push_completion(Completion {
            at: end,
            function: Arc::clone(attempt.f),
            version: Arc::clone(attempt.version),
            event,
            result,
            attempt: attempt.number,
            started: now,
            slots,
        });
        Dispatched {
            request_id,
            outcome: StepOutcome::Running { until: end },
        }
    }

    /// An execution reached its virtual end. Its slots go back, then its outcome counts as if
    /// it had just returned.
    fn complete(&self, c: Completion<P, R>) {
        let Completion {
            at,
            function: f,
            version,
            event,
            result,
            attempt,
            started,
            slots,
        } = c;
        // The slots go back first, so that the outcome's timeline sample sees them free.
        drop(slots);
        let attempt = Attempt {
            f: &f,
            version: &version,
            started,
            number: attempt,
            cold: false,
        };
        self.conclude(&attempt, event, result, at, None);
        self.observe_time(at);
    }

    /// Runs everything of virtual time that is due at `now`: arrivals join their queues and
    /// executions end, in virtual-time order. Cheap when nothing is due: one atomic load.
    #[inline]
    pub(crate) fn virtual_due(&self, now: Timestamp) {
        let Executor::Virtual(v) = &self.inner.executor else {
            return;
        };
        while let Some(due) = v.pop_due(now) {
            match due {
                Due::Arrival(a) => self.accept_arrival(a),
                Due::Completion(c) => self.complete(c),
            }
        }
    }

    /// An invoke whose call returns at `at`. The request id is given now; the event is
    /// accepted (counted as received, queued, traced) when virtual time reaches `at`. The
    /// queue's capacity is checked now, against the events already accepted and on their way.
    pub(crate) fn enqueue_arriving(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        place: impl Place<P>,
        at: Timestamp,
    ) -> Result<RequestId, InvokeError<P>> {
        let Executor::Virtual(v) = &self.inner.executor else {
            return self.enqueue(f, payload, place);
        };
        if at <= self.inner.clock.now() {
            return self.enqueue(f, payload, place);
        }
        let id = {
            let mut st = f.state.lock();
            if st.deleted {
                let name = f.name.to_string();
                return Err(InvokeError::FunctionDeleted { name, payload });
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
        let event = place.event(id, payload, at);
        let function = Arc::clone(f);
        v.push_arrival(Arrival {
            at,
            function,
            event,
        });
        Ok(id)
    }

    /// An event's invoke call returned; it joins its function's queue now.
    fn accept_arrival(&self, arrival: Arrival<P, R>) {
        let Arrival {
            function: f, event, ..
        } = arrival;
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
            let deleted = Condition::FunctionDeleted;
            self.finish(&f, &version, event, Ending::arrived(deleted, now));
            return;
        }
        st.queue.push_unbounded(event);
        self.joined_queue(&f, st, id, now, depth);
        self.observe_time(now);
    }

    /// What model mode asks of the engine beside the seam, for its report: every function ever
    /// registered (deleted ones too, in registration order), each with its metrics and the
    /// execution environments it made.
    pub(crate) fn function_books(&self) -> Vec<(FunctionMetrics, u64)> {
        let all: Vec<_> = self.inner.registry.read().all().to_vec();
        all.iter()
            .map(|f| {
                let made = f.environments.load(Ordering::Relaxed);
                (self.snapshot_function(f), made)
            })
            .collect()
    }

    /// The virtual time behind the executor seam, if the runtime runs in it.
    pub(crate) fn virtual_time(&self) -> Option<&dyn VirtualTime<P, R>> {
        match &self.inner.executor {
            Executor::Virtual(v) => Some(&**v),
            Executor::Threads(_) => None,
        }
    }
}
