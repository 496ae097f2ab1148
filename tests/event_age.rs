//! The maximum event age (semantics section 4): a retry that would start at or past the age
//! limit is not scheduled, an event that waited too long never runs, and events held by a
//! paused function age out as time passes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use event_invoke::{
    Condition, Destination, Dispatched, ErrorKind, EventState, Function, FunctionError,
    FunctionMetrics, InvocationRecord, ManualClock, Runtime, StepOutcome, Timestamp,
};

type Rt = Runtime<u32>;
type Record = InvocationRecord<u32, ()>;

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

/// A function whose handler logs each attempt's start time and always fails with
/// `Boom: attempt N`; failure records go to the returned channel.
fn always_failing(
    name: &str,
    max_age: Duration,
) -> (Function<u32, ()>, Receiver<Timestamp>, Receiver<Record>) {
    let (tx, starts): (Sender<Timestamp>, _) = crossbeam_channel::unbounded();
    let (fail_tx, failures) = crossbeam_channel::unbounded();
    let f = Function::new(name, move |_: &u32, ctx| {
        tx.send(ctx.started_at()).unwrap();
        Err(FunctionError::new(
            "Boom",
            format!("attempt {}", ctx.approximate_invoke_count()),
        ))
    })
    .maximum_event_age(max_age)
    .on_failure(Destination::channel(fail_tx));
    (f, starts, failures)
}

/// A function whose handler only counts its runs (it succeeds).
fn counting(name: &str, max_age: Duration) -> (Function<u32, ()>, Receiver<Timestamp>) {
    let (tx, starts) = crossbeam_channel::unbounded();
    let f = Function::new(name, move |_: &u32, ctx| {
        tx.send(ctx.started_at()).unwrap();
        Ok(())
    })
    .maximum_event_age(max_age);
    (f, starts)
}

#[test]
fn age_60_seconds_ends_as_event_age_exceeded_right_after_the_first_failure() {
    let (clock, rt) = runtime();
    let (f, starts, failures) = always_failing("f", secs(60));
    rt.register(f).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    // The retry would start at 60 s, which is the age limit: it is not scheduled.
    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::Ended(Condition::EventAgeExceeded),
        })
    );
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(clock.now(), at(0), "time never moved to 60 s");
    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0)]);

    let record = failures.try_recv().unwrap();
    assert!(failures.try_recv().is_err());
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.timestamp, at(0));

    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (1, 1, 0));
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
    assert_eq!(m.outcome(Condition::RetriesExhausted), 0);
    assert_eq!(m.dropped(), 1);
    assert_eq!(m.queue_depth(), 0);
}

#[test]
fn age_90_seconds_allows_one_retry_at_60_then_ends_with_count_2() {
    let (clock, rt) = runtime();
    let (f, starts, failures) = always_failing("f", secs(90));
    rt.register(f).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0), at(60)]);
    // The second retry would start at 180 s, past 90 s: the event ends at 60 s.
    assert_eq!(clock.now(), at(60));

    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 2);
    assert_eq!(record.timestamp, at(60));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (2, 2, 1));
}

#[test]
fn age_exceeded_record_carries_the_last_function_error() {
    let (_clock, rt) = runtime();
    let (f, _starts, failures) = always_failing("f", secs(90));
    rt.register(f).unwrap();
    rt.invoke_async("f", 9).unwrap();
    rt.run_until_idle();

    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.request_payload, 9);
    assert_eq!(record.executed_version, Some(1));
    let error = record.error().expect("the last attempt's error");
    assert_eq!(error.error_type(), "Boom");
    assert_eq!(error.message(), "attempt 2");
    assert_eq!(error.kind(), ErrorKind::Handled);
}

#[test]
fn retry_starting_just_inside_the_age_limit_is_scheduled() {
    let (_clock, rt) = runtime();
    // The first retry starts at 60 s, one nanosecond before the limit.
    let (f, starts, failures) = always_failing("f", secs(60) + Duration::from_nanos(1));
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0), at(60)]);
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 2);
}

