//! Fault injection: duplicate deliveries, injected function and system errors, late retries,
//! reordering, reproducibility from a seed, and the accounting that must survive all of them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Error, FaultInjection, Function, FunctionError, FunctionMetrics, InvocationRecord,
    ManualClock, OutcomeAudit, RequestId, RetryPolicy, Runtime, RuntimeBuilder, StepOutcome,
    Timestamp, TraceEvent, TraceKind, ZeroConcurrency,
};

fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// Every record made, in order.
type Records = Arc<Mutex<Vec<InvocationRecord<u32, ()>>>>;

/// A builder on a manual clock, with every record kept for inspection.
fn builder(clock: &ManualClock) -> (RuntimeBuilder<u32, ()>, Records) {
    let records: Records = Arc::default();
    let sink = Arc::clone(&records);
    let b = Runtime::builder()
        .clock(clock.clone())
        .on_record(move |r: &InvocationRecord<u32, ()>| sink.lock().unwrap().push(r.clone()));
    (b, records)
}

/// One handler run as the handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    payload: u32,
    id: RequestId,
    attempt: u32,
    duplicate: bool,
    at: Timestamp,
}

type Runs = Arc<Mutex<Vec<Run>>>;

type Handler = Box<
    dyn Fn(&u32, &event_invoke::Context<'_, u32, ()>) -> Result<(), FunctionError> + Send + Sync,
>;

/// A handler that logs each run, then answers `outcome(payload, attempt, duplicate)`.
fn logged(
    outcome: impl Fn(&u32, u32, bool) -> Result<(), FunctionError> + Send + Sync + 'static,
) -> (Handler, Runs) {
    let runs: Runs = Arc::default();
    let seen = Arc::clone(&runs);
    let handler: Handler = Box::new(move |p: &u32, ctx: &event_invoke::Context<'_, u32, ()>| {
        seen.lock().unwrap().push(Run {
            payload: *p,
            id: ctx.request_id(),
            attempt: ctx.approximate_invoke_count(),
            duplicate: ctx.is_duplicate(),
            at: ctx.started_at(),
        });
        outcome(p, ctx.approximate_invoke_count(), ctx.is_duplicate())
    });
    (handler, runs)
}

/// Registers `name` with a [`logged`] handler and default settings.
fn register_logged(
    rt: &Runtime<u32>,
    name: &str,
    outcome: impl Fn(&u32, u32, bool) -> Result<(), FunctionError> + Send + Sync + 'static,
) -> Runs {
    let (handler, runs) = logged(outcome);
    rt.register(Function::new(name, handler)).unwrap();
    runs
}

fn ok(_: &u32, _: u32, _: bool) -> Result<(), FunctionError> {
    Ok(())
}

fn boom() -> FunctionError {
    FunctionError::new("Boom", "the handler failed")
}

fn exact_throttles() -> RetryPolicy {
    RetryPolicy::builder().throttle_jitter(0.0).build().unwrap()
}

fn assert_balanced(m: &FunctionMetrics) {
    assert!(m.is_balanced(), "accounting out of balance: {m:#?}");
}

// ----- duplicate delivery ------------------------------------------------------------------

