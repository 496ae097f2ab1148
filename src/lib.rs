//! AWS Lambda's asynchronous invocations (`InvocationType=Event`), inside one process.
//!
//! `event-invoke` reproduces how Lambda runs async events: a queue per function, an account
//! concurrency limit with per-function reservations, retries after function errors, backoff
//! after throttles, a maximum event age, and exactly one outcome record per event sent to
//! on-success / on-failure destinations. Use it as a local job engine whose behaviour you
//! already know, to unit-test idempotent handlers against retries and duplicates, or to
//! measure what the same workload costs in-process.
//!
//! # The model, step by step
//!
//! ## 1. Functions and the runtime
//!
//! A [`Runtime`] owns [`Function`]s. A function is a name, a handler (a closure or a
//! [`Handler`]) and its settings. The runtime is generic over your payload type `P` (your own
//! struct, bytes, a JSON value) and the response type `R` (default `()`).
//!
//! ```
//! use event_invoke::{Function, ManualClock, Runtime};
//!
//! let rt: Runtime<String> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
//! rt.register(Function::new("thumbnail", |key: &String, _ctx| {
//!     println!("resizing {key}");
//!     Ok(())
//! }))
//! .unwrap();
//! ```
//!
//! A closure written first, in a `let`, and registered later needs its context typed
//! (`ctx: &Context<'_, String, ()>`) or the [`handler`] wrapper, which gives it the handler's
//! signature: `let resize = handler(|key: &String, _ctx| Ok(()));`.
//!
//! ## 2. Invoking: the 202
//!
//! [`Runtime::invoke_async`] puts the event on the function's [`InvocationQueue`] and returns
//! its [`RequestId`] at once, like Lambda's HTTP 202. Nothing runs yet: no concurrency check
//! happens at enqueue, and an unknown function or a full queue is refused with the payload
//! handed back ([`InvokeError::into_inner`]). Invoking through a [`FunctionHandle`] skips the
//! name lookup.
//!
//! ## 3. Driving: your threads
//!
//! The runtime starts no threads. Events run when you drive it:
//!
//! * [`Runtime::run_worker`] on as many threads as you like (or [`Runtime::spawn_workers`]):
//!   each takes the next ready event, blocks without spinning when nothing is due, and returns
//!   when its [`StopSignal`] is given;
//! * [`Runtime::run_until_idle`] on the current thread: runs everything, and under a
//!   [`ManualClock`] jumps virtual time from one due retry to the next, so six hours of retries
//!   take milliseconds;
//! * [`Runtime::try_dispatch`]: one event, one step.
//!
//! ```
//! # use event_invoke::{Function, ManualClock, Runtime};
//! # let rt: Runtime<String> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
//! # rt.register(Function::new("thumbnail", |_: &String, _ctx| Ok(()))).unwrap();
//! let id = rt.invoke_async("thumbnail", "cat.png".to_string()).unwrap();
//! assert_eq!(rt.run_until_idle(), 1);
//! ```
//!
//! ## 4. Concurrency and throttles
//!
//! Each execution needs a slot. The account has [`RuntimeBuilder::account_concurrency`] slots
//! (Lambda: 1,000). A function with reserved concurrency has that many of its own, carved out of
//! the account; the others share what is left, and at least
//! [`RuntimeBuilder::unreserved_floor`] (Lambda: 100) always stays unreserved. In Lambda an
//! event that finds no free slot is *throttled*: it goes back to the queue with exponential
//! backoff (1 s doubling to 5 minutes) and does not use up a retry attempt. Reserved
//! concurrency 0 sends events straight to on-failure, as Lambda does today, or holds them
//! throttled, as it did in 2018 ([`ZeroConcurrency`]). A function's slots are a
//! [`ConcurrencyLimiter`] (the account's and the unreserved pool's share one atomic word, so an
//! execution takes both at once); a [`Permit`] is released on drop, even when a handler panics.
//!
//! **Worker threads are a local resource, not a Lambda setting.** On real threads a worker
//! that finds its function's slots all taken does not throttle the event: it leaves it at the
//! front of its queue (order kept), and the function waits, out of the run queue, until a slot
//! of the level that was full is given back or a limit is raised; the worker meanwhile runs
//! other functions or parks. So starting more workers than there are slots never slows a run,
//! and the `Throttles` metric stays what Lambda counts for the slots themselves, not for
//! your thread count: an event that merely waits for a slot counts **no throttle** (its wait
//! shows in its age, [`FunctionMetrics::event_age_max`], and in the queue depth). Lambda's
//! throttle backoff stays where it is what is modelled: model mode (always), reserved
//! concurrency 0 under [`ZeroConcurrency::Throttle`], a concurrency limit of 0, a new
//! environment refused by the [`ScalingRate`], and, as an opt-in on real threads,
//! [`RuntimeBuilder::concurrency_limit_exceeded`]`(`[`ConcurrencyLimitExceeded::Throttle`]`)`;
//! each of those throttles counts one in `Throttles`.
//!
//! ## 5. Errors and retries
//!
//! A handler that returns a [`FunctionError`], panics, or runs past its timeout has failed.
//! The event is retried after 1 minute and again after 2 minutes ([`RetryPolicy`]), with the
//! same request id and a growing [`Context::approximate_invoke_count`]. Events may therefore run
//! more than once: handlers must be idempotent. A retry that would start after the maximum
//! event age (default 6 hours) is not scheduled: the event ends as `EventAgeExceeded`.
//!
//! A panic in a handler is caught: it becomes an unhandled error of type
//! [`FunctionError::PANIC`] carrying the panic's message, and the worker, the slot and the
//! event go on. Rust's panic hook still prints each one to stderr, as it does for any panic,
//! which in a test or stress run of panicking handlers is a lot of output. Call
//! [`quiet_handler_panics`] once to silence those, and only those: every other panic still
//! reaches the hook installed before it.
//!
//! A value of yours whose `Drop` panics (a payload, a response, a panic's payload) is another
//! matter: its event still ends, once, with its record or retry, and then the panic goes on to
//! whoever ran the step. On a worker thread it ends the worker ([`Workers::stop`] reports it).
//! In model mode the panic of an execution's end goes on once the model has booked that end
//! (its report and its timeline), so that they are the ones a run without the panic makes;
//! one from an event that ends at a throttle (too old to come back) goes on before the model
//! counts that throttle. Rust unwinds one panic at a time: when the end itself panics too (a
//! lost response's `Drop`, then the payload's as the event ends), the first goes on and the
//! later one is dropped, except on real threads after fault injection's duplicate filter
//! panicked, where the end's goes on. Dropping a model-mode runtime drops the executions
//! virtual time had not yet ended, like waiting events: their payloads and responses, and any
//! panic one carries, which would go on only once its event ended.
//!
//! ## 6. Outcomes
//!
//! Every accepted event ends in exactly one [`Condition`], as an [`InvocationRecord`] shaped
//! like Lambda's destination record. Success records go to the on-success [`Destination`],
//! failures to the on-failure one (a closure, a channel, or another function; the crossbeam
//! channel crate is re-exported as [`crossbeam_channel`], and a std `mpsc` channel works too).
//! Failures with nowhere to go are kept as dead letters ([`Runtime::drain_dead_letters`]).
//! Every outcome is counted in the [`FunctionMetrics`] under Lambda's metric names.
//!
//! ```
//! use event_invoke::{
//!     crossbeam_channel, Condition, Destination, Function, FunctionError, ManualClock, Runtime,
//! };
//!
//! let (failures, failed) = crossbeam_channel::unbounded();
//! let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
//! rt.register(
//!     Function::new("charge", |amount: &u32, _ctx| {
//!         if *amount > 100 {
//!             return Err(FunctionError::new("LimitExceeded", "amount over 100"));
//!         }
//!         Ok(())
//!     })
//!     .maximum_retry_attempts(0)
//!     .on_failure(Destination::channel(failures)),
//! )
//! .unwrap();
//! rt.invoke_async("charge", 500).unwrap();
//! rt.run_until_idle();
//! let record = failed.try_recv().unwrap();
//! assert_eq!(record.condition, Condition::RetriesExhausted);
//! assert_eq!(record.approximate_invoke_count, 1);
//! assert_eq!(record.error().unwrap().error_type(), "LimitExceeded");
//! ```
//!
//! ## 7. Operations Lambda does not have
//!
//! [`Runtime::pause`] holds a function's events (they still age), [`Runtime::update_code`]
//! swaps its handler, and [`Runtime::resume`] runs the held events on the new code. You can
//! view ([`Runtime::queue_snapshot`]), edit ([`Runtime::edit_queued`]) and purge
//! ([`Runtime::purge`]) a queue, delete a function with its queue ([`Runtime::delete`]), and
//! let time pass until events age out ([`Runtime::run_for`]). Each removal still makes a
//! record (`Purged`, `FunctionDeleted`, `EventAgeExceeded`): no event disappears unrecorded.
//! Each of these per-function calls is also a method of the function's [`FunctionHandle`],
//! without the name.
//!
//! ## 8. Fan-out and the recursion guard
//!
//! A handler invokes other functions through its [`Context`] (and a function destination
//! invokes its function with the record). Each hop adds one to the event's chain depth
//! ([`Context::chain_depth`]). The recursion guard stops loops, as Lambda's recursive loop
//! detection does: it counts, along each chain, how many times each function was reached, and
//! an event whose chain already reached its function 16 times ends as `RecursionLimit`
//! without running ([`RecursionGuard::Loops`], the default). A pipeline of different
//! functions is no loop and runs however long it is; each path of a fan-out counts on its
//! own. [`RuntimeBuilder::recursion_guard`] sets another limit, a plain limit on a chain's
//! length whatever its functions ([`RecursionGuard::Hops`]), or no guard.
//!
//! ## 9. Time
//!
//! Everything reads a [`Clock`]: [`SystemClock`] by default, or a [`ManualClock`] that only
//! moves when told. Tests use the manual clock and never sleep. On Linux and Android the system
//! clock stamps each accepted event from the kernel's coarse clock, cheaper to read and as of
//! the last scheduler tick, so a real-time event age can read up to about a tick (4 ms at 250
//! Hz) more than the event waited; handler durations and timeouts read the precise clock
//! ([`SystemClock`] says more).
//!
//! ## 10. Model mode: how long will it take on Lambda?
//!
//! The same engine, run in virtual time with a cost model, predicts Lambda-scale runs in
//! milliseconds of real time. [`RuntimeBuilder::model`] puts the runtime on a [`ManualClock`];
//! there, every execution takes the time its function's [`CostModel`] gives it (a fixed
//! duration, one drawn from a seeded distribution, or what the handler declares with
//! [`Context::spend`]), plus a cold start when it needs a new environment, and every
//! `invoke_async` costs its caller the invoke latency. An execution holds its concurrency slot
//! until its virtual end; its children arrive when their calls return, one latency apart.
//! [`RuntimeBuilder::scaling_rate`] adds Lambda's [`ScalingRate`] (today's +1,000 environments
//! per 10 s per function, or 2018's burst then +500 a minute for the account), on top of the
//! account and reserved limits.
//!
//! After [`Runtime::run_until_idle`], [`Runtime::model_report`] gives the makespan, executions
//! and peak concurrency per function, cold starts, throttles, retries, drops by reason and
//! event-age percentiles; [`Runtime::timeline`] gives concurrency and queue depth over virtual
//! time, as CSV or an SVG chart. The same seed gives the same report, byte for byte, whatever
//! the release of the dependencies: the draws come from ChaCha8, a generator fixed by its
//! definition (see [`ModelOptions`]).
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use event_invoke::{CostModel, Function, ModelOptions, Runtime};
//! use std::time::Duration;
//!
//! // The seed's arithmetic: 10,000 invokes at 10 ms take 100 s one after the other.
//! let rt: Runtime<u32> = Runtime::builder()
//!     .model(ModelOptions::new().invoke_latency(Duration::from_millis(10)))
//!     .build()
//!     .unwrap();
//! rt.register(Function::new("leaf", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(Duration::ZERO)))
//!     .unwrap();
//! for i in 0..10_000 {
//!     rt.invoke_async("leaf", i).unwrap();
//! }
//! rt.run_until_idle();
//! assert_eq!(rt.model_report().unwrap().makespan, Duration::from_secs(100));
//! # }
//! ```
//!
//! `examples/model.rs` prints the seed's whole table: fan-out shapes, the account limit, both
//! scaling rules, cold starts and a failure rate.
//!
//! For a capacity question, [`Arrivals`] say when a workload's events come (a constant rate, a
//! seeded Poisson process, bursts, or recorded offsets) and [`Runtime::invoke_arrivals`]
//! feeds them in; the report then separates first-attempt ages from retried ones, says when
//! every first attempt had started and when everything ended, counts throttles by cause and
//! the reserved slot-time left idle while events waited. [`ThrottledEvents`] says what a full
//! pool does to the events behind it, with its sources. `examples/capacity_plan.rs` answers
//! "50,000 events over 10 s: no reservation, reserved 100, or 1,000?".
//!
//! # Build your own loop
//!
//! The engine is made of four parts that work without it, for callers who want Lambda's
//! rules inside a loop of their own: an [`InvocationQueue`] per function holds its events
//! ([`QueuedEvent`] counts attempts and throttles and knows its age), a [`ConcurrencyLimiter`]
//! hands out execution slots as [`Permit`]s (borrowed, or owned ones that move into a thread),
//! a [`RetryPolicy`] says when to retry (Lambda's schedule, or a [`RetrySchedule`] of your
//! own) and when an event is too old, and a [`Function`] is the handler, which
//! [`Function::call`] runs with a context from a [`TestContext`]. The same context is how to
//! unit-test one handler: set the attempt, call, and read the invokes it made.
//!
//! ```
//! use event_invoke::{
//!     ConcurrencyLimiter, Context, Function, FunctionError, InvocationQueue, ManualClock,
//!     QueuedEvent, RequestId, RetryPolicy, TestContext, Timestamp,
//! };
//!
//! let clock = ManualClock::new();
//! let policy = RetryPolicy::lambda_default();
//! let slots = ConcurrencyLimiter::new(10);
//! let mut queue = InvocationQueue::new(100).unwrap();
//! let flaky = Function::new("flaky", |_: &u32, ctx: &Context<'_, u32, ()>| {
//!     match ctx.approximate_invoke_count() {
//!         1 | 2 => Err(FunctionError::new("Flaky", "not yet")),
//!         _ => Ok(()),
//!     }
//! });
//! queue.push(QueuedEvent::new(RequestId::from_u64(1), 7, clock.now())).unwrap();
//!
//! let mut attempts_at = Vec::new();
//! loop {
//!     let now = clock.now();
//!     let Some(mut event) = queue.pop_due(now) else {
//!         match queue.next_due() {
//!             Some(due) => { clock.set(due); continue; }
//!             None => break,
//!         }
//!     };
//!     let _slot = slots.try_acquire().expect("a free slot");
//!     let attempt = event.record_attempt();
//!     attempts_at.push(now.as_duration().as_secs());
//!     let ctx = TestContext::new("flaky").approximate_invoke_count(attempt);
//!     if let Err(error) = flaky.call(event.payload(), &ctx.context()) {
//!         if let Some(wait) = policy.retry_delay_after(attempt, &error) {
//!             queue.push_delayed(event, now + wait);
//!         }
//!     }
//! }
//! assert_eq!(attempts_at, [0, 60, 180]); // Lambda's schedule: 1 min, then 2 min
//! # let _ = Timestamp::ZERO;
//! ```
//!
//! `examples/own_loop.rs` is the same loop with throttles and the age limit.
//!
//! # Where the crate differs from Lambda
//!
//! * A handler cannot be interrupted: one that overruns its timeout finishes, then its result is
//!   replaced by a `Sandbox.Timedout` error (and retried like any function error).
//! * The recursion guard counts a function's repeats along a chain as Lambda does, but exactly
//!   (Lambda stops a loop after *about* 16), and it follows every invoke made through a
//!   [`Context`] and every function destination; Lambda follows a chain only through the AWS
//!   SDK calls and services that carry its trace header. The hop limit
//!   ([`RecursionGuard::Hops`]) is the crate's own.
//! * Accepted ranges are wider than AWS's where that helps tests (e.g. more retries, shorter
//!   event ages); [`RetryPolicy`] lists both.
//! * `Purged` and `FunctionDeleted` are this crate's own conditions; Lambda loses such events
//!   without a record.
//! * Records have a runtime-local [`Timestamp`], not wall-clock time.
//! * Model mode's own choices, where Lambda documents nothing: an environment stays warm for
//!   the whole run once made, also across code and settings updates (Lambda makes new ones);
//!   a scaling allowance comes back in whole steps; a cost model's duration comes after the
//!   handler's calls (use [`Context::spend`] to place work before them); an event on its way
//!   to a queue (its invoke call not yet returned) is not in the queue, so purge and the queue
//!   views do not see it, but it holds its place against the queue's capacity, and it ends as
//!   `FunctionDeleted` if its function is deleted meanwhile. Model mode runs asynchronous
//!   invocations only: [`Runtime::invoke`] and [`Runtime::spawn_workers`] refuse it.
//!
//! # Lambda's JSON (cargo feature `serde`)
//!
//! With the `serde` feature, `LambdaJson` writes an [`InvocationRecord`] as exactly the JSON of
//! Lambda's destination record (the payload embedded as JSON, the timestamp in wall-clock ISO
//! 8601 from an epoch you give) and exports a [`FunctionConfig`] as the JSON of
//! `PutFunctionEventInvokeConfig` and `PutFunctionConcurrency`, with a warning for each setting
//! Lambda has no place for. `AwsFunctionSettings` imports that JSON, checks Lambda's ranges
//! (retries 0 to 2, event age 60 s to 6 h) and applies it to a [`FunctionConfig`].
//!
//! # Your Lambda handler, tested here, deployed there (cargo feature `lambda`)
//!
//! With the `lambda` feature (which turns on `serde`), the same handler code runs here and on
//! AWS Lambda, in either direction:
//!
//! * `Function::lambda(name, service)` runs a handler written for Lambda's Rust runtime
//!   (`lambda_runtime`): what `lambda_runtime::run` takes, a `service_fn` over an async fn
//!   taking `LambdaEvent<T>`, with JSON payloads. Each attempt gets `lambda_runtime::Context`
//!   as Lambda fills it (the request id, the same on every retry; the deadline from the
//!   function's timeout; the ARN from `LambdaJson`'s region and account; `env_config`); an
//!   `Err` becomes the [`FunctionError`] its `Diagnostic` gives, a panic `Runtime.Panic`. The
//!   future runs to its end on the worker thread, on a current-thread tokio runtime of that
//!   thread's own (see `LambdaHandler`). Everything this crate tests a handler against
//!   (retries, duplicates, event age, [`IdempotencyCheck`]) then applies to it unchanged.
//! * `run_on_lambda(function)` serves this crate's [`Function`] on Lambda through
//!   `lambda_runtime::run`, the synchronous handler on tokio's blocking pool.
//!
//! A deployed handler's [`Context`] has only what Lambda tells a function: the request id and
//! the deadline ([`Context::remaining_time`]). What this crate's [`Context`] offers beyond
//! that is not known there, and reads as a first attempt at the top of its chain:
//!
//! | [`Context`] | here | on Lambda |
//! |---|---|---|
//! | [`approximate_invoke_count`](Context::approximate_invoke_count) | the attempt: 1, 2, 3 | always 1 (only destination records carry `approximateInvokeCount`) |
//! | [`chain_depth`](Context::chain_depth) | the hops from the first invoke | always 1 (Lambda's loop detection keeps its count to itself) |
//! | [`event_age`](Context::event_age) | the time since the event was accepted | zero (Lambda reports `AsyncEventAge` only as a metric) |
//! | [`is_duplicate`](Context::is_duplicate), [`is_cold_start`](Context::is_cold_start) | from fault injection, model mode | `false` |
//! | [`now`](Context::now), [`enqueued_at`](Context::enqueued_at), [`started_at`](Context::started_at) | the runtime clock's time | [`Timestamp::ZERO`]: no runtime clock there (use the wall clock or [`remaining_time`](Context::remaining_time)) |
//! | [`spend`](Context::spend) | charges model mode's virtual time | does nothing |
//! | [`invoke_async`](Context::invoke_async) | invokes through the runtime | refused at the call with `InvokeError::UnavailableOnLambda` (the payload handed back): use the AWS SDK's `Invoke` |
//!
//! So a handler meant for both places deduplicates by its request id or a business key, never
//! by the attempt number.
//!
//! # Observing it (cargo features `tracing` and `metrics`)
//!
//! Both features report what the engine already reports to [`RuntimeBuilder::on_trace`], plus
//! each handler execution; with a feature off its code is not compiled. A subscriber or a
//! recorder that panics loses the report it was making, and nothing else: the handler still
//! runs, the event still ends with its one record, and the worker goes on with its batch.
//!
//! With `tracing`, each handler execution runs inside an `INFO` span named `attempt` (target
//! `event_invoke`) with the fields `request_id`, `function`, `attempt` (the approximate invoke
//! count), `code_version`, `duplicate` and, when it failed, `error_type`: the handler's own
//! `tracing` calls nest under it. Each step of an event's life is an event of target
//! `event_invoke`, with the fields `request_id`, `function` and `at` (the runtime clock's time)
//! and these:
//!
//! | level | message | more fields |
//! |---|---|---|
//! | `DEBUG` | `event accepted` | `chain_depth` |
//! | `DEBUG` | `attempt started` | `attempt`, `code_version`, `duplicate` |
//! | `DEBUG` | `attempt succeeded` | `attempt`, `duplicate` |
//! | `INFO` | `attempt failed` | `attempt`, `duplicate`, `error_type`, `error_message` |
//! | `INFO` | `retry scheduled` | `delay` |
//! | `INFO` | `throttled` (or `injected system error`) | `backoff` |
//! | `INFO` | `duplicate delivery injected` | |
//! | `DEBUG` | `event succeeded` | `approximate_invoke_count` |
//! | `WARN` | `event dropped` (any ending but `Success`) | `condition`, `approximate_invoke_count` |
//! | `DEBUG` | `record delivered` | `destination` (`OnSuccess`, `OnFailure`), `destination_function` |
//! | `WARN` | `destination delivery failed` | `destination`, `destination_function` |
//!
//! With `metrics`, the engine reports Lambda's CloudWatch metrics through the `metrics`
//! facade to whatever recorder you install (a Prometheus exporter, for instance), each with
//! the label `function_name`. `describe_metrics` registers their units and descriptions.
//!
//! | metric | kind | counts or measures |
//! |---|---|---|
//! | `AsyncEventsReceived` | counter | events accepted by `invoke_async` |
//! | `Invocations` | counter | handler executions (retries, duplicate deliveries and synchronous [`Runtime::invoke`] included) |
//! | `Errors` | counter | executions that failed: an error returned, a panic, or a timeout (not errors injected by [`FaultInjection`]) |
//! | `Throttles` | counter | attempts of async events that found no free execution slot and were put back with backoff |
//! | `AsyncEventsDropped` | counter, label `condition` | events that ended without success, by [`Condition`] |
//! | `RecursiveInvocationsDropped` | counter | events ended as `RecursionLimit` |
//! | `DestinationDeliveryFailures` | counter | records that their destination refused |
//! | `Duration` | histogram, **milliseconds** | each execution's duration |
//! | `AsyncEventAge` | histogram, **milliseconds** | the event's age at each execution's start (0 for a synchronous invoke) |
//! | `ConcurrentExecutions` | gauge | handler executions running now |
//!
//! They agree with the [`FunctionMetrics`] snapshot, with two exceptions: a synchronous
//! invoke's throttle (returned to its caller) is not in `Throttles`, and errors injected by
//! [`FaultInjection`] are not in `Errors`.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The architecture, one folder each (see the README's "Architecture"): the core parts know
// nothing of the engine; the engine is built from them; model mode, the testing aids and the
// AWS formats sit on top of the engine; observation is what the engine reports.
#[cfg(feature = "serde")]
mod aws;
mod engine;
#[cfg(feature = "model")]
mod model;
mod observe;
mod parts;
mod testing;