#[test]
fn without_retries_left_a_short_age_still_ends_as_retries_exhausted() {
    let (_clock, rt) = runtime();
    let (f, _starts, failures) = always_failing("f", secs(60));
    rt.register(f.maximum_retry_attempts(0)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 1);
}

#[test]
fn age_counts_from_acceptance_not_from_the_last_attempt() {
    let (_clock, rt) = runtime();
    // The second retry waits 120 s (< 179 s) after the attempt at 60 s, but would start at
    // 180 s of age: it is not scheduled.
    let (f, starts, failures) = always_failing("f", secs(179));
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(0), at(60)]);
    let record = failures.try_recv().unwrap();
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 2);
}

#[test]
fn event_older_than_its_age_when_dispatched_never_runs() {
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(60));
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(f.on_failure(Destination::channel(fail_tx)))
        .unwrap();
    let id = rt.invoke_async("f", 3).unwrap();

    clock.advance(secs(60));
    assert_eq!(
        rt.try_dispatch(),
        Some(Dispatched {
            request_id: id,
            outcome: StepOutcome::Ended(Condition::EventAgeExceeded),
        })
    );
    assert!(starts.try_recv().is_err(), "the handler never ran");

    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 0);
    assert_eq!(record.request_payload, 3);
    assert!(record.response.is_none());
    assert_eq!(record.executed_version, None);
    assert_eq!(record.enqueued_at, at(0));
    assert_eq!(record.timestamp, at(60));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (0, 0, 0));
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
}

#[test]
fn event_just_younger_than_its_age_when_dispatched_still_runs() {
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.invoke_async("f", 3).unwrap();

    clock.set(Timestamp::from_nanos(60_000_000_000 - 1));
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::Success)
    );
    assert_eq!(starts.try_iter().count(), 1);
}

#[test]
fn event_queued_behind_a_slow_handler_ages_out_without_running() {
    let (clock, rt) = runtime();
    let (tx, starts) = crossbeam_channel::unbounded();
    let handler_clock = clock.clone();
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        Function::new("f", move |n: &u32, _ctx| {
            tx.send(*n).unwrap();
            // The first event keeps the only worker busy for 61 s.
            handler_clock.advance(secs(61));
            Ok(())
        })
        .timeout(secs(120))
        .maximum_event_age(secs(60))
        .on_failure(Destination::channel(fail_tx)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    let late = rt.invoke_async("f", 2).unwrap();

    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![1]);
    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, late);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 0);
    assert_eq!(record.timestamp, at(61));
}

#[test]
fn run_until_idle_does_not_jump_time_for_a_paused_functions_held_events() {
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(clock.now(), at(0));
    assert!(starts.try_recv().is_err());
    let queued = rt.queue_snapshot("f").unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].request_id, id);
    assert_eq!(queued[0].state, EventState::Held);
    assert_eq!(rt.outstanding(), 1);
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn paused_functions_held_events_age_out_at_their_deadline_with_run_for() {
    let (clock, rt) = runtime();
    // The default maximum event age: 6 hours.
    let (f, starts) = counting("f", secs(6 * 3600));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    assert_eq!(rt.run_for(secs(7 * 3600)), 0);
    assert_eq!(clock.now(), at(7 * 3600));
    assert!(starts.try_recv().is_err(), "held events never run");

    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    let record = &dead[0];
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 0);
    assert_eq!(record.timestamp, at(6 * 3600), "ended at its age deadline");
    assert!(rt.queue_snapshot("f").unwrap().is_empty());
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
    assert!(m.is_balanced());
}

