//! Execution environments, counted for cold starts and the scaling rate.

use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;

use crate::parts::clock::{duration_nanos, Timestamp};
use crate::parts::scaling::ScalingRate;

use super::FunctionShared;

use crate::parts::scaling::ScalingScope;

/// Execution environments, counted when the runtime models cold starts or a scaling rate.
pub(crate) struct Environments {
    rate: Option<ScalingRate>,
    books: Mutex<ScalingBooks>,
}

/// The scaling allowance of each scope, made when the scope makes its first environment.
#[derive(Default)]
struct ScalingBooks {
    account: Option<Allowance>,
    /// By function index.
    functions: Vec<Option<Allowance>>,
}

/// New environments a scope may still make now: a token bucket that starts with the burst
/// (`initial`) and gets `step` back every `every` since it was last topped up, up to its
/// capacity, `max(initial, step)`.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    left: u64,
    topped_up: Timestamp,
}

impl Allowance {
    /// A scope's first allowance: its burst (it may hold more later, up to one step, when a
    /// step is larger than the burst).
    pub(crate) fn full(rate: &ScalingRate, now: Timestamp) -> Self {
        Allowance {
            left: u64::from(rate.initial()),
            topped_up: now,
        }
    }

    /// The allowance as it stands at `now`.
    pub(crate) fn at(self, rate: &ScalingRate, now: Timestamp) -> Self {
        let every = duration_nanos(rate.every());
        let periods = (now - self.topped_up).as_nanos() as u64 / every.max(1);
        if periods == 0 {
            return self;
        }
        Allowance {
            left: self
                .left
                .saturating_add(periods.saturating_mul(u64::from(rate.step())))
                .min(rate.capacity()),
            topped_up: self.topped_up + Duration::from_nanos(periods.saturating_mul(every)),
        }
    }
}

impl ScalingBooks {
    pub(crate) fn slot<P, R>(
        &mut self,
        rate: &ScalingRate,
        f: &FunctionShared<P, R>,
    ) -> &mut Option<Allowance> {
        match rate.scope() {
            ScalingScope::Account => &mut self.account,
            ScalingScope::Function => {
                let i = f.index as usize;
                if self.functions.len() <= i {
                    self.functions.resize(i + 1, None);
                }
                &mut self.functions[i]
            }
        }
    }
}

impl Environments {
    pub(crate) fn new(rate: Option<ScalingRate>) -> Self {
        Environments {
            rate,
            books: Mutex::new(ScalingBooks::default()),
        }
    }

    /// Whether an execution of `f` that would make `running` would be refused a new
    /// environment. Asked before the slots are taken, so that a refused execution never shows
    /// in a peak; [`claim`](Self::claim) decides for good.
    #[inline]
    pub(crate) fn refuses<P, R>(
        &self,
        f: &FunctionShared<P, R>,
        running: usize,
        now: Timestamp,
    ) -> bool {
        let Some(rate) = &self.rate else {
            return false;
        };
        if running as u64 <= f.environments.load(Ordering::Acquire) {
            return false;
        }
        let mut books = self.books.lock();
        match *books.slot(rate, f) {
            None => false, // a first environment: the allowance starts full
            Some(a) => a.at(rate, now).left == 0,
        }
    }

    /// Called with an execution slot of `f` just taken (`running` counts it): whether it runs
    /// in a new environment (`Some(true)`, a cold start), a warm one (`Some(false)`), or is
    /// refused one by the scaling rate (`None`, a throttle).
    #[inline]
    pub(crate) fn claim<P, R>(
        &self,
        f: &FunctionShared<P, R>,
        running: usize,
        now: Timestamp,
    ) -> Option<bool> {
        let running = running as u64;
        if running <= f.environments.load(Ordering::Acquire) {
            return Some(false);
        }
        // Rare (concurrency grows past its peak): one lock serialises the scaling books.
        let mut books = self.books.lock();
        let envs = f.environments.load(Ordering::Acquire);
        if running <= envs {
            return Some(false);
        }
        if let Some(rate) = &self.rate {
            let slot = books.slot(rate, f);
            let mut allowance = slot
                .unwrap_or_else(|| Allowance::full(rate, now))
                .at(rate, now);
            if allowance.left == 0 {
                *slot = Some(allowance);
                return None;
            }
            allowance.left -= 1;
            *slot = Some(allowance);
        }
        f.environments.store(envs + 1, Ordering::Release);
        Some(true)
    }
}
