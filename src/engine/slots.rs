//! Execution slots: the permits an attempt takes from its function, the unreserved pool and the
//! account.

use crate::parts::clock::Timestamp;
#[cfg(feature = "model")]
use crate::parts::limiter::OwnedPermit;
use crate::parts::limiter::Permit;

use super::{Environments, FunctionShared, Runtime, Version};

/// Execution slots held by one attempt: permits borrowed from the runtime's limiters, so that
/// taking and giving them back costs no reference counting. Released on drop (also if anything
/// panics), the account's first and the function's last.
// The permits are held for their drop; only model mode reads them (to own them).
#[cfg_attr(not(feature = "model"), allow(dead_code))]
pub(crate) struct Slots<'a> {
    account: Permit<'a>,
    pool: Option<Permit<'a>>,
    function: Permit<'a>,
    /// Whether the execution needed a new environment (environments modelled only).
    pub(crate) cold: bool,
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
    #[inline]
    pub(crate) fn acquire_slots<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) -> Option<Slots<'a>> {
        if let Some(envs) = &self.inner.environments {
            return self.acquire_slots_with(envs, f, version, now);
        }
        // The account check is a safety net: reservations are carved so that the pools alone
        // keep within it, but a lowered limit takes effect while old executions finish.
        match version.config.reserved_concurrency {
            None => {
                let pool = self.inner.unreserved.try_acquire_uncounted()?;
                let account = self.inner.account.try_acquire()?;
                // No limit here (unless the function was reserved since this version was
                // read: then, once, the account's peak may count a refused attempt).
                let function = f.limiter.try_acquire()?;
                Some(Slots {
                    account,
                    pool: Some(pool),
                    function,
                    cold: false,
                })
            }
            Some(_) => {
                let function = f.limiter.try_acquire_uncounted()?;
                let account = self.inner.account.try_acquire()?;
                f.limiter.count_peak();
                Some(Slots {
                    account,
                    pool: None,
                    function,
                    cold: false,
                })
            }
        }
    }

    /// [`acquire_slots`](Self::acquire_slots) when environments are modelled: the slots, then
    /// a warm environment or a new one (which the scaling rate may refuse). The peaks count
    /// the permits only once all are kept.
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
        let mut slots = Slots {
            account,
            pool,
            function,
            cold: false,
        };
        // Dropping `slots` on a refusal gives the slots back.
        slots.cold = envs.claim(f, f.limiter.in_flight(), now)?;
        f.limiter.count_peak();
        self.inner.account.count_peak();
        Some(slots)
    }

    /// The same slots, held on past this step (none is given back and taken again meanwhile).
    /// `slots` must come from [`acquire_slots`](Self::acquire_slots) for `f`.
    #[cfg(feature = "model")]
    pub(crate) fn own_slots(&self, f: &FunctionShared<P, R>, slots: Slots<'_>) -> OwnedSlots {
        let Slots {
            account,
            pool,
            function,
            cold: _,
        } = slots;
        const SAME: &str = "slots are taken from the runtime's own limiters";
        OwnedSlots {
            _account: account.into_owned(&self.inner.account).expect(SAME),
            _pool: pool.map(|p| p.into_owned(&self.inner.unreserved).expect(SAME)),
            _function: function.into_owned(&f.limiter).expect(SAME),
        }
    }
}