/// The crossbeam-channel crate this one is built on, re-exported: make the channel for a
/// [`Destination::channel`] with `event_invoke::crossbeam_channel::unbounded()` (or `bounded`)
/// and its `Sender` is the one the destination takes, without a dependency of your own at a
/// matching version. A standard library `mpsc` channel works too.
pub use crossbeam_channel;

#[cfg(feature = "lambda")]
pub use aws::{
    lambda_request_id, run_on_lambda, LambdaHandler, LambdaHandlerError, LambdaRunError,
};
#[cfg(feature = "serde")]
pub use aws::{
    AwsExport, AwsFunctionSettings, AwsWarning, DestinationArn, LambdaJson, LambdaRecord,
};
pub use engine::{
    handler, quiet_handler_panics, ConcurrencyLimitExceeded, Context, Dispatched, Function,
    FunctionConfig, FunctionHandle, FunctionMetrics, Handler, RecursionGuard, Runtime,
    RuntimeBuilder, RuntimeMetrics, StepOutcome, StopSignal, TestContext, Workers, ZeroConcurrency,
    DEFAULT_ACCOUNT_CONCURRENCY, DEFAULT_QUEUE_CAPACITY, DEFAULT_RECURSION_LIMIT, DEFAULT_TIMEOUT,
    DEFAULT_UNRESERVED_FLOOR,
};
#[cfg(feature = "model")]
pub use model::{
    AgeSummary, Arrivals, ArrivalsError, ChartOptions, FunctionReport, ModelOptions, ModelReport,
    ThrottleCauses, ThrottledEvents, Timeline, TimelinePoint,
};
#[cfg(feature = "metrics")]
pub use observe::describe_metrics;
pub use observe::{TraceEvent, TraceKind};
pub use parts::clock::{Clock, ManualClock, SystemClock, Timestamp};
#[cfg(feature = "model")]
pub use parts::cost::CostModel;
pub use parts::error::{Error, InvokeError, InvokeSyncError, OsError};
pub use parts::limiter::{ConcurrencyLimiter, OwnedPermit, Permit};
pub use parts::queue::{EventInfo, EventState, InvocationQueue, QueuedEvent};
pub use parts::record::{
    Condition, Destination, ErrorKind, FunctionError, InvocationRecord, RecordSender, RequestId,
};
pub use parts::retry::{RetryPolicy, RetryPolicyBuilder, RetrySchedule};
pub use parts::scaling::{ScalingRate, ScalingScope};
pub use testing::{
    Delivery, FaultInjection, IdempotencyCheck, IdempotencyReport, IdempotencyViolation,
    OutcomeAudit,
};

/// Internals exposed only to the loom model check (`RUSTFLAGS="--cfg loom"`).
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::parts::limiter::{AccountLevels, AccountLimiter};
    pub use crate::parts::queue::RunToken;
    pub use crate::parts::run_queue::{RunQueue, Sleeper};
    use crate::ConcurrencyLimiter;

    /// [`ConcurrencyLimiter::wait_for_slot`]: mark the limiter waited for; whether a slot is
    /// free now.
    pub fn wait_for_slot(limiter: &ConcurrencyLimiter) -> bool {
        limiter.wait_for_slot()
    }

    /// [`ConcurrencyLimiter::take_waiting`]: clear the mark; whether it was set.
    pub fn take_waiting(limiter: &ConcurrencyLimiter) -> bool {
        limiter.take_waiting()
    }

    /// [`ConcurrencyLimiter::take_waiting_if_free`]: clear the mark if a slot is free.
    pub fn take_waiting_if_free(limiter: &ConcurrencyLimiter) -> bool {
        limiter.take_waiting_if_free()
    }
}

/// The README's examples, run as doctests so they stay true.
#[cfg(all(doctest, feature = "model"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
