//! [`RetryPolicy`]: function-error retries, throttle backoff and the maximum event age.

use std::time::Duration;

use rand::Rng;

use crate::parts::clock::Timestamp;
use crate::parts::error::Error;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// How an event is retried, and for how long it may live.
///
/// Lambda treats two kinds of failure differently, and so does this policy:
///
/// * **Function errors** (the handler ran and returned an error, panicked or timed out) use up
///   retry attempts: at most [`maximum_retry_attempts`](Self::maximum_retry_attempts) retries
///   (Lambda: 0 to 2, default 2), the first after 1 minute, the next after 2 minutes. Then the
///   event ends as `RetriesExhausted`.
/// * **Throttles** (no execution slot was free) and system errors never use up retry attempts.
///   The event goes back to the queue with exponential backoff (default from 1 s, doubling,
///   capped at 5 minutes, shortened by up to 20 % at random from the runtime's seeded RNG so
///   that throttled events do not all come back at once). Only the event age ends them.
///
/// Both end early when the event would be too old: like Lambda, a retry whose start would fall
/// at or past [`maximum_event_age`](Self::maximum_event_age) (default 6 hours) is not
/// scheduled; the event ends at once as `EventAgeExceeded`.
///
/// | setting | Lambda | default here | accepted here |
/// |---|---|---|---|
/// | `maximum_retry_attempts` | 0 to 2, default 2 | 2 | 0 to 100 |
/// | `retry_delays` | about 1 min, then 2 min | 60 s, 120 s (last repeats) | each > 0 and <= 24 h |
/// | `throttle_backoff` | 1 s doubling to 5 min | 1 s, x2, 5 min | initial > 0, max >= initial, max <= 24 h, factor 1 to 16 |
/// | `throttle_jitter` | not documented | 0.2 | 0.0 to 1.0 |
/// | `maximum_event_age` | 60 s to 6 h, default 6 h | 6 h | > 0 and <= 14 days |
///
/// # Examples
///
/// ```
/// use event_invoke::RetryPolicy;
/// use std::time::Duration;
///
/// let lambda = RetryPolicy::lambda_default();
/// assert_eq!(lambda.maximum_retry_attempts(), 2);
/// assert_eq!(lambda.retry_delay(1), Some(Duration::from_secs(60)));
/// assert_eq!(lambda.retry_delay(2), Some(Duration::from_secs(120)));
/// assert_eq!(lambda.retry_delay(3), None);
/// assert_eq!(lambda.maximum_event_age(), Duration::from_secs(6 * 3600));
///
/// let quick = RetryPolicy::builder()
///     .maximum_retry_attempts(0)
///     .maximum_event_age(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert_eq!(quick.retry_delay(1), None);
///
/// let err = RetryPolicy::builder().maximum_event_age(Duration::ZERO).build().unwrap_err();
/// assert!(err.to_string().contains("maximum_event_age"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    maximum_retry_attempts: u32,
    retry_delays: Box<[Duration]>,
    throttle_initial: Duration,
    throttle_max: Duration,
    throttle_factor: u32,
    throttle_jitter: f64,
    maximum_event_age: Duration,
}

impl RetryPolicy {
    /// Lambda's defaults: 2 retries after 1 and 2 minutes, throttle backoff from 1 s doubling to
    /// 5 minutes, maximum event age 6 hours.
    pub fn lambda_default() -> Self {
        RetryPolicy {
            maximum_retry_attempts: 2,
            retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)].into(),
            throttle_initial: Duration::from_secs(1),
            throttle_max: Duration::from_secs(300),
            throttle_factor: 2,
            throttle_jitter: 0.2,
            maximum_event_age: Duration::from_secs(6 * 3600),
        }
    }

    /// A builder starting from [`lambda_default`](Self::lambda_default).
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: Self::lambda_default(),
        }
    }

    /// A builder starting from this policy.
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: self.clone(),
        }
    }

    /// Retries after function errors (Lambda's `MaximumRetryAttempts`).
    pub fn maximum_retry_attempts(&self) -> u32 {
        self.maximum_retry_attempts
    }

    /// The longest an event may wait between acceptance and the start of an attempt (Lambda's
    /// `MaximumEventAgeInSeconds`).
    pub fn maximum_event_age(&self) -> Duration {
        self.maximum_event_age
    }

    /// The waits before retries 1, 2, ...; the last one repeats.
    pub fn retry_delays(&self) -> &[Duration] {
        &self.retry_delays
    }

    /// The throttle backoff: (initial, maximum, factor).
    pub fn throttle_backoff(&self) -> (Duration, Duration, u32) {
        (
            self.throttle_initial,
            self.throttle_max,
            self.throttle_factor,
        )
    }

    /// The fraction (0 to 1) by which a throttle delay may be shortened at random.
    pub fn throttle_jitter(&self) -> f64 {
        self.throttle_jitter
    }

    /// The wait before retry number `retry` (1 for the first retry) after a function error, or
    /// `None` when the policy allows no such retry.
    pub fn retry_delay(&self, retry: u32) -> Option<Duration> {
        if retry == 0 || retry > self.maximum_retry_attempts {
            return None;
        }
        let i = (retry as usize - 1).min(self.retry_delays.len() - 1);
        Some(self.retry_delays[i])
    }

    /// The nominal backoff after the `throttles`-th throttle of an event (1 for the first),
    /// before jitter: `initial * factor^(throttles - 1)`, capped at the maximum.
    pub fn throttle_delay_nominal(&self, throttles: u32) -> Duration {
        let exponent = throttles.saturating_sub(1);
        if self.throttle_factor == 1 {
            return self.throttle_initial.min(self.throttle_max);
        }
        let mut d = self.throttle_initial;
        for _ in 0..exponent {
            d = d.saturating_mul(self.throttle_factor);
            if d >= self.throttle_max {
                return self.throttle_max;
            }
        }
        d.min(self.throttle_max)
    }

    /// The backoff after the `throttles`-th throttle, with jitter drawn from `rng`: a delay in
    /// `[nominal * (1 - jitter), nominal]`.
    pub fn throttle_delay(&self, throttles: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.throttle_delay_nominal(throttles);
        if self.throttle_jitter == 0.0 {
            return nominal;
        }
        let cut: f64 = rng.random::<f64>() * self.throttle_jitter;
        nominal.mul_f64(1.0 - cut)
    }

    /// Whether an event accepted at `enqueued_at` is too old to start an attempt at `at`.
    pub fn is_expired(&self, enqueued_at: Timestamp, at: Timestamp) -> bool {
        at - enqueued_at >= self.maximum_event_age
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::lambda_default()
    }
}