#[test]
fn a_duplicate_delivery_runs_the_handler_again_with_the_same_request_id_and_invoke_count() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(1).duplicates(1.0))
        .build()
        .unwrap();
    let runs = register_logged(&rt, "f", ok);
    let ids: Vec<_> = (0..3).map(|i| rt.invoke_async("f", i).unwrap()).collect();
    rt.run_until_idle();

    let runs = runs.lock().unwrap().clone();
    assert_eq!(
        runs.len(),
        6,
        "each event twice, never a duplicate of a duplicate: {runs:?}"
    );
    for id in &ids {
        let of_id: Vec<_> = runs.iter().filter(|r| r.id == *id).collect();
        assert_eq!(of_id.len(), 2, "{of_id:?}");
        assert!(!of_id[0].duplicate && of_id[1].duplicate, "{of_id:?}");
        assert_eq!(of_id[0].attempt, 1);
        assert_eq!(of_id[1].attempt, 1, "a duplicate keeps the invoke count");
        assert_eq!(of_id[0].payload, of_id[1].payload);
    }

    let records = records.lock().unwrap();
    assert_eq!(
        records.len(),
        3,
        "one record per event, none for a duplicate"
    );
    for r in records.iter() {
        assert_eq!(r.condition, Condition::Success);
        assert_eq!(r.approximate_invoke_count, 1);
    }
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.duplicates, 3);
    assert_eq!(m.duplicates_finished, 3);
    assert_eq!(m.outcome(Condition::Success), 3);
    assert_eq!(m.finished(), 3);
    assert_eq!(m.invocations, 6);
    assert_eq!(m.injected_errors, 0);
    assert_balanced(&m);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn a_duplicate_is_injected_only_after_a_success_and_keeps_the_successful_invoke_count() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(2).duplicates(1.0))
        .build()
        .unwrap();
    // Payload 0 always fails; payload 1 fails on its first attempt only.
    let runs = register_logged(&rt, "f", |p, attempt, _| {
        if *p == 0 || attempt == 1 {
            Err(boom())
        } else {
            Ok(())
        }
    });
    let failing = rt.invoke_async("f", 0).unwrap();
    let flaky = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let runs = runs.lock().unwrap().clone();
    let failing_runs: Vec<_> = runs.iter().filter(|r| r.id == failing).collect();
    assert_eq!(failing_runs.len(), 3, "{failing_runs:?}");
    assert!(
        failing_runs.iter().all(|r| !r.duplicate),
        "no duplicate after a failure"
    );

    let flaky_runs: Vec<_> = runs
        .iter()
        .filter(|r| r.id == flaky)
        .map(|r| (r.attempt, r.duplicate))
        .collect();
    assert_eq!(flaky_runs, vec![(1, false), (2, false), (2, true)]);

    let records = records.lock().unwrap();
    let flaky_record = records.iter().find(|r| r.request_id == flaky).unwrap();
    assert_eq!(flaky_record.condition, Condition::Success);
    assert_eq!(flaky_record.approximate_invoke_count, 2);
    assert_eq!(records.len(), 2);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.duplicates, m.duplicates_finished), (1, 1));
    assert_balanced(&m);
}

#[test]
fn a_failing_duplicate_is_never_retried_and_makes_no_second_record() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(3).duplicates(1.0))
        .build()
        .unwrap();
    let runs = register_logged(
        &rt,
        "f",
        |_, _, duplicate| {
            if duplicate {
                Err(boom())
            } else {
                Ok(())
            }
        },
    );
    let id = rt.invoke_async("f", 7).unwrap();
    rt.run_until_idle();

    assert_eq!(runs.lock().unwrap().len(), 2);
    assert_eq!(clock.now(), Timestamp::ZERO, "no retry was scheduled");
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].request_id, id);
    assert_eq!(records[0].condition, Condition::Success);
    assert!(rt.drain_dead_letters().is_empty());
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.errors, 1);
    assert_eq!(m.retries, 0);
    assert_eq!(m.finished(), 1);
    assert_eq!(m.dropped(), 0);
    assert_eq!((m.duplicates, m.duplicates_finished), (1, 1));
    assert_eq!(m.queue_depth(), 0);
    assert_balanced(&m);
}

/// A runtime with one function whose first event has run and whose duplicate now waits.
fn with_waiting_duplicate(
    retry: RetryPolicy,
) -> (
    ManualClock,
    Runtime<u32>,
    Records,
    Runs,
    RequestId,
    OutcomeAudit,
) {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let (b, records) = builder(&clock);
    let rt = b
        .on_trace(audit.tracer())
        .fault_injection(FaultInjection::new(4).duplicates(1.0))
        .build()
        .unwrap();
    let (handler, runs) = logged(ok);
    rt.register(Function::new("f", handler).retry_policy(retry))
        .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.outcome, StepOutcome::Ended(Condition::Success));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(
        (m.duplicates, m.duplicates_finished, m.queue_ready),
        (1, 0, 1)
    );
    assert_balanced(&m);
    assert_eq!(
        rt.outstanding(),
        1,
        "the waiting duplicate is outstanding work"
    );
    (clock, rt, records, runs, id, audit)
}

fn assert_only_the_success_was_recorded(
    records: &Records,
    id: RequestId,
    audit: &OutcomeAudit,
    m: &FunctionMetrics,
) {
    let records = records.lock().unwrap();
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.request_id, r.condition))
        .collect();
    assert_eq!(seen, vec![(id, Condition::Success)]);
    assert_eq!(audit.endings(id), vec![(Condition::Success, 1)]);
    audit.assert_each_ended_once();
    assert_eq!(m.finished(), 1);
    assert_eq!(m.outcome(Condition::Success), 1);
    assert_eq!((m.duplicates, m.duplicates_finished), (1, 1));
    assert_eq!(m.queue_depth(), 0);
    assert_balanced(m);
}

#[test]
fn purging_a_waiting_duplicate_makes_no_record() {
    let (_clock, rt, records, runs, id, audit) = with_waiting_duplicate(RetryPolicy::default());
    rt.purge("f").unwrap();
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(
        runs.lock().unwrap().len(),
        1,
        "the purged duplicate never ran"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 0);
    assert_only_the_success_was_recorded(&records, id, &audit, &m);
}

