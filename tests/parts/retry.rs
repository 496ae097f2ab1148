//! `RetryPolicy` with a `RetrySchedule` of one's own, and the throttle delay's caller-supplied
//! draw.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::time::{at, secs};
use crossbeam_channel::Receiver;
use event_invoke::{
    Condition, Destination, Function, FunctionError, InvocationRecord, ManualClock, RetryPolicy,
    RetrySchedule, Runtime, StepOutcome, Timestamp, ZeroConcurrency,
};

type Rt = Runtime<u32>;
type Record = InvocationRecord<u32, ()>;

fn runtime() -> (ManualClock, Rt) {
    crate::common::manual_runtime()
}

/// Registers `name` with `policy`: its handler logs each attempt's start and fails with
/// `error_of(attempt)`. Returns the start times and the failure records.
fn register_failing(
    rt: &Rt,
    name: &str,
    policy: RetryPolicy,
    error_of: fn(u32) -> FunctionError,
) -> (Receiver<Timestamp>, Receiver<Record>) {
    let (start_tx, starts) = crossbeam_channel::unbounded();
    let (fail_tx, failures) = crossbeam_channel::unbounded();
    rt.register(
        Function::new(name, move |_: &u32, ctx| {
            start_tx.send(ctx.started_at()).unwrap();
            Err(error_of(ctx.approximate_invoke_count()))
        })
        .retry_policy(policy)
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    (starts, failures)
}

fn boom(attempt: u32) -> FunctionError {
    FunctionError::new("Boom", format!("attempt {attempt}"))
}

fn with_schedule(retries: u32, schedule: Arc<dyn RetrySchedule>) -> RetryPolicy {
    RetryPolicy::builder()
        .maximum_retry_attempts(retries)
        .retry_schedule(schedule)
        .build()
        .unwrap()
}

/// 5 s, 10 s, 20 s, ...: doubling from 5 seconds.
#[derive(Debug)]
struct Doubling;

impl RetrySchedule for Doubling {
    fn delay(&self, retry: u32) -> Option<Duration> {
        Some(secs(5) * 2u32.pow(retry - 1))
    }
}

/// The same wait for every retry, up to `until` retries, then gives up.
#[derive(Debug)]
struct Fixed {
    wait: Duration,
    until: u32,
}

impl RetrySchedule for Fixed {
    fn delay(&self, retry: u32) -> Option<Duration> {
        (retry <= self.until).then_some(self.wait)
    }
}

/// 1 s between retries, but none after a `ValidationError`.
#[derive(Debug)]
struct NotOnValidation;

impl RetrySchedule for NotOnValidation {
    fn delay(&self, _retry: u32) -> Option<Duration> {
        Some(secs(1))
    }

    fn delay_after(&self, retry: u32, error: &FunctionError) -> Option<Duration> {
        if error.error_type() == "ValidationError" {
            return None;
        }
        self.delay(retry)
    }
}

#[test]
fn a_custom_schedules_delays_are_what_the_engine_waits() {
    let (clock, rt) = runtime();
    let (starts, failures) = register_failing(&rt, "f", with_schedule(3, Arc::new(Doubling)), boom);
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 4);

    let started: Vec<Timestamp> = starts.try_iter().collect();
    assert_eq!(started, vec![at(0), at(5), at(15), at(35)]);
    assert_eq!(clock.now(), at(35));
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(
        record.approximate_invoke_count, 4,
        "maximum_retry_attempts caps the schedule"
    );
    assert_eq!(record.timestamp, at(35));
}

#[test]
fn a_schedule_returning_none_ends_the_event_as_retries_exhausted_after_that_attempt() {
    let (clock, rt) = runtime();
    let schedule = Arc::new(Fixed {
        wait: secs(1),
        until: 1,
    });
    let (starts, failures) = register_failing(&rt, "f", with_schedule(5, schedule), boom);
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 2);

    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0), at(1)]);
    assert_eq!(clock.now(), at(1), "no wait after the schedule gave up");
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 2);
    assert_eq!(record.error().unwrap().message(), "attempt 2");
    assert!(failures.try_recv().is_err(), "one record per event");
    assert_eq!(rt.function_metrics("f").unwrap().retries, 1);
}

