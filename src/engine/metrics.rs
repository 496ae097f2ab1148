//! [`FunctionMetrics`] and [`RuntimeMetrics`]: counters under Lambda's metric names.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::parts::error::Error;
use crate::parts::record::Condition;

use super::{FunctionShared, Runtime};

/// The live counters of one function. Relaxed atomics: each counter is exact, but a snapshot
/// taken while workers run may mix instants; one taken when they are stopped is consistent.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) invocations: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) throttles: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) outcomes: [AtomicU64; Condition::COUNT],
    pub(crate) age_total_ns: AtomicU64,
    pub(crate) age_max_ns: AtomicU64,
    pub(crate) duration_total_ns: AtomicU64,
    pub(crate) duration_max_ns: AtomicU64,
    pub(crate) delivery_failures: AtomicU64,
    /// Events taken from the queue and not yet back in it or ended.
    pub(crate) in_hand: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) duplicates_finished: AtomicU64,
    pub(crate) injected_errors: AtomicU64,
    pub(crate) duplicate_errors: AtomicU64,
}

/// Counts of one worker batch, kept in plain integers and added to the shared counters once
/// at the end of the batch: a batch of 16 fast events pays a few atomic additions instead of
/// a few per event.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) invocations: u64,
    pub(crate) age_total_ns: u64,
    pub(crate) age_max_ns: u64,
    pub(crate) duration_total_ns: u64,
    pub(crate) duration_max_ns: u64,
    pub(crate) successes: u64,
    /// Events that ended otherwise (counted where they ended), whose `outstanding` the batch
    /// releases with its successes'.
    pub(crate) ended: u64,
}

impl Tally {
    #[inline]
    pub(crate) fn started(&mut self, age_ns: u64) {
        self.invocations += 1;
        self.age_total_ns += age_ns;
        self.age_max_ns = self.age_max_ns.max(age_ns);
    }

    #[inline]
    pub(crate) fn finished(&mut self, duration_ns: u64) {
        self.duration_total_ns += duration_ns;
        self.duration_max_ns = self.duration_max_ns.max(duration_ns);
    }

    /// Adds the batch to the shared counters; returns the events it ended.
    pub(crate) fn flush(&mut self, c: &Counters) -> u64 {
        if self.invocations > 0 {
            c.invocations.fetch_add(self.invocations, Ordering::Relaxed);
            c.age_total_ns
                .fetch_add(self.age_total_ns, Ordering::Relaxed);
            record_max(&c.age_max_ns, self.age_max_ns);
            c.duration_total_ns
                .fetch_add(self.duration_total_ns, Ordering::Relaxed);
            record_max(&c.duration_max_ns, self.duration_max_ns);
        }
        let successes = self.successes;
        if successes > 0 {
            c.outcomes[Condition::Success.index()].fetch_add(successes, Ordering::Relaxed);
            c.in_hand.fetch_sub(successes, Ordering::Relaxed);
        }
        let ended = successes + self.ended;
        *self = Tally::default();
        ended
    }
}

#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub(crate) fn record_max(c: &AtomicU64, v: u64) {
    // Load first: most samples are below the max and need no write.
    if v > c.load(Ordering::Relaxed) {
        c.fetch_max(v, Ordering::Relaxed);
    }
}

impl Counters {
    #[inline]
    pub(crate) fn outcome(&self, c: Condition) {
        bump(&self.outcomes[c.index()]);
    }

    #[inline]
    pub(crate) fn attempt_started(&self, age_ns: u64) {
        bump(&self.invocations);
        self.age_total_ns.fetch_add(age_ns, Ordering::Relaxed);
        record_max(&self.age_max_ns, age_ns);
    }

    #[inline]
    pub(crate) fn attempt_finished(&self, duration_ns: u64) {
        self.duration_total_ns
            .fetch_add(duration_ns, Ordering::Relaxed);
        record_max(&self.duration_max_ns, duration_ns);
    }

