//! [`ModelReport`]: what a model run did.

use std::fmt;
use std::time::Duration;

use super::{Model, Timeline};
use crate::engine::{FunctionMetrics, Runtime};
use crate::parts::record::Condition;

/// Percentiles of `AsyncEventAge` (from an event's acceptance to an execution's start) over
/// executions of a model run, by the nearest-rank method.
///
/// Memory is bounded: the model keeps each age (8 bytes) for the first 1,048,576 executions
/// of a summary, and they are exact (`exact` is `true`). Past that it counts ages in a
/// log-linear histogram (128 buckets per power of two, 58 KiB): a percentile is then the top
/// of its bucket, less than 1/128 (0.79 %) above the exact value, never below it; `count` and
/// `max` stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgeSummary {
    /// Executions counted.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The oldest.
    pub max: Duration,
    /// Whether the percentiles are exact (else less than 1/128 (0.79 %) above, see above).
    pub exact: bool,
}

impl AgeSummary {
    pub(crate) fn of(sorted: &[u64]) -> Self {
        let rank = |p: u64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let n = sorted.len() as u64;
            let i = (p * n).div_ceil(100).max(1) - 1;
            Duration::from_nanos(sorted[i as usize])
        };
        AgeSummary {
            count: sorted.len() as u64,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: sorted
                .last()
                .map_or(Duration::ZERO, |n| Duration::from_nanos(*n)),
            exact: true,
        }
    }
}

impl Default for AgeSummary {
    fn default() -> Self {
        AgeSummary::of(&[])
    }
}

/// Throttled attempts by what refused them: the function's reserved concurrency, the account
/// (its limit, or the unreserved pool), or the scaling rate (no new execution environment).
/// The three add up to the report's `throttles` (system errors injected by fault injection
/// are not throttles).
///
/// One cause per throttle, the first that applies: the function's reserved concurrency if
/// it is all in use; else the account if its limit (or, for a function without a
/// reservation, the unreserved pool) is all in use; else the scaling rate. So an attempt
/// that a full pool refused counts against that pool even when the scaling rate's
/// allowance was spent too: more environments would not have given it a slot. A
/// `scaling_rate` throttle means a pool had room and only a new environment was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ThrottleCauses {
    /// The function's reserved concurrency was all in use.
    pub reserved_pool: u64,
    /// The account's limit, or the unreserved pool, was all in use.
    pub account: u64,
    /// The scaling rate refused a new execution environment.
    pub scaling_rate: u64,
}

impl ThrottleCauses {
    /// All three.
    pub fn total(&self) -> u64 {
        self.reserved_pool + self.account + self.scaling_rate
    }

    fn add(&mut self, o: &ThrottleCauses) {
        self.reserved_pool += o.reserved_pool;
        self.account += o.account;
        self.scaling_rate += o.scaling_rate;
    }
}

/// One function's lines of a [`ModelReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionReport {
    /// The function's name.
    pub name: String,
    /// Executions started (retries included).
    pub executions: u64,
    /// The most executions running at once.
    pub peak_concurrency: u64,
    /// Executions that needed a new environment.
    pub cold_starts: u64,
    /// Attempts refused an execution slot or a new environment, put back with backoff.
    pub throttles: u64,
    /// Retries scheduled after function errors.
    pub retries: u64,
    /// Events that ended in success.
    pub successes: u64,
    /// Events that ended without success, by condition (only those that happened).
    pub dropped: Vec<(Condition, u64)>,
    /// Throttles by cause (they add up to `throttles`).
    pub throttle_causes: ThrottleCauses,
    /// Reserved slot-time left idle while events of the function waited (ready, or backing
    /// off after a throttle; not those waiting out a function-error retry): for each stretch
    /// of time, the reserved slots not running an execution times its length. Zero for a
    /// function without reserved concurrency.
    ///
    /// A paused function's events are held in its queue, and they count as waiting: its
    /// reserved slots idle while it is paused with events queued count here (the pause, not
    /// a lack of capacity, is why they wait).
    ///
    /// Sampled only at these points: one of the function's executions starts or ends, one
    /// of its attempts is throttled, one of its events is accepted (when an invoke call
    /// returns, after its latency). Between two samples the idle slots and whether events
    /// waited are taken as they were at the first; nothing else is a sample (a pause or a
    /// resume, a function-error retry coming due, a throttle backoff running out: each is
    /// seen at the next sample).
    pub idle_reserved: Duration,
}

