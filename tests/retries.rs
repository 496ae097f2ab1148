//! Function errors and their retries (semantics section 2): the 60 s / 120 s schedule, the
//! request id and invoke count shared by every attempt, the final record, custom delays,
//! timeouts and panics as function errors, and the metrics that count all of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use event_invoke::{
    Condition, Destination, Dispatched, Error, ErrorKind, Function, FunctionError,
    InvocationRecord, ManualClock, RequestId, RetryPolicy, Runtime, StepOutcome, Timestamp,
};

type Rt = Runtime<u32>;
type Record = InvocationRecord<u32, ()>;

/// What a handler saw on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attempt {
    request_id: RequestId,
    count: u32,
    started_at: Timestamp,
    now: Timestamp,
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(n: u64) -> Timestamp {
    Timestamp::ZERO + secs(n)
}

fn runtime() -> (ManualClock, Rt) {
    let clock = ManualClock::new();
    let rt = Runtime::builder().clock(clock.clone()).build().unwrap();
    (clock, rt)
}

fn log() -> (Sender<Attempt>, Receiver<Attempt>) {
    crossbeam_channel::unbounded()
}

/// A function named `name` whose handler logs each attempt and always fails with
/// `Boom: attempt N`.
fn always_failing(name: &str, attempts: Sender<Attempt>) -> Function<u32, ()> {
    Function::new(name, move |_: &u32, ctx| {
        attempts
            .send(Attempt {
                request_id: ctx.request_id(),
                count: ctx.approximate_invoke_count(),
                started_at: ctx.started_at(),
                now: ctx.now(),
            })
            .unwrap();
        Err(FunctionError::new(
            "Boom",
            format!("attempt {}", ctx.approximate_invoke_count()),
        ))
    })
}

fn start_times(attempts: &Receiver<Attempt>) -> Vec<Timestamp> {
    attempts.try_iter().map(|a| a.started_at).collect()
}

#[test]
fn function_error_is_retried_after_60_then_120_seconds() {
    let (clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(always_failing("f", tx)).unwrap();
    rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 3);

    let attempts: Vec<Attempt> = rx.try_iter().collect();
    let started: Vec<Timestamp> = attempts.iter().map(|a| a.started_at).collect();
    assert_eq!(started, vec![at(0), at(60), at(180)]);
    // The handler reads the same time from the runtime's clock.
    let seen: Vec<Timestamp> = attempts.iter().map(|a| a.now).collect();
    assert_eq!(seen, started);
    // run_until_idle jumped virtual time to the last retry and no further.
    assert_eq!(clock.now(), at(180));
}

#[test]
fn every_attempt_of_an_event_carries_the_same_request_id() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    let (fail_tx, failures) = crossbeam_channel::unbounded();
    rt.register(always_failing("f", tx).on_failure(Destination::channel(fail_tx)))
        .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let ids: Vec<RequestId> = rx.try_iter().map(|a| a.request_id).collect();
    assert_eq!(ids, vec![id, id, id]);
    assert_eq!(failures.try_recv().unwrap().request_id, id);
}

#[test]
fn approximate_invoke_count_is_1_then_2_then_3() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(always_failing("f", tx)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let counts: Vec<u32> = rx.try_iter().map(|a| a.count).collect();
    assert_eq!(counts, vec![1, 2, 3]);
}

#[test]
fn exhausted_retries_send_retries_exhausted_with_count_3_and_the_last_error_to_on_failure() {
    let (_clock, rt) = runtime();
    let (tx, _rx) = log();
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    let (ok_tx, successes) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        always_failing("f", tx)
            .on_failure(Destination::channel(fail_tx))
            .on_success(Destination::channel(ok_tx)),
    )
    .unwrap();
    let id = rt.invoke_async("f", 42).unwrap();
    rt.run_until_idle();

    let record = failures.try_recv().unwrap();
    assert!(failures.try_recv().is_err(), "exactly one record per event");
    assert!(successes.try_recv().is_err());
    assert_eq!(record.request_id, id);
    assert_eq!(&*record.function, "f");
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 3);
    assert_eq!(record.request_payload, 42);
    let error = record.error().unwrap();
    assert_eq!(error.error_type(), "Boom");
    assert_eq!(error.message(), "attempt 3", "the last attempt's error");
    assert_eq!(error.kind(), ErrorKind::Handled);
    assert_eq!(record.executed_version, Some(1));
    assert_eq!(record.enqueued_at, at(0));
    assert_eq!(record.timestamp, at(180));
    // Delivered to the destination, so nothing is left over as a dead letter.
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn exhausted_retries_without_on_failure_destination_become_a_dead_letter() {
    let (_clock, rt) = runtime();
    let (tx, _rx) = log();
    rt.register(always_failing("f", tx)).unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    rt.run_until_idle();

    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::RetriesExhausted);
    assert_eq!(dead[0].approximate_invoke_count, 3);
    assert_eq!(dead[0].error().unwrap().message(), "attempt 3");
    assert!(
        rt.drain_dead_letters().is_empty(),
        "draining empties the list"
    );
}

