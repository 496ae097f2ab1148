//! Execution slots: the permits an attempt takes from its function, the unreserved pool and the
//! account.

use std::sync::Arc;

use crate::parts::clock::Timestamp;
#[cfg(feature = "model")]
use crate::parts::limiter::OwnedPermit;
use crate::parts::limiter::{ConcurrencyLimiter, Permit};

use super::{Environments, FunctionShared, Inner, Runtime, Version};

/// Execution slots held by one attempt: permits borrowed from the runtime's limiters, so that
/// taking and giving them back costs no reference counting. Released on drop (also if anything
/// panics), the account's first and the function's last; then, when a function waits for a
/// slot of one of those limiters, it goes back to the run queue.
pub(crate) struct Slots<'a> {
    // Options only so that `drop` and `own_slots` can take them; all are set until then.
    account: Option<Permit<'a>>,
    pool: Option<Permit<'a>>,
    function: Option<Permit<'a>>,
    /// Whether the execution needed a new environment (environments modelled only).
    pub(crate) cold: bool,
    /// Who hears of the slots given back: the runtime, when events wait for slots.
    waiters: Option<&'a dyn SlotWaiters>,
}

impl Drop for Slots<'_> {
    #[inline]
    fn drop(&mut self) {
        let account = self.account.take().map(|p| p.limiter());
        let pool = self.pool.take().map(|p| p.limiter());
        let function = self.function.take().map(|p| p.limiter());
        // The permits are given back; now whoever waits for one of their slots hears of it.
        // Every level is looked at (and its mark cleared): a function waits on any of them.
        if let Some(waiters) = self.waiters {
            let marked = account.is_some_and(ConcurrencyLimiter::take_waiting)
                | pool.is_some_and(ConcurrencyLimiter::take_waiting)
                | function.is_some_and(ConcurrencyLimiter::take_waiting);
            if marked {
                waiters.slots_given_back();
            }
        }
    }
}

/// The runtime's side of a slot given back: wake the functions waiting for one.
pub(crate) trait SlotWaiters {
    /// A permit of a level somebody waits for was given back (its mark is cleared).
    fn slots_given_back(&self);
}

impl<P: Send + 'static, R: Send + 'static> SlotWaiters for Inner<P, R> {
    fn slots_given_back(&self) {
        self.wake_slot_waiters();
    }
}

impl<P: Send + 'static, R: Send + 'static> Inner<P, R> {
    /// Sends every function waiting for a slot back to the run queue (each still holds its run
    /// token, so each is sent once). One that finds no slot again waits again.
    pub(crate) fn wake_slot_waiters(&self) {
        let woken = std::mem::take(&mut *self.slot_waiters.lock());
        self.run_queue.push_all(woken);
    }
}

/// What a worker does with a function whose events have no free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// The function waits for a slot to be given back; its events stay queued, untouched.
    Waits,
    /// The events go on to throttle backoff (Lambda's throttle).
    Throttle,
}