/// What a model run did, for [`Runtime::model_report`](crate::Runtime::model_report).
///
/// Its [`Display`](fmt::Display) is a plain-text table; the same workload with the same seed
/// prints byte for byte the same report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelReport {
    /// From the start of the first invoke call to the end of the last execution or outcome.
    pub makespan: Duration,
    /// Executions started, over all functions.
    pub executions: u64,
    /// The most executions running at once in the account.
    pub peak_concurrency: u64,
    /// Executions that needed a new environment.
    pub cold_starts: u64,
    /// Throttled attempts.
    pub throttles: u64,
    /// Retries scheduled after function errors.
    pub retries: u64,
    /// Events that ended in success.
    pub successes: u64,
    /// Events that ended without success, by condition (only those that happened).
    pub dropped: Vec<(Condition, u64)>,
    /// Events accepted and not yet ended when the report was made.
    pub outstanding: u64,
    /// Event ages at execution start, every attempt (retries included).
    pub event_age: AgeSummary,
    /// Event ages at the start of each event's first attempt: the wait for capacity alone.
    pub first_attempt_age: AgeSummary,
    /// Event ages at the start of later attempts (after a function error's retry wait).
    pub retried_attempt_age: AgeSummary,
    /// From the start of the first invoke call until the last event's first attempt started
    /// (zero if none started). Events that ended without a first attempt (aged out, or
    /// dropped) do not count.
    pub first_attempts_started: Duration,
    /// From the start of the first invoke call until every event had ended: the makespan,
    /// or `None` while events are outstanding.
    pub all_ended: Option<Duration>,
    /// Throttles by cause, over all functions.
    pub throttle_causes: ThrottleCauses,
    /// Reserved slot-time left idle while the function's events waited, summed over
    /// functions (see [`FunctionReport::idle_reserved`]).
    pub idle_reserved: Duration,
    /// Per function, in registration order.
    pub functions: Vec<FunctionReport>,
}

/// Seconds with millisecond precision, from integer nanoseconds (no float formatting, so the
/// text is the same on every machine).
pub(crate) fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

