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

use super::by_name;
use super::dispatch::{Attempt, Call};
use super::{bump, FnState, FunctionShared, RecursionGuard, Runtime};

/// The event whose execution (or whose record, for a function destination) invokes: the new
/// event is one hop further down its chain.
#[derive(Clone, Copy)]
pub(crate) struct Invoker<'a> {
    /// The invoking event's function.
    pub(crate) function: &'a Arc<str>,
    /// The invoking event's chain depth.
    pub(crate) depth: u32,
    /// The functions the invoking event's chain reached (loop guard only).
    pub(crate) lineage: Option<&'a Arc<Lineage>>,
}

/// What a child's place is made from, each part by address, with what keeps the address from
/// being reused while the place is kept: the invoker's lineage (or, first in its chain, its
/// function's name), its depth, and the child's function's name.
struct ChildOf {
    parent: Parent,
    depth: u32,
    to: Arc<str>,
}

/// The invoker, as a child's place depends on it.
enum Parent {
    /// The functions the invoker's chain reached.
    Lineage(Arc<Lineage>),
    /// The invoker's function, first in its chain.
    First(Arc<str>),
}

impl ChildOf {
    fn new(from: Invoker<'_>, to: &Arc<str>) -> Self {
        ChildOf {
            parent: match from.lineage {
                Some(lineage) => Parent::Lineage(Arc::clone(lineage)),
                None => Parent::First(Arc::clone(from.function)),
            },
            depth: from.depth,
            to: Arc::clone(to),
        }
    }

    fn is(&self, from: Invoker<'_>, to: &Arc<str>) -> bool {
        let parent = match (&self.parent, from.lineage) {
            (Parent::Lineage(kept), Some(lineage)) => Arc::ptr_eq(kept, lineage),
            (Parent::First(kept), None) => Arc::ptr_eq(kept, from.function),
            _ => false,
        };
        parent && self.depth == from.depth && Arc::ptr_eq(&self.to, to)
    }
}

thread_local! {
    /// The place of the last child this thread made a place for (loop guard only): the
    /// children one execution invokes in one function share it, and so do those of its
    /// siblings, so a fan-out allocates one place, not one per child. Read in place (a
    /// `RefCell` borrow): a fan-out's children compare three addresses and clone one `Arc`.
    static LAST_CHILD: RefCell<Option<(ChildOf, Chain)>> = const { RefCell::new(None) };
}

/// Where a new event starts in its invocation chain: first ([`First`]), or at a [`Chain`]'s
/// place. Admission is generic over it, so that a plain invoke compiles to the path it had
/// before chains were kept.
pub(crate) trait Place<P> {
    /// The event's chain depth.
    fn depth(&self) -> u32;
    /// The event, with this id and payload, accepted at `at`.
    fn event(self, id: RequestId, payload: P, at: Timestamp) -> QueuedEvent<P>;
}

/// The first place of a new chain: an invoke from outside a handler.
pub(crate) struct First;

impl<P> Place<P> for First {
    #[inline(always)]
    fn depth(&self) -> u32 {
        1
    }

    #[inline(always)]
    fn event(self, id: RequestId, payload: P, at: Timestamp) -> QueuedEvent<P> {
        QueuedEvent::new(id, payload, at)
    }
}

impl<P> Place<P> for Chain {
    #[inline]
    fn depth(&self) -> u32 {
        Chain::depth(self)
    }