#[test]
fn removing_a_waiting_duplicate_by_its_request_id_makes_no_record() {
    let (_clock, rt, records, _runs, id, audit) = with_waiting_duplicate(RetryPolicy::default());
    assert!(rt.remove_queued("f", id).unwrap());
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 0);
    assert_only_the_success_was_recorded(&records, id, &audit, &m);
}

#[test]
fn deleting_a_function_with_a_waiting_duplicate_makes_no_record_for_it() {
    let (_clock, rt, records, runs, id, audit) = with_waiting_duplicate(RetryPolicy::default());
    rt.delete("f").unwrap();
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(runs.lock().unwrap().len(), 1);
    let m = rt.metrics().total; // deleted functions still count in the totals
    assert_eq!(m.outcome(Condition::FunctionDeleted), 0);
    assert_only_the_success_was_recorded(&records, id, &audit, &m);
}

#[test]
fn a_duplicate_that_ages_out_before_it_runs_makes_no_record() {
    let age = RetryPolicy::builder()
        .maximum_event_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let (clock, rt, records, runs, id, audit) = with_waiting_duplicate(age);
    clock.advance(Duration::from_secs(61));
    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.request_id, id);
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(
        runs.lock().unwrap().len(),
        1,
        "the aged-out duplicate never ran"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 0);
    assert_only_the_success_was_recorded(&records, id, &audit, &m);
}

#[test]
fn a_duplicate_held_by_a_pause_that_ages_out_makes_no_record() {
    let (clock, rt, records, runs, id, audit) = with_waiting_duplicate(RetryPolicy::default());
    rt.pause("f").unwrap();
    rt.run_for(Duration::from_secs(7 * 3600));
    assert_eq!(clock.now(), secs(7 * 3600));
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(runs.lock().unwrap().len(), 1);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 0);
    assert_only_the_success_was_recorded(&records, id, &audit, &m);
}

#[test]
fn duplicate_when_duplicates_exactly_the_chosen_events() {
    let clock = ManualClock::new();
    let chosen: Arc<Mutex<HashSet<RequestId>>> = Arc::default();
    let pick = Arc::clone(&chosen);
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(
            FaultInjection::new(5).duplicate_when(move |id| pick.lock().unwrap().contains(&id)),
        )
        .build()
        .unwrap();
    // Payload 5 always fails: chosen, but never duplicated, since only a success is.
    let runs = register_logged(
        &rt,
        "f",
        |p, _, _| {
            if *p == 5 {
                Err(boom())
            } else {
                Ok(())
            }
        },
    );
    let ids: Vec<_> = (0..10).map(|i| rt.invoke_async("f", i).unwrap()).collect();
    chosen.lock().unwrap().extend([ids[2], ids[5], ids[7]]);
    rt.run_until_idle();

    let runs = runs.lock().unwrap().clone();
    for (i, id) in ids.iter().enumerate() {
        let of_id: Vec<_> = runs.iter().filter(|r| r.id == *id).collect();
        let duplicates = of_id.iter().filter(|r| r.duplicate).count();
        let expected = usize::from(i == 2 || i == 7);
        assert_eq!(duplicates, expected, "event {i}: {of_id:?}");
        let expected_runs = if i == 5 { 3 } else { 1 + expected };
        assert_eq!(of_id.len(), expected_runs, "event {i}: {of_id:?}");
    }
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.duplicates, m.duplicates_finished), (2, 2));
    assert_eq!(records.lock().unwrap().len(), 10);
    assert_balanced(&m);
}

#[test]
fn accounting_stays_balanced_at_every_step_with_duplicates_and_injected_errors() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(
            FaultInjection::new(6)
                .duplicates(0.7)
                .function_errors(0.3)
                .system_errors(0.2)
                .retry_delay(Duration::from_secs(5))
                .reorder(0.5),
        )
        .build()
        .unwrap();
    register_logged(&rt, "f", |p, attempt, _| {
        if p % 4 == 0 && attempt == 1 {
            Err(boom())
        } else {
            Ok(())
        }
    });
    register_logged(&rt, "g", ok);
    for i in 0..20 {
        rt.invoke_async(if i % 3 == 0 { "g" } else { "f" }, i)
            .unwrap();
    }
    let mut steps = 0;
    while rt.outstanding() > 0 {
        match rt.try_dispatch() {
            Some(_) => steps += 1,
            None => clock.advance(Duration::from_secs(1)),
        }
        let all = rt.metrics();
        for m in all.functions.iter().chain([&all.total]) {
            assert_balanced(m);
        }
        assert!(clock.now() < secs(6 * 3600), "the run does not end");
    }
    let m = rt.metrics().total;
    assert!(steps > 20);
    assert!(m.duplicates > 0, "{m:#?}");
    assert!(m.injected_errors > 0, "{m:#?}");
    assert_eq!(m.duplicates, m.duplicates_finished);
    assert_eq!(m.finished(), 20);
    assert_eq!(m.events_received, 20);
    assert_eq!(records.lock().unwrap().len(), 20);
    assert_balanced(&m);
}

