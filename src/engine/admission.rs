//! Admission: `invoke_async` puts an event on its function's queue (Lambda's 202), and the
//! synchronous `invoke` runs one at once.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::observe::TraceKind;
use crate::parts::clock::Timestamp;
use crate::parts::error::{InvokeError, InvokeSyncError};
use crate::parts::queue::{function_key, Chain, Lineage, QueuedEvent};
use crate::parts::record::RequestId;

use super::dispatch::{Attempt, Call};
use super::{bump, FnState, FunctionShared, RecursionGuard, Runtime, Task};

/// The event whose execution (or whose record, for a function destination) invokes: the new
/// event is one hop further down its chain.
#[derive(Clone, Copy)]
pub(crate) struct Invoker<'a> {
    /// The invoking event's function.
    pub(crate) function: &'a str,
    /// The invoking event's chain depth.
    pub(crate) depth: u32,
    /// The functions the invoking event's chain reached (loop guard only).
    pub(crate) lineage: Option<&'a Arc<Lineage>>,
    /// The place of the invoker's last child (loop guard only), shared with the next child
    /// in the same function: a fan-out builds one, not one per child. A handler's context
    /// keeps it.
    pub(crate) last_child: Option<&'a RefCell<Option<Chain>>>,
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Invokes function `name` asynchronously (`InvocationType=Event`): the event is queued and
    /// its request id returned at once, like Lambda's HTTP 202. No concurrency check happens
    /// here; the event runs when a worker and an execution slot are free.
    ///
    /// Refused (with the payload handed back) when the function is unknown or deleted, or its
    /// queue is full.
    ///
    /// In model mode this is the client's call: the client makes its calls one after the other,
    /// each costing the invoke latency, and each event is accepted when its call returns. A
    /// handler invokes through its [`Context`](crate::Context) instead, which charges the handler's own time
    /// line.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<&'static str> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// rt.register(Function::new("greet", |name: &&str, _ctx| Ok(()))).unwrap();
    /// let id = rt.invoke_async("greet", "world").unwrap();
    /// assert_eq!(rt.queue_snapshot("greet").unwrap()[0].request_id, id);
    /// ```
    pub fn invoke_async(&self, name: &str, payload: P) -> Result<RequestId, InvokeError<P>> {
        let at = self.inner.executor.client_call(|| self.now());
        self.invoke_async_from(name, payload, None, at)
    }

    /// Invokes `name`, one hop below `from` in its chain (or first in a new chain); in model
    /// mode `at` is when the invoke call returns (the event is accepted then).
    pub(crate) fn invoke_async_from(
        &self,
        name: &str,
        payload: P,
        from: Option<Invoker<'_>>,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        match self.lookup(name) {
            Some(f) => self.enqueue_at(&f, payload, from, at),
            None if self.was_deleted(name) => Err(InvokeError::FunctionDeleted {
                name: name.to_string(),
                payload,
            }),
            None => Err(InvokeError::UnknownFunction {
                name: name.to_string(),
                payload,
            }),
        }
    }

    /// Accepts an event for `f`, one hop below `from` (or first in its chain), now, or
    /// (virtual time) when its invoke call returns at `at`.
    #[inline]
    pub(crate) fn enqueue_at(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        from: Option<Invoker<'_>>,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        let chain = from.map(|from| self.chain_below(from, f));
        match at {
            None => self.enqueue(f, payload, chain),
            #[cfg(feature = "model")]
            Some(at) => self.enqueue_arriving(f, payload, chain, at),
            #[cfg(not(feature = "model"))]
            Some(_) => self.enqueue(f, payload, chain),
        }
    }

    /// A new event's place in its chain, one hop below `from`: the next depth and, for the
    /// loop guard, the functions the chain reached with `f` added.
    fn chain_below(&self, from: Invoker<'_>, f: &FunctionShared<P, R>) -> Chain {
        let depth = from.depth.saturating_add(1);
        match self.recursion_guard() {
            RecursionGuard::Loops(_) => child_chain(from, depth, &f.name),
            _ => Chain::new(depth, None),
        }
    }

    /// The hot path of every invoke: one lock of the function's own state, no allocation but
    /// the queue slot, and a run-queue send only when the function was not already scheduled.
    /// `chain` is the event's place in its chain when it is not the first (see [`Chain`]).
    #[inline]
    pub(crate) fn enqueue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        chain: Option<Chain>,
    ) -> Result<RequestId, InvokeError<P>> {
        let now = self.inner.clock.now();
        let mut st = f.state.lock();
        if st.deleted {
            return Err(InvokeError::FunctionDeleted {
                name: f.name.to_string(),
                payload,
            });
        }
        if st.arriving > 0 && st.queue.len() + st.arriving >= st.queue.capacity() {
            // Model mode: the events still on their way hold their places.
            return Err(InvokeError::QueueFull {
                function: f.name.to_string(),
                capacity: st.queue.capacity(),
                payload,
            });
        }
        let id = RequestId::new(f.index, st.seq + 1);
        let mut event = QueuedEvent::new(id, payload, now);
        if let Some(chain) = chain {
            event = event.with_chain(chain);
        }
        let depth = event.chain_depth();
        if let Err(event) = st.queue.push(event) {
            return Err(InvokeError::QueueFull {
                function: f.name.to_string(),
                capacity: st.queue.capacity(),
                payload: event.into_payload(),
            });
        }
        st.seq += 1;
        st.received += 1;
        // Counted before the lock is released, so no worker can end the event first.
        self.inner.outstanding.fetch_add(1, Ordering::Relaxed);
        self.joined_queue(f, st, id, now, depth);
        self.observe_time(now);
        Ok(id)
    }

    /// An event just joined `f`'s queue (`st` is its lock, released here): schedules the
    /// function unless it is paused or already scheduled, arms a paused function's first
    /// expiry, and traces the acceptance.
    #[inline]
    pub(crate) fn joined_queue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        mut st: parking_lot::MutexGuard<'_, FnState<P, R>>,
        id: RequestId,
        now: Timestamp,
        depth: u32,
    ) {
        let schedule = {
            let runnable = !st.paused;
            st.token.claim(runnable)
        };
        let arm_expiry = st.paused && st.queue.len() == 1;
        let max_age = st.current.config.retry.maximum_event_age();
        drop(st);
        if schedule {
            let _ = self.inner.run_tx.send(Task::Run(Arc::clone(f)));
        }
        if arm_expiry {
            self.arm_timer(f, now + max_age);
        }
        self.trace(f, id, now, TraceKind::Accepted { chain_depth: depth });
    }

    /// Invokes function `name` synchronously (Lambda's `RequestResponse`) on this thread, under
    /// the same concurrency limits. Never queued and never retried: when no execution slot is
    /// free it fails at once with [`InvokeSyncError::Throttled`]. No record is made; metrics
    /// count the invocation, error or throttle.
    pub fn invoke(&self, name: &str, payload: &P) -> Result<R, InvokeSyncError> {
        match self.lookup(name) {
            Some(f) => self.invoke_shared(&f, payload),
            None if self.was_deleted(name) => {
                Err(InvokeSyncError::FunctionDeleted(name.to_string()))
            }
            None => Err(InvokeSyncError::UnknownFunction(name.to_string())),
        }
    }

    pub(crate) fn invoke_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: &P,
    ) -> Result<R, InvokeSyncError> {
        #[cfg(feature = "model")]
        if self.inner.executor.is_virtual() {
            return Err(InvokeSyncError::ModelMode(f.name.to_string()));
        }
        let (version, id) = {
            let mut st = f.state.lock();
            if st.deleted {
                return Err(InvokeSyncError::FunctionDeleted(f.name.to_string()));
            }
            if st.paused {
                return Err(InvokeSyncError::Paused(f.name.to_string()));
            }
            st.seq += 1;
            (Arc::clone(&st.current), RequestId::new(f.index, st.seq))
        };
        let now = self.inner.clock.now();
        let Some(slots) = self.acquire_slots(f, &version, now) else {
            bump(&f.counters.throttles);
            return Err(InvokeSyncError::Throttled(f.name.to_string()));
        };
        f.counters.attempt_started(0);
        let attempt = Attempt {
            f,
            version: &version,
            started: now,
            number: 1,
            cold: slots.cold,
        };
        let call = Call {
            request_id: id,
            enqueued_at: now,
            chain_depth: 1,
            lineage: None,
            duplicate: false,
        };
        let (result, ended_at) = self.run_handler(&attempt, call, payload, None);
        f.counters
            .attempt_finished(crate::parts::clock::duration_nanos(ended_at - now));
        drop(slots);
        result.map_err(|e| {
            bump(&f.counters.errors);
            InvokeSyncError::Function(e)
        })
    }
}

/// The place of a child of `from` in the function named `to`, at `depth`, with its lineage:
/// the place `from` gave its last child, when that child was in the same function.
fn child_chain(from: Invoker<'_>, depth: u32, to: &str) -> Chain {
    let to = function_key(to);
    if let Some(last) = from.last_child {
        let last = last.borrow();
        if let Some(same) = last
            .as_ref()
            .filter(|c| c.lineage().is_some_and(|l| l.function() == to))
        {
            return same.clone();
        }
    }
    let parent = from.lineage.map(|l| &**l);
    let lineage = Lineage::child(parent, function_key(from.function), to);
    let chain = Chain::new(depth, Some(Arc::new(lineage)));
    if let Some(last) = from.last_child {
        *last.borrow_mut() = Some(chain.clone());
    }
    chain
}