#[test]
fn zero_retry_attempts_end_as_retries_exhausted_after_one_attempt_without_waiting() {
    let (clock, rt) = runtime();
    let (tx, rx) = log();
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        always_failing("f", tx)
            .maximum_retry_attempts(0)
            .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::Ended(Condition::RetriesExhausted),
        })
    );
    assert_eq!(rt.run_until_idle(), 0, "no retry was scheduled");
    assert_eq!(clock.now(), at(0));
    assert_eq!(start_times(&rx), vec![at(0)]);

    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.error().unwrap().message(), "attempt 1");
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (1, 1, 0));
}

#[test]
fn handler_that_fails_twice_then_succeeds_ends_success_with_count_3() {
    let (clock, rt): (ManualClock, Runtime<u32, String>) = {
        let clock = ManualClock::new();
        let rt = Runtime::builder().clock(clock.clone()).build().unwrap();
        (clock, rt)
    };
    let (ok_tx, successes) = crossbeam_channel::unbounded();
    let (fail_tx, failures) = crossbeam_channel::unbounded();
    rt.register(
        Function::new("flaky", |n: &u32, ctx| {
            if ctx.approximate_invoke_count() < 3 {
                return Err(FunctionError::new("NotYet", "try again"));
            }
            Ok(format!(
                "done {n} on attempt {}",
                ctx.approximate_invoke_count()
            ))
        })
        .on_success(Destination::channel(ok_tx))
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    let id = rt.invoke_async("flaky", 5).unwrap();
    assert_eq!(rt.run_until_idle(), 3);

    let record = successes.try_recv().unwrap();
    assert!(failures.try_recv().is_err());
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::Success);
    assert_eq!(record.approximate_invoke_count, 3);
    assert_eq!(
        record.response_payload().map(String::as_str),
        Some("done 5 on attempt 3")
    );
    assert!(record.error().is_none());
    assert_eq!(record.timestamp, at(180));
    assert_eq!(clock.now(), at(180));

    let m = rt.function_metrics("flaky").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (3, 2, 2));
    assert_eq!(m.outcome(Condition::Success), 1);
    assert_eq!(m.dropped(), 0);
}

#[test]
fn custom_retry_delays_set_the_waits_and_the_last_one_repeats() {
    let (clock, rt) = runtime();
    let (tx, rx) = log();
    let policy = RetryPolicy::builder()
        .maximum_retry_attempts(4)
        .retry_delays(vec![secs(10), secs(30)])
        .build()
        .unwrap();
    rt.register(always_failing("f", tx).retry_policy(policy))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 5);

    // 0, +10, +30, +30 (the last delay repeats), +30.
    assert_eq!(
        start_times(&rx),
        vec![at(0), at(10), at(40), at(70), at(100)]
    );
    assert_eq!(clock.now(), at(100));
    let record = &rt.drain_dead_letters()[0];
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 5);
}

#[test]
fn more_retries_than_default_delays_repeat_the_two_minute_wait() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(always_failing("f", tx).maximum_retry_attempts(4))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    assert_eq!(
        start_times(&rx),
        vec![at(0), at(60), at(180), at(300), at(420)]
    );
    assert_eq!(rt.drain_dead_letters()[0].approximate_invoke_count, 5);
}

#[test]
fn one_retry_attempt_gives_two_attempts_at_the_first_delay() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    let policy = RetryPolicy::builder()
        .maximum_retry_attempts(1)
        .retry_delays(vec![Duration::from_millis(1500)])
        .build()
        .unwrap();
    rt.register(always_failing("f", tx).retry_policy(policy))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    assert_eq!(
        start_times(&rx),
        vec![at(0), Timestamp::ZERO + Duration::from_millis(1500)]
    );
    let record = &rt.drain_dead_letters()[0];
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 2);
}