#[test]
fn every_error_is_a_retry_an_exhausted_event_or_a_duplicate_s_under_faults() {
    // An error on an injected duplicate delivery brings no retry and no record (its event
    // already ended): it is counted apart, and the identity holds whatever the faults.
    let mut duplicate_errors = 0;
    for seed in 0..8 {
        let clock = ManualClock::new();
        let (b, records) = builder(&clock);
        let rt = b
            .fault_injection(
                FaultInjection::new(seed)
                    .duplicates(0.6)
                    .function_errors(0.3)
                    .system_errors(0.1)
                    .retry_delay(Duration::from_secs(5))
                    .reorder(0.5),
            )
            .build()
            .unwrap();
        // Real failures too, on first attempts and on duplicates.
        register_logged(&rt, "f", |p, attempt, duplicate| {
            if (p % 5 == 0 && attempt == 1) || (p % 7 == 0 && duplicate) {
                Err(boom())
            } else {
                Ok(())
            }
        });
        for i in 0..40 {
            rt.invoke_async("f", i).unwrap();
        }
        rt.run_until_idle();
        let m = rt.function_metrics("f").unwrap();
        assert_eq!(m.finished(), 40);
        assert_eq!(records.lock().unwrap().len(), 40);
        assert_eq!(
            m.errors,
            m.retries + m.outcome(Condition::RetriesExhausted) + m.duplicate_errors,
            "seed {seed}: {m:#?}"
        );
        assert!(m.duplicate_errors <= m.duplicates_finished, "{m:#?}");
        duplicate_errors += m.duplicate_errors;
    }
    assert!(duplicate_errors > 0, "no duplicate ever failed");
}

// ----- injected function errors -------------------------------------------------------------

#[test]
fn an_injected_function_error_replaces_a_success_after_the_handler_ran() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(7).function_errors(1.0))
        .build()
        .unwrap();
    let (handler, runs) = logged(ok);
    rt.register(Function::new("f", handler).maximum_retry_attempts(1))
        .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let runs = runs.lock().unwrap().clone();
    assert_eq!(
        runs.iter().map(|r| (r.id, r.attempt)).collect::<Vec<_>>(),
        vec![(id, 1), (id, 2)],
        "the handler ran (its side effect happened) and the event was retried"
    );
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].condition, Condition::RetriesExhausted);
    assert_eq!(records[0].approximate_invoke_count, 2);
    assert_eq!(
        records[0].error().unwrap().error_type(),
        "Injected.FunctionError"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.injected_errors, 2);
    assert_eq!(m.errors, 2);
    assert_eq!(m.retries, 1);
    assert_eq!(m.throttles, 0);
    assert_eq!(m.invocations, 2);
    assert_balanced(&m);
}

#[test]
fn a_function_error_injected_three_times_in_a_row_ends_retries_exhausted_with_count_three() {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let (b, records) = builder(&clock);
    let rt = b
        .on_trace(audit.tracer())
        .fault_injection(FaultInjection::new(8).function_errors(1.0))
        .build()
        .unwrap();
    let runs = register_logged(&rt, "f", ok);
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    audit.assert_ended(id, Condition::RetriesExhausted, 3);
    assert_eq!(
        clock.now(),
        secs(180),
        "retried after 60 s and 120 s like any error"
    );
    assert_eq!(runs.lock().unwrap().len(), 3);
    let records = records.lock().unwrap();
    assert_eq!(records[0].approximate_invoke_count, 3);
    assert_eq!(
        records[0].error().unwrap().error_type(),
        "Injected.FunctionError"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.injected_errors, m.errors, m.retries), (3, 3, 2));
    assert_eq!(m.outcome(Condition::RetriesExhausted), 1);
}