/// Builds a validated [`RetryPolicy`]; see its table for the accepted ranges.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// Retries after function errors.
    pub fn maximum_retry_attempts(mut self, n: u32) -> Self {
        self.policy.maximum_retry_attempts = n;
        self
    }

    /// The waits before retries 1, 2, ...; the last one repeats for later retries.
    pub fn retry_delays(mut self, delays: impl Into<Vec<Duration>>) -> Self {
        self.policy.retry_delays = delays.into().into();
        self
    }

    /// Throttle backoff: the first delay, the cap, and the growth factor.
    pub fn throttle_backoff(mut self, initial: Duration, max: Duration, factor: u32) -> Self {
        self.policy.throttle_initial = initial;
        self.policy.throttle_max = max;
        self.policy.throttle_factor = factor;
        self
    }

    /// The fraction (0 to 1) by which a throttle delay may be shortened at random; 0 makes the
    /// backoff exact.
    pub fn throttle_jitter(mut self, jitter: f64) -> Self {
        self.policy.throttle_jitter = jitter;
        self
    }

    /// The maximum event age.
    pub fn maximum_event_age(mut self, age: Duration) -> Self {
        self.policy.maximum_event_age = age;
        self
    }

    /// The policy as set, unchecked: [`Function`](crate::Function) checks it on registration.
    pub(crate) fn build_unchecked(self) -> RetryPolicy {
        self.policy
    }

    /// Checks every setting and returns the policy, or the first setting out of range.
    pub fn build(self) -> Result<RetryPolicy, Error> {
        let p = self.policy;
        let invalid = |field, value: String, accepted| {
            Err(Error::InvalidConfig {
                field,
                value,
                accepted,
            })
        };
        if p.maximum_retry_attempts > 100 {
            return invalid(
                "maximum_retry_attempts",
                p.maximum_retry_attempts.to_string(),
                "0 to 100 (Lambda: 0 to 2)",
            );
        }
        if p.retry_delays.is_empty() {
            return invalid(
                "retry_delays",
                "an empty list".into(),
                "at least one delay, each greater than 0 and at most 24 h",
            );
        }
        if let Some(d) = p.retry_delays.iter().find(|d| d.is_zero() || **d > DAY) {
            return invalid(
                "retry_delays",
                format!("{d:?}"),
                "each delay greater than 0 and at most 24 h",
            );
        }
        if p.throttle_initial.is_zero() || p.throttle_initial > p.throttle_max {
            return invalid(
                "throttle_backoff",
                format!("initial {:?}", p.throttle_initial),
                "initial greater than 0 and at most the maximum backoff",
            );
        }
        if p.throttle_max > DAY {
            return invalid(
                "throttle_backoff",
                format!("max {:?}", p.throttle_max),
                "max at most 24 h",
            );
        }
        if !(1..=16).contains(&p.throttle_factor) {
            return invalid(
                "throttle_backoff",
                format!("factor {}", p.throttle_factor),
                "factor 1 to 16",
            );
        }
        if !(0.0..=1.0).contains(&p.throttle_jitter) {
            return invalid(
                "throttle_jitter",
                p.throttle_jitter.to_string(),
                "0.0 to 1.0",
            );
        }
        if p.maximum_event_age.is_zero() || p.maximum_event_age > 14 * DAY {
            return invalid(
                "maximum_event_age",
                format!("{:?}", p.maximum_event_age),
                "greater than 0 and at most 14 days (Lambda: 60 s to 6 h)",
            );
        }
        Ok(p)
    }
}
