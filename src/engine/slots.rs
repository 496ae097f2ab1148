//! Execution slots: the permits an attempt takes from its function, the unreserved pool and the
//! account.

use crate::parts::clock::Timestamp;
use crate::parts::limiter::ConcurrencyLimiter;

use super::{FunctionShared, Runtime, Version};

/// Execution slots held by one attempt, released on drop (also if anything panics).
pub(crate) struct Slots<'a> {
    pub(crate) function: &'a ConcurrencyLimiter,
    pub(crate) pool: Option<&'a ConcurrencyLimiter>,
    pub(crate) account: &'a ConcurrencyLimiter,
    /// Whether the execution needed a new environment (environments modelled only).
    pub(crate) cold: bool,
}

impl Slots<'_> {
    /// Keeps the slots taken past this guard (model mode: until the execution's virtual end,
    /// when [`Runtime::release_detached`] gives them back). Returns whether they include a
    /// slot of the unreserved pool.
    #[cfg(feature = "model")]
    pub(crate) fn detach(self) -> bool {
        let pool = self.pool.is_some();
        // Only references inside: forgetting the guard leaks nothing but the release.
        std::mem::forget(self);
        pool
    }
}

impl Drop for Slots<'_> {
    #[inline]
    fn drop(&mut self) {
        self.account.release_raw();
        if let Some(pool) = self.pool {
            pool.release_raw();
        }
        self.function.release_raw();
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Takes an execution slot: the function's reserved share (or its counter and the shared
    /// unreserved pool), and the account. `None` is a throttle.
    #[inline]
    pub(crate) fn acquire_slots<'a>(
        &'a self,
        f: &'a FunctionShared<P, R>,
        version: &Version<P, R>,
        now: Timestamp,
    ) -> Option<Slots<'a>> {
        if let Some(envs) = &self.inner.environments {
            if envs.refuses(f, f.limiter.in_flight() + 1, now) {
                return None;
            }
        }
        if !f.limiter.try_acquire_raw() {
            return None;
        }
        let pool = if version.config.reserved_concurrency.is_none() {
            if !self.inner.unreserved.try_acquire_raw() {
                f.limiter.release_raw();
                return None;
            }
            Some(&self.inner.unreserved)
        } else {
            None
        };
        // The account check is a safety net: reservations are carved so that the pools alone
        // keep within it, but a lowered limit takes effect while old executions finish.
        if !self.inner.account.try_acquire_raw() {
            if let Some(pool) = pool {
                pool.release_raw();
            }
            f.limiter.release_raw();
            return None;
        }
        let mut slots = Slots {
            function: &f.limiter,
            pool,
            account: &self.inner.account,
            cold: false,
        };
        if let Some(envs) = &self.inner.environments {
            // Dropping `slots` on a refusal gives the slots back.
            slots.cold = envs.claim(f, f.limiter.in_flight(), now)?;
        }
        Some(slots)
    }

    /// Gives back slots kept by [`Slots::detach`].
    #[cfg(feature = "model")]
    pub(crate) fn release_detached(&self, f: &FunctionShared<P, R>, pool: bool) {
        self.inner.account.release_raw();
        if pool {
            self.inner.unreserved.release_raw();
        }
        f.limiter.release_raw();
    }
}