    pub(crate) fn fill(&self, m: &mut FunctionMetrics) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        m.invocations = get(&self.invocations);
        m.errors = get(&self.errors);
        m.throttles = get(&self.throttles);
        m.retries = get(&self.retries);
        for (o, c) in m.outcomes.iter_mut().zip(&self.outcomes) {
            *o = get(c);
        }
        m.event_age_total = Duration::from_nanos(get(&self.age_total_ns));
        m.event_age_max = Duration::from_nanos(get(&self.age_max_ns));
        m.duration_total = Duration::from_nanos(get(&self.duration_total_ns));
        m.duration_max = Duration::from_nanos(get(&self.duration_max_ns));
        m.destination_delivery_failures = get(&self.delivery_failures);
        m.in_flight_events = get(&self.in_hand);
        m.duplicates = get(&self.duplicates);
        m.duplicates_finished = get(&self.duplicates_finished);
        m.injected_errors = get(&self.injected_errors);
        m.duplicate_errors = get(&self.duplicate_errors);
    }
}

/// A snapshot of one function's metrics (or, in [`RuntimeMetrics::total`], of all of them).
///
/// Names follow Lambda's CloudWatch metrics where one exists:
///
/// | field | Lambda metric |
/// |---|---|
/// | `events_received` | `AsyncEventsReceived` |
/// | `invocations` | `Invocations` (attempts that ran the handler; throttles excluded) |
/// | `errors` | `Errors` (function errors: returned, panicked, timed out) |
/// | `throttles` | `Throttles` |
/// | `dropped()`, `outcome(c)`, `outcomes()` | `AsyncEventsDropped`, in all and by reason |
/// | `event_age_max`, `event_age_total` | `AsyncEventAge` (at each attempt's start; on the `SystemClock` on Linux and Android, to the kernel's tick) |
/// | `duration_total`, `duration_max` | `Duration` |
/// | `concurrent_executions`, `peak_concurrent_executions` | `ConcurrentExecutions` |
/// | `destination_delivery_failures` | `DestinationDeliveryFailures` |
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, ManualClock, Runtime};
///
/// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
/// rt.invoke_async("f", 1).unwrap();
/// rt.invoke_async("f", 2).unwrap();
/// assert_eq!(rt.function_metrics("f").unwrap().queue_ready, 2);
/// rt.run_until_idle();
/// let m = rt.function_metrics("f").unwrap();
/// assert_eq!(m.events_received, 2);
/// assert_eq!(m.invocations, 2);
/// assert_eq!(m.outcome(Condition::Success), 2);
/// assert_eq!(m.finished(), 2);
/// assert_eq!(m.queue_depth(), 0);
/// ```
///
/// Metrics may be added in minor releases, so the struct cannot be built outside this crate
/// (start from [`FunctionMetrics::default`] if a test needs one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionMetrics {
    /// The function's name (`"*"` for runtime totals).
    pub name: String,
    /// Events accepted onto the queue (`AsyncEventsReceived`).
    pub events_received: u64,
    /// Handler executions started (`Invocations`).
    pub invocations: u64,
    /// Executions that failed (`Errors`), injected duplicate deliveries' included (see
    /// [`duplicate_errors`](Self::duplicate_errors) for what each error leads to).
    pub errors: u64,
    /// Attempts refused for want of an execution slot (`Throttles`).
    pub throttles: u64,
    /// Retries scheduled after function errors.
    pub retries: u64,
    // Events ended, indexed by `Condition::index`. Private, read through `outcome` and
    // `outcomes`, so that a new condition changes no public type.
    outcomes: [u64; Condition::COUNT],
    /// Events ready to run now (held ones included while paused).
    pub queue_ready: u64,
    /// Events waiting for a retry or throttle delay.
    pub queue_delayed: u64,
    /// Whether the function is paused (its queued events are held).
    pub paused: bool,
    /// Events taken from the queue by a worker and not yet ended or back in the queue.
    pub in_flight_events: u64,
    /// Handlers running now (`ConcurrentExecutions`).
    pub concurrent_executions: u64,
    /// The most handlers that ran at once.
    pub peak_concurrent_executions: u64,
    /// The oldest event age seen at an attempt's start.
    pub event_age_max: Duration,
    /// The sum of event ages at attempts' starts (divide by `invocations` for the mean).
    pub event_age_total: Duration,
    /// The sum of handler durations.
    pub duration_total: Duration,
    /// The longest handler duration.
    pub duration_max: Duration,
    /// Records whose destination could not take them (`DestinationDeliveryFailures`).
    pub destination_delivery_failures: u64,
    /// Duplicate deliveries injected ([`FaultInjection`](crate::FaultInjection)). Each also
    /// counts as received work in [`is_balanced`](Self::is_balanced), but never as an outcome.
    pub duplicates: u64,
    /// Injected duplicate deliveries that have run (or were dropped).
    pub duplicates_finished: u64,
    /// Function errors and system errors injected.
    pub injected_errors: u64,
    /// Executions of injected duplicate deliveries that failed (their own error or an
    /// injected one). They count in `errors` too, but bring no retry and no record: their
    /// event already ended. So every error is a retry, an event's last failed attempt, or one
    /// of these: `errors == retries + outcome(RetriesExhausted) + duplicate_errors` as long
    /// as no retry would start past the maximum event age (`EventAgeExceeded`), no function
    /// is deleted while a retry waits (`FunctionDeleted`), and no synchronous
    /// [`invoke`](crate::Runtime::invoke) fails (none of which is retried).
    pub duplicate_errors: u64,
}

