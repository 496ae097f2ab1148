//! [`CostModel`]: what one execution costs in virtual time.

use std::sync::Arc;
use std::time::Duration;

use crate::parts::clock::duration_nanos;
use crate::parts::error::Error;
use crate::parts::record::FunctionError;
use crate::parts::rng::SeededRng;

/// No sampled duration is longer than this (the longest timeout is 24 h, so a longer sample
/// is a timeout anyway); it keeps virtual time far from overflowing.
const SAMPLE_CAP_NS: u64 = 48 * 3600 * 1_000_000_000;

/// What an execution of a function costs in model mode: its duration, the latency of each
/// invoke it makes, a cold start for each new execution environment, and a failure rate.
///
/// An execution's virtual time line, from its start:
///
/// 1. the cold start, if it needed a new environment (see
///    [`ScalingRate`](crate::ScalingRate): environments stay warm once made);
/// 2. the handler's calls, in the order it makes them: each `ctx.invoke_async` costs the
///    invoke latency, and the invoked event is accepted when its call returns, so a handler
///    that invokes 100 children at 10 ms spends 1 s and its children arrive 10 ms apart;
///    [`Context::spend`](crate::Context::spend) adds time at that point of the handler;
/// 3. the duration drawn from this model (the rest of the handler's work).
///
/// The execution holds its concurrency slot until the end of that line; then its outcome
/// counts: success, or a function error (retried per the retry policy) when the failure rate
/// draws one or the handler returned one. The timeout counts from the end of the cold start
/// (Lambda's init phase has its own limit): a line longer than that ends at the timeout as
/// `Sandbox.Timedout`, and invokes that would return after the timeout are refused
/// ([`InvokeError::CallerTimedOut`](crate::InvokeError::CallerTimedOut)).
///
/// Draws come from the function's own ChaCha8 generator (crate `rand_chacha`), seeded from the
/// runtime's [`seed`](crate::RuntimeBuilder::seed) and the function's registration index: one
/// seed, one run, on every release of this crate's dependencies (see
/// [`ModelOptions`](crate::ModelOptions)).
///
/// # Examples
///
/// ```
/// use event_invoke::CostModel;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let leaf = CostModel::fixed(ms(120)).cold_start(ms(250)).failure_rate(0.05);
/// assert_eq!(leaf.cold_start_time(), ms(250));
/// let spread = CostModel::uniform(ms(50), ms(150));
/// let measured = CostModel::samples(vec![ms(80), ms(95), ms(400)]);
/// let own = CostModel::declared(); // the handler calls ctx.spend(..)
/// # let _ = (spread, measured, own);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    duration: Dist,
    invoke_latency: Option<Duration>,
    cold_start: Duration,
    failure_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Dist {
    Declared,
    Fixed(u64),
    Uniform(u64, u64),
    Exponential(u64),
    LogNormal { median: u64, sigma: f64 },
    Samples(Arc<[u64]>),
}

impl CostModel {
    fn with(duration: Dist) -> Self {
        CostModel {
            duration,
            invoke_latency: None,
            cold_start: Duration::ZERO,
            failure_rate: 0.0,
        }
    }

    /// Every execution takes `d`.
    pub fn fixed(d: Duration) -> Self {
        Self::with(Dist::Fixed(duration_nanos(d)))
    }

