//! [`ScalingRate`]: how fast Lambda may add execution environments.

/// How fast Lambda may add execution environments: the scaling rate, an option of the
/// runtime's limiter ([`RuntimeBuilder::scaling_rate`](crate::RuntimeBuilder::scaling_rate)).
///
/// Concurrency limits say how many executions may run at once; the scaling rate says how fast
/// a function may get there. Each execution runs in an *environment*. An execution that finds
/// every environment of its function busy needs a new one (a cold start), and the rate decides
/// whether it may have one now:
///
/// * a scope may make `initial` new environments at once (its burst);
/// * what it has used comes back `step` at a time, every `every`, up to `max(initial, step)`.
///
/// So a scope that keeps asking gets `initial + step * floor(t / every)` environments in its
/// first `t` ([`allowance`](Self::allowance)), and one that paused for a while gets its burst
/// back, not the steps it did not use. An execution refused a new environment is a throttle:
/// its event goes back to the queue with backoff, like any throttle.
///
/// | rule | `initial` | `step` / `every` | scope |
/// |---|---|---|---|
/// | [`lambda_2023`](Self::lambda_2023) (today) | 1,000 | 1,000 / 10 s | each function |
/// | [`lambda_2018`](Self::lambda_2018) | the region's burst: 3,000, 1,000 or 500 | 500 / 1 min | the account |
///
/// Where the crate decides what Lambda does not document: environments are never reclaimed
/// within a run (an idle one stays warm, also across code and settings updates), the
/// allowance comes back in whole steps counted from the scope's first environment, and the
/// rate never raises a concurrency limit (the account and reserved limits still apply).
///
/// # Examples
///
/// ```
/// use event_invoke::{ScalingRate, ScalingScope};
/// use std::time::Duration;
///
/// let today = ScalingRate::lambda_2023();
/// assert_eq!(today.scope(), ScalingScope::Function);
/// assert_eq!(today.allowance(Duration::ZERO), 1_000);
/// assert_eq!(today.allowance(Duration::from_secs(25)), 3_000);
///
/// let then = ScalingRate::lambda_2018(3_000).unwrap();
/// assert_eq!(then.scope(), ScalingScope::Account);
/// assert_eq!(then.allowance(Duration::from_secs(59)), 3_000);
/// assert_eq!(then.allowance(Duration::from_secs(60)), 3_500);
///
/// assert!(ScalingRate::new(0, 10, Duration::from_secs(1), ScalingScope::Function).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingRate {
    initial: u32,
    step: u32,
    every: std::time::Duration,
    scope: ScalingScope,
}

/// Whose environments a [`ScalingRate`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingScope {
    /// Each function scales on its own (Lambda since late 2023).
    Function,
    /// All functions share one allowance (Lambda before late 2023).
    Account,
}

impl ScalingRate {
    /// Today's rule: each function may add 1,000 environments every 10 s.
    pub fn lambda_2023() -> Self {
        ScalingRate {
            initial: 1_000,
            step: 1_000,
            every: std::time::Duration::from_secs(10),
            scope: ScalingScope::Function,
        }
    }

    /// The rule until late 2023: an initial burst shared by the account (3,000 in us-east-1,
    /// us-west-2 and eu-west-1; 1,000 in ap-northeast-1, eu-central-1 and us-east-2; 500
    /// elsewhere), then 500 more environments each minute.
    pub fn lambda_2018(burst: u32) -> Result<Self, crate::Error> {
        Self::new(
            burst,
            500,
            std::time::Duration::from_secs(60),
            ScalingScope::Account,
        )
    }

    /// A rule of your own: `initial` environments at once, then `step` more every `every`.
    /// Refused when `initial` is 0 (nothing could ever run) or `every` is zero.
    pub fn new(
        initial: u32,
        step: u32,
        every: std::time::Duration,
        scope: ScalingScope,
    ) -> Result<Self, crate::Error> {
        if initial == 0 {
            return Err(crate::Error::InvalidConfig {
                field: "scaling_rate.initial",
                value: "0".into(),
                accepted: "at least 1 environment (Lambda: 1,000 per function today; a burst of 500 to 3,000 in 2018)",
            });
        }
        if every.is_zero() {
            return Err(crate::Error::InvalidConfig {
                field: "scaling_rate.every",
                value: format!("{every:?}"),
                accepted: "a period greater than zero (Lambda: 10 s today, 1 min in 2018)",
            });
        }
        Ok(ScalingRate {
            initial,
            step,
            every,
            scope,
        })
    }

    /// Environments allowed at once on start.
    pub fn initial(&self) -> u32 {
        self.initial
    }

    /// Environments added every [`every`](Self::every).
    pub fn step(&self) -> u32 {
        self.step
    }

    /// The period of a step.
    pub fn every(&self) -> std::time::Duration {
        self.every
    }

    /// Whose environments are counted.
    pub fn scope(&self) -> ScalingScope {
        self.scope
    }

    /// The most new environments a scope can have in hand: its burst, or one step if larger.
    pub(crate) fn capacity(&self) -> u64 {
        u64::from(self.initial.max(self.step))
    }

    /// How many new environments a scope that starts from rest, and keeps asking for more,
    /// may have made by `since` after its first one.
    pub fn allowance(&self, since: std::time::Duration) -> u64 {
        let steps = since.as_nanos() / self.every.as_nanos();
        let grown = u128::from(self.step).saturating_mul(steps);
        u64::try_from(u128::from(self.initial).saturating_add(grown)).unwrap_or(u64::MAX)
    }
}