#[test]
fn injected_function_errors_are_retried_with_the_same_request_id_until_a_success() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(9).function_errors(0.5))
        .build()
        .unwrap();
    let runs = register_logged(&rt, "f", ok);
    for i in 0..30 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();

    let runs = runs.lock().unwrap().clone();
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 30);
    let mut retried_then_succeeded = 0;
    for r in records.iter() {
        let attempts: Vec<_> = runs
            .iter()
            .filter(|run| run.id == r.request_id)
            .map(|run| run.attempt)
            .collect();
        let expected: Vec<_> = (1..=r.approximate_invoke_count).collect();
        assert_eq!(attempts, expected, "{r:?}");
        match r.condition {
            Condition::Success if r.approximate_invoke_count > 1 => retried_then_succeeded += 1,
            Condition::Success => {}
            Condition::RetriesExhausted => {
                assert_eq!(r.approximate_invoke_count, 3);
                assert_eq!(r.error().unwrap().error_type(), "Injected.FunctionError");
            }
            other => panic!("unexpected {other}: {r:?}"),
        }
    }
    assert!(retried_then_succeeded > 0);
    let m = rt.function_metrics("f").unwrap();
    assert!(m.injected_errors > 0);
    assert_eq!(
        m.errors, m.injected_errors,
        "the handler itself never failed"
    );
    // Every error is followed by a retry, but the last one of an exhausted event.
    assert_eq!(m.retries, m.errors - m.outcome(Condition::RetriesExhausted));
    assert_eq!(m.invocations, runs.len() as u64);
}

#[test]
fn an_injected_function_error_never_replaces_a_real_failure() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(10).function_errors(1.0))
        .build()
        .unwrap();
    register_logged(&rt, "f", |_, _, _| Err(boom()));
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    let records = records.lock().unwrap();
    assert_eq!(records[0].condition, Condition::RetriesExhausted);
    assert_eq!(records[0].error().unwrap().error_type(), "Boom");
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.injected_errors, 0);
    assert_eq!(m.errors, 3);
}

// ----- injected system errors ---------------------------------------------------------------

#[test]
fn an_injected_system_error_fails_the_attempt_before_the_handler_runs_like_a_throttle() {
    let clock = ManualClock::new();
    let trace: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&trace);
    let (b, records) = builder(&clock);
    let rt = b
        .on_trace(move |e: &TraceEvent<'_>| {
            let real_throttle = matches!(
                e.kind,
                TraceKind::Throttled {
                    injected: false,
                    ..
                }
            );
            let tag = if real_throttle { "REAL THROTTLE " } else { "" };
            sink.lock().unwrap().push(format!("{tag}{e}"));
        })
        .fault_injection(FaultInjection::new(11).system_errors(1.0))
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .throttle_jitter(0.0)
        .maximum_event_age(Duration::from_secs(600))
        .build()
        .unwrap();
    let (handler, runs) = logged(ok);
    rt.register(Function::new("f", handler).retry_policy(policy))
        .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    let first = rt.try_dispatch().unwrap();
    assert_eq!(first.outcome, StepOutcome::Throttled { due: secs(1) });
    clock.set(secs(1));
    let second = rt.try_dispatch().unwrap();
    assert_eq!(
        second.outcome,
        StepOutcome::Throttled { due: secs(3) },
        "backoff doubles like a throttle's"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.injected_errors, 2);
    assert_eq!(m.throttles, 0, "counted as injected errors, not throttles");
    assert_eq!((m.invocations, m.errors, m.retries), (0, 0, 0));
    let waiting = &rt.queue_snapshot("f").unwrap()[0];
    assert_eq!((waiting.attempts, waiting.throttles), (0, 2));
    {
        let trace = trace.lock().unwrap();
        assert!(
            trace
                .iter()
                .any(|l| l.contains("injected system error, back off until 1s")),
            "{trace:#?}"
        );
        assert!(
            !trace.iter().any(|l| l.contains("REAL THROTTLE")),
            "{trace:#?}"
        );
        assert!(!trace.iter().any(|l| l.contains("started")), "{trace:#?}");
    }

    rt.run_until_idle();
    assert!(runs.lock().unwrap().is_empty(), "the handler never ran");
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].request_id, id);
    assert_eq!(records[0].condition, Condition::EventAgeExceeded);
    assert_eq!(records[0].approximate_invoke_count, 0);
    let m = rt.function_metrics("f").unwrap();
    assert!(m.injected_errors > 2);
    assert_eq!(m.throttles, 0);
    assert_balanced(&m);
}

#[test]
fn injected_system_errors_use_up_no_retry_attempt() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(12).system_errors(0.6))
        .build()
        .unwrap();
    let (handler, runs) = logged(|_, _, _| Err(boom()));
    rt.register(Function::new("f", handler).maximum_retry_attempts(0))
        .unwrap();
    for i in 0..20 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let m = rt.function_metrics("f").unwrap();
    assert!(m.injected_errors > 0, "{m:#?}");
    assert_eq!(m.throttles, 0);
    assert_eq!(runs.lock().unwrap().len(), 20, "every event ran once");
    for r in records.lock().unwrap().iter() {
        assert_eq!(r.condition, Condition::RetriesExhausted, "{r:?}");
        assert_eq!(r.approximate_invoke_count, 1);
        assert_eq!(r.error().unwrap().error_type(), "Boom");
    }
}

// ----- late retries ---------------------------------------------------------------------------