/// Execution slots that outlive the step that took them (model mode: an execution holds its
/// slots until its virtual end). Released on drop, in the same order as [`Slots`].
#[cfg(feature = "model")]
pub(crate) struct OwnedSlots {
    _account: OwnedPermit,
    _pool: Option<OwnedPermit>,
    _function: OwnedPermit,
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Takes an execution slot: the function's reserved share (or its counter and the shared
    /// unreserved pool), and the account. `None` is a throttle; the slots taken before the one
    /// refused go back as their permits drop.
    ///
    /// A permit given back because a later level refused never ran anything, so it must not
    /// stay in a reported peak (a function's would pass the account limit that throttled it).
    /// Without environments, the levels are taken so that none can refuse after a counted
    /// one: the pool (whose peak nobody reads), then the account, then an unreserved
    /// function's own count (which has no limit); a reserved function's count is counted once
    /// the account took the execution too.
    #[inline(always)]
    pub(crate) fn acquire_slots<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) -> Option<Slots<'a>> {
        let mut held = None;
        self.acquire_slots_into(f, version, now, &mut held);
        held
    }

    /// [`acquire_slots`](Self::acquire_slots) into `held` (`None` before): the slots are built
    /// where they are kept, not copied there.
    #[inline(always)]
    pub(crate) fn acquire_slots_into<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
    ) {
        if let Some(envs) = &self.inner.environments {
            *held = self.acquire_slots_with(envs, f, version, now);
            return;
        }
        // The account check is a safety net: reservations are carved so that the pools alone
        // keep within it, but a lowered limit takes effect while old executions finish.
        match version.config.reserved_concurrency {
            None => {
                let Some(pool) = self.inner.unreserved.try_acquire_uncounted() else {
                    return;
                };
                let Some(account) = self.inner.account.try_acquire() else {
                    return;
                };
                // No limit here (unless the function was reserved since this version was
                // read: then, once, the account's peak may count a refused attempt).
                let Some(function) = f.limiter.try_acquire() else {
                    return;
                };
                *held = Some(self.slots(account, Some(pool), function));
            }
            Some(_) => {
                let Some(function) = f.limiter.try_acquire_uncounted() else {
                    return;
                };
                let Some(account) = self.inner.account.try_acquire() else {
                    return;
                };
                f.limiter.count_peak();
                *held = Some(self.slots(account, None, function));
            }
        }
    }

    /// The slots of these permits, which wake the functions waiting for a slot when given back
    /// (wait mode). Built in one piece, so that it goes straight where the caller keeps it.
    #[inline(always)]
    fn slots<'a>(
        &'a self,
        account: Permit<'a>,
        pool: Option<Permit<'a>>,
        function: Permit<'a>,
    ) -> Slots<'a> {
        Slots {
            account: Some(account),
            pool,
            function: Some(function),
            cold: false,
            waiters: if self.inner.settings.wait_for_slots {
                Some(&*self.inner as &dyn SlotWaiters)
            } else {
                None
            },
        }
    }

    /// Wait mode: takes `f`'s execution slot before any of its events is taken, into `held`.
    /// Without one, either the function waits for a slot to be given back (its events stay
    /// queued, in order; it is out of the run queue but keeps its run token, so nobody sends
    /// it again meanwhile), or, when no slot given back would help (a limit of 0, a new
    /// environment refused by the scaling rate), its events go on to throttle backoff.
    ///
    /// Called under `f`'s state lock, with ready events. No wake-up is lost: the function is
    /// listed before it marks the limiters that refused, and a mark that finds a slot free
    /// sends the listed functions (this one too) back to the run queue.
    #[inline]
    pub(crate) fn slot_first<'a>(
        &'a self,
        f: &'a Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
        now: Timestamp,
        held: &mut Option<Slots<'a>>,
    ) -> Result<(), NoSlot> {
        if held.is_some() {
            return Ok(());
        }
        self.acquire_slots_into(f, version, now, held);
        if held.is_some() {
            return Ok(());
        }
        self.no_slot(f, version)
    }

    /// [`slot_first`](Self::slot_first) found no slot: whether the function waits, or its
    /// events throttle. Out of line: the common path inlines the rest.
    #[cold]
    #[inline(never)]
    fn no_slot(
        &self,
        f: &Arc<FunctionShared<P, R>>,
        version: &Version<P, R>,
    ) -> Result<(), NoSlot> {
        self.refused(f, version);
        let levels = self.levels(f, version);
        let levels = levels.iter().flatten();
        if levels.clone().any(|l| l.limit() == 0) || version.config.reserved_concurrency == Some(0)
        {
            return Err(NoSlot::Throttle);
        }
        // The levels found full, once: each is marked below even if it frees meanwhile (the
        // mark then finds the room).
        let mut full: [Option<&ConcurrencyLimiter>; 3] = [None; 3];
        for (slot, limiter) in full.iter_mut().zip(levels) {
            if limiter.in_flight() >= limiter.limit() {
                *slot = Some(limiter);
            }
        }
        let any_full = full.iter().any(Option::is_some);
        if !any_full && self.inner.environments.is_some() {
            // No level is full: the scaling rate refused a new environment (or a slot was
            // given back meanwhile, and the throttle only comes a little early).
            return Err(NoSlot::Throttle);
        }
        {
            let mut waiters = self.inner.slot_waiters.lock();
            if !waiters.iter().any(|w| Arc::ptr_eq(w, f)) {
                waiters.push(Arc::clone(f));
            }
        }
        // Mark the full levels; a mark that finds room (or no level full any more) means a
        // slot was given back before the mark could be seen.
        let mut free = !any_full;
        for limiter in full.into_iter().flatten() {
            free |= limiter.wait_for_slot();
        }
        if free {
            // A slot was given back before the mark: everybody listed tries again, from the
            // run queue.
            self.inner.wake_slot_waiters();
        }
        Err(NoSlot::Waits)
    }

    /// After [`acquire_slots`](Self::acquire_slots) refused (wait mode): the refusal may have
    /// given back a permit taken from a level before the one refusing, and a waiter that
    /// counted it must hear of it like of any other (only while that level has room: while it
    /// is full, the permits out wake the waiters when they go).
    pub(crate) fn refused(&self, f: &FunctionShared<P, R>, version: &Version<P, R>) {
        let mut freed = false;
        for limiter in self.levels(f, version).iter().flatten() {
            freed |= limiter.take_waiting_if_free();
        }
        if freed {
            self.inner.wake_slot_waiters();
        }
    }

    /// The limiters an execution of `f` takes a slot of: the account, the unreserved pool
    /// (unreserved functions only) and the function's own.
    fn levels<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
    ) -> [Option<&'a ConcurrencyLimiter>; 3] {
        let pool = match version.config.reserved_concurrency {
            None => Some(&*self.inner.unreserved),
            Some(_) => None,
        };
        [Some(&*self.inner.account), pool, Some(&*f.limiter)]
    }

    /// [`acquire_slots`](Self::acquire_slots) when environments are modelled: the slots, then
    /// a warm environment or a new one (which the scaling rate may refuse). The peaks count
    /// the permits only once all are kept. Out of line: the common path inlines the rest.
    #[inline(never)]
    fn acquire_slots_with<'a>(
        &'a self,
        envs: &Environments,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) -> Option<Slots<'a>> {
        if envs.refuses(f, f.limiter.in_flight() + 1, now) {
            return None;
        }
        let function = f.limiter.try_acquire_uncounted()?;
        let pool = match version.config.reserved_concurrency {
            None => Some(self.inner.unreserved.try_acquire_uncounted()?),
            Some(_) => None,
        };
        let account = self.inner.account.try_acquire_uncounted()?;
        let mut slots = self.slots(account, pool, function);
        // Dropping `slots` on a refusal gives the slots back.
        slots.cold = envs.claim(f, f.limiter.in_flight(), now)?;
        f.limiter.count_peak();
        self.inner.account.count_peak();
        Some(slots)
    }

    /// The same slots, held on past this step (none is given back and taken again meanwhile).
    /// `slots` must come from [`acquire_slots`](Self::acquire_slots) for `f`.
    #[cfg(feature = "model")]
    pub(crate) fn own_slots(&self, f: &FunctionShared<P, R>, mut slots: Slots<'_>) -> OwnedSlots {
        const SAME: &str = "slots are taken from the runtime's own limiters";
        let (account, pool, function) = (
            slots.account.take().expect(SAME),
            slots.pool.take(),
            slots.function.take().expect(SAME),
        );
        OwnedSlots {
            _account: account.into_owned(&self.inner.account).expect(SAME),
            _pool: pool.map(|p| p.into_owned(&self.inner.unreserved).expect(SAME)),
            _function: function.into_owned(&f.limiter).expect(SAME),
        }
    }
}