#[test]
fn run_for_shorter_than_the_age_keeps_held_events() {
    let (clock, rt) = runtime();
    let (f, _starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    rt.invoke_async("f", 1).unwrap();

    rt.run_for(secs(59));
    assert_eq!(clock.now(), at(59));
    assert_eq!(rt.queue_snapshot("f").unwrap().len(), 1);
    assert!(rt.drain_dead_letters().is_empty());
    rt.run_for(secs(1));
    assert_eq!(rt.drain_dead_letters()[0].timestamp, at(60));
}

#[test]
fn each_held_event_ages_out_at_its_own_deadline() {
    let (clock, rt) = runtime();
    let (f, _starts) = counting("f", secs(60));
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(f.on_failure(Destination::channel(fail_tx)))
        .unwrap();
    rt.pause("f").unwrap();
    let a = rt.invoke_async("f", 1).unwrap();
    clock.advance(secs(10));
    let b = rt.invoke_async("f", 2).unwrap();

    rt.run_for(secs(55)); // to 65 s
    let first = failures.try_recv().unwrap();
    assert_eq!((first.request_id, first.timestamp), (a, at(60)));
    assert!(failures.try_recv().is_err(), "b is only 55 s old");
    assert_eq!(rt.queue_snapshot("f").unwrap()[0].request_id, b);

    rt.run_for(secs(10)); // to 75 s
    let second = failures.try_recv().unwrap();
    assert_eq!((second.request_id, second.timestamp), (b, at(70)));
    assert_eq!(second.condition, Condition::EventAgeExceeded);
}

#[test]
fn held_retry_ages_out_with_its_invoke_count_and_last_error() {
    let (clock, rt) = runtime();
    let (f, starts, failures) = always_failing("f", secs(6 * 3600));
    rt.register(f).unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(60) }
    );
    rt.pause("f").unwrap();

    // The retry is held: run_until_idle leaves it and time where they are.
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(clock.now(), at(0));

    assert_eq!(rt.run_for(secs(7 * 3600)), 0);
    assert_eq!(starts.try_iter().count(), 1, "only the first attempt ran");
    let record = failures.try_recv().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.condition, Condition::EventAgeExceeded);
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.timestamp, at(6 * 3600));
    assert_eq!(record.error().unwrap().message(), "attempt 1");
}

#[test]
fn held_events_resumed_before_their_age_run_normally() {
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_for(secs(30));
    rt.resume("f").unwrap();

    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(starts.try_iter().collect::<Vec<_>>(), vec![at(30)]);
    assert_eq!(clock.now(), at(30));
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .outcome(Condition::Success),
        1
    );
}

#[test]
fn shortening_a_paused_functions_age_ages_out_held_events_at_the_new_deadline() {
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(6 * 3600));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_for(secs(30));
    rt.update_config("f", |c| {
        c.retry = c
            .retry
            .to_builder()
            .maximum_event_age(secs(60))
            .build()
            .unwrap();
    })
    .unwrap();

    rt.run_for(secs(60)); // to 90 s
    assert_eq!(clock.now(), at(90));
    assert!(starts.try_recv().is_err());
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::EventAgeExceeded);
    assert_eq!(dead[0].timestamp, at(60));
}

#[test]
fn lengthening_a_paused_functions_age_keeps_held_events_past_the_old_deadline() {
    let (_clock, rt) = runtime();
    let (f, _starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.update_config("f", |c| {
        c.retry = c
            .retry
            .to_builder()
            .maximum_event_age(secs(600))
            .build()
            .unwrap();
    })
    .unwrap();

    rt.run_for(secs(599));
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.queue_snapshot("f").unwrap().len(), 1);
    rt.run_for(secs(1));
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].timestamp, at(600));
}