#[test]
fn a_schedule_sees_each_attempts_error_and_can_give_up_on_one_error_type() {
    let (_clock, rt) = runtime();
    let transient_then_invalid = |attempt| match attempt {
        1 => FunctionError::new("Timeout", "upstream"),
        _ => FunctionError::new("ValidationError", "no order id"),
    };
    let (starts, failures) = register_failing(
        &rt,
        "f",
        with_schedule(5, Arc::new(NotOnValidation)),
        transient_then_invalid,
    );
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 2);

    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0), at(1)]);
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.error().unwrap().error_type(), "ValidationError");

    // The policy answers the same questions outside a runtime.
    let policy = with_schedule(5, Arc::new(NotOnValidation));
    let invalid = FunctionError::new("ValidationError", "no order id");
    assert_eq!(policy.retry_delay_after(1, &invalid), None);
    assert_eq!(policy.retry_delay_after(1, &boom(1)), Some(secs(1)));
    assert_eq!(
        policy.retry_delay(1),
        Some(secs(1)),
        "delay alone ignores the error"
    );
}

#[test]
fn maximum_event_age_still_ends_an_event_whatever_a_long_custom_delay() {
    let (clock, rt) = runtime();
    let policy = RetryPolicy::builder()
        .retry_schedule(Arc::new(Fixed {
            wait: secs(2 * 3600),
            until: u32::MAX,
        }))
        .maximum_event_age(secs(3600))
        .build()
        .unwrap();
    let (starts, failures) = register_failing(&rt, "f", policy, boom);
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 1);

    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0)]);
    assert_eq!(clock.now(), at(0), "the 2 h retry was never scheduled");
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.error().unwrap().message(), "attempt 1");
    assert_eq!(rt.function_metrics("f").unwrap().retries, 0);
}

#[test]
fn a_custom_delay_of_zero_or_over_a_day_is_clamped_into_what_retry_delays_accepts() {
    let zero = with_schedule(
        2,
        Arc::new(Fixed {
            wait: Duration::ZERO,
            until: 2,
        }),
    );
    assert_eq!(zero.retry_delay(1), Some(Duration::from_nanos(1)));
    let two_days = with_schedule(
        2,
        Arc::new(Fixed {
            wait: secs(48 * 3600),
            until: 2,
        }),
    );
    assert_eq!(two_days.retry_delay(1), Some(secs(24 * 3600)));
    assert_eq!(
        two_days.retry_delay_after(2, &boom(2)),
        Some(secs(24 * 3600))
    );

    // In a runtime the zero wait still retries, 1 ns apart: clamped, not given up.
    let (clock, rt) = runtime();
    let (starts, failures) = register_failing(&rt, "f", zero, boom);
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    let nanos = |n| Timestamp::from_nanos(n);
    assert_eq!(
        starts.try_iter().collect::<Vec<_>>(),
        vec![nanos(0), nanos(1), nanos(2)]
    );
    assert_eq!(clock.now(), nanos(2));
    assert_eq!(
        failures.try_recv().unwrap().condition,
        Condition::RetriesExhausted
    );
}

/// Panics when asked.
#[derive(Debug)]
struct Panicking;

impl RetrySchedule for Panicking {
    fn delay(&self, _retry: u32) -> Option<Duration> {
        panic!("a schedule with a bug")
    }
}

#[test]
fn a_panicking_schedule_gives_up_like_none_and_the_runtime_carries_on() {
    let (_clock, rt) = runtime();
    let (starts, failures) =
        register_failing(&rt, "f", with_schedule(2, Arc::new(Panicking)), boom);
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();

    assert_eq!(rt.run_until_idle(), 2, "each event ran once");

    assert_eq!(starts.try_iter().count(), 2);
    let conditions: Vec<Condition> = failures.try_iter().map(|r| r.condition).collect();
    assert_eq!(conditions, vec![Condition::RetriesExhausted; 2]);
    assert_eq!(rt.outstanding(), 0);
}

/// Counts how often it is asked.
#[derive(Debug, Default)]
struct Counting(AtomicU32);

impl RetrySchedule for Counting {
    fn delay(&self, _retry: u32) -> Option<Duration> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Some(secs(1))
    }
}

#[test]
fn a_schedule_is_asked_once_per_function_error_and_never_for_throttles_or_past_the_cap() {
    let schedule = Arc::new(Counting::default());
    let policy = with_schedule(2, schedule.clone());
    assert_eq!(policy.retry_delay(0), None);
    assert_eq!(policy.retry_delay(3), None);
    assert_eq!(
        schedule.0.load(Ordering::SeqCst),
        0,
        "the cap is checked first"
    );

    let (_clock, rt) = runtime();
    let (starts, _failures) = register_failing(&rt, "f", policy, boom);
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(starts.try_iter().count(), 3);
    assert_eq!(
        schedule.0.load(Ordering::SeqCst),
        2,
        "asked after attempts 1 and 2 only"
    );

    // A function that is only ever throttled never reaches its schedule.
    let schedule = Arc::new(Counting::default());
    let clock = ManualClock::new();
    let rt: Rt = Runtime::builder()
        .clock(clock.clone())
        .zero_concurrency(ZeroConcurrency::Throttle)
        .build()
        .unwrap();
    rt.register(
        Function::new("stopped", |_: &u32, _ctx| Err(boom(1)))
            .reserved_concurrency(0)
            .retry_policy(with_schedule(2, schedule.clone())),
    )
    .unwrap();
    rt.invoke_async("stopped", 1).unwrap();
    for _ in 0..5 {
        match rt.try_dispatch().map(|d| d.outcome) {
            Some(StepOutcome::Throttled { due }) => clock.set(due),
            other => panic!("expected a throttle, got {other:?}"),
        }
    }
    assert_eq!(schedule.0.load(Ordering::SeqCst), 0);
}

