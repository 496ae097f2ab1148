//! [`RetryPolicy`]: function-error retries, throttle backoff and the maximum event age, and
//! [`RetrySchedule`], the waits between retries when Lambda's fixed ones do not fit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::parts::clock::Timestamp;
use crate::parts::error::Error;
use crate::parts::record::FunctionError;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The shortest wait a custom schedule gets: the nearest value above zero.
const MIN_SCHEDULED_DELAY: Duration = Duration::from_nanos(1);

/// When to retry an event after a function error: a schedule of one's own for a
/// [`RetryPolicy`].
///
/// Lambda's schedule is fixed: about 1 minute before the first retry, 2 minutes before the
/// second. A [`RetryPolicy`] reproduces it, and its
/// [`retry_delays`](RetryPolicyBuilder::retry_delays) list covers any other fixed list of
/// waits. Implement this trait when the wait has to be computed instead: exponential backoff
/// with a cap, a wait that depends on what went wrong, or giving up early on errors that no
/// retry can fix (a validation error will fail the same way a minute later). It plays the part
/// of tower's `retry::Policy`, with one difference: it only answers *how long*, never waits
/// itself. The engine (or a caller's own loop) owns the waiting: it puts the event back in its
/// queue as delayed and keeps working on other events meanwhile.
///
/// # What the engine asks, and when
///
/// After the `n`-th execution of an event fails with a function error (the handler returned
/// an error, panicked or timed out), the engine asks
/// [`delay_after`](Self::delay_after)`(n, &error)` for the wait before retry number `n` (1 for
/// the first retry):
///
/// * `Some(wait)`: the event is retried `wait` after the failed attempt ended. A wait of zero
///   or over 24 hours (outside what [`retry_delays`](RetryPolicyBuilder::retry_delays)
///   accepts) is clamped into that range, to 1 ns or to 24 h: a schedule cannot be checked
///   when the policy is built, and clamping keeps an event the schedule meant to retry.
/// * `None`: the event is not retried; it ends at once as
///   [`RetriesExhausted`](crate::Condition::RetriesExhausted), with this attempt's error in
///   its record.
///
/// Throttles and system errors never reach the schedule: they do not use up retry attempts
/// and keep their own backoff ([`RetryPolicyBuilder::throttle_backoff`]).
///
/// # Limits that still apply
///
/// * [`maximum_retry_attempts`](RetryPolicy::maximum_retry_attempts) stays the cap: the
///   schedule is asked only for retries 1 to that number (raise it, up to 100, for a schedule
///   that retries more often than Lambda's 2). A schedule can stop earlier, never later.
/// * [`maximum_event_age`](RetryPolicy::maximum_event_age) still ends the event, whatever the
///   schedule says: a retry that would start at or past the age limit is not scheduled and the
///   event ends as [`EventAgeExceeded`](crate::Condition::EventAgeExceeded).
///
/// # Why the error is passed
///
/// [`delay(n)`](Self::delay) is the schedule's timing, which is all most schedules need. The
/// engine calls [`delay_after`](Self::delay_after), which also gets the failed attempt's
/// [`FunctionError`] (as tower's `Policy::retry` gets the call's result) and by default
/// returns `delay(n)`: override it to give up on, or wait differently for, some error types.
/// [`RetryPolicy::retry_delay`] asks `delay`, [`RetryPolicy::retry_delay_after`] asks
/// `delay_after`; a loop of one's own that has the error should use the latter.
///
/// A schedule is shared by every event of a function, possibly from several worker threads at
/// once, hence `Send + Sync`; it gets `&self`, so any state of its own needs interior
/// mutability. It should be cheap and should not panic: the engine treats a panic as `None`.
/// A [`RetryPolicy`] holding a schedule equals another only when both hold the same `Arc`.
///
/// # Examples
///
/// A fixed 5 seconds between retries, that gives up at once on a validation error:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use event_invoke::{
///     Condition, Function, FunctionError, ManualClock, RetryPolicy, RetrySchedule, Runtime,
///     Timestamp,
/// };
///
/// #[derive(Debug)]
/// struct EveryFiveSeconds;
///
/// impl RetrySchedule for EveryFiveSeconds {
///     fn delay(&self, _retry: u32) -> Option<Duration> {
///         Some(Duration::from_secs(5))
///     }
///
///     fn delay_after(&self, retry: u32, error: &FunctionError) -> Option<Duration> {
///         if error.error_type() == "ValidationError" {
///             return None; // it would fail the same way again
///         }
///         self.delay(retry)
///     }
/// }
///
/// let policy = RetryPolicy::builder()
///     .maximum_retry_attempts(3)
///     .retry_schedule(Arc::new(EveryFiveSeconds))
///     .build()
///     .unwrap();
/// assert_eq!(policy.retry_delay(1), Some(Duration::from_secs(5)));
/// assert_eq!(policy.retry_delay(4), None, "maximum_retry_attempts still caps it");
/// let invalid = FunctionError::new("ValidationError", "no order id");
/// assert_eq!(policy.retry_delay_after(1, &invalid), None);
///
/// // In a runtime: the first attempt and 3 retries, 5 s apart.
/// let clock = ManualClock::new();
/// let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
/// rt.register(
///     Function::new("flaky", |_: &u32, _ctx| Err(FunctionError::new("Timeout", "upstream")))
///         .retry_policy(policy),
/// )
/// .unwrap();
/// rt.invoke_async("flaky", 1).unwrap();
/// assert_eq!(rt.run_until_idle(), 4);
/// assert_eq!(clock.now(), Timestamp::ZERO + Duration::from_secs(15));
/// let dead = rt.drain_dead_letters();
/// assert_eq!(dead[0].condition, Condition::RetriesExhausted);
/// assert_eq!(dead[0].approximate_invoke_count, 4);
/// ```
pub trait RetrySchedule: Send + Sync + std::panic::RefUnwindSafe + fmt::Debug + 'static {
    /// The wait before retry number `retry` (1 for the first retry), or `None` to give up.
    fn delay(&self, retry: u32) -> Option<Duration>;

    /// The wait before retry number `retry` after an attempt that failed with `error`, or
    /// `None` to give up. What the engine calls; by default [`delay`](Self::delay)`(retry)`.
    fn delay_after(&self, retry: u32, error: &FunctionError) -> Option<Duration> {
        let _ = error;
        self.delay(retry)
    }
}

