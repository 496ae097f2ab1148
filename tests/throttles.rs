//! Throttles (semantics section 3): an event that finds no execution slot goes back to the
//! queue with exponential backoff (1 s doubling, capped at 5 minutes, shortened by a seeded
//! jitter), never uses up retry attempts, and ends only when its age runs out. Also the
//! `RetryPolicy` arithmetic and validation behind it.

use std::time::Duration;

use crossbeam_channel::Receiver;
use event_invoke::{
    ConcurrencyLimitExceeded, Condition, Destination, Dispatched, Error, EventState, Function,
    FunctionError, InvocationRecord, ManualClock, RetryPolicy, Runtime, StepOutcome, Timestamp,
    ZeroConcurrency,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::one_slot_function_that_steps_inside;

type Rt = Runtime<u32>;
type Record = InvocationRecord<u32, ()>;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(n: u64) -> Timestamp {
    Timestamp::ZERO + secs(n)
}

/// A runtime that holds events of zero-concurrency functions throttled (Lambda in 2018).
fn throttling_runtime(seed: u64) -> (ManualClock, Rt) {
    let clock = ManualClock::new();
    let rt = Runtime::builder()
        .clock(clock.clone())
        .zero_concurrency(ZeroConcurrency::Throttle)
        .seed(seed)
        .build()
        .unwrap();
    (clock, rt)
}

fn exact_backoff() -> RetryPolicy {
    RetryPolicy::builder().throttle_jitter(0.0).build().unwrap()
}

/// A function with reserved concurrency 0 whose handler logs each attempt's start time and
/// succeeds.
fn stopped(name: &str, policy: RetryPolicy) -> (Function<u32, ()>, Receiver<Timestamp>) {
    let (tx, starts) = crossbeam_channel::unbounded();
    let f = Function::new(name, move |_: &u32, ctx| {
        tx.send(ctx.started_at()).unwrap();
        Ok(())
    })
    .reserved_concurrency(0)
    .retry_policy(policy);
    (f, starts)
}

/// Dispatches the one waiting event `n` times, moving the clock to each backoff's due time,
/// and returns the backoff delays.
fn throttle_delays(rt: &Rt, clock: &ManualClock, n: usize) -> Vec<Duration> {
    let mut delays = Vec::with_capacity(n);
    for i in 0..n {
        let now = clock.now();
        let step = rt.try_dispatch().expect("the event is due");
        match step.outcome {
            StepOutcome::Throttled { due } => {
                assert!(due > now, "throttle {i}: due {due:?} is not after {now:?}");
                delays.push(due - now);
                clock.set(due);
            }
            other => panic!("throttle {i}: expected a throttle, got {other:?}"),
        }
    }
    delays
}

fn nominal_schedule(n: usize) -> Vec<Duration> {
    let lambda = RetryPolicy::lambda_default();
    (1..=n as u32)
        .map(|k| lambda.throttle_delay_nominal(k))
        .collect()
}

// ----- the engine ------------------------------------------------------------------------------

#[test]
fn zero_concurrency_in_throttle_mode_keeps_the_event_queued_for_1_second() {
    let (_clock, rt) = throttling_runtime(0);
    let (f, starts) = stopped("f", exact_backoff());
    rt.register(f).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::Throttled { due: at(1) },
        })
    );
    assert!(starts.try_recv().is_err(), "the handler did not run");
    let queued = rt.queue_snapshot("f").unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].request_id, id);
    assert_eq!(queued[0].state, EventState::Delayed { due: at(1) });
    assert_eq!((queued[0].attempts, queued[0].throttles), (0, 1));
    assert_eq!(rt.outstanding(), 1);
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn zero_concurrency_by_default_discards_instead_of_throttling() {
    let clock = ManualClock::new();
    let rt: Rt = Runtime::builder().clock(clock.clone()).build().unwrap();
    let (f, starts) = stopped("f", exact_backoff());
    rt.register(f).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::ZeroReservedConcurrency)
    );
    assert!(starts.try_recv().is_err());
    let dead = rt.drain_dead_letters();
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].approximate_invoke_count, 0);
    assert_eq!(rt.function_metrics("f").unwrap().throttles, 0);
}