#[test]
fn held_event_passed_over_by_run_until_idle_ends_at_its_own_deadline() {
    let (clock, rt) = runtime();
    let (held, _starts) = counting("held", secs(30));
    rt.register(held).unwrap();
    // Another function whose retry makes run_until_idle move time to 60 s.
    rt.register(Function::new("busy", |_: &u32, ctx| {
        if ctx.approximate_invoke_count() == 1 {
            return Err(FunctionError::new("Boom", "once"));
        }
        Ok(())
    }))
    .unwrap();
    rt.pause("held").unwrap();
    let id = rt.invoke_async("held", 1).unwrap();
    rt.invoke_async("busy", 1).unwrap();

    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(clock.now(), at(60));
    // Time passed the held event's 30 s deadline on the way: it aged out then, exactly as
    // run_for would have made it (see paused_functions_held_events_age_out_...).
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::EventAgeExceeded);
    assert_eq!(dead[0].timestamp, at(30), "the record is stamped late");
}

#[test]
fn attempt_that_starts_within_the_age_may_finish_past_it_and_succeed() {
    let (clock, rt) = runtime();
    let handler_clock = clock.clone();
    let (ok_tx, successes) = crossbeam_channel::unbounded::<Record>();
    rt.register(
        Function::new("f", move |_: &u32, _ctx| {
            handler_clock.advance(secs(90));
            Ok(())
        })
        .timeout(secs(120))
        .maximum_event_age(secs(60))
        .on_success(Destination::channel(ok_tx)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    clock.advance(secs(59));

    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::Success)
    );
    let record = successes.try_recv().unwrap();
    assert_eq!(record.approximate_invoke_count, 1);
    assert_eq!(record.timestamp, at(149));
}

#[test]
fn held_events_age_out_oldest_first_whatever_their_place_in_the_queue() {
    let (clock, rt) = runtime();
    let (f, starts, failures) = always_failing("f", secs(100));
    rt.register(f).unwrap();
    // `a` fails once: its retry is due at 60 s, behind `b` and `c` accepted later.
    let a = rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: at(60) }
    );
    rt.pause("f").unwrap();
    clock.advance(secs(10));
    let b = rt.invoke_async("f", 2).unwrap();
    clock.advance(secs(10));
    let c = rt.invoke_async("f", 3).unwrap();

    // At 65 s the retry became ready, held, at the back of the line.
    rt.run_for(secs(45));
    let line: Vec<_> = rt
        .inspect_queue("f", |q| q.iter().map(|e| e.request_id()).collect())
        .unwrap();
    assert_eq!(line, vec![b, c, a]);
    let snapshot = rt.queue_snapshot("f").unwrap();
    assert_eq!(snapshot.len(), 3);
    assert!(snapshot.iter().all(|e| e.state == EventState::Held));

    // Each ages out at its own deadline, the oldest first: a at 100 s, b at 110 s, c at 120 s.
    rt.run_for(secs(60));
    let records: Vec<Record> = failures.try_iter().collect();
    let ended: Vec<_> = records
        .iter()
        .map(|r| (r.request_id, r.timestamp))
        .collect();
    assert_eq!(ended, vec![(a, at(100)), (b, at(110)), (c, at(120))]);
    assert!(records
        .iter()
        .all(|r| r.condition == Condition::EventAgeExceeded));
    assert_eq!(records[0].approximate_invoke_count, 1);
    assert_eq!(records[0].error().unwrap().message(), "attempt 1");
    assert!(records[1].error().is_none());
    assert_eq!(starts.try_iter().count(), 1, "only a's first attempt ran");
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn held_events_accepted_at_one_instant_age_out_together_in_queue_order() {
    let (_clock, rt) = runtime();
    let (f, _starts) = counting("f", secs(60));
    rt.register(f).unwrap();
    rt.pause("f").unwrap();
    let ids: Vec<_> = (0..5).map(|n| rt.invoke_async("f", n).unwrap()).collect();

    rt.run_for(secs(61));
    let dead = rt.drain_dead_letters();
    let ended: Vec<_> = dead.iter().map(|r| (r.request_id, r.timestamp)).collect();
    let expected: Vec<_> = ids.iter().map(|&id| (id, at(60))).collect();
    assert_eq!(ended, expected);
}