#[test]
fn retry_delay_adds_up_to_its_maximum_to_every_retry_wait() {
    let max = Duration::from_secs(30);
    let mut extras = Vec::new();
    for seed in 0..10 {
        let clock = ManualClock::new();
        let (b, _) = builder(&clock);
        let rt = b
            .fault_injection(FaultInjection::new(seed).retry_delay(max))
            .build()
            .unwrap();
        register_logged(&rt, "f", |_, _, _| Err(boom()));
        rt.invoke_async("f", 1).unwrap();
        let StepOutcome::RetryScheduled { due: first } = rt.try_dispatch().unwrap().outcome else {
            panic!("a retry after the first failure")
        };
        clock.set(first);
        let StepOutcome::RetryScheduled { due: second } = rt.try_dispatch().unwrap().outcome else {
            panic!("a retry after the second failure")
        };
        let extra1 = first - secs(60);
        let extra2 = (second - first)
            .checked_sub(Duration::from_secs(120))
            .expect("never earlier than the policy's wait");
        assert!(first >= secs(60) && extra1 <= max, "seed {seed}: {first:?}");
        assert!(extra2 <= max, "seed {seed}: {second:?}");
        extras.push(extra1);
        extras.push(extra2);
    }
    assert!(extras.iter().any(|e| !e.is_zero()), "{extras:?}");
    extras.dedup();
    assert!(
        extras.len() > 1,
        "the extra wait is drawn, not fixed: {extras:?}"
    );
}

#[test]
fn retry_delay_adds_up_to_its_maximum_to_every_throttle_wait() {
    let max = Duration::from_secs(10);
    let mut extras = Vec::new();
    for seed in 0..10 {
        let clock = ManualClock::new();
        let (b, _) = builder(&clock);
        let rt = b
            .zero_concurrency(ZeroConcurrency::Throttle)
            .fault_injection(FaultInjection::new(seed).retry_delay(max))
            .build()
            .unwrap();
        let (handler, _) = logged(ok);
        rt.register(
            Function::new("f", handler)
                .retry_policy(exact_throttles())
                .reserved_concurrency(0),
        )
        .unwrap();
        rt.invoke_async("f", 1).unwrap();
        for nominal in [1, 2, 4, 8] {
            let now = clock.now();
            let StepOutcome::Throttled { due } = rt.try_dispatch().unwrap().outcome else {
                panic!("reserved concurrency 0 throttles")
            };
            let extra = (due - now)
                .checked_sub(Duration::from_secs(nominal))
                .expect("never earlier than the backoff");
            assert!(extra <= max, "seed {seed}: {extra:?}");
            extras.push(extra);
            clock.set(due);
        }
        let m = rt.function_metrics("f").unwrap();
        assert_eq!((m.throttles, m.injected_errors), (4, 0));
    }
    assert!(extras.iter().any(|e| !e.is_zero()), "{extras:?}");
}