#[test]
fn policies_are_equal_with_the_same_schedule_arc_and_unequal_with_another() {
    let shared: Arc<dyn RetrySchedule> = Arc::new(Doubling);
    let a = with_schedule(2, Arc::clone(&shared));
    let b = with_schedule(2, Arc::clone(&shared));
    assert_eq!(a, b);
    assert_eq!(a, a.clone());
    assert_eq!(
        a,
        a.to_builder().build().unwrap(),
        "to_builder keeps the schedule"
    );

    let other = with_schedule(2, Arc::new(Doubling));
    assert_ne!(a, other, "an equal-looking schedule is another schedule");
    assert_ne!(a, RetryPolicy::lambda_default());
    assert_ne!(
        a,
        with_schedule(1, shared),
        "the other settings still count"
    );
    assert!(a
        .retry_schedule()
        .is_some_and(|s| Arc::ptr_eq(s, a.retry_schedule().unwrap())));
    assert!(RetryPolicy::lambda_default().retry_schedule().is_none());
}

#[test]
fn of_retry_delays_and_retry_schedule_the_last_call_wins() {
    let list_last = RetryPolicy::builder()
        .retry_schedule(Arc::new(Doubling))
        .retry_delays(vec![secs(7)])
        .build()
        .unwrap();
    assert!(list_last.retry_schedule().is_none());
    assert_eq!(list_last.retry_delay(2), Some(secs(7)));

    let schedule_last = RetryPolicy::builder()
        .retry_delays(vec![secs(7)])
        .retry_schedule(Arc::new(Doubling))
        .build()
        .unwrap();
    assert_eq!(schedule_last.retry_delay(2), Some(secs(10)));
}

#[test]
fn the_default_schedule_is_lambdas_60_and_120_seconds_capped_by_maximum_retry_attempts() {
    let lambda = RetryPolicy::lambda_default();
    let error = boom(1);
    let got: Vec<Option<Duration>> = (0..=3)
        .map(|n| lambda.retry_delay_after(n, &error))
        .collect();
    assert_eq!(got, vec![None, Some(secs(60)), Some(secs(120)), None]);
    let one = lambda
        .to_builder()
        .maximum_retry_attempts(1)
        .build()
        .unwrap();
    assert_eq!(one.retry_delay_after(2, &error), None);
}

#[test]
fn the_throttle_delay_with_draw_0_is_nominal_and_with_jitter_0_2_and_draw_0_999_about_0_8x() {
    let lambda = RetryPolicy::lambda_default();
    assert_eq!(lambda.throttle_jitter(), 0.2);
    for throttles in 1..=12 {
        let nominal = lambda.throttle_delay_nominal(throttles);
        assert_eq!(lambda.throttle_delay(throttles, 0.0), nominal);
        let shortest = lambda.throttle_delay(throttles, 0.999);
        let ratio = shortest.as_secs_f64() / nominal.as_secs_f64();
        assert!((0.8..0.801).contains(&ratio), "{throttles}: {ratio}");
    }
    // A draw halfway shortens by half the jitter.
    assert_eq!(lambda.throttle_delay(3, 0.5), Duration::from_millis(3600));
}

#[test]
fn a_throttle_draw_outside_0_to_1_is_clamped_and_nan_counts_as_0() {
    let lambda = RetryPolicy::lambda_default();
    let nominal = lambda.throttle_delay_nominal(4);
    assert_eq!(lambda.throttle_delay(4, -3.0), nominal);
    assert_eq!(lambda.throttle_delay(4, f64::NAN), nominal);
    assert_eq!(lambda.throttle_delay(4, 7.0), nominal.mul_f64(0.8));
    let exact = RetryPolicy::builder().throttle_jitter(0.0).build().unwrap();
    assert_eq!(
        exact.throttle_delay(4, 0.999),
        exact.throttle_delay_nominal(4)
    );
}

#[test]
fn a_retry_policy_and_the_errors_stay_unwind_safe_with_a_schedule_of_ones_own() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<RetryPolicy>();
    unwind_safe::<event_invoke::RetryPolicyBuilder>();
    unwind_safe::<event_invoke::Error>();
}