impl FunctionMetrics {
    /// Events that ended with condition `c`.
    pub fn outcome(&self, c: Condition) -> u64 {
        self.outcomes[c.index()]
    }

    /// Events ended, per condition: every condition of [`Condition::ALL`], in that order,
    /// zeros included.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// rt.invoke_async("f", 1).unwrap();
    /// rt.invoke_async("f", 2).unwrap();
    /// rt.purge("f").unwrap();
    /// let m = rt.function_metrics("f").unwrap();
    /// let ended: Vec<_> = m.outcomes().filter(|(_, n)| *n > 0).collect();
    /// assert_eq!(ended, [(Condition::Purged, 2)]);
    /// assert_eq!(m.outcomes().count(), Condition::ALL.len());
    /// ```
    pub fn outcomes(&self) -> impl Iterator<Item = (Condition, u64)> + '_ {
        Condition::ALL.iter().map(|&c| (c, self.outcome(c)))
    }

    /// Events that ended without success (`AsyncEventsDropped`).
    pub fn dropped(&self) -> u64 {
        self.finished() - self.outcome(Condition::Success)
    }

    /// Events that ended, whatever the condition.
    pub fn finished(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    /// Events waiting in the queue, ready or delayed.
    pub fn queue_depth(&self) -> u64 {
        self.queue_ready + self.queue_delayed
    }

    /// Checks the accounting identity: every event received (and every duplicate delivery
    /// injected) has ended, waits in the queue, or is in a worker's hands. Exact when no worker
    /// is running.
    pub fn is_balanced(&self) -> bool {
        self.events_received + self.duplicates
            == self.finished()
                + self.duplicates_finished
                + self.queue_depth()
                + self.in_flight_events
    }

    pub(crate) fn add(&mut self, o: &FunctionMetrics) {
        self.events_received += o.events_received;
        self.invocations += o.invocations;
        self.errors += o.errors;
        self.throttles += o.throttles;
        self.retries += o.retries;
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        self.queue_ready += o.queue_ready;
        self.queue_delayed += o.queue_delayed;
        self.in_flight_events += o.in_flight_events;
        self.event_age_max = self.event_age_max.max(o.event_age_max);
        self.event_age_total += o.event_age_total;
        self.duration_total += o.duration_total;
        self.duration_max = self.duration_max.max(o.duration_max);
        self.destination_delivery_failures += o.destination_delivery_failures;
        self.duplicates += o.duplicates;
        self.duplicates_finished += o.duplicates_finished;
        self.injected_errors += o.injected_errors;
        self.duplicate_errors += o.duplicate_errors;
    }
}