#[test]
fn thousands_of_held_events_at_distinct_instants_each_age_out_at_their_own_deadline_and_the_rest_run_on_resume(
) {
    const N: u64 = 3_000;
    let (clock, rt) = runtime();
    let (f, starts) = counting("f", secs(60));
    let (fail_tx, failures) = crossbeam_channel::unbounded::<Record>();
    rt.register(f.on_failure(Destination::channel(fail_tx)))
        .unwrap();
    rt.pause("f").unwrap();
    let mut ids = Vec::new();
    for n in 0..N {
        ids.push((rt.invoke_async("f", n as u32).unwrap(), clock.now()));
        clock.advance(Duration::from_millis(10));
    }
    // Two thirds age out, one at a time; the last third is still held.
    let cut = 2 * N / 3;
    rt.run_until(ids[cut as usize].1 + secs(60) - Duration::from_nanos(1));
    let records: Vec<Record> = failures.try_iter().collect();
    let ended: Vec<_> = records
        .iter()
        .map(|r| (r.request_id, r.timestamp))
        .collect();
    let expected: Vec<_> = ids[..cut as usize]
        .iter()
        .map(|&(id, accepted)| (id, accepted + secs(60)))
        .collect();
    assert_eq!(ended, expected);
    let left: Vec<_> = rt
        .queue_snapshot("f")
        .unwrap()
        .iter()
        .map(|e| e.request_id)
        .collect();
    let held: Vec<_> = ids[cut as usize..].iter().map(|&(id, _)| id).collect();
    assert_eq!(left, held);
    assert_eq!(rt.outstanding(), N - cut);

    // Resumed, the rest run in the order they were accepted.
    rt.resume("f").unwrap();
    assert_eq!(rt.run_until_idle(), N - cut);
    assert_eq!(starts.try_iter().count() as u64, N - cut);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), cut);
    assert_eq!(m.outcome(Condition::Success), N - cut);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn a_paused_queue_can_be_edited_and_trimmed_and_resumes_in_its_order() {
    let (clock, rt) = runtime();
    let (log, seen) = crossbeam_channel::unbounded();
    rt.register(Function::new("f", move |n: &u32, _ctx| {
        log.send(*n).unwrap();
        Ok(())
    }))
    .unwrap();
    rt.pause("f").unwrap();
    let ids: Vec<_> = (1..=4)
        .map(|n| {
            clock.advance(secs(1));
            rt.invoke_async("f", n).unwrap()
        })
        .collect();
    assert!(rt.edit_queued("f", ids[2], |n| *n = 30).unwrap());
    assert!(rt.remove_queued("f", ids[1]).unwrap());
    assert_eq!(
        rt.remove_queued_where("f", |e| e.request_id() == ids[3])
            .unwrap(),
        1
    );
    rt.invoke_async("f", 5).unwrap();
    let line: Vec<u32> = rt
        .inspect_queue("f", |q| q.iter().map(|e| *e.payload()).collect())
        .unwrap();
    assert_eq!(line, vec![1, 30, 5]);

    rt.resume("f").unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    assert_eq!(seen.try_iter().collect::<Vec<_>>(), vec![1, 30, 5]);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 2);
}

/// A clock the test moves: the manual clock, or a real one of the test's own.
trait MovedByTest: event_invoke::Clock + Clone {
    fn move_by(&self, d: Duration);
}

impl MovedByTest for ManualClock {
    fn move_by(&self, d: Duration) {
        self.advance(d);
    }
}