/// A wait a custom schedule returned, clamped into what `retry_delays` accepts: (0, 24 h].
fn clamp_scheduled(delay: Duration) -> Duration {
    delay.clamp(MIN_SCHEDULED_DELAY, DAY)
}

/// How an event is retried, and for how long it may live.
///
/// Lambda treats two kinds of failure differently, and so does this policy:
///
/// * **Function errors** (the handler ran and returned an error, panicked or timed out) use up
///   retry attempts: at most [`maximum_retry_attempts`](Self::maximum_retry_attempts) retries
///   (Lambda: 0 to 2, default 2), the first after 1 minute, the next after 2 minutes. Then the
///   event ends as `RetriesExhausted`. A [`RetrySchedule`] of one's own may replace those
///   waits, and give up earlier.
/// * **Throttles** (no execution slot was free) and system errors never use up retry attempts.
///   The event goes back to the queue with exponential backoff (default from 1 s, doubling,
///   capped at 5 minutes, shortened by up to 20 % at random from the runtime's seeded RNG so
///   that throttled events do not all come back at once). Only the event age ends them.
///
/// The runtime draws the jitter from a ChaCha8 generator (crate `rand_chacha`) of the
/// function's own, seeded from [`RuntimeBuilder::seed`](crate::RuntimeBuilder::seed) mixed
/// with the function's registration index. ChaCha8's output is fixed by its definition, and
/// the seed expansion and the conversion to a draw are this crate's own, so a seed gives the
/// same backoffs on every release of this crate's dependencies (golden tests pin them); it
/// changes only with a release of this crate that says so.
///
/// Both end early when the event would be too old: like Lambda, a retry whose start would fall
/// at or past [`maximum_event_age`](Self::maximum_event_age) (default 6 hours) is not
/// scheduled; the event ends at once as `EventAgeExceeded`.
///
/// | setting | Lambda | default here | accepted here |
/// |---|---|---|---|
/// | `maximum_retry_attempts` | 0 to 2, default 2 | 2 | 0 to 100 |
/// | `retry_delays` | about 1 min, then 2 min | 60 s, 120 s (last repeats) | each > 0 and <= 24 h |
/// | `retry_schedule` | not configurable | none: `retry_delays` | any [`RetrySchedule`]; its waits clamped into (0, 24 h] |
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
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    maximum_retry_attempts: u32,
    retry_delays: Box<[Duration]>,
    /// A schedule of the user's own; `None`: `retry_delays`.
    schedule: Option<Arc<dyn RetrySchedule>>,
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
            schedule: None,
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

    /// The waits before retries 1, 2, ...; the last one repeats. Unused while a
    /// [`retry_schedule`](Self::retry_schedule) is set.
    pub fn retry_delays(&self) -> &[Duration] {
        &self.retry_delays
    }

    /// The schedule of the user's own, if one was set
    /// ([`RetryPolicyBuilder::retry_schedule`]); `None`: the waits are
    /// [`retry_delays`](Self::retry_delays).
    pub fn retry_schedule(&self) -> Option<&Arc<dyn RetrySchedule>> {
        self.schedule.as_ref()
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
    /// `None` when the policy allows no such retry: none past
    /// [`maximum_retry_attempts`](Self::maximum_retry_attempts), otherwise the
    /// [`retry_delays`](Self::retry_delays) entry, or what a custom schedule's
    /// [`delay`](RetrySchedule::delay) answers (clamped into (0, 24 h]).
    ///
    /// A custom schedule may also look at the error: with the error at hand, prefer
    /// [`retry_delay_after`](Self::retry_delay_after), which the engine uses.
    pub fn retry_delay(&self, retry: u32) -> Option<Duration> {
        self.scheduled(retry, |s| s.delay(retry))
    }

    /// The wait before retry number `retry` after an attempt that failed with `error`, or
    /// `None` when the event is not retried: what the engine asks after each function error.
    /// Like [`retry_delay`](Self::retry_delay), but a custom schedule is asked
    /// [`delay_after`](RetrySchedule::delay_after), which may give up on some errors. The
    /// maximum event age is not checked here: see [`is_expired`](Self::is_expired).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{FunctionError, RetryPolicy};
    /// use std::time::Duration;
    ///
    /// let lambda = RetryPolicy::lambda_default();
    /// let error = FunctionError::new("Boom", "attempt 1");
    /// assert_eq!(lambda.retry_delay_after(1, &error), Some(Duration::from_secs(60)));
    /// assert_eq!(lambda.retry_delay_after(3, &error), None);
    /// ```
    pub fn retry_delay_after(&self, retry: u32, error: &FunctionError) -> Option<Duration> {
        self.scheduled(retry, |s| s.delay_after(retry, error))
    }

    /// Retry `retry`'s wait: `None` past the cap, then the list or the schedule's answer.
    fn scheduled(
        &self,
        retry: u32,
        ask: impl FnOnce(&dyn RetrySchedule) -> Option<Duration>,
    ) -> Option<Duration> {
        if retry == 0 || retry > self.maximum_retry_attempts {
            return None;
        }
        match &self.schedule {
            Some(schedule) => ask(&**schedule).map(clamp_scheduled),
            None => {
                let i = (retry as usize - 1).min(self.retry_delays.len() - 1);
                Some(self.retry_delays[i])
            }
        }
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

    /// The backoff after the `throttles`-th throttle, with jitter: `nominal * (1 - jitter *
    /// draw)`, a delay in `[nominal * (1 - jitter), nominal]`.
    ///
    /// `draw` is a number drawn uniformly from `[0, 1)` by the caller, from whatever random
    /// source it likes (the runtime uses its seeded ChaCha8 generator). A draw of `0.0` gives the nominal
    /// delay; one near `1.0` shortens it by the whole jitter. A draw outside `[0, 1]` is clamped
    /// into it, and NaN counts as `0.0`. With a jitter of 0 the draw does not matter, and the
    /// runtime then draws nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::RetryPolicy;
    /// use std::time::Duration;
    ///
    /// let lambda = RetryPolicy::lambda_default(); // 1 s doubling, jitter 0.2
    /// assert_eq!(lambda.throttle_delay(3, 0.0), Duration::from_secs(4));
    /// assert_eq!(lambda.throttle_delay(3, 0.5), Duration::from_millis(3600));
    /// ```
    pub fn throttle_delay(&self, throttles: u32, draw: f64) -> Duration {
        let nominal = self.throttle_delay_nominal(throttles);
        if self.throttle_jitter == 0.0 {
            return nominal;
        }
        let draw = if draw.is_nan() {
            0.0
        } else {
            draw.clamp(0.0, 1.0)
        };
        nominal.mul_f64(1.0 - draw * self.throttle_jitter)
    }

    /// Whether an event accepted at `enqueued_at` is too old to start an attempt at `at`.
    pub fn is_expired(&self, enqueued_at: Timestamp, at: Timestamp) -> bool {
        at - enqueued_at >= self.maximum_event_age
    }
}

impl PartialEq for RetryPolicy {
    /// Compares every setting; a custom schedule only by identity (the same `Arc`), since a
    /// schedule is code.
    fn eq(&self, other: &Self) -> bool {
        let schedules = match (&self.schedule, &other.schedule) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        schedules
            && self.maximum_retry_attempts == other.maximum_retry_attempts
            && self.retry_delays == other.retry_delays
            && self.throttle_initial == other.throttle_initial
            && self.throttle_max == other.throttle_max
            && self.throttle_factor == other.throttle_factor
            && self.throttle_jitter == other.throttle_jitter
            && self.maximum_event_age == other.maximum_event_age
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

    /// The waits before retries 1, 2, ...; the last one repeats for later retries. Replaces a
    /// [`retry_schedule`](Self::retry_schedule) set before (the last of the two calls wins).
    pub fn retry_delays(mut self, delays: impl Into<Vec<Duration>>) -> Self {
        self.policy.retry_delays = delays.into().into();
        self.policy.schedule = None;
        self
    }

    /// A schedule of the user's own for the waits between retries after function errors, in
    /// place of [`retry_delays`](Self::retry_delays) (the last of the two calls wins).
    /// [`maximum_retry_attempts`](Self::maximum_retry_attempts) still caps the retries, and the
    /// maximum event age still ends the event; see [`RetrySchedule`].
    ///
    /// The `Arc` is kept as given: policies holding the same `Arc` compare equal.
    pub fn retry_schedule(mut self, schedule: Arc<dyn RetrySchedule>) -> Self {
        self.policy.schedule = Some(schedule);
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