#[test]
fn separate_events_keep_their_own_request_ids_and_invoke_counts() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(always_failing("f", tx)).unwrap();
    let a = rt.invoke_async("f", 1).unwrap();
    let b = rt.invoke_async("f", 2).unwrap();
    assert_ne!(a, b);
    assert_eq!(rt.run_until_idle(), 6);

    let attempts: Vec<Attempt> = rx.try_iter().collect();
    for id in [a, b] {
        let mine: Vec<(u32, Timestamp)> = attempts
            .iter()
            .filter(|x| x.request_id == id)
            .map(|x| (x.count, x.started_at))
            .collect();
        assert_eq!(mine, vec![(1, at(0)), (2, at(60)), (3, at(180))]);
    }
    let mut dead: Vec<(RequestId, u32)> = rt
        .drain_dead_letters()
        .iter()
        .map(|r| (r.request_id, r.approximate_invoke_count))
        .collect();
    dead.sort();
    let mut expected = vec![(a, 3), (b, 3)];
    expected.sort();
    assert_eq!(dead, expected);
}

#[test]
fn metrics_count_invocations_errors_and_retries_exactly() {
    let (_clock, rt) = runtime();
    // Payload 0 always fails; anything else succeeds at once.
    rt.register(Function::new("f", |n: &u32, _ctx| {
        if *n == 0 {
            return Err(FunctionError::new("Boom", "zero"));
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();

    // After the first round: three runs, one failure, one retry waiting.
    for _ in 0..3 {
        rt.try_dispatch().unwrap();
    }
    assert!(rt.try_dispatch().is_none());
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.events_received, 3);
    assert_eq!(
        (m.invocations, m.errors, m.retries, m.throttles),
        (3, 1, 1, 0)
    );
    assert_eq!((m.queue_ready, m.queue_delayed), (0, 1));
    assert_eq!(m.outcome(Condition::Success), 2);
    assert!(m.is_balanced());

    rt.run_until_idle();
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.events_received, 3);
    assert_eq!(
        (m.invocations, m.errors, m.retries, m.throttles),
        (5, 3, 2, 0)
    );
    assert_eq!(m.outcome(Condition::Success), 2);
    assert_eq!(m.outcome(Condition::RetriesExhausted), 1);
    assert_eq!(m.dropped(), 1);
    assert_eq!(m.finished(), 3);
    assert_eq!(m.queue_depth(), 0);
    assert!(m.is_balanced());
    // Each attempt's event age: the failing event started at ages 0, 60 and 180 s.
    assert_eq!(m.event_age_max, secs(180));
    assert_eq!(m.event_age_total, secs(240));
}

#[test]
fn handler_returning_after_its_timeout_is_a_timeout_function_error_and_is_retried() {
    let (clock, rt) = runtime();
    let (tx, rx) = log();
    let handler_clock = clock.clone();
    rt.register(
        Function::new("slow", move |_: &u32, ctx| {
            tx.send(Attempt {
                request_id: ctx.request_id(),
                count: ctx.approximate_invoke_count(),
                started_at: ctx.started_at(),
                now: ctx.now(),
            })
            .unwrap();
            // Runs for 2 s against a 1 s timeout, then claims success.
            handler_clock.advance(secs(2));
            Ok(())
        })
        .timeout(secs(1)),
    )
    .unwrap();
    let id = rt.invoke_async("slow", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 3);

    // Each retry waits from the end of the overrunning attempt: 0, 2+60, 64+120.
    assert_eq!(start_times(&rx), vec![at(0), at(62), at(184)]);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    let record = &dead[0];
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 3);
    assert!(record.response_payload().is_none(), "the Ok was replaced");
    let error = record.error().unwrap();
    assert_eq!(error.error_type(), FunctionError::TIMEOUT);
    assert_eq!(error.kind(), ErrorKind::Unhandled);
    assert!(error.message().contains("1.00 seconds"), "{error}");
    let m = rt.function_metrics("slow").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (3, 3, 2));
    assert_eq!(m.duration_max, secs(2));
}

#[test]
fn handler_that_finishes_within_its_timeout_succeeds() {
    let (clock, rt) = runtime();
    let handler_clock = clock.clone();
    rt.register(
        Function::new("f", move |_: &u32, ctx| {
            assert_eq!(ctx.remaining_time(), secs(3));
            handler_clock.advance(secs(2));
            assert_eq!(ctx.remaining_time(), secs(1));
            Ok(())
        })
        .timeout(secs(3)),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap(),
        Dispatched {
            request_id: id,
            outcome: StepOutcome::Ended(Condition::Success),
        }
    );
    assert_eq!(rt.function_metrics("f").unwrap().errors, 0);
}