#[test]
fn retry_delay_also_delays_the_backoff_after_an_injected_system_error() {
    let clock = ManualClock::new();
    let (b, _) = builder(&clock);
    let rt = b
        .fault_injection(
            FaultInjection::new(13)
                .system_errors(1.0)
                .retry_delay(Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    let (handler, _) = logged(ok);
    rt.register(Function::new("f", handler).retry_policy(exact_throttles()))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    let mut extras = Vec::new();
    for nominal in [1, 2, 4, 8, 16] {
        let now = clock.now();
        let StepOutcome::Throttled { due } = rt.try_dispatch().unwrap().outcome else {
            panic!("a system error backs off")
        };
        let extra = (due - now)
            .checked_sub(Duration::from_secs(nominal))
            .unwrap();
        assert!(extra <= Duration::from_secs(10));
        extras.push(extra);
        clock.set(due);
    }
    assert!(extras.iter().any(|e| !e.is_zero()), "{extras:?}");
}

// ----- reordering ------------------------------------------------------------------------------

fn run_order(faults: Option<FaultInjection>) -> Vec<Run> {
    let clock = ManualClock::new();
    let (mut b, _) = builder(&clock);
    if let Some(faults) = faults {
        b = b.fault_injection(faults);
    }
    let rt = b.build().unwrap();
    // Payload 0 fails once: its retry waits 60 s and must not be taken before it is due.
    let runs = register_logged(&rt, "f", |p, attempt, _| {
        if *p == 0 && attempt == 1 {
            Err(boom())
        } else {
            Ok(())
        }
    });
    for i in 0..10 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let runs = runs.lock().unwrap().clone();
    runs
}

#[test]
fn reorder_takes_a_random_ready_event_instead_of_the_oldest() {
    let fifo: Vec<u32> = (0..10).chain([0]).collect();
    let plain_order: Vec<_> = run_order(None).iter().map(|r| r.payload).collect();
    assert_eq!(
        plain_order, fifo,
        "without injection, the oldest ready event goes first"
    );

    let mut orders = HashSet::new();
    for seed in 0..5 {
        let runs = run_order(Some(FaultInjection::new(seed).reorder(1.0)));
        let order: Vec<_> = runs.iter().map(|r| r.payload).collect();
        assert_ne!(order, fifo, "seed {seed}");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            "every event, once (+ the retry)"
        );
        let retry = runs
            .iter()
            .find(|r| r.payload == 0 && r.attempt == 2)
            .unwrap();
        assert_eq!(
            retry.at,
            secs(60),
            "a delayed event is not ready before it is due"
        );
        orders.insert(order);
    }
    assert!(orders.len() > 1, "different seeds, different orders");
}

// ----- reproducibility --------------------------------------------------------------------------

fn traced_run(faults: Option<FaultInjection>) -> (Vec<String>, FunctionMetrics) {
    let clock = ManualClock::new();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let (mut b, _) = builder(&clock);
    b = b
        .zero_concurrency(ZeroConcurrency::Throttle)
        .on_trace(move |e: &TraceEvent<'_>| {
            sink.lock().unwrap().push(format!("{} {e}", e.request_id));
        });
    if let Some(faults) = faults {
        b = b.fault_injection(faults);
    }
    let rt = b.build().unwrap();
    register_logged(&rt, "f", |p, attempt, _| {
        if p % 4 == 0 && attempt < 3 {
            Err(boom())
        } else {
            Ok(())
        }
    });
    register_logged(&rt, "g", |p, attempt, _| {
        if p % 3 == 0 && attempt == 1 {
            Err(boom())
        } else {
            Ok(())
        }
    });
    // A function that throttles for a while (real throttles, with jitter), then runs.
    let (handler, _) = logged(ok);
    rt.register(Function::new("h", handler).reserved_concurrency(0))
        .unwrap();
    for i in 0..12 {
        rt.invoke_async("f", i).unwrap();
        rt.invoke_async("g", i).unwrap();
    }
    for i in 0..3 {
        rt.invoke_async("h", i).unwrap();
    }
    rt.run_for(Duration::from_secs(30));
    rt.set_reserved_concurrency("h", None).unwrap();
    rt.run_until_idle();
    let m = rt.metrics().total;
    assert_eq!(m.finished(), 27);
    let lines = lines.lock().unwrap().clone();
    (lines, m)
}

fn every_fault(seed: u64) -> FaultInjection {
    FaultInjection::new(seed)
        .duplicates(0.3)
        .function_errors(0.3)
        .system_errors(0.2)
        .retry_delay(Duration::from_secs(20))
        .reorder(0.5)
}

#[test]
fn the_same_seed_replays_the_exact_same_trace() {
    let (first, m1) = traced_run(Some(every_fault(42)));
    let (second, m2) = traced_run(Some(every_fault(42)));
    assert!(m1.duplicates > 0 && m1.injected_errors > 0, "{m1:#?}");
    assert_eq!(first, second);
    assert_eq!(m1, m2);
}

#[test]
fn different_seeds_give_different_traces() {
    let (a, _) = traced_run(Some(every_fault(42)));
    let (b, _) = traced_run(Some(every_fault(43)));
    let (c, _) = traced_run(Some(every_fault(42).with_seed(44)));
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
    assert_eq!(every_fault(42).with_seed(44).seed(), 44);
}

#[test]
fn zero_faults_configured_behave_exactly_like_no_injection() {
    let (without, m_without) = traced_run(None);
    let (zero, m_zero) = traced_run(Some(FaultInjection::new(99)));
    let (explicit, m_explicit) = traced_run(Some(
        FaultInjection::new(7)
            .duplicates(0.0)
            .function_errors(0.0)
            .system_errors(0.0)
            .retry_delay(Duration::ZERO)
            .reorder(0.0),
    ));
    assert!(
        m_without.retries > 0 && m_without.throttles > 0,
        "{m_without:#?}"
    );
    assert_eq!(without, zero);
    assert_eq!(without, explicit);
    assert_eq!(m_without, m_zero);
    assert_eq!(m_without, m_explicit);
    assert_eq!((m_zero.duplicates, m_zero.injected_errors), (0, 0));
}