    /// Durations drawn uniformly from `min..=max`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        Self::with(Dist::Uniform(duration_nanos(min), duration_nanos(max)))
    }

    /// Durations drawn from an exponential distribution with this mean.
    pub fn exponential(mean: Duration) -> Self {
        Self::with(Dist::Exponential(duration_nanos(mean)))
    }

    /// Durations drawn from a log-normal distribution: `median * e^(sigma * z)` for a standard
    /// normal `z`. A sigma of 0.5 puts the 99th percentile at about 3.2 times the median.
    pub fn log_normal(median: Duration, sigma: f64) -> Self {
        Self::with(Dist::LogNormal {
            median: duration_nanos(median),
            sigma,
        })
    }

    /// Durations drawn uniformly from measured ones (for example, from CloudWatch's
    /// `Duration` of the real function).
    pub fn samples(durations: Vec<Duration>) -> Self {
        Self::with(Dist::Samples(
            durations.into_iter().map(duration_nanos).collect(),
        ))
    }

    /// No drawn duration: the handler declares all its time with
    /// [`Context::spend`](crate::Context::spend), where it spends it. (`spend` works with every
    /// cost model; this one only says there is nothing else, and still takes a cold start,
    /// an invoke latency and a failure rate.)
    pub fn declared() -> Self {
        Self::with(Dist::Declared)
    }

    /// What each `invoke_async` made by this function's handler costs it (instead of the
    /// runtime's [`ModelOptions::invoke_latency`](crate::ModelOptions::invoke_latency)).
    pub fn invoke_latency(mut self, latency: Duration) -> Self {
        self.invoke_latency = Some(latency);
        self
    }

    /// Time added to an execution that needs a new environment.
    pub fn cold_start(mut self, d: Duration) -> Self {
        self.cold_start = d;
        self
    }

    /// The chance (0.0 to 1.0) that an execution fails with a function error
    /// (`Model.Failure`) at its end, after its handler ran (so the invokes it made stand).
    pub fn failure_rate(mut self, p: f64) -> Self {
        self.failure_rate = p;
        self
    }

    /// The cold start time.
    pub fn cold_start_time(&self) -> Duration {
        self.cold_start
    }

    /// The failure rate.
    pub fn failure_probability(&self) -> f64 {
        self.failure_rate
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        self.invoke_latency
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let day = Duration::from_secs(24 * 3600);
        let invalid = |field, value: String, accepted| {
            Err(Error::InvalidConfig {
                field,
                value,
                accepted,
            })
        };
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return invalid(
                "cost_model.failure_rate",
                self.failure_rate.to_string(),
                "a probability from 0.0 to 1.0",
            );
        }
        if self.cold_start > day {
            return invalid(
                "cost_model.cold_start",
                format!("{:?}", self.cold_start),
                "0 to 24 h (Lambda: about 100 ms to a few seconds)",
            );
        }
        if self
            .invoke_latency
            .is_some_and(|l| l > Duration::from_secs(3600))
        {
            return invalid(
                "cost_model.invoke_latency",
                format!("{:?}", self.invoke_latency),
                "0 to 1 h (Lambda's Invoke API: tens of milliseconds)",
            );
        }
        let day_ns = duration_nanos(day);
        match &self.duration {
            Dist::Declared => {}
            Dist::Fixed(d) | Dist::Exponential(d) if *d > day_ns => {
                return invalid(
                    "cost_model.duration",
                    format!("{:?}", Duration::from_nanos(*d)),
                    "0 to 24 h",
                )
            }
            Dist::Fixed(_) | Dist::Exponential(_) => {}
            Dist::Uniform(min, max) => {
                if min > max || *max > day_ns {
                    return invalid(
                        "cost_model.uniform",
                        format!(
                            "{:?}..={:?}",
                            Duration::from_nanos(*min),
                            Duration::from_nanos(*max)
                        ),
                        "min <= max <= 24 h",
                    );
                }
            }
            Dist::LogNormal { median, sigma } => {
                if *median > day_ns || !sigma.is_finite() || !(0.0..=10.0).contains(sigma) {
                    return invalid(
                        "cost_model.log_normal",
                        format!("median {:?}, sigma {sigma}", Duration::from_nanos(*median)),
                        "a median of at most 24 h and a sigma from 0.0 to 10.0",
                    );
                }
            }
            Dist::Samples(s) => {
                if s.is_empty() || s.iter().any(|d| *d > day_ns) {
                    return invalid(
                        "cost_model.samples",
                        format!("{} samples", s.len()),
                        "at least one sample, each at most 24 h",
                    );
                }
            }
        }
        Ok(())
    }

    /// Draws one execution's duration in nanoseconds (0 for a declared model).
    pub(crate) fn sample(&self, rng: &mut SeededRng) -> u64 {
        let ns = match &self.duration {
            Dist::Declared => 0,
            Dist::Fixed(d) => *d,
            Dist::Uniform(min, max) => rng.inclusive(*min, *max),
            Dist::Exponential(mean) => {
                let u = rng.unit();
                (-(1.0 - u).ln() * *mean as f64) as u64
            }
            Dist::LogNormal { median, sigma } => {
                // Box-Muller: one standard normal from two uniforms.
                let u1: f64 = 1.0 - rng.unit();
                let u2 = rng.unit();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (*median as f64 * (sigma * z).exp()) as u64
            }
            Dist::Samples(s) => s[rng.index(s.len())],
        };
        ns.min(SAMPLE_CAP_NS)
    }

    /// An execution's duration when it draws nothing at random (a fixed or declared
    /// duration, no failure rate): what [`sample`](Self::sample) would give, without the
    /// function's random sequence.
    pub(crate) fn undrawn(&self) -> Option<u64> {
        if self.failure_rate > 0.0 {
            return None;
        }
        match self.duration {
            Dist::Declared => Some(0),
            Dist::Fixed(d) => Some(d.min(SAMPLE_CAP_NS)),
            _ => None,
        }
    }

    /// Whether this execution fails by the failure rate (draws only when the rate is set, so
    /// a model without failures draws nothing for them).
    pub(crate) fn draw_failure(&self, rng: &mut SeededRng) -> bool {
        self.failure_rate > 0.0 && rng.unit() < self.failure_rate
    }

    pub(crate) fn failure() -> FunctionError {
        FunctionError::new(
            "Model.Failure",
            "the cost model's failure rate failed this execution",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undrawn_duration_is_the_one_a_draw_would_give_and_only_when_nothing_is_drawn() {
        let mut rng = SeededRng::new(7);
        let ms = Duration::from_millis(100);
        for cost in [CostModel::fixed(ms), CostModel::declared()] {
            assert_eq!(cost.undrawn(), Some(cost.sample(&mut rng)));
        }
        let huge = CostModel::fixed(Duration::from_secs(u64::MAX / 4));
        assert_eq!(huge.undrawn(), Some(huge.sample(&mut rng)), "capped alike");
        assert_eq!(CostModel::uniform(ms, ms * 2).undrawn(), None);
        assert_eq!(CostModel::fixed(ms).failure_rate(0.5).undrawn(), None);
    }
}
