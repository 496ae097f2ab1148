//! [`Arrivals`]: when the events of a workload arrive.

use std::time::Duration;

use crate::engine::Runtime;
use crate::parts::clock::Timestamp;
use crate::parts::error::InvokeError;
use crate::parts::rng::SeededRng;

/// When a workload's events arrive, as offsets from the start of the run: at a constant rate,
/// as a Poisson process, in bursts, or replayed from recorded times. Feed them to a function
/// with [`Runtime::invoke_arrivals`].
///
/// Every kind is deterministic: [`poisson`](Self::poisson) draws its gaps from ChaCha8
/// (crate `rand_chacha`) seeded with [`seed`](Self::seed) (0 unless set), so one seed gives the
/// same offsets on every release. The offsets never decrease.
///
/// # Examples
///
/// ```
/// use event_invoke::Arrivals;
/// use std::time::Duration;
///
/// // 50,000 events spread evenly over 10 s: one every 200 µs, the first at 0.
/// let even = Arrivals::constant(50_000, Duration::from_secs(10));
/// assert_eq!(even.len(), 50_000);
/// let offsets: Vec<Duration> = even.offsets().take(2).collect();
/// assert_eq!(offsets, [Duration::ZERO, Duration::from_micros(200)]);
///
/// // 3 bursts of 100 events, 1 s apart.
/// let bursts = Arrivals::bursts(100, Duration::from_secs(1), 3);
/// assert_eq!(bursts.offsets().nth(250), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    kind: Kind,
    seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Constant {
        count: u64,
        over: Duration,
    },
    Poisson {
        count: u64,
        per_second: f64,
    },
    Bursts {
        size: u64,
        every: Duration,
        bursts: u64,
    },
    Replay(Vec<Duration>),
}

/// Arrivals that cannot be made: what to change is in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrivalsError {
    /// A Poisson rate that is not a positive, finite number of events per second.
    #[error("a Poisson rate must be a positive, finite number of events per second, not {rate}")]
    Rate {
        /// The rate given.
        rate: String,
    },
    /// A line of a CSV of offsets that is not a number of seconds.
    #[error(
        "line {line} of the arrivals CSV is {text:?}: each line must be one offset in seconds \
         from the start (a number such as 0.25, >= 0, optionally followed by a comma and more \
         columns); blank lines and lines starting with # are skipped, and a first other line \
         that is not a number is taken as a header"
    )]
    Line {
        /// The line's number, from 1.
        line: usize,
        /// The line as given.
        text: String,
    },
}

impl Arrivals {
    /// `count` events evenly spread over `over`: the `i`-th at `i * over / count` (so the
    /// last arrives one gap before `over` ends).
    pub fn constant(count: u64, over: Duration) -> Self {
        Arrivals {
            kind: Kind::Constant { count, over },
            seed: 0,
        }
    }