    #[inline]
    fn event(self, id: RequestId, payload: P, at: Timestamp) -> QueuedEvent<P> {
        QueuedEvent::chained(id, payload, at, self)
    }
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
        if at.is_some() {
            return self.invoke_async_from(name, payload, None, at);
        }
        // The common case, first in a new chain and accepted now: the same steps as
        // `invoke_async_from`, with admission inlined for a name this thread invoked lately.
        // Written out rather than shared through a closure, which measured 17 instructions
        // more per invoke (callgrind).
        let payload = match by_name::recall(&self.inner, name) {
            Some(f) => match self.enqueue(&f, payload, First) {
                Err(InvokeError::FunctionDeleted { payload, .. }) => payload,
                done => return done,
            },
            None => payload,
        };
        self.invoke_async_looked_up(name, payload, None, None)
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
        // This thread's recent names first: no registry lock, no hash look-up.
        let payload = match by_name::recall(&self.inner, name) {
            Some(f) => match self.enqueue_at(&f, payload, from, at) {
                // Deleted since: the name may belong to a function registered anew.
                Err(InvokeError::FunctionDeleted { payload, .. }) => payload,
                done => return done,
            },
            None => payload,
        };
        self.invoke_async_looked_up(name, payload, from, at)
    }

    /// [`invoke_async_from`](Self::invoke_async_from) for a name this thread did not invoke
    /// lately: the registry's look-up. Out of line, so that the path of a remembered name
    /// keeps admission inlined.
    #[cold]
    #[inline(never)]
    fn invoke_async_looked_up(
        &self,
        name: &str,
        payload: P,
        from: Option<Invoker<'_>>,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        match self.lookup(name) {
            Some(f) => {
                by_name::remember(&self.inner, name, &f);
                self.enqueue_at(&f, payload, from, at)
            }
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
        match from {
            None => self.enqueue_placed(f, payload, First, at),
            Some(from) => {
                let chain = self.chain_below(from, f);
                self.enqueue_placed(f, payload, chain, at)
            }
        }
    }

    #[inline]
    fn enqueue_placed(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        place: impl Place<P>,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        match at {
            None => self.enqueue(f, payload, place),
            #[cfg(feature = "model")]
            Some(at) => self.enqueue_arriving(f, payload, place, at),
            #[cfg(not(feature = "model"))]
            Some(_) => self.enqueue(f, payload, place),
        }
    }

    /// A new event's place in its chain, one hop below `from`: the next depth and, for the
    /// loop guard, the functions the chain reached with `f` added. Inlined: a fan-out's
    /// child invoke takes this path, where a call costs more than the kept place's compare.
    #[inline]
    fn chain_below(&self, from: Invoker<'_>, f: &FunctionShared<P, R>) -> Chain {
        match self.recursion_guard() {
            RecursionGuard::Loops(_) => child_chain(from, &f.name),
            _ => Chain::new(from.depth.saturating_add(1), None),
        }
    }

    /// The hot path of every invoke: one lock of the function's own state, no allocation but
    /// the queue slot, and a run-queue send only when the function was not already scheduled.
    /// `place` is where the event starts in its chain (see [`Place`]).
    #[inline(always)]
    pub(crate) fn enqueue(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        payload: P,
        place: impl Place<P>,
    ) -> Result<RequestId, InvokeError<P>> {
        let now = self.inner.clock.stamp();
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
        let depth = place.depth();
        let event = place.event(id, payload, now);
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
        // Read only when needed: the settings sit behind another pointer.
        let expiry = (st.paused && st.queue.len() == 1)
            .then(|| now + st.current.config.retry.maximum_event_age());
        drop(st);
        if schedule {
            self.inner.schedule(f);
        }
        if let Some(due) = expiry {
            self.arm_timer(f, due);
        }
        self.trace(f, id, now, || TraceKind::Accepted { chain_depth: depth });
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
        result.map_err(|mut e| {
            bump(&f.counters.errors);
            // A panic that rode with the error (see `FunctionError::replacing`) goes on now.
            crate::parts::record::resume_late(e.take_late());
            InvokeSyncError::Function(e)
        })
    }
}

/// The place of a child of `from` in the function named `to`, one hop below it, with its
/// lineage: the place this thread made last, when it was made from the same.
#[inline]
fn child_chain(from: Invoker<'_>, to: &Arc<str>) -> Chain {
    LAST_CHILD
        .try_with(|last| {
            // Nothing here calls back into this function, so the borrows never overlap; a
            // `try_` borrow keeps that from ever being a panic.
            let Ok(mut kept) = last.try_borrow_mut() else {
                return new_child_chain(from, to);
            };
            if let Some((of, chain)) = &*kept {
                if of.is(from, to) {
                    return chain.clone();
                }
            }
            keep_child_chain(&mut kept, from, to)
        })
        // The thread is ending: nowhere to keep it.
        .unwrap_or_else(|_| new_child_chain(from, to))
}

/// A new place for a child of `from` in the function named `to`, kept in `kept` (the
/// thread's last place) for the children that follow.
#[cold]
#[inline(never)]
fn keep_child_chain(
    kept: &mut Option<(ChildOf, Chain)>,
    from: Invoker<'_>,
    to: &Arc<str>,
) -> Chain {
    let chain = new_child_chain(from, to);
    *kept = Some((ChildOf::new(from, to), chain.clone()));
    chain
}

/// A new place for a child of `from` in the function named `to`.
fn new_child_chain(from: Invoker<'_>, to: &Arc<str>) -> Chain {
    let parent = from.lineage.map(|l| &**l);
    let lineage = Lineage::child(parent, function_key(from.function), function_key(to));
    Chain::new(from.depth.saturating_add(1), Some(Arc::new(lineage)))
}