#[test]
fn throttled_event_is_not_dispatched_before_its_backoff_runs_out() {
    let (clock, rt) = throttling_runtime(0);
    let (f, _starts) = stopped("f", exact_backoff());
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.try_dispatch().unwrap();

    clock.set(Timestamp::from_nanos(1_000_000_000 - 1));
    assert_eq!(rt.try_dispatch(), None);
    clock.set(at(1));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Throttled { due: at(3) }
    );
}

#[test]
fn throttle_backoff_doubles_from_1_second_and_caps_at_5_minutes() {
    let (clock, rt) = throttling_runtime(0);
    let (f, _starts) = stopped("f", exact_backoff());
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();

    let delays = throttle_delays(&rt, &clock, 13);
    let expected: Vec<Duration> = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300, 300]
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(delays, expected);
    // 1 + 2 + ... + 256 = 511 s, then four capped waits.
    assert_eq!(clock.now(), at(511 + 4 * 300));
}

#[test]
fn custom_throttle_backoff_sets_the_start_factor_and_cap() {
    let (clock, rt) = throttling_runtime(0);
    let policy = RetryPolicy::builder()
        .throttle_backoff(Duration::from_millis(500), secs(10), 3)
        .throttle_jitter(0.0)
        .build()
        .unwrap();
    let (f, _starts) = stopped("f", policy);
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();

    let delays = throttle_delays(&rt, &clock, 5);
    let expected = vec![
        Duration::from_millis(500),
        Duration::from_millis(1500),
        Duration::from_millis(4500),
        secs(10),
        secs(10),
    ];
    assert_eq!(delays, expected);
}

#[test]
fn throttles_never_use_up_retry_attempts() {
    let (clock, rt) = throttling_runtime(0);
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    let (tx, starts) = crossbeam_channel::unbounded();
    rt.register(
        Function::new("f", move |_: &u32, ctx| {
            tx.send((ctx.approximate_invoke_count(), ctx.started_at()))
                .unwrap();
            Err(FunctionError::new("Boom", "always"))
        })
        .reserved_concurrency(0)
        .retry_policy(exact_backoff())
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    throttle_delays(&rt, &clock, 10);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.throttles, 10);
    assert_eq!((m.invocations, m.errors, m.retries), (0, 0, 0));
    let queued = &rt.queue_snapshot("f").unwrap()[0];
    assert_eq!((queued.attempts, queued.throttles), (0, 10));
    // throttle_delays left the clock at the tenth backoff's due time: 511 + 300 s.
    let throttled_until = clock.now();
    assert_eq!(throttled_until, at(811));
    assert_eq!(
        queued.state,
        EventState::Delayed {
            due: throttled_until
        }
    );

    // Concurrency comes back: the event still has all three attempts.
    rt.set_reserved_concurrency("f", Some(1)).unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    let attempts: Vec<(u32, Timestamp)> = starts.try_iter().collect();
    assert_eq!(
        attempts,
        vec![
            (1, throttled_until),
            (2, throttled_until + secs(60)),
            (3, throttled_until + secs(180)),
        ]
    );
    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 3);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(
        (m.throttles, m.invocations, m.errors, m.retries),
        (10, 3, 3, 2)
    );
}

#[test]
fn throttles_between_function_error_retries_do_not_use_up_attempts() {
    let (clock, rt) = throttling_runtime(0);
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        Function::new("f", |_: &u32, ctx| {
            Err(FunctionError::new(
                "Boom",
                format!("attempt {}", ctx.approximate_invoke_count()),
            ))
        })
        .retry_policy(exact_backoff())
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(60) }
    );
    rt.set_reserved_concurrency("f", Some(0)).unwrap();
    clock.set(at(60));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Throttled { due: at(61) }
    );
    clock.set(at(61));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Throttled { due: at(63) }
    );
    rt.set_reserved_concurrency("f", None).unwrap();
    clock.set(at(63));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(183) }
    );
    clock.set(at(183));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::RetriesExhausted)
    );
    let record = failures.try_recv().unwrap();
    assert_eq!(record.approximate_invoke_count, 3);
    assert_eq!(record.error().unwrap().message(), "attempt 3");
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(
        (m.throttles, m.invocations, m.errors, m.retries),
        (2, 3, 3, 2)
    );
}