/// A duration in the unit that shows it best (seconds, milliseconds or microseconds; zero in
/// seconds, as a model report shows it), with three decimals, from integer nanoseconds: no
/// float formatting, so the text is the same on every machine.
fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let (whole, unit) = if ns >= 1_000_000_000 || ns == 0 {
        (ns / 1_000_000, "s")
    } else if ns >= 1_000_000 {
        (ns / 1_000, "ms")
    } else {
        (ns, "µs")
    };
    format!("{}.{:03} {unit}", whole / 1000, whole % 1000)
}

/// `total / n`, zero when `n` is zero.
fn mean(total: Duration, n: u64) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => Duration::from_nanos(
            u64::try_from(total.as_nanos() / u128::from(n)).unwrap_or(u64::MAX),
        ),
    }
}

impl FunctionMetrics {
    /// The summary lines under a name line: what [`FunctionMetrics`] and [`RuntimeMetrics`]
    /// display.
    fn write_summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "received           {}", self.events_received)?;
        writeln!(f, "invocations        {}", self.invocations)?;
        writeln!(f, "errors             {}", self.errors)?;
        writeln!(f, "throttles          {}", self.throttles)?;
        writeln!(f, "retries            {}", self.retries)?;
        writeln!(f, "successes          {}", self.outcome(Condition::Success))?;
        write!(f, "dropped            {}", self.dropped())?;
        for (c, n) in self.outcomes() {
            if c != Condition::Success && n > 0 {
                write!(f, " {c:?}={n}")?;
            }
        }
        writeln!(f)?;
        write!(
            f,
            "queued             {} ready, {} delayed",
            self.queue_ready, self.queue_delayed
        )?;
        if self.paused {
            write!(f, " (paused)")?;
        }
        writeln!(f)?;
        writeln!(f, "in flight          {}", self.in_flight_events)?;
        writeln!(
            f,
            "concurrency        {} now, peak {}",
            self.concurrent_executions, self.peak_concurrent_executions
        )?;
        writeln!(
            f,
            "event age          mean {}  max {}",
            duration(mean(self.event_age_total, self.invocations)),
            duration(self.event_age_max)
        )?;
        writeln!(
            f,
            "duration           mean {}  max {}  total {}",
            duration(mean(self.duration_total, self.invocations)),
            duration(self.duration_max),
            duration(self.duration_total)
        )?;
        writeln!(
            f,
            "delivery failures  {}",
            self.destination_delivery_failures
        )?;
        if self.duplicates > 0 {
            writeln!(
                f,
                "duplicates         {} injected, {} finished",
                self.duplicates, self.duplicates_finished
            )?;
        }
        if self.injected_errors > 0 {
            writeln!(f, "injected errors    {}", self.injected_errors)?;
        }
        Ok(())
    }
}

/// A plain-text summary, one metric a line; lines for injected faults only when there were
/// some. Event age and duration means are per invocation; durations show three decimals in
/// the unit that suits them.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, FunctionError, ManualClock, Runtime};
///
/// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// let f = rt
///     .register(
///         Function::new("f", |n: &u8, _ctx| match n {
///             0 => Err(FunctionError::new("Zero", "no zeros")),
///             _ => Ok(()),
///         })
///         .maximum_retry_attempts(1),
///     )
///     .unwrap();
/// f.invoke_async(0).unwrap();
/// f.invoke_async(1).unwrap();
/// rt.run_until_idle();
/// print!("{}", f.metrics().unwrap());
/// assert_eq!(
///     f.metrics().unwrap().to_string(),
///     "\
/// function           f
/// received           2
/// invocations        3
/// errors             2
/// throttles          0
/// retries            1
/// successes          1
/// dropped            1 RetriesExhausted=1
/// queued             0 ready, 0 delayed
/// in flight          0
/// concurrency        0 now, peak 1
/// event age          mean 20.000 s  max 60.000 s
/// duration           mean 0.000 s  max 0.000 s  total 0.000 s
/// delivery failures  0
/// "
/// );
/// ```
impl fmt::Display for FunctionMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "function           {}", self.name)?;
        self.write_summary(f)
    }
}

