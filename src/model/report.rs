//! [`ModelReport`]: what a model run did.

use std::fmt;
use std::time::Duration;

use super::{Model, Timeline};
use crate::engine::{FunctionMetrics, Runtime};
use crate::parts::record::Condition;

/// Percentiles of `AsyncEventAge` (from an event's acceptance to each execution's start) over
/// every execution of a model run, by the nearest-rank method. They are exact: the model keeps
/// each execution's age, 8 bytes apiece (80 MB for ten million executions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
        }
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
    /// Event ages at execution start.
    pub event_age: AgeSummary,
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
        let a = &self.event_age;
        writeln!(
            f,
            "event age         p50 {}  p90 {}  p99 {}  max {}",
            secs(a.p50),
            secs(a.p90),
            secs(a.p99),
            secs(a.max)
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
            event_age: model.age_summary(),
            functions: Vec::new(),
        };
        for (m, cold_starts) in books {
            total.add(&m);
            let r = FunctionReport {
                name: m.name.clone(),
                executions: m.invocations,
                peak_concurrency: m.peak_concurrent_executions,
                cold_starts,
                throttles: m.throttles,
                retries: m.retries,
                successes: m.outcome(Condition::Success),
                dropped: dropped(&m),
            };
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
