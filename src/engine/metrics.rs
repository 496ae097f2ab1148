//! [`FunctionMetrics`] and [`RuntimeMetrics`]: counters under Lambda's metric names.

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

    /// Adds the batch to the shared counters; returns the successes it ended.
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
        *self = Tally::default();
        successes
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
/// | `event_age_max`, `event_age_total` | `AsyncEventAge` (at each attempt's start) |
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
            reg.all
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