/// A paused function holds an event past its maximum age; its on-failure destination takes
/// two seconds (it moves the clock by that much). The age-out happens when the caller next
/// looks at the timers, just before it steps `b`.
fn slow_age_out_then<C: MovedByTest>(
    clock: C,
    step: impl FnOnce(&Runtime<u32>),
) -> (Duration, FunctionMetrics) {
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let in_destination = clock.clone();
    rt.register(
        Function::new("held", |_: &u32, _ctx| Ok(()))
            .maximum_event_age(Duration::from_secs(60))
            .on_failure(Destination::closure(move |_| {
                in_destination.move_by(Duration::from_secs(2))
            })),
    )
    .unwrap();
    let ages = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ages);
    rt.register(
        Function::new("b", move |_: &u32, ctx| {
            seen.lock().unwrap().push(ctx.event_age());
            Ok(())
        })
        .timeout(Duration::from_secs(1)),
    )
    .unwrap();
    rt.pause("held").unwrap();
    rt.invoke_async("held", 1).unwrap();
    clock.move_by(Duration::from_secs(61));
    rt.invoke_async("b", 2).unwrap();
    step(&rt);
    let age = ages.lock().unwrap()[0];
    (age, rt.function_metrics("b").unwrap())
}

#[test]
fn a_step_starts_after_the_records_its_timers_delivered_on_try_dispatch() {
    let (age, b) = slow_age_out_then(ManualClock::new(), |rt| {
        assert!(rt.try_dispatch().is_some());
    });
    // `b` waited through the destination's two seconds and ran none of them.
    assert_eq!(age, Duration::from_secs(2));
    assert_eq!(b.errors, 0, "{b:?}");
    assert_eq!(b.duration_max, Duration::ZERO);
}

#[test]
fn a_step_starts_after_the_records_its_timers_delivered_on_run_until_idle() {
    let (age, b) = slow_age_out_then(ManualClock::new(), |rt| {
        rt.run_until_idle();
    });
    assert_eq!(age, Duration::from_secs(2));
    assert_eq!(b.errors, 0, "{b:?}");
    assert_eq!(b.duration_max, Duration::ZERO);
}

/// A real (not virtual) clock that only the test moves: the workers read it as they read the
/// system clock, and never move it themselves.
#[derive(Clone, Default)]
struct SetClock(Arc<std::sync::atomic::AtomicU64>);

impl MovedByTest for SetClock {
    fn move_by(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap();
        self.0.fetch_add(nanos, std::sync::atomic::Ordering::SeqCst);
    }
}

impl event_invoke::Clock for SetClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[test]
fn a_worker_s_step_starts_after_the_records_its_timers_delivered() {
    // The worker's first look at the timers ages the held event out (two seconds in its
    // destination), then it steps `b`.
    let (age, b) = slow_age_out_then(SetClock::default(), |rt| {
        let workers = rt.spawn_workers(1).unwrap();
        assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
        workers.stop();
    });
    assert_eq!(age, Duration::from_secs(2));
    assert_eq!(b.errors, 0, "{b:?}");
    assert_eq!(b.duration_max, Duration::ZERO);
}

/// A payload whose `Drop` takes two seconds of the test's clock when asked to.
struct SlowDrop(Option<SetClock>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        if let Some(clock) = &self.0 {
            clock.move_by(Duration::from_secs(2));
        }
    }
}

#[test]
fn a_payload_s_drop_is_not_the_next_function_s_handler_time() {
    let clock = SetClock::default();
    let rt: Runtime<SlowDrop> = Runtime::builder()
        .clock(clock.clone())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    rt.register(Function::new("a", |_: &SlowDrop, _ctx| Ok(())))
        .unwrap();
    rt.register(
        Function::new("b", |_: &SlowDrop, _ctx| Ok(()))
            .timeout(Duration::from_secs(1))
            .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.invoke_async("a", SlowDrop(Some(clock.clone()))).unwrap();
    rt.invoke_async("b", SlowDrop(None)).unwrap();
    // One worker runs `a`, drops its payload (two seconds), then runs `b`.
    let workers = rt.spawn_workers(1).unwrap();
    assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
    workers.stop();
    let b = rt.function_metrics("b").unwrap();
    assert_eq!(b.errors, 0, "{b:?}");
    assert_eq!(b.duration_max, Duration::ZERO);
    assert_eq!(b.outcome(Condition::Success), 1);
}