#[test]
fn a_success_on_a_function_deleted_meanwhile_gets_no_duplicate() {
    let clock = ManualClock::new();
    let (b, records) = builder(&clock);
    let rt = b
        .fault_injection(FaultInjection::new(14).duplicates(1.0))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&runs);
    rt.register(Function::new("f", move |_: &u32, ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        ctx.runtime().unwrap().delete(ctx.function_name()).unwrap();
        Ok(())
    }))
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        rt.outstanding(),
        0,
        "no duplicate waits in a deleted function's queue"
    );
    let seen: Vec<_> = records
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.request_id, r.condition))
        .collect();
    assert_eq!(seen, vec![(id, Condition::Success)]);
    let m = rt.metrics().total;
    assert_eq!((m.duplicates, m.duplicates_finished), (0, 0));
    assert_eq!(m.queue_depth(), 0);
    assert_balanced(&m);
}

// ----- settings ----------------------------------------------------------------------------------

#[test]
fn probabilities_outside_zero_to_one_are_refused_at_build_naming_the_field() {
    let cases = [
        (FaultInjection::new(0).duplicates(1.5), "duplicates"),
        (
            FaultInjection::new(0).duplicates(f64::INFINITY),
            "duplicates",
        ),
        (
            FaultInjection::new(0).function_errors(-0.1),
            "function_errors",
        ),
        (
            FaultInjection::new(0).system_errors(f64::NAN),
            "system_errors",
        ),
        (FaultInjection::new(0).reorder(2.0), "reorder"),
        (FaultInjection::new(0).reorder(f64::NAN), "reorder"),
        (
            FaultInjection::new(0).retry_delay(Duration::from_secs(25 * 3600)),
            "retry_delay",
        ),
    ];
    for (faults, expected) in cases {
        let shown = format!("{faults:?}");
        let err = Runtime::<u32>::builder()
            .clock(ManualClock::new())
            .fault_injection(faults)
            .build()
            .unwrap_err();
        match &err {
            Error::InvalidConfig { field, .. } => assert_eq!(*field, expected, "{shown}"),
            other => panic!("{shown}: expected InvalidConfig, got {other:?}"),
        }
        assert!(err.to_string().contains(expected), "{err}");
    }
    for p in [0.0, 1.0] {
        Runtime::<u32>::builder()
            .fault_injection(
                FaultInjection::new(0)
                    .duplicates(p)
                    .function_errors(p)
                    .system_errors(p)
                    .reorder(p)
                    .retry_delay(Duration::from_secs(24 * 3600)),
            )
            .build()
            .unwrap();
    }
}

// ----- several worker threads --------------------------------------------------------------------

#[test]
fn injection_on_three_worker_threads_still_ends_every_request_exactly_once() {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .on_trace(audit.tracer())
        .keep_dead_letters(false)
        .fault_injection(every_fault(21).duplicates(0.4))
        .build()
        .unwrap();
    let runs: Arc<Mutex<HashMap<RequestId, u32>>> = Arc::default();
    let concurrent = Arc::new(AtomicU32::new(0));
    for (name, reserved) in [("a", Some(2)), ("b", None)] {
        let seen = Arc::clone(&runs);
        let now = Arc::clone(&concurrent);
        let mut f = Function::new(name, move |p: &u32, ctx| {
            now.fetch_add(1, Ordering::SeqCst);
            *seen.lock().unwrap().entry(ctx.request_id()).or_default() += 1;
            std::thread::yield_now();
            now.fetch_sub(1, Ordering::SeqCst);
            if p % 5 == 0 && ctx.approximate_invoke_count() == 1 {
                return Err(boom());
            }
            Ok(())
        })
        .timeout(Duration::from_secs(24 * 3600));
        if let Some(n) = reserved {
            f = f.reserved_concurrency(n);
        }
        rt.register(f).unwrap();
    }
    let workers = rt.spawn_workers(3).unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            rt.invoke_async(if i % 2 == 0 { "a" } else { "b" }, i)
                .unwrap(),
        );
    }
    let mut rounds = 0;
    while !rt.wait_idle_timeout(Duration::from_millis(2)) {
        clock.advance(Duration::from_secs(5));
        rounds += 1;
        assert!(rounds < 20_000, "the runtime never became idle");
    }
    workers.stop();

    audit.assert_each_ended_once();
    assert_eq!(audit.accepted().len(), 100);
    let m = rt.metrics().total;
    assert_eq!(m.events_received, 100);
    assert_eq!(m.finished(), 100);
    assert_eq!(m.duplicates, m.duplicates_finished);
    assert!(m.duplicates > 0 && m.injected_errors > 0, "{m:#?}");
    assert_eq!((m.queue_depth(), m.in_flight_events), (0, 0));
    assert_balanced(&m);
    for f in &rt.metrics().functions {
        assert_balanced(f);
    }
    assert!(rt.function_metrics("a").unwrap().peak_concurrent_executions <= 2);
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 100, "every event ran");
    assert_eq!(
        runs.values().map(|n| u64::from(*n)).sum::<u64>(),
        m.invocations
    );
}