#[test]
fn raising_reserved_concurrency_lets_the_held_events_run() {
    let (clock, rt) = throttling_runtime(0);
    let (ok_tx, successes) = crossbeam_channel::unbounded::<Record>();
    let (f, starts) = stopped("f", exact_backoff());
    rt.register(f.on_success(Destination::channel(ok_tx)))
        .unwrap();
    let ids: Vec<_> = (0..3).map(|n| rt.invoke_async("f", n).unwrap()).collect();
    for _ in 0..3 {
        assert!(matches!(
            rt.try_dispatch().unwrap().outcome,
            StepOutcome::Throttled { .. }
        ));
    }
    // Still stopped: nothing more runs now.
    assert_eq!(rt.try_dispatch(), None);

    rt.set_reserved_concurrency("f", Some(1)).unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    assert_eq!(
        starts.try_iter().collect::<Vec<_>>(),
        vec![at(1), at(1), at(1)],
        "each ran when its backoff ran out"
    );
    assert_eq!(clock.now(), at(1));
    let mut done: Vec<_> = successes.try_iter().collect();
    done.sort_by_key(|r| r.request_id);
    assert_eq!(done.len(), 3);
    for (record, id) in done.iter().zip(&ids) {
        assert_eq!(record.request_id, *id);
        assert_eq!(record.condition, Condition::Success);
        assert_eq!(record.approximate_invoke_count, 1);
    }
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(
        (m.throttles, m.invocations, m.retries, m.errors),
        (3, 3, 0, 0)
    );
}

#[test]
fn throttled_event_ends_event_age_exceeded_when_its_next_backoff_would_pass_the_age() {
    let (clock, rt) = throttling_runtime(0);
    let policy = exact_backoff()
        .to_builder()
        .maximum_event_age(secs(60))
        .build()
        .unwrap();
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    let (f, starts) = stopped("f", policy);
    rt.register(f.on_failure(Destination::channel(fail_tx)))
        .unwrap();
    let id = rt.invoke_async("f", 5).unwrap();

    // Throttles at 0, 1, 3, 7, 15 and 31 s; the next backoff (32 s) would end at 63 s.
    assert_eq!(rt.run_until_idle(), 6);
    assert_eq!(clock.now(), at(31));
    assert!(starts.try_recv().is_err());
    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 0);
    assert!(record.response.is_none());
    assert_eq!(record.request_payload, 5);
    assert_eq!(record.timestamp, at(31));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.throttles, m.invocations, m.retries), (6, 0, 0));
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn throttled_event_lives_no_longer_than_the_default_six_hour_age() {
    let (clock, rt) = throttling_runtime(0);
    let (f, _starts) = stopped("f", exact_backoff());
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();

    // 511 s for the first nine backoffs, then 300 s each; the throttle at 21,511 s would be
    // followed by one at 21,811 s, past 21,600 s.
    assert_eq!(rt.run_until_idle(), 80);
    assert_eq!(clock.now(), at(21_511));
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].condition, Condition::EventAgeExceeded);
    assert_eq!(dead[0].timestamp, at(21_511));
    assert_eq!(rt.function_metrics("f").unwrap().throttles, 80);
}

#[test]
fn throttled_event_that_failed_before_ages_out_with_its_count_and_last_error() {
    let (clock, rt) = throttling_runtime(0);
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    let policy = exact_backoff()
        .to_builder()
        .maximum_event_age(secs(90))
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &u32, ctx| {
            Err(FunctionError::new(
                "Boom",
                format!("attempt {}", ctx.approximate_invoke_count()),
            ))
        })
        .retry_policy(policy)
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.try_dispatch().unwrap(); // fails at 0 s, retry due at 60 s
    rt.set_reserved_concurrency("f", Some(0)).unwrap();

    // Throttled at 60, 61, 63, 67 and 75 s; the next backoff would end at 91 s.
    assert_eq!(rt.run_until_idle(), 5);
    assert_eq!(clock.now(), at(75));
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.error().unwrap().message(), "attempt 1");
    assert_eq!(record.executed_version, Some(1));
}

