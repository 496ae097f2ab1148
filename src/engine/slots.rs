//! Execution slots: the permits an attempt takes from its function, the unreserved pool and the
//! account.

use std::sync::Arc;

use crate::parts::clock::Timestamp;
use crate::parts::limiter::{AccountLevels, AccountLimiter, ConcurrencyLimiter};
#[cfg(feature = "model")]
use crate::parts::limiter::{OwnedAccountSlots, OwnedPermit};

use super::{Environments, FunctionShared, Inner, Runtime, Version};

/// Execution slots held by one attempt, borrowed from the runtime's limiters so that taking and
/// giving them back costs no reference counting: an account slot (with a slot of the unreserved
/// pool for a function without reserved concurrency: both one word of the account's limiter)
/// and a slot of the function's own limiter. Released on drop (also if anything panics), the
/// account's first and the function's last; then, when a function waits for a slot of one of
/// those levels, it goes back to the run queue.
pub(crate) struct Slots<'a> {
    account: &'a AccountLimiter,
    function: &'a ConcurrencyLimiter,
    /// Who hears of the slots given back while somebody waits for one (wait mode: only then
    /// is a level ever marked).
    waiters: &'a dyn SlotWaiters,
    /// The account's levels held: with a pool slot or without.
    levels: AccountLevels,
    /// Whether the execution needed a new environment (environments modelled only).
    pub(crate) cold: bool,
}