#[test]
fn handler_that_times_out_once_succeeds_on_its_retry() {
    let (clock, rt) = runtime();
    let handler_clock = clock.clone();
    let (ok_tx, successes) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        Function::new("f", move |_: &u32, ctx| {
            if ctx.approximate_invoke_count() == 1 {
                handler_clock.advance(secs(5));
            }
            Ok(())
        })
        .timeout(secs(3))
        .on_success(Destination::channel(ok_tx)),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(65) }
    );
    rt.run_until_idle();
    let record = successes.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.approximate_invoke_count, 2);
    assert_eq!(record.timestamp, at(65));
}

#[test]
fn panicking_handler_is_an_unhandled_function_error_and_is_retried() {
    let (_clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(Function::new("f", move |_: &u32, ctx| {
        tx.send(Attempt {
            request_id: ctx.request_id(),
            count: ctx.approximate_invoke_count(),
            started_at: ctx.started_at(),
            now: ctx.now(),
        })
        .unwrap();
        panic!(
            "handler exploded on attempt {}",
            ctx.approximate_invoke_count()
        );
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 3);

    assert_eq!(start_times(&rx), vec![at(0), at(60), at(180)]);
    let record = &rt.drain_dead_letters()[0];
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 3);
    let error = record.error().unwrap();
    assert_eq!(error.error_type(), FunctionError::PANIC);
    assert_eq!(error.kind(), ErrorKind::Unhandled);
    assert_eq!(error.message(), "handler exploded on attempt 3");
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (3, 3, 2));
    assert_eq!(
        m.concurrent_executions, 0,
        "slots are released after a panic"
    );
}

#[test]
fn try_dispatch_reports_each_retry_with_its_due_time() {
    let (clock, rt) = runtime();
    let (tx, rx) = log();
    rt.register(always_failing("f", tx)).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::RetryScheduled { due: at(60) },
        })
    );
    // The retry waits in the queue, delayed until its due time.
    let queued = rt.queue_snapshot("f").unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].request_id, id);
    assert_eq!(queued[0].attempts, 1);
    assert_eq!(
        queued[0].state,
        event_invoke::EventState::Delayed { due: at(60) }
    );

    // Not a nanosecond early.
    clock.set(Timestamp::from_nanos(60_000_000_000 - 1));
    assert_eq!(rt.try_dispatch(), None);
    clock.set(at(60));
    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::RetryScheduled { due: at(180) },
        })
    );
    clock.set(at(179));
    assert_eq!(rt.try_dispatch(), None);
    clock.set(at(180));
    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::Ended(Condition::RetriesExhausted),
        })
    );
    assert_eq!(rt.try_dispatch(), None);
    assert_eq!(start_times(&rx), vec![at(0), at(60), at(180)]);
}

#[test]
fn retry_due_is_counted_from_the_end_of_the_failed_attempt() {
    let (clock, rt) = runtime();
    let handler_clock = clock.clone();
    rt.register(
        Function::new("f", move |_: &u32, _ctx| {
            handler_clock.advance(secs(2));
            Err(FunctionError::new("Boom", "after 2 s"))
        })
        .timeout(secs(10)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(62) }
    );
}

#[test]
fn retry_attempts_above_100_are_refused_at_registration() {
    let (_clock, rt) = runtime();
    let err = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).maximum_retry_attempts(101))
        .unwrap_err();
    match &err {
        Error::InvalidConfig { field, value, .. } => {
            assert_eq!(*field, "maximum_retry_attempts");
            assert_eq!(value, "101");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(rt.function_names().is_empty(), "nothing was registered");
    // The crate accepts up to 100 (wider than Lambda's 2).
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).maximum_retry_attempts(100))
        .unwrap();
}

#[test]
fn context_reports_the_event_age_and_metrics_sum_the_durations() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let ages = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ages);
    let c = clock.clone();
    rt.register(Function::new("slow", move |_: &u32, ctx| {
        seen.lock().unwrap().push(ctx.event_age());
        c.advance(Duration::from_millis(500)); // the handler "takes" half a second
        if ctx.approximate_invoke_count() == 1 {
            return Err(FunctionError::new("Once", "fails once"));
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("slow", 1).unwrap();
    clock.advance(Duration::from_secs(5)); // waits 5 s before its first run
    rt.run_until_idle();
    // First run at 5 s; it ends at 5.5 s; the retry runs 60 s later, at 65.5 s of age.
    assert_eq!(
        *ages.lock().unwrap(),
        vec![Duration::from_secs(5), Duration::from_millis(65_500)]
    );
    let m = rt.function_metrics("slow").unwrap();
    assert_eq!(m.duration_total, Duration::from_secs(1));
    assert_eq!(m.duration_max, Duration::from_millis(500));
    assert_eq!(m.event_age_max, Duration::from_millis(65_500));
    assert_eq!(m.event_age_total, Duration::from_millis(70_500));
}