    /// `count` events of a Poisson process of `per_second` events a second on average: the
    /// gaps between arrivals are drawn from the exponential distribution of mean
    /// `1 / per_second` (the first arrives after one gap). Refused unless the rate is a
    /// positive, finite number.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::Arrivals;
    /// use std::time::Duration;
    ///
    /// let a = Arrivals::poisson(10_000, 5_000.0).unwrap().seed(7);
    /// let last = a.offsets().last().unwrap();
    /// // On average 2 s; the seed fixes it.
    /// assert!(last > Duration::from_millis(1_900) && last < Duration::from_millis(2_100));
    /// assert_eq!(a.offsets().last(), Some(last));
    /// assert!(Arrivals::poisson(1, 0.0).is_err());
    /// ```
    pub fn poisson(count: u64, per_second: f64) -> Result<Self, ArrivalsError> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(ArrivalsError::Rate {
                rate: per_second.to_string(),
            });
        }
        Ok(Arrivals {
            kind: Kind::Poisson { count, per_second },
            seed: 0,
        })
    }

    /// `bursts` bursts of `size` events each, `every` apart, the first at 0: all events of a
    /// burst arrive at the same instant.
    pub fn bursts(size: u64, every: Duration, bursts: u64) -> Self {
        Arrivals {
            kind: Kind::Bursts {
                size,
                every,
                bursts,
            },
            seed: 0,
        }
    }

    /// Recorded arrival times, as offsets from the start; they are played in time order
    /// (sorted here).
    pub fn replay(offsets: impl IntoIterator<Item = Duration>) -> Self {
        let mut v: Vec<Duration> = offsets.into_iter().collect();
        v.sort_unstable();
        Arrivals {
            kind: Kind::Replay(v),
            seed: 0,
        }
    }

    /// Recorded arrival times from CSV text: one offset in seconds per line (its first
    /// column; any further columns are ignored). Blank lines and lines starting with `#` are
    /// skipped, and a first (other) line that is not a number is taken as a header. A line that is
    /// not a non-negative number of seconds is refused with its line number.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Arrivals, ArrivalsError};
    /// use std::time::Duration;
    ///
    /// let a = Arrivals::from_csv("offset_s,key\n0.5,a.jpg\n0,b.jpg\n\n1.25,c.jpg\n").unwrap();
    /// let offsets: Vec<Duration> = a.offsets().collect();
    /// assert_eq!(offsets, [Duration::ZERO, Duration::from_millis(500), Duration::from_millis(1250)]);
    ///
    /// let bad = Arrivals::from_csv("0.5\nsoon\n").unwrap_err();
    /// assert!(matches!(bad, ArrivalsError::Line { line: 2, .. }));
    /// ```
    pub fn from_csv(text: &str) -> Result<Self, ArrivalsError> {
        let mut offsets = Vec::new();
        let mut first_line = true;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let header_allowed = std::mem::take(&mut first_line);
            let first = line.split(',').next().unwrap_or("").trim();
            match first.parse::<f64>() {
                Ok(s) if (0.0..1.0e9).contains(&s) => {
                    offsets.push(Duration::from_secs_f64(s));
                }
                Err(_) if header_allowed => {} // a header
                _ => {
                    return Err(ArrivalsError::Line {
                        line: i + 1,
                        text: raw.to_string(),
                    })
                }
            }
        }
        Ok(Arrivals::replay(offsets))
    }

    /// Seeds the random draws (Poisson gaps); 0 unless set. Other kinds draw nothing.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many events arrive.
    pub fn len(&self) -> u64 {
        match &self.kind {
            Kind::Constant { count, .. } | Kind::Poisson { count, .. } => *count,
            Kind::Bursts { size, bursts, .. } => size.saturating_mul(*bursts),
            Kind::Replay(v) => v.len() as u64,
        }
    }

    /// Whether no event arrives.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arrival offsets, in time order.
    pub fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        let mut rng = SeededRng::new(self.seed);
        let mut at = 0f64;
        (0..self.len()).map(move |i| match &self.kind {
            Kind::Constant { count, over } => {
                let ns = over.as_nanos() * u128::from(i) / u128::from(*count);
                Duration::from_nanos(ns as u64)
            }
            Kind::Poisson { per_second, .. } => {
                // Inverse transform: -ln(1 - u) / rate, u in [0, 1).
                let u = rng.unit();
                at += -(1.0 - u).ln() / per_second;
                Duration::from_secs_f64(at.min(1.0e9))
            }
            Kind::Bursts { size, every, .. } => every.saturating_mul((i / size) as u32),
            Kind::Replay(v) => v[i as usize],
        })
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Invokes `function` once per arrival of `arrivals` (asynchronously), each at its offset
    /// from now, with the payload `payload(i)` for the `i`-th: the runtime runs (on this
    /// thread) up to each arrival, so executions, retries and throttles play out in between.
    /// Returns how many were accepted. In model mode each call also costs the invoke latency
    /// (its event is accepted when the call returns); then [`run_until_idle`](Self::run_until_idle)
    /// plays out the rest.
    ///
    /// The calls are made one after another, as by one client: each starts at its offset or
    /// when the previous call returned, whichever is later. So when the invoke latency is
    /// longer than the gap between two arrivals, the calls fall behind their offsets and the
    /// events are accepted later and later (1,000 arrivals 1 ms apart with a latency of
    /// 10 ms are accepted over 10 s, not 1 s). To have events accepted at their offsets, keep
    /// [`ModelOptions::invoke_latency`](crate::ModelOptions::invoke_latency) at zero (its
    /// default) for runs driven by arrivals; the arrivals already say when events come.
    ///
    /// Under a [`ManualClock`](crate::ManualClock) (model mode has one) time jumps from one
    /// arrival to the next; under the system clock it waits for each, replaying the
    /// arrivals in real time.
    ///
    /// # Errors
    ///
    /// The first invoke refused (no such function, queue full...), with the arrivals before
    /// it accepted.
    ///
    /// # Examples
    ///
    /// 10 one-second jobs arriving at once on reserved concurrency 2, throttle backoff without
    /// jitter: five rounds of two would take 5 s; the events throttled on the way come back
    /// after their backoff, and the last one starts at 5 s (worked out in `tests/capacity.rs`).
    ///
    /// ```
    /// use event_invoke::{Arrivals, CostModel, Function, ModelOptions, RetryPolicy, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u64> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
    /// let exact = RetryPolicy::builder().throttle_jitter(0.0).build().unwrap();
    /// let job = Function::new("job", |_: &u64, _ctx| Ok(()))
    ///     .cost(CostModel::fixed(Duration::from_secs(1)))
    ///     .retry_policy(exact)
    ///     .reserved_concurrency(2);
    /// rt.register(job).unwrap();
    /// let arrivals = Arrivals::bursts(10, Duration::ZERO, 1);
    /// assert_eq!(rt.invoke_arrivals("job", &arrivals, |i| i).unwrap(), 10);
    /// rt.run_until_idle();
    /// assert_eq!(rt.model_report().unwrap().makespan, Duration::from_secs(6));
    /// ```
    pub fn invoke_arrivals(
        &self,
        function: &str,
        arrivals: &Arrivals,
        mut payload: impl FnMut(u64) -> P,
    ) -> Result<u64, InvokeError<P>> {
        let start: Timestamp = self.now();
        let mut accepted = 0;
        for (i, offset) in arrivals.offsets().enumerate() {
            let at = start + offset;
            if self.now() < at {
                self.run_until(at);
            }
            self.invoke_async(function, payload(i as u64))?;
            accepted += 1;
        }
        Ok(accepted)
    }
}
