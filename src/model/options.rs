//! [`ModelOptions`]: the settings of model mode.

use std::time::Duration;

use super::Model;
use crate::engine::RuntimeBuilder;
use crate::parts::error::Error;

/// Settings of model mode, given to [`RuntimeBuilder::model`](crate::RuntimeBuilder::model).
///
/// In model mode the runtime runs on a [`ManualClock`](crate::ManualClock) and every execution
/// takes virtual time: its function's [`CostModel`](crate::CostModel) says how long, and every `invoke_async`
/// costs its caller the invoke latency. `run_until_idle` then plays the whole workload out on
/// the calling thread, and [`Runtime::model_report`](crate::Runtime::model_report) says how
/// long it took.
///
/// Every random draw of a run (cost model durations and failures, throttle jitter) comes from
/// ChaCha8 generators (crate `rand_chacha`), one per function and use, seeded from
/// [`RuntimeBuilder::seed`](crate::RuntimeBuilder::seed) mixed with the function's
/// registration index. ChaCha8's output is fixed by its definition, and the seed expansion and
/// the conversion to durations are this crate's own, so the same seed gives the same report,
/// byte for byte, on every release of this crate's dependencies (golden tests pin one).
///
/// # Examples
///
/// ```
/// use event_invoke::ModelOptions;
/// use std::time::Duration;
///
/// let options = ModelOptions::new().invoke_latency(Duration::from_millis(10));
/// assert_eq!(options.latency(), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    pub(crate) invoke_latency: Duration,
    pub(crate) timeline_resolution: Duration,
    pub(crate) timeline_points: usize,
    pub(crate) throttled_events: ThrottledEvents,
}

/// What model mode does when an attempt finds no execution slot (a throttle), for
/// [`ModelOptions::throttled_events`].
///
/// What AWS documents (Lambda Developer Guide, "How Lambda handles errors and retries with
/// asynchronous invocation", docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
/// a throttled (429) event goes back to the function's queue and is tried again for up to the
/// maximum event age, "the retry interval increases exponentially from 1 second after the
/// first attempt to a maximum of 5 minutes", and "if the queue contains many entries, Lambda
/// increases the retry interval and reduces the rate at which it reads events from the
/// queue". The AWS Compute Blog ("Handling billions of invocations – best practices from AWS
/// Lambda", Aleksandrov and Pandey) describes the async path as a frontend that queues the
/// event and pollers that read the queues and invoke the function synchronously; concurrency
/// is checked when a poller invokes, not when the event is accepted.
///
/// So it is documented that a throttle is met by a poller, that the throttled event backs off
/// exponentially from 1 s, and that reading slows down as the queue grows. It is *not*
/// documented whether the events still in the queue are each throttled in turn (and so all
/// back off together, as a herd), nor how soon a poller that backed off notices a freed slot.
/// [`PollerBacksOff`](Self::PollerBacksOff), the default, is this crate's reading of the
/// documented behaviour. What stays a guess:
///
/// - the moment a backed-off poller resumes: at once when a slot frees, the optimistic one;
/// - how many pollers read one function's events: the model gives each function one.
///   Lambda runs a fleet of pollers over internal queues that functions share
///   (shuffle-sharded), so several pollers may meet a function's full pool at once, each
///   throttling the event it read; how many, and how that changes as the queue grows, is
///   not documented;
/// - by how much reading slows as the queue grows (the model does not slow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ThrottledEvents {
    /// The function's poller meets the full pool: the one event it read is throttled and
    /// backs off (the retry policy's throttle backoff, 1 s doubling to 5 min), and the poller
    /// reads no more of the function's events until an execution slot frees for it (then it
    /// hands the next ready event over at once, no throttle) or the throttled event comes
    /// back (then it polls again, and may meet the full pool again: one more throttle).
    /// Events queued behind are not throttled: they wait, ready, and their wait shows in the
    /// event age. Reserved capacity is not left idle while events are ready.
    #[default]
    PollerBacksOff,
    /// Every event that finds no slot is throttled and waits out its own backoff, however
    /// many are queued (model mode's behaviour before this option, and what the real-thread
    /// engine does). With many events queued behind a small pool, slots can sit idle while the
    /// throttled events wait out their backoffs.
    EachEventBacksOff,
}

impl ModelOptions {
    /// No invoke latency; a timeline of at most 2,000 points, 1 ms apart at first.
    pub fn new() -> Self {
        ModelOptions {
            invoke_latency: Duration::ZERO,
            timeline_resolution: Duration::from_millis(1),
            timeline_points: 2_000,
            throttled_events: ThrottledEvents::default(),
        }
    }

