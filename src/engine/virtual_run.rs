//! The engine's side of virtual time (cargo feature `model`): an execution that takes virtual
//! time keeps its slots until its end, an invoke call's event arrives when the call returns,
//! and the driver runs both when virtual time reaches them. What the time is comes from the
//! [`VirtualTime`] behind the executor seam.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::admission::Place;
use super::dispatch::{Attempt, Call};
use super::executor::{Arrival, Completion, Due, Executor, Started, ThrottleCause, VirtualTime};
use super::outcome::Ending;
use super::{
    Dispatched, FnState, FunctionMetrics, FunctionShared, Runtime, Slots, StepOutcome, Version,
};
use crate::observe::TraceKind;
use crate::parts::clock::{duration_nanos, Timestamp};
use crate::parts::error::InvokeError;
use crate::parts::limiter::AccountLevels;
use crate::parts::queue::QueuedEvent;
use crate::parts::record::{resume_late, Condition, LatePanic, RequestId};

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Runs `attempt` on a virtual time line. An execution that takes no virtual time ends in
    /// this step, like a real one; a longer one keeps its slots and ends when virtual time
    /// reaches its end.
    ///
    /// Out of line: inlined, it would take the inlining budget of the threads' step.
    #[inline(never)]
    pub(crate) fn execute_virtual<'a>(
        &'a self,
        v: &dyn VirtualTime<P, R>,
        attempt: &Attempt<'_, P, R>,
        event: QueuedEvent<P>,
        held: &mut Option<Slots<'a>>,
    ) -> Dispatched {
        let now = attempt.started;
        let start = Started {
            age_ns: duration_nanos(now - event.enqueued_at()),
            first: attempt.number == 1,
            running: self.running(),
            outstanding: self.outstanding(),
        };
        v.started(now, start);
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
            let concluded = self.conclude_virtual(attempt, event, result, end);
            self.after_virtual_end(v, attempt.f, attempt.version, concluded.retry_due(), now);
            self.observe_time(now);
            return concluded.go_on();
        }
        // It ends later: its slots stay taken until then.
        let slots = held.take().map(|slots| self.own_slots(attempt.f, slots));
        let request_id = event.request_id();
        self.sample_reserved(v, attempt.f, attempt.version, now);
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
    /// it had just returned. Returns when to sample the runtime (its end), which the caller
    /// does, and a panic of the user's code to let go on after that sample, if one came up.
    fn complete(&self, c: Completion<P, R>) -> (Timestamp, Option<LatePanic>) {
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
        let concluded = self.conclude_virtual(&attempt, event, result, at);
        if let Executor::Virtual(v) = &self.inner.executor {
            self.after_virtual_end(&**v, &f, &version, concluded.retry_due(), at);
        }
        // Goes on after the model's books of this end, the caller's sample included.
        (at, concluded.into_late())
    }

    /// An execution ended at `now` with its slots given back: its retry (if any) counts for
    /// the model, its function is sampled, and pollers that backed off get the freed slot.
    fn after_virtual_end(
        &self,
        v: &dyn VirtualTime<P, R>,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        retry_due: Option<Timestamp>,
        now: Timestamp,
    ) {
        if let Some(due) = retry_due {
            v.retry_scheduled(f.index, due);
        }
        self.sample_reserved(v, f, version, now);
        self.wake_pollers(v, now);
    }

    /// Lets the model sample a function with reserved concurrency (its idle slots while its
    /// events wait). Nothing for other functions.
    fn sample_reserved(
        &self,
        v: &dyn VirtualTime<P, R>,
        f: &FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) {
        let Some(reserved) = version.config.reserved_concurrency else {
            return;
        };
        let queued = f.state.lock().queue.len() as u64;
        let running = f.limiter.in_flight() as u64;
        v.observe_reserved(now, f.index, u64::from(reserved), running, queued);
    }

    /// Whether an attempt of `f` would find an execution slot now: the same levels as
    /// `acquire_slots`, read without taking any.
    fn slot_free(&self, f: &FunctionShared<P, R>, version: &Version<P, R>, now: Timestamp) -> bool {
        let free = |l: &crate::parts::limiter::ConcurrencyLimiter| l.in_flight() < l.limit();
        if let Some(envs) = &self.inner.environments {
            if envs.refuses(f, f.limiter.in_flight() + 1, now) {
                return false;
            }
        }
        let (account_full, pool_full) = self.inner.account.full(AccountLevels::of(
            version.config.reserved_concurrency.is_none(),
        ));
        !account_full && !pool_full && free(&f.limiter)
    }

    /// Model mode ([`ThrottledEvents::PollerBacksOff`](crate::ThrottledEvents)): whether
    /// `f`'s poller, backed off after a throttle, waits instead of reading its next event
    /// now. It reads again when a slot is free for it, or on its own once the throttled event
    /// comes back. Called with `f`'s lock held; nothing to do outside model mode.
    #[inline]
    pub(crate) fn poller_waits(
        &self,
        f: &FunctionShared<P, R>,
        st: &mut FnState<P, R>,
        now: Timestamp,
    ) -> bool {
        let Some(until) = st.poller_until else {
            return false;
        };
        if now >= until {
            st.poller_until = None;
            return false;
        }
        !self.slot_free(f, &st.current, now)
    }

    /// After a throttle of `f`'s event (not an injected error): counts its cause; when the
    /// model's pollers back off and the event went back to the queue (due at `due`), `f`'s
    /// poller backs off until then.
    pub(crate) fn throttled_virtual(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        now: Timestamp,
        due: Timestamp,
        requeued: bool,
    ) {
        let Executor::Virtual(v) = &self.inner.executor else {
            return;
        };
        // A full pool is the cause even when the scaling rate refused too (it is asked first):
        // more environments would not have given the attempt a slot. The scaling rate is the
        // cause only when every pool had room.
        let full = |l: &crate::parts::limiter::ConcurrencyLimiter| l.in_flight() >= l.limit();
        let reserved = version.config.reserved_concurrency.is_some();
        let cause = if reserved && full(&f.limiter) {
            ThrottleCause::Reserved
        } else if self.inner.account.full(AccountLevels::of(!reserved)) != (false, false) {
            ThrottleCause::Account
        } else if self
            .inner
            .environments
            .as_ref()
            .is_some_and(|e| e.refuses(f, f.limiter.in_flight() + 1, now))
        {
            ThrottleCause::Scaling
        } else {
            ThrottleCause::Account
        };
        if v.throttled(f.index, cause) && requeued {
            f.state.lock().poller_until = Some(due);
            let backed_off = v.backed_off();
            let mut list = backed_off.list.lock();
            if !list.iter().any(|g| Arc::ptr_eq(g, f)) {
                list.push(Arc::clone(f));
            }
            backed_off.any.store(true, Ordering::Relaxed);
        }
        self.sample_reserved(&**v, f, version, now);
    }

    /// A slot freed at `now`: each backed-off poller with ready events and a slot free for it
    /// reads again (its function goes to the run queue). Pollers no longer backed off leave
    /// the list.
    fn wake_pollers(&self, v: &dyn VirtualTime<P, R>, now: Timestamp) {
        let backed_off = v.backed_off();
        // One thread drives model mode: the flag is read and written under its steps only.
        if !backed_off.any.load(Ordering::Relaxed) {
            return;
        }
        let mut list = backed_off.list.lock();
        list.retain(|f| {
            let mut st = f.state.lock();
            if st.poller_until.is_none() || st.deleted {
                return false;
            }
            if st.paused {
                return true;
            }
            st.queue.promote_due(now);
            if st.queue.ready_len() > 0
                && self.slot_free(f, &st.current, now)
                && st.token.claim(true)
            {
                self.inner.schedule(f);
            }
            true
        });
        backed_off.any.store(!list.is_empty(), Ordering::Relaxed);
    }

    /// Runs everything of virtual time that is due at `now`: arrivals join their queues and
    /// executions end, in virtual-time order. Cheap when nothing is due: one atomic load.
    #[inline]
    pub(crate) fn virtual_due(&self, now: Timestamp) -> bool {
        let Executor::Virtual(v) = &self.inner.executor else {
            return false;
        };
        let mut next = v.pop_due(now);
        let any = next.is_some();
        while let Some(due) = next {
            // Each is sampled when it has run; the sample and the next take share a lock.
            let sampled = match due {
                Due::Arrival(a) => self.accept_arrival(a),
                Due::Completion(c) => {
                    let (at, late) = self.complete(c);
                    if late.is_some() {
                        // Sampled before the panic goes on, as a run without it samples.
                        v.observe(at, self.running(), self.outstanding());
                        resume_late(late);
                    }
                    Some(at)
                }
            };
            next = match sampled {
                Some(at) => v.observe_then_pop_due(at, self.running(), self.outstanding(), now),
                None => v.pop_due(now),
            };
        }
        any
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

    /// An event's invoke call returned; it joins its function's queue now. Returns when to
    /// sample the runtime, which the caller does (nothing to sample when the function was
    /// deleted meanwhile).
    fn accept_arrival(&self, arrival: Arrival<P, R>) -> Option<Timestamp> {
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
            self.trace(&f, id, now, || TraceKind::Accepted { chain_depth: depth });
            let deleted = Condition::FunctionDeleted;
            self.finish(&f, &version, event, Ending::arrived(deleted, now));
            return None;
        }
        st.queue.push_unbounded(event);
        // Only a function with reserved concurrency is sampled: no version held otherwise.
        let reserved = st
            .current
            .config
            .reserved_concurrency
            .is_some()
            .then(|| Arc::clone(&st.current));
        self.joined_queue(&f, st, id, now, depth);
        if let (Executor::Virtual(v), Some(version)) = (&self.inner.executor, reserved) {
            self.sample_reserved(&**v, &f, &version, now);
        }
        Some(now)
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