impl Drop for Slots<'_> {
    #[inline]
    fn drop(&mut self) {
        // Each release reads its level's mark: whoever waits for one of these slots hears of
        // it once the slots are given back. Every level is looked at (and its mark cleared): a
        // function waits on any of them.
        let marked = self.account.give_back(self.levels) | self.function.give_back();
        if marked {
            self.waiters.slots_given_back();
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
    _account: OwnedAccountSlots,
    _function: OwnedPermit,
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Takes an execution slot: the account's (with the unreserved pool's, for a function
    /// without reserved concurrency: one compare-and-swap of the account's word) and the
    /// function's own (its reserved share, or its counter). `None` is a throttle; the slots
    /// taken before the one refused go back.
    ///
    /// A slot given back because a later level refused never ran anything, so it must not
    /// stay in a reported peak (a function's would pass the account limit that throttled it).
    /// Each peak counts the slots once all are kept: an unreserved function's own count (which
    /// has no limit) comes after the account's word, a reserved function's before it,
    /// uncounted until the account took the execution too.
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
        // The account's limit is a safety net: reservations are carved so that the pools
        // alone keep within it, but a lowered limit takes effect while old executions finish.
        let account = &*self.inner.account;
        match version.config.reserved_concurrency {
            None => {
                let Some(reached) = account.take(AccountLevels::ACCOUNT_AND_POOL) else {
                    return;
                };
                // No limit here (unless the function was reserved since this version was
                // read: then its limit may refuse, and the account's slots go back).
                if !f.limiter.take() {
                    self.gave_back(account.give_back(AccountLevels::ACCOUNT_AND_POOL));
                    return;
                }
                account.count_peak(reached);
                *held = Some(self.slots(f, AccountLevels::ACCOUNT_AND_POOL));
            }
            Some(_) => {
                let Some(function) = f.limiter.take_uncounted() else {
                    return;
                };
                let Some(reached) = account.take(AccountLevels::ACCOUNT) else {
                    self.gave_back(f.limiter.give_back());
                    return;
                };
                f.limiter.count_peak_at(function);
                account.count_peak(reached);
                *held = Some(self.slots(f, AccountLevels::ACCOUNT));
            }
        }
    }

    /// A slot taken was given back unused because a later level refused: when somebody
    /// waited for it (`marked`: its mark is cleared), they hear of it like of any other.
    #[inline(always)]
    fn gave_back(&self, marked: bool) {
        if marked {
            self.inner.wake_slot_waiters();
        }
    }

    /// The slots just taken for `f` (the account's `levels`), which wake the
    /// functions waiting for a slot when given back (wait mode). Built in one piece, so that
    /// it goes straight where the caller keeps it.
    #[inline(always)]
    fn slots<'a>(&'a self, f: &'a FunctionShared<P, R>, levels: AccountLevels) -> Slots<'a> {
        Slots {
            account: &self.inner.account,
            function: &f.limiter,
            waiters: &*self.inner as &dyn SlotWaiters,
            levels,
            cold: false,
        }
    }

    /// Wait mode: takes `f`'s execution slot before any of its events is taken, into `held`.
    /// Without one, either the function waits for a slot to be given back (its events stay
    /// queued, in order; it is out of the run queue but keeps its run token, so nobody sends
    /// it again meanwhile), or, when no slot given back would help (a limit of 0, a new
    /// environment refused by the scaling rate), its events go on to throttle backoff.
    ///
    /// Called under `f`'s state lock, with ready events. No wake-up is lost: the function is
    /// listed before it marks the levels that refused, and a mark that finds a slot free
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
        let account = &*self.inner.account;
        let levels = AccountLevels::of(version.config.reserved_concurrency.is_none());
        if account.limit() == 0
            || (levels.unreserved() && account.unreserved_limit() == 0)
            || f.limiter.limit() == 0
            || version.config.reserved_concurrency == Some(0)
        {
            return Err(NoSlot::Throttle);
        }
        // The levels found full, once: each is marked below even if it frees meanwhile (the
        // mark then finds the room).
        let (account_full, pool_full) = account.full(levels);
        let function_full = f.limiter.in_flight() >= f.limiter.limit();
        let any_full = account_full || pool_full || function_full;
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
        free |= account.wait_for_slot(account_full, pool_full);
        if function_full {
            free |= f.limiter.wait_for_slot();
        }
        if free {
            // A slot was given back before the mark: everybody listed tries again, from the
            // run queue.
            self.inner.wake_slot_waiters();
        }
        Err(NoSlot::Waits)
    }

    /// After [`acquire_slots`](Self::acquire_slots) refused (wait mode): the refusal may have
    /// given back a slot taken from a level before the one refusing, and a waiter that
    /// counted it must hear of it like of any other (only while that level has room: while it
    /// is full, the slots out wake the waiters when they go).
    pub(crate) fn refused(&self, f: &FunctionShared<P, R>, version: &Version<P, R>) {
        let levels = AccountLevels::of(version.config.reserved_concurrency.is_none());
        let freed =
            self.inner.account.take_waiting_if_free(levels) | f.limiter.take_waiting_if_free();
        if freed {
            self.inner.wake_slot_waiters();
        }
    }

    /// [`acquire_slots`](Self::acquire_slots) when environments are modelled: the slots, then
    /// a warm environment or a new one (which the scaling rate may refuse). The peaks count
    /// the slots only once all are kept. Out of line: the common path inlines the rest.
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
        let levels = AccountLevels::of(version.config.reserved_concurrency.is_none());
        let function = f.limiter.take_uncounted()?;
        let Some(reached) = self.inner.account.take(levels) else {
            self.gave_back(f.limiter.give_back());
            return None;
        };
        let mut slots = self.slots(f, levels);
        // Dropping `slots` on a refusal gives the slots back.
        slots.cold = envs.claim(f, f.limiter.in_flight(), now)?;
        f.limiter.count_peak_at(function);
        self.inner.account.count_peak(reached);
        Some(slots)
    }

    /// The same slots, held on past this step (none is given back and taken again meanwhile).
    /// `slots` must come from [`acquire_slots`](Self::acquire_slots) for `f`.
    #[cfg(feature = "model")]
    pub(crate) fn own_slots(&self, f: &FunctionShared<P, R>, slots: Slots<'_>) -> OwnedSlots {
        debug_assert!(std::ptr::eq(slots.function, &*f.limiter));
        let owned = OwnedSlots {
            _account: OwnedAccountSlots::taken(&self.inner.account, slots.levels),
            _function: f.limiter.own_taken(),
        };
        // The owned slots give them back now; `slots` holds only references.
        std::mem::forget(slots);
        owned
    }
}
