//! The operator's calls: pause, resume, new code or settings, purge, queue views and edits,
//! delete.
//!
//! Each call is one crate-private method on the function itself (`*_shared`, taking its
//! `Arc<FunctionShared>`), reached by name here (`self.require(name)?`) and through a
//! [`FunctionHandle`](crate::FunctionHandle) in `handle.rs` (after its liveness check).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::parts::error::Error;
use crate::parts::queue::{EventInfo, EventState, InvocationQueue, QueuedEvent};
use crate::parts::record::{Condition, FunctionError, RequestId};

use super::{Context, FunctionConfig, FunctionShared, Handler, Runtime, Version};

pub(crate) fn deleted_handler<P: Send + 'static, R: Send + 'static>(
    _: &P,
    ctx: &Context<'_, P, R>,
) -> Result<R, FunctionError> {
    Err(FunctionError::new(
        "ResourceNotFoundException",
        format!("function {} was deleted", ctx.function_name()),
    ))
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Holds function `name`'s events: none run or throttle until [`resume`](Self::resume).
    /// Held events still age: one that reaches the maximum event age ends as
    /// `EventAgeExceeded`. New invokes are accepted and held too. An execution already running
    /// finishes; the rest of a worker's batch (see [`run_worker`](Self::run_worker)) goes back
    /// to the queue, held.
    ///
    /// Pause, [`update_code`](Self::update_code), resume is the seed's "fix the code while the
    /// events wait" workflow (in 2018 done by setting reserved concurrency to 0).
    pub fn pause(&self, name: &str) -> Result<(), Error> {
        self.pause_shared(&self.require(name)?);
        Ok(())
    }

    pub(crate) fn pause_shared(&self, f: &Arc<FunctionShared<P, R>>) {
        let expiry = {
            let mut st = f.state.lock();
            st.paused = true;
            // Kept by age too while held, so that they age out at O(log n) each.
            st.queue.hold();
            f.epoch.fetch_add(1, Ordering::SeqCst);
            let age = st.current.config.retry.maximum_event_age();
            st.queue.oldest_enqueued_at().map(|t| t + age)
        };
        if let Some(t) = expiry {
            self.arm_timer(f, t);
        }
    }

    /// Lets a paused function's events run again, on whatever code is current.
    pub fn resume(&self, name: &str) -> Result<(), Error> {
        self.resume_shared(&self.require(name)?);
        Ok(())
    }

    pub(crate) fn resume_shared(&self, f: &Arc<FunctionShared<P, R>>) {
        let now = self.now();
        let mut st = f.state.lock();
        st.paused = false;
        st.queue.release();
        st.queue.promote_due(now);
        let runnable = st.queue.ready_len() > 0;
        if st.token.claim(runnable) {
            drop(st);
            self.inner.schedule(f);
        }
    }

    /// Whether function `name` is paused.
    pub fn is_paused(&self, name: &str) -> Result<bool, Error> {
        Ok(self.is_paused_shared(&self.require(name)?))
    }

    pub(crate) fn is_paused_shared(&self, f: &Arc<FunctionShared<P, R>>) -> bool {
        f.state.lock().paused
    }

    /// Replaces function `name`'s code. Queued events, and retries of events that failed on
    /// the old code, run the new code; executions already running finish on the old one.
    /// Returns the new code version (the first is 1).
    pub fn update_code<F>(&self, name: &str, handler: F) -> Result<u64, Error>
    where
        F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
    {
        self.update_handler(name, handler)
    }

    /// [`update_code`](Self::update_code) with a [`Handler`] value.
    pub fn update_handler(&self, name: &str, handler: impl Handler<P, R>) -> Result<u64, Error> {
        Ok(self.update_handler_shared(&self.require(name)?, Arc::new(handler)))
    }

    pub(crate) fn update_handler_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        handler: Arc<dyn Handler<P, R>>,
    ) -> u64 {
        let mut st = f.state.lock();
        f.epoch.fetch_add(1, Ordering::SeqCst);
        f.recent_ns.store(u64::MAX, Ordering::Relaxed);
        let number = st.current.number + 1;
        st.current = Arc::new(Version::new(handler, number, st.current.config.clone()));
        number
    }

    /// A copy of function `name`'s settings.
    pub fn config(&self, name: &str) -> Result<FunctionConfig<P, R>, Error> {
        Ok(self.config_shared(&self.require(name)?))
    }

    pub(crate) fn config_shared(&self, f: &Arc<FunctionShared<P, R>>) -> FunctionConfig<P, R> {
        f.state.lock().current.config.clone()
    }

    /// Changes function `name`'s settings: `edit` gets a copy, which is checked like a
    /// registration (ranges, destinations, reserved concurrency) and then applied whole, or not
    /// at all. Events already queued keep their place and run under the new settings. `edit`
    /// runs with no lock held; of two concurrent updates of one function, the last applied
    /// wins.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<()> = Runtime::new();
    /// rt.register(Function::new("f", |_: &(), _ctx| Ok(()))).unwrap();
    /// rt.update_config("f", |c| c.reserved_concurrency = Some(0)).unwrap(); // throttle to 0
    /// assert!(rt.update_config("f", |c| c.reserved_concurrency = Some(5000)).is_err());
    /// assert_eq!(rt.config("f").unwrap().reserved_concurrency, Some(0));
    /// ```
    pub fn update_config(
        &self,
        name: &str,
        edit: impl FnOnce(&mut FunctionConfig<P, R>),
    ) -> Result<(), Error> {
        self.update_config_shared(&self.require(name)?, edit)
    }

    /// Fails with [`Error::FunctionDeleted`] when `f` was deleted before the new settings
    /// could be applied.
    pub(crate) fn update_config_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        edit: impl FnOnce(&mut FunctionConfig<P, R>),
    ) -> Result<(), Error> {
        // `edit` is the caller's code: run it on a copy with no lock held, so it may call the
        // runtime, and so it stalls nobody.
        let name = &*f.name;
        let mut config = f.state.lock().current.config.clone();
        edit(&mut config);
        config.validate(name)?;
        self.check_cost(&config)?;
        let mut reg = self.inner.registry.write();
        if !reg.is_live(f) {
            return Err(Error::FunctionDeleted(name.to_string()));
        }
        let mut st = f.state.lock();
        self.check_destinations(&reg, name, &config)?;
        let old = st.current.config.reserved_concurrency.unwrap_or(0);
        let new = config.reserved_concurrency.unwrap_or(0);
        self.check_reservation(&reg, name, new, old)?;
        st.queue.set_capacity(config.queue_capacity)?;
        reg.reserve(old, new);
        self.inner.account.set_unreserved_limit(reg.unreserved());
        f.limiter.set_limit(
            config
                .reserved_concurrency
                .map_or(usize::MAX, |n| n as usize),
        );
        let rearm = st.paused && config.retry != st.current.config.retry;
        f.epoch.fetch_add(1, Ordering::SeqCst);
        st.current = Arc::new(Version::new(
            Arc::clone(&st.current.handler),
            st.current.number,
            config,
        ));
        let expiry = if rearm {
            let age = st.current.config.retry.maximum_event_age();
            st.queue.oldest_enqueued_at().map(|t| t + age)
        } else {
            None
        };
        let wake = {
            let runnable = !st.paused && st.queue.ready_len() > 0;
            st.token.claim(runnable)
        };
        drop(st);
        drop(reg);
        if wake {
            self.inner.schedule(f);
        }
        // A limit raised makes room that no slot given back would announce.
        self.inner.wake_slot_waiters();
        if let Some(t) = expiry {
            self.arm_timer(f, t);
        }
        Ok(())
    }

    /// Sets function `name`'s reserved concurrency (`None` returns it to the unreserved pool).
    /// Shorthand for [`update_config`](Self::update_config).
    pub fn set_reserved_concurrency(&self, name: &str, n: Option<u32>) -> Result<(), Error> {
        self.update_config(name, |c| c.reserved_concurrency = n)
    }

    /// Changes the account concurrency limit. It must cover every reservation plus the
    /// unreserved floor. Executions already running finish; new ones wait for room.
    pub fn set_account_concurrency(&self, n: u32) -> Result<(), Error> {
        let mut reg = self.inner.registry.write();
        if n > 1_000_000 {
            return Err(Error::InvalidConfig {
                field: "account_concurrency",
                value: n.to_string(),
                accepted: "1 to 1,000,000 (Lambda's default: 1,000)",
            });
        }
        let minimum = reg.reserved_sum() + self.inner.settings.unreserved_floor;
        if n < minimum.max(1) {
            return Err(Error::AccountConcurrencyTooLow {
                requested: n,
                reserved: reg.reserved_sum(),
                unreserved_floor: self.inner.settings.unreserved_floor,
                minimum: minimum.max(1),
            });
        }
        reg.set_account_limit(n);
        self.inner.account.set_limit(n as usize);
        self.inner.account.set_unreserved_limit(reg.unreserved());
        drop(reg);
        // A limit raised makes room that no slot given back would announce.
        self.inner.wake_slot_waiters();
        Ok(())
    }

    /// The account concurrency limit.
    pub fn account_concurrency(&self) -> u32 {
        self.inner.registry.read().account_limit()
    }

    /// Removes every event waiting in function `name`'s queue (ready, delayed or held). Each
    /// ends as `Purged`, with a record sent to the on-failure destination (or the dead
    /// letters). Returns how many were purged. Events a worker has already taken in a batch
    /// (see [`run_worker`](Self::run_worker)) are in flight, not waiting, and run. Lambda
    /// offers no such call.
    pub fn purge(&self, name: &str) -> Result<usize, Error> {
        self.remove_queued_where(name, |_| true)
    }

    /// Removes the waiting event `request_id` from function `name`'s queue; it ends as
    /// `Purged`. Returns whether it was waiting there.
    pub fn remove_queued(&self, name: &str, request_id: RequestId) -> Result<bool, Error> {
        Ok(self.remove_queued_shared(&self.require(name)?, request_id))
    }

    pub(crate) fn remove_queued_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        request_id: RequestId,
    ) -> bool {
        let (removed, _) = self.purge_where(f, |e| e.request_id() == request_id);
        removed > 0
    }

    /// Removes the waiting events of function `name` for which `pred` is true; each ends as
    /// `Purged`. Returns how many (injected duplicate deliveries go too, without a record and
    /// uncounted). `pred` runs under the function's lock: it must not call the runtime (that
    /// would deadlock) and should be quick.
    pub fn remove_queued_where(
        &self,
        name: &str,
        pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> Result<usize, Error> {
        Ok(self.purge_where(&self.require(name)?, pred).1)
    }

    /// Removes matching waiting events; returns (all removed, those that made a record).
    pub(crate) fn purge_where(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> (usize, usize) {
        let (removed, version) = {
            let mut st = f.state.lock();
            let removed = st.queue.remove_where(pred);
            // In hand until each is recorded, so the books balance meanwhile.
            f.counters
                .in_hand
                .fetch_add(removed.len() as u64, Ordering::Relaxed);
            (removed, Arc::clone(&st.current))
        };
        let total = removed.len();
        let recorded = removed.iter().filter(|e| !e.is_duplicate()).count();
        let now = self.now();
        if let Some(panic) = self.finish_all(f, &version, removed, Condition::Purged, now) {
            std::panic::resume_unwind(panic);
        }
        (total, recorded)
    }

    /// Edits the payload of waiting event `request_id` in function `name`'s queue. Returns
    /// whether it was waiting there. `edit` runs under the function's lock: it must not call
    /// the runtime (that would deadlock) and should be quick.
    pub fn edit_queued(
        &self,
        name: &str,
        request_id: RequestId,
        edit: impl FnOnce(&mut P),
    ) -> Result<bool, Error> {
        Ok(self.edit_queued_shared(&self.require(name)?, request_id, edit))
    }

    pub(crate) fn edit_queued_shared(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        request_id: RequestId,
        edit: impl FnOnce(&mut P),
    ) -> bool {
        f.state.lock().queue.edit(request_id, edit)
    }

    /// A view of function `name`'s waiting events: ready ones in order, then delayed ones by
    /// due time. While the function is paused every event shows as held.
    pub fn queue_snapshot(&self, name: &str) -> Result<Vec<EventInfo>, Error> {
        Ok(self.queue_snapshot_shared(&self.require(name)?))
    }

    pub(crate) fn queue_snapshot_shared(&self, f: &Arc<FunctionShared<P, R>>) -> Vec<EventInfo> {
        let st = f.state.lock();
        let mut events = st.queue.snapshot();
        if st.paused {
            for e in &mut events {
                e.state = EventState::Held;
            }
        }
        events
    }

    /// Reads function `name`'s queue, payloads included, under its lock: keep `read` short,
    /// and do not call the runtime from it (that would deadlock).
    pub fn inspect_queue<T>(
        &self,
        name: &str,
        read: impl FnOnce(&InvocationQueue<P>) -> T,
    ) -> Result<T, Error> {
        Ok(self.inspect_queue_shared(&self.require(name)?, read))
    }

    pub(crate) fn inspect_queue_shared<T>(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        read: impl FnOnce(&InvocationQueue<P>) -> T,
    ) -> T {
        read(&f.state.lock().queue)
    }

    /// Deletes function `name`. Its waiting events end as `FunctionDeleted` (records to its
    /// on-failure destination, or the dead letters); executions already running finish, and a
    /// retry they would need ends as `FunctionDeleted` too. Later invokes are refused. The name
    /// can be registered again. Returns how many waiting events were discarded.
    pub fn delete(&self, name: &str) -> Result<usize, Error> {
        let f = self.require(name)?;
        self.delete_shared(&f)
            .map_err(|_| Error::UnknownFunction(name.to_string()))
    }

    /// Fails with [`Error::FunctionDeleted`] when `f` is no longer the function registered
    /// under its name (checked under the registry's lock, so two deletes never both succeed).
    pub(crate) fn delete_shared(&self, f: &Arc<FunctionShared<P, R>>) -> Result<usize, Error> {
        {
            let mut reg = self.inner.registry.write();
            if !reg.is_live(f) {
                return Err(Error::FunctionDeleted(f.name.to_string()));
            }
            let reserved = f
                .state
                .lock()
                .current
                .config
                .reserved_concurrency
                .unwrap_or(0);
            reg.remove(f, reserved);
            self.inner.account.set_unreserved_limit(reg.unreserved());
            drop(reg);
            // The reservation given back raised the unreserved pool.
            self.inner.wake_slot_waiters();
        }
        let (removed, version) = {
            let mut st = f.state.lock();
            st.deleted = true;
            f.epoch.fetch_add(1, Ordering::SeqCst);
            let version = Arc::clone(&st.current);
            // Drop the handler (once running executions finish): a handler that captured a
            // FunctionHandle would otherwise keep the runtime alive in a reference cycle.
            st.current = Arc::new(Version::new(
                Arc::new(deleted_handler::<P, R>),
                version.number,
                version.config.clone(),
            ));
            let removed = st.queue.purge();
            f.counters
                .in_hand
                .fetch_add(removed.len() as u64, Ordering::Relaxed);
            (removed, version)
        };
        let n = removed.iter().filter(|e| !e.is_duplicate()).count();
        let now = self.now();
        let deleted = Condition::FunctionDeleted;
        if let Some(panic) = self.finish_all(f, &version, removed, deleted, now) {
            std::panic::resume_unwind(panic);
        }
        Ok(n)
    }
}