impl fmt::Display for ModelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "makespan          {}", secs(self.makespan))?;
        writeln!(f, "executions        {}", self.executions)?;
        writeln!(f, "peak concurrency  {}", self.peak_concurrency)?;
        writeln!(f, "cold starts       {}", self.cold_starts)?;
        writeln!(f, "throttles         {}", self.throttles)?;
        writeln!(f, "retries           {}", self.retries)?;
        writeln!(f, "successes         {}", self.successes)?;
        let dropped: u64 = self.dropped.iter().map(|(_, n)| n).sum();
        write!(f, "dropped           {dropped}")?;
        for (c, n) in &self.dropped {
            write!(f, " {c:?}={n}")?;
        }
        writeln!(f)?;
        if self.outstanding > 0 {
            writeln!(f, "outstanding       {}", self.outstanding)?;
        }
        let age = |f: &mut fmt::Formatter<'_>, label: &str, a: &AgeSummary| {
            write!(
                f,
                "{label:<18}p50 {}  p90 {}  p99 {}  max {}",
                secs(a.p50),
                secs(a.p90),
                secs(a.p99),
                secs(a.max)
            )?;
            if !a.exact {
                write!(f, "  (histogram: less than 1/128 (0.79 %) above)")?;
            }
            writeln!(f)
        };
        age(f, "event age", &self.event_age)?;
        age(f, "first-attempt age", &self.first_attempt_age)?;
        if self.retried_attempt_age.count > 0 {
            age(f, "retried age", &self.retried_attempt_age)?;
        }
        writeln!(
            f,
            "first attempts    all started by {}",
            secs(self.first_attempts_started)
        )?;
        if let Some(all) = self.all_ended {
            writeln!(f, "all ended         by {}", secs(all))?;
        }
        let c = &self.throttle_causes;
        writeln!(
            f,
            "throttled by      reserved pool {}  account {}  scaling rate {}",
            c.reserved_pool, c.account, c.scaling_rate
        )?;
        writeln!(
            f,
            "idle reserved     {} slot-s while events waited",
            secs(self.idle_reserved).trim_end_matches(" s")
        )?;
        let width = self
            .functions
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max("function".len());
        writeln!(
            f,
            "{:<width$}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}",
            "function",
            "executions",
            "peak",
            "cold",
            "throttles",
            "retries",
            "successes",
            "dropped"
        )?;
        for r in &self.functions {
            let dropped: u64 = r.dropped.iter().map(|(_, n)| n).sum();
            writeln!(
                f,
                "{:<width$}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}",
                r.name,
                r.executions,
                r.peak_concurrency,
                r.cold_starts,
                r.throttles,
                r.retries,
                r.successes,
                dropped
            )?;
        }
        Ok(())
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// What a model run did so far: makespan, executions, peak concurrency, cold starts,
    /// throttles, retries, drops by reason and event ages, in total and per function.
    /// `None` unless the runtime was built with [`RuntimeBuilder::model`](crate::RuntimeBuilder::model).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, CostModel, Function, ModelOptions, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u32> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
    /// let always_fails = CostModel::fixed(Duration::from_secs(1)).failure_rate(1.0);
    /// rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).cost(always_fails)).unwrap();
    /// rt.invoke_async("f", 1).unwrap();
    /// rt.run_until_idle();
    /// let report = rt.model_report().unwrap();
    /// // 1 s, a minute's wait, 1 s, two minutes' wait, 1 s.
    /// assert_eq!(report.makespan, Duration::from_secs(183));
    /// assert_eq!((report.executions, report.retries), (3, 2));
    /// assert_eq!(report.dropped, vec![(Condition::RetriesExhausted, 1)]);
    /// ```
    pub fn model_report(&self) -> Option<ModelReport> {
        let model = self.model()?;
        let books = self.function_books();
        let mut functions = Vec::with_capacity(books.len());
        // Drops by condition, only those that happened.
        let dropped = |m: &FunctionMetrics| -> Vec<(Condition, u64)> {
            m.outcomes()
                .filter(|(c, n)| c.is_failure() && *n > 0)
                .collect()
        };
        let mut total = FunctionMetrics::default();
        let mut report = ModelReport {
            makespan: Duration::ZERO,
            executions: 0,
            peak_concurrency: self.metrics().total.peak_concurrent_executions,
            cold_starts: 0,
            throttles: 0,
            retries: 0,
            successes: 0,
            dropped: Vec::new(),
            outstanding: self.outstanding(),
            event_age: AgeSummary::default(),
            first_attempt_age: AgeSummary::default(),
            retried_attempt_age: AgeSummary::default(),
            first_attempts_started: Duration::ZERO,
            all_ended: None,
            throttle_causes: ThrottleCauses::default(),
            idle_reserved: Duration::ZERO,
            functions: Vec::new(),
        };
        let (first, later) = model.age_summaries();
        report.first_attempt_age = first;
        report.retried_attempt_age = later;
        report.event_age = model.all_ages();
        for (index, (m, cold_starts)) in books.into_iter().enumerate() {
            total.add(&m);
            let (throttle_causes, idle_reserved) = model.function_books(index as u32);
            let r = FunctionReport {
                name: m.name.clone(),
                executions: m.invocations,
                peak_concurrency: m.peak_concurrent_executions,
                cold_starts,
                throttles: m.throttles,
                retries: m.retries,
                successes: m.outcome(Condition::Success),
                dropped: dropped(&m),
                throttle_causes,
                idle_reserved,
            };
            report.throttle_causes.add(&throttle_causes);
            report.idle_reserved += idle_reserved;
            report.executions += r.executions;
            report.cold_starts += r.cold_starts;
            report.throttles += r.throttles;
            report.retries += r.retries;
            report.successes += r.successes;
            functions.push(r);
        }
        report.dropped = dropped(&total);
        let (start, end) = model.span();
        report.makespan = end - start;
        report.first_attempts_started = model
            .last_first_start()
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
        if report.outstanding == 0 {
            report.all_ended = Some(report.makespan);
        }
        report.functions = functions;
        Some(report)
    }

    /// Concurrency and queue depth over the virtual time of a model run (see [`Timeline`]).
    /// `None` unless the runtime is in model mode.
    pub fn timeline(&self) -> Option<Timeline> {
        Some(self.model()?.timeline())
    }

    /// The model behind the executor seam, if the runtime runs one.
    fn model(&self) -> Option<&Model<P, R>> {
        self.virtual_time()?.as_any().downcast_ref::<Model<P, R>>()
    }
}