#[test]
fn event_that_finds_every_slot_taken_is_throttled_and_runs_after_its_backoff() {
    let clock = ManualClock::new();
    // Lambda's throttle on real threads (by default the event would wait for its slot).
    let rt: Rt = Runtime::builder()
        .clock(clock.clone())
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (inner_steps, starts) =
        one_slot_function_that_steps_inside(&rt, |f| f.retry_policy(exact_backoff()));
    rt.invoke_async("f", 1).unwrap();
    let second = rt.invoke_async("f", 2).unwrap();

    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(
        inner_steps.try_recv().unwrap(),
        Some(Dispatched {
            request_id: second,
            outcome: StepOutcome::Throttled { due: at(1) },
        })
    );
    assert_eq!(
        starts.try_iter().collect::<Vec<_>>(),
        vec![(1, at(0)), (2, at(1))]
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.throttles, m.invocations, m.retries), (1, 2, 0));
    assert_eq!(m.outcome(Condition::Success), 2);
    assert_eq!(m.peak_concurrent_executions, 1);
}

#[test]
fn event_throttled_by_the_account_limit_backs_off_too() {
    let clock = ManualClock::new();
    let rt: Rt = Runtime::builder()
        .clock(clock.clone())
        .account_concurrency(1)
        .unreserved_floor(0)
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (inner_tx, inner_steps) = crossbeam_channel::unbounded();
    rt.register(Function::new("g", |_: &u32, _ctx| Ok(())).retry_policy(exact_backoff()))
        .unwrap();
    rt.register(Function::new("f", move |_: &u32, ctx| {
        ctx.invoke_async("g", 0).unwrap();
        inner_tx
            .send(ctx.runtime().unwrap().try_dispatch())
            .unwrap();
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();

    rt.run_until_idle();
    let step = inner_steps.try_recv().unwrap().unwrap();
    assert_eq!(step.outcome, StepOutcome::Throttled { due: at(1) });
    let g = rt.function_metrics("g").unwrap();
    assert_eq!((g.throttles, g.invocations), (1, 1));
    assert_eq!(g.outcome(Condition::Success), 1);
}

#[test]
fn default_jitter_keeps_each_delay_between_80_and_100_percent_of_nominal() {
    let (clock, rt) = throttling_runtime(7);
    let (f, _starts) = stopped("f", RetryPolicy::lambda_default());
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();

    let delays = throttle_delays(&rt, &clock, 14);
    let nominal = nominal_schedule(14);
    for (k, (d, n)) in delays.iter().zip(&nominal).enumerate() {
        assert!(
            *d <= *n && *d >= *n * 4 / 5,
            "throttle {}: {d:?} not within [0.8 x {n:?}, {n:?}]",
            k + 1
        );
    }
    assert_ne!(delays, nominal, "the jitter shortened at least one delay");
}

#[test]
fn same_seed_gives_identical_throttle_delays_and_another_seed_different_ones() {
    let delays_for = |seed| {
        let (clock, rt) = throttling_runtime(seed);
        let (f, _starts) = stopped("f", RetryPolicy::lambda_default());
        rt.register(f).unwrap();
        rt.invoke_async("f", 1).unwrap();
        throttle_delays(&rt, &clock, 12)
    };
    let first = delays_for(42);
    assert_eq!(first, delays_for(42));
    assert_ne!(first, delays_for(43));
}

#[test]
fn full_jitter_still_gives_a_positive_delay_within_nominal() {
    let (clock, rt) = throttling_runtime(3);
    let policy = RetryPolicy::builder().throttle_jitter(1.0).build().unwrap();
    let (f, _starts) = stopped("f", policy);
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();

    // throttle_delays checks every due is strictly after the throttle.
    let delays = throttle_delays(&rt, &clock, 12);
    for (d, n) in delays.iter().zip(nominal_schedule(12)) {
        assert!(*d <= n);
    }
}

// ----- RetryPolicy -----------------------------------------------------------------------------

#[test]
fn throttle_delay_nominal_doubles_from_1_second_and_caps_at_300() {
    let p = RetryPolicy::lambda_default();
    assert_eq!(p.throttle_backoff(), (secs(1), secs(300), 2));
    assert_eq!(p.throttle_jitter(), 0.2);
    let expected = [
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (5, 16),
        (6, 32),
        (7, 64),
        (8, 128),
        (9, 256),
        (10, 300),
        (11, 300),
        (64, 300),
        (1_000, 300),
    ];
    for (throttles, delay) in expected {
        assert_eq!(
            p.throttle_delay_nominal(throttles),
            secs(delay),
            "after throttle {throttles}"
        );
    }
    // Throttle 0 (none yet) is treated like the first.
    assert_eq!(p.throttle_delay_nominal(0), secs(1));
}

#[test]
fn throttle_delay_nominal_follows_a_custom_backoff() {
    let p = RetryPolicy::builder()
        .throttle_backoff(Duration::from_millis(250), secs(5), 4)
        .build()
        .unwrap();
    let got: Vec<Duration> = (1..=5).map(|k| p.throttle_delay_nominal(k)).collect();
    let expected = vec![
        Duration::from_millis(250),
        secs(1),
        secs(4),
        secs(5),
        secs(5),
    ];
    assert_eq!(got, expected);

    let flat = RetryPolicy::builder()
        .throttle_backoff(secs(2), secs(60), 1)
        .build()
        .unwrap();
    assert_eq!(flat.throttle_delay_nominal(1), secs(2));
    assert_eq!(flat.throttle_delay_nominal(50), secs(2));
}

#[test]
fn throttle_delay_is_nominal_without_jitter_and_within_bounds_with_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let exact = RetryPolicy::builder().throttle_jitter(0.0).build().unwrap();
    for k in 1..=12 {
        assert_eq!(
            exact.throttle_delay(k, rng.random()),
            exact.throttle_delay_nominal(k)
        );
    }
    let jittered = RetryPolicy::builder().throttle_jitter(0.5).build().unwrap();
    let mut shortened = false;
    for _ in 0..200 {
        let n = jittered.throttle_delay_nominal(4);
        let d = jittered.throttle_delay(4, rng.random());
        assert!(
            d <= n && d >= n / 2,
            "{d:?} not within [{:?}, {n:?}]",
            n / 2
        );
        shortened |= d < n * 3 / 4;
    }
    assert!(shortened, "a 50 % jitter reaches below 75 % of nominal");
}

#[test]
fn retry_delay_follows_the_list_and_stops_after_the_maximum_attempts() {
    let lambda = RetryPolicy::lambda_default();
    assert_eq!(lambda.maximum_retry_attempts(), 2);
    assert_eq!(lambda.retry_delays(), &[secs(60), secs(120)]);
    assert_eq!(lambda.retry_delay(0), None);
    assert_eq!(lambda.retry_delay(1), Some(secs(60)));
    assert_eq!(lambda.retry_delay(2), Some(secs(120)));
    assert_eq!(lambda.retry_delay(3), None);

    let custom = RetryPolicy::builder()
        .maximum_retry_attempts(5)
        .retry_delays(vec![secs(5), secs(15), secs(45)])
        .build()
        .unwrap();
    let got: Vec<Option<Duration>> = (1..=6).map(|r| custom.retry_delay(r)).collect();
    assert_eq!(
        got,
        vec![
            Some(secs(5)),
            Some(secs(15)),
            Some(secs(45)),
            Some(secs(45)),
            Some(secs(45)),
            None,
        ]
    );

    let none = RetryPolicy::builder()
        .maximum_retry_attempts(0)
        .build()
        .unwrap();
    assert_eq!(none.retry_delay(1), None);
}

#[test]
fn is_expired_is_true_from_the_age_limit_on() {
    let p = RetryPolicy::builder()
        .maximum_event_age(secs(60))
        .build()
        .unwrap();
    let t0 = at(100);
    assert!(!p.is_expired(t0, t0));
    assert!(!p.is_expired(t0, Timestamp::from_nanos(160_000_000_000 - 1)));
    assert!(p.is_expired(t0, at(160)));
    assert!(p.is_expired(t0, at(1000)));
    assert_eq!(
        RetryPolicy::lambda_default().maximum_event_age(),
        secs(6 * 3600)
    );
}

/// The `InvalidConfig` of a refused policy, and its message, checked to name `field` and
/// the accepted range.
fn refused(builder: event_invoke::RetryPolicyBuilder, field: &str, accepted_part: &str) {
    let err = builder.build().unwrap_err();
    let message = err.to_string();
    match err {
        Error::InvalidConfig {
            field: f, accepted, ..
        } => {
            assert_eq!(f, field);
            assert!(
                accepted.contains(accepted_part),
                "{field}: accepted range {accepted:?} lacks {accepted_part:?}"
            );
            assert!(message.contains(field), "{message}");
            assert!(message.contains(accepted), "{message}");
        }
        other => panic!("{field}: unexpected error {other:?}"),
    }
}

#[test]
fn builder_refuses_an_event_age_of_zero_or_over_14_days_naming_the_field() {
    let b = RetryPolicy::builder;
    refused(
        b().maximum_event_age(Duration::ZERO),
        "maximum_event_age",
        "14 days",
    );
    refused(
        b().maximum_event_age(secs(14 * 24 * 3600) + Duration::from_nanos(1)),
        "maximum_event_age",
        "60 s to 6 h",
    );
    assert!(b().maximum_event_age(secs(14 * 24 * 3600)).build().is_ok());
    assert!(b()
        .maximum_event_age(Duration::from_nanos(1))
        .build()
        .is_ok());
}

#[test]
fn builder_refuses_more_than_100_retry_attempts_naming_the_field() {
    let b = RetryPolicy::builder;
    refused(
        b().maximum_retry_attempts(101),
        "maximum_retry_attempts",
        "0 to 100",
    );
    refused(
        b().maximum_retry_attempts(u32::MAX),
        "maximum_retry_attempts",
        "Lambda: 0 to 2",
    );
    assert!(b().maximum_retry_attempts(100).build().is_ok());
    assert!(b().maximum_retry_attempts(0).build().is_ok());
}

#[test]
fn builder_refuses_a_jitter_outside_0_to_1_naming_the_field() {
    let b = RetryPolicy::builder;
    for bad in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
        refused(b().throttle_jitter(bad), "throttle_jitter", "0.0 to 1.0");
    }
    assert!(b().throttle_jitter(0.0).build().is_ok());
    assert!(b().throttle_jitter(1.0).build().is_ok());
}

#[test]
fn builder_refuses_empty_zero_or_over_a_day_retry_delays_naming_the_field() {
    let b = RetryPolicy::builder;
    refused(b().retry_delays(Vec::new()), "retry_delays", "at least one");
    refused(
        b().retry_delays(vec![secs(60), Duration::ZERO]),
        "retry_delays",
        "greater than 0",
    );
    refused(
        b().retry_delays(vec![secs(24 * 3600) + Duration::from_nanos(1)]),
        "retry_delays",
        "24 h",
    );
    assert!(b().retry_delays(vec![secs(24 * 3600)]).build().is_ok());
    assert!(b()
        .retry_delays(vec![Duration::from_nanos(1)])
        .build()
        .is_ok());
}

#[test]
fn builder_refuses_a_bad_throttle_backoff_naming_the_part() {
    let b = RetryPolicy::builder;
    refused(
        b().throttle_backoff(Duration::ZERO, secs(300), 2),
        "throttle_backoff",
        "greater than 0",
    );
    refused(
        b().throttle_backoff(secs(10), secs(5), 2),
        "throttle_backoff",
        "at most the maximum",
    );
    refused(
        b().throttle_backoff(secs(1), secs(24 * 3600 + 1), 2),
        "throttle_backoff",
        "24 h",
    );
    refused(
        b().throttle_backoff(secs(1), secs(300), 0),
        "throttle_backoff",
        "1 to 16",
    );
    refused(
        b().throttle_backoff(secs(1), secs(300), 17),
        "throttle_backoff",
        "1 to 16",
    );
    assert!(b().throttle_backoff(secs(5), secs(5), 16).build().is_ok());
}

#[test]
fn a_function_with_an_invalid_policy_is_refused_at_registration() {
    let (_clock, rt) = throttling_runtime(0);
    let err = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).maximum_event_age(Duration::ZERO))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "maximum_event_age",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(rt.function_names().is_empty());
}