/// A snapshot of every function's metrics and their totals. Fields may be added in minor
/// releases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// One entry per registered function, in registration order.
    pub functions: Vec<FunctionMetrics>,
    /// Sums over every function ever registered (deleted ones included). Its concurrency
    /// fields are the account's: executions running now and the account-wide peak.
    pub total: FunctionMetrics,
}

impl RuntimeMetrics {
    /// The metrics of function `name`, if registered.
    pub fn function(&self, name: &str) -> Option<&FunctionMetrics> {
        self.functions.iter().find(|m| m.name == name)
    }
}

/// A plain-text summary: the totals, one metric a line as [`FunctionMetrics`] shows them
/// (concurrency is the account's), then a table with one row per registered function.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, FunctionError, ManualClock, Runtime};
///
/// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(Function::new("resize", |_: &u8, _ctx| Ok(()))).unwrap();
/// rt.register(
///     Function::new("charge", |_: &u8, _ctx| Err(FunctionError::new("Declined", "no")))
///         .maximum_retry_attempts(0),
/// )
/// .unwrap();
/// rt.invoke_async("resize", 1).unwrap();
/// rt.invoke_async("resize", 2).unwrap();
/// rt.invoke_async("charge", 3).unwrap();
/// rt.run_until_idle();
/// let table = rt.metrics().to_string();
/// print!("{table}");
/// assert!(table.starts_with("functions          2\nreceived           3\n"));
/// assert!(table.ends_with(
///     "\
/// function  received  invocations  errors  throttles  retries  successes  dropped  queued
/// resize           2            2       0          0        0          2        0       0
/// charge           1            1       1          0        0          0        1       0
/// "
/// ));
/// ```
impl fmt::Display for RuntimeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "functions          {}", self.functions.len())?;
        self.total.write_summary(f)?;
        let width = self
            .functions
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0)
            .max("function".len());
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>11}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}  {:>6}",
            "function",
            "received",
            "invocations",
            "errors",
            "throttles",
            "retries",
            "successes",
            "dropped",
            "queued"
        )?;
        for m in &self.functions {
            writeln!(
                f,
                "{:<width$}  {:>8}  {:>11}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}  {:>6}",
                m.name,
                m.events_received,
                m.invocations,
                m.errors,
                m.throttles,
                m.retries,
                m.outcome(Condition::Success),
                m.dropped(),
                m.queue_depth()
            )?;
        }
        Ok(())
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    pub(crate) fn snapshot_function(&self, f: &FunctionShared<P, R>) -> FunctionMetrics {
        let mut m = FunctionMetrics {
            name: f.name.to_string(),
            ..FunctionMetrics::default()
        };
        {
            let st = f.state.lock();
            m.events_received = st.received;
            m.queue_ready = st.queue.ready_len() as u64;
            m.queue_delayed = st.queue.delayed_len() as u64;
            m.paused = st.paused;
        }
        f.counters.fill(&mut m);
        m.concurrent_executions = f.limiter.in_flight() as u64;
        m.peak_concurrent_executions = f.limiter.peak() as u64;
        m
    }

    /// A snapshot of function `name`'s metrics (the same as
    /// [`FunctionHandle::metrics`](crate::FunctionHandle::metrics) on a handle to it).
    pub fn function_metrics(&self, name: &str) -> Result<FunctionMetrics, Error> {
        let f = self.require(name)?;
        Ok(self.snapshot_function(&f))
    }

    /// A snapshot of every function's metrics and the runtime's totals. Costs one short lock
    /// per function.
    pub fn metrics(&self) -> RuntimeMetrics {
        let all: Vec<_> = {
            let reg = self.inner.registry.read();
            reg.all()
                .iter()
                .map(|f| (Arc::clone(f), reg.is_live(f)))
                .collect()
        };
        let mut total = FunctionMetrics {
            name: "*".to_string(),
            ..FunctionMetrics::default()
        };
        let mut functions = Vec::new();
        for (f, live) in all {
            let m = self.snapshot_function(&f);
            total.add(&m);
            if live {
                functions.push(m);
            }
        }
        total.concurrent_executions = self.inner.account.in_flight() as u64;
        total.peak_concurrent_executions = self.inner.account.peak() as u64;
        RuntimeMetrics { functions, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_three_decimals_in_the_unit_that_suits_them() {
        let shown = [
            (Duration::ZERO, "0.000 s"),
            (Duration::from_nanos(1), "0.001 µs"),
            (Duration::from_nanos(999_999), "999.999 µs"),
            (Duration::from_micros(1_250), "1.250 ms"),
            (Duration::from_nanos(999_999_999), "999.999 ms"),
            (Duration::from_millis(60_500), "60.500 s"),
            (Duration::from_secs(6 * 3600), "21600.000 s"),
        ];
        for (d, text) in shown {
            assert_eq!(duration(d), text, "{d:?}");
        }
        assert_eq!(mean(Duration::from_secs(3), 0), Duration::ZERO);
        assert_eq!(
            mean(Duration::from_secs(3), 2),
            Duration::from_millis(1_500)
        );
    }

    #[test]
    fn a_paused_function_with_injected_faults_shows_every_line() {
        let mut m = FunctionMetrics {
            name: "thumbnail".to_string(),
            events_received: 5,
            invocations: 4,
            errors: 2,
            throttles: 3,
            retries: 1,
            queue_ready: 1,
            queue_delayed: 1,
            paused: true,
            concurrent_executions: 0,
            peak_concurrent_executions: 2,
            event_age_max: Duration::from_secs(61),
            event_age_total: Duration::from_secs(62),
            duration_total: Duration::from_micros(1_000),
            duration_max: Duration::from_micros(700),
            destination_delivery_failures: 1,
            duplicates: 2,
            duplicates_finished: 2,
            injected_errors: 1,
            ..FunctionMetrics::default()
        };
        m.outcomes[Condition::Success.index()] = 2;
        m.outcomes[Condition::EventAgeExceeded.index()] = 1;
        assert!(m.is_balanced());
        assert_eq!(
            m.to_string(),
            "\
function           thumbnail
received           5
invocations        4
errors             2
throttles          3
retries            1
successes          2
dropped            1 EventAgeExceeded=1
queued             1 ready, 1 delayed (paused)
in flight          0
concurrency        0 now, peak 2
event age          mean 15.500 s  max 61.000 s
duration           mean 250.000 µs  max 700.000 µs  total 1.000 ms
delivery failures  1
duplicates         2 injected, 2 finished
injected errors    1
"
        );
    }

    #[test]
    fn runtime_metrics_show_the_totals_then_a_row_per_function() {
        let f = |name: &str, received: u64, successes: u64| {
            let mut m = FunctionMetrics {
                name: name.to_string(),
                events_received: received,
                invocations: received,
                ..FunctionMetrics::default()
            };
            m.outcomes[Condition::Success.index()] = successes;
            m
        };
        let mut total = f("*", 12, 12);
        total.peak_concurrent_executions = 3;
        let metrics = RuntimeMetrics {
            functions: vec![f("a-long-function-name", 10, 10), f("b", 2, 2)],
            total,
        };
        assert_eq!(
            metrics.to_string(),
            "\
functions          2
received           12
invocations        12
errors             0
throttles          0
retries            0
successes          12
dropped            0
queued             0 ready, 0 delayed
in flight          0
concurrency        0 now, peak 3
event age          mean 0.000 s  max 0.000 s
duration           mean 0.000 s  max 0.000 s  total 0.000 s
delivery failures  0
function              received  invocations  errors  throttles  retries  successes  dropped  queued
a-long-function-name        10           10       0          0        0         10        0       0
b                            2            2       0          0        0          2        0       0
"
        );
    }
}