    /// What one `invoke_async` costs its caller (the client outside, or a handler), unless the
    /// calling function's [`CostModel::invoke_latency`](crate::CostModel::invoke_latency) says otherwise. The invoked event is
    /// accepted when the call returns.
    pub fn invoke_latency(mut self, latency: Duration) -> Self {
        self.invoke_latency = latency;
        self
    }

    /// The timeline's first resolution. When a run outgrows `points` buckets, neighbours are
    /// merged (the resolution doubles), so a long run keeps a bounded timeline.
    pub fn timeline(mut self, resolution: Duration, points: usize) -> Self {
        self.timeline_resolution = resolution;
        self.timeline_points = points;
        self
    }

    /// What happens to events that find no execution slot (see [`ThrottledEvents`]); by
    /// default [`ThrottledEvents::PollerBacksOff`].
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{ModelOptions, ThrottledEvents};
    ///
    /// let old = ModelOptions::new().throttled_events(ThrottledEvents::EachEventBacksOff);
    /// assert_ne!(old, ModelOptions::new());
    /// ```
    pub fn throttled_events(mut self, mode: ThrottledEvents) -> Self {
        self.throttled_events = mode;
        self
    }

    /// The default invoke latency.
    pub fn latency(&self) -> Duration {
        self.invoke_latency
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.invoke_latency > Duration::from_secs(3600) {
            return Err(Error::InvalidConfig {
                field: "model.invoke_latency",
                value: format!("{:?}", self.invoke_latency),
                accepted: "0 to 1 h (Lambda's Invoke API: tens of milliseconds)",
            });
        }
        if self.timeline_resolution.is_zero() {
            return Err(Error::InvalidConfig {
                field: "model.timeline resolution",
                value: "0ns".into(),
                accepted: "a resolution greater than zero, e.g. 1 ms",
            });
        }
        if !(2..=1_000_000).contains(&self.timeline_points) {
            return Err(Error::InvalidConfig {
                field: "model.timeline points",
                value: self.timeline_points.to_string(),
                accepted: "2 to 1,000,000 points",
            });
        }
        Ok(())
    }
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Send + 'static, R: Send + 'static> RuntimeBuilder<P, R> {
    /// Model mode: every execution takes the virtual time its function's
    /// [`CostModel`](crate::CostModel) gives it, every `invoke_async` costs its caller the
    /// invoke latency, and [`Runtime::model_report`](crate::Runtime::model_report) says what the run did. It needs a virtual
    /// clock: without [`clock`](Self::clock), a new [`ManualClock`](crate::ManualClock) is used; a real clock is
    /// refused.
    ///
    /// Drive it with [`Runtime::run_until_idle`](crate::Runtime::run_until_idle) (or `run_until`, `run_for`) on one thread:
    /// the run is then deterministic, one seed, one report. Model mode plays out asynchronous
    /// invocations only: [`Runtime::invoke`](crate::Runtime::invoke) is refused with
    /// [`InvokeSyncError::ModelMode`](crate::InvokeSyncError::ModelMode), and [`Runtime::spawn_workers`](crate::Runtime::spawn_workers) with
    /// [`Error::ModelMode`](crate::Error::ModelMode).
    ///
    /// # Examples
    ///
    /// The seed's arithmetic: 10 ms per invoke, one function fanning out 1 -> 100 -> 100.
    ///
    /// ```
    /// use event_invoke::{Function, ModelOptions, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<u32> = Runtime::builder()
    ///     .model(ModelOptions::new().invoke_latency(Duration::from_millis(10)))
    ///     .build()
    ///     .unwrap();
    /// rt.register(Function::new("function_3", |_: &u32, _ctx| Ok(()))).unwrap();
    /// for (name, child) in [("function_1", "function_2"), ("function_2", "function_3")] {
    ///     rt.register(Function::new(name, move |_: &u32, ctx| {
    ///         for i in 0..100 {
    ///             ctx.invoke_async(child, i)?;
    ///         }
    ///         Ok(())
    ///     }))
    ///     .unwrap();
    /// }
    /// rt.invoke_async("function_1", 0).unwrap();
    /// rt.run_until_idle();
    /// let report = rt.model_report().unwrap();
    /// assert_eq!(report.makespan, Duration::from_millis(2010));
    /// assert_eq!(report.executions, 1 + 100 + 10_000);
    /// ```
    pub fn model(self, options: ModelOptions) -> Self {
        self.virtual_time(Box::new(Model::new(options)))
    }
}
