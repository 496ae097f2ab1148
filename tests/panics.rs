//! Panicking handlers, destinations and observers: a panic is a function error or a failed
//! delivery, never a lost permit, a dead worker or a lost event. A worker that does die (of a
//! panic outside the engine's guards) is reported when its pool is stopped or dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Destination, ErrorKind, FaultInjection, Function, FunctionError, InvocationRecord,
    InvokeSyncError, ManualClock, RetryPolicy, Runtime, StepOutcome,
};

mod common;
use common::sink;

fn runtime<P: Send + 'static>() -> Runtime<P> {
    Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

#[test]
fn panicking_handler_is_an_unhandled_function_error_carrying_the_panic_message() {
    let rt = runtime::<u32>();
    let (on_failure, records) = sink();
    rt.register(
        Function::new("f", |n: &u32, _ctx| -> Result<(), FunctionError> {
            panic!("disk on fire: {n}")
        })
        .on_failure(on_failure),
    )
    .unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { .. }
    ));
    rt.run_until_idle();

    let r = records.try_recv().unwrap();
    assert_eq!(r.request_id, id);
    assert_eq!(r.condition, Condition::RetriesExhausted);
    assert_eq!(r.approximate_invoke_count, 3);
    let e = r.error().unwrap();
    assert_eq!(e.error_type(), FunctionError::PANIC);
    assert_eq!(e.kind(), ErrorKind::Unhandled);
    assert_eq!(e.message(), "disk on fire: 7");

    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (3, 3, 2));
    assert_eq!(m.concurrent_executions, 0);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn panic_messages_of_every_payload_kind_are_kept() {
    let rt = runtime::<u32>();
    rt.register(
        Function::new("f", |n: &u32, _ctx| -> Result<(), FunctionError> {
            match n {
                0 => panic!("static message"),
                1 => panic!("formatted {}", "message"),
                _ => std::panic::panic_any(42_u8),
            }
        })
        .maximum_retry_attempts(0),
    )
    .unwrap();
    for n in 0..3 {
        rt.invoke_async("f", n).unwrap();
    }
    rt.run_until_idle();
    let mut dead = rt.drain_dead_letters();
    dead.sort_by_key(|r| r.request_payload);
    let messages: Vec<_> = dead.iter().map(|r| r.error().unwrap().message()).collect();
    assert_eq!(
        messages,
        vec!["static message", "formatted message", "handler panicked"]
    );
    assert!(dead
        .iter()
        .all(|r| r.error().unwrap().error_type() == FunctionError::PANIC));
}

#[test]
fn panicking_handler_is_retried_and_can_then_succeed() {
    let rt = runtime::<u32>();
    let (on_success, records) = sink();
    rt.register(
        Function::new("flaky", |_: &u32, ctx| {
            if ctx.approximate_invoke_count() == 1 {
                panic!("first attempt crashes");
            }
            Ok(())
        })
        .on_success(on_success),
    )
    .unwrap();
    rt.invoke_async("flaky", 1).unwrap();
    rt.run_until_idle();
    let r = records.try_recv().unwrap();
    assert_eq!(r.condition, Condition::Success);
    assert_eq!(r.approximate_invoke_count, 2);
    let m = rt.function_metrics("flaky").unwrap();
    assert_eq!((m.errors, m.retries), (1, 1));
}

#[test]
fn panic_releases_the_concurrency_permits() {
    let rt = runtime::<u32>();
    let (on_success, successes) = sink();
    // Reserved concurrency 1: if the panicking attempt kept its slot, the next event would be
    // throttled forever.
    rt.register(
        Function::new("single", |n: &u32, _ctx| {
            if *n == 0 {
                panic!("boom");
            }
            Ok(())
        })
        .reserved_concurrency(1)
        .maximum_retry_attempts(0)
        .on_success(on_success),
    )
    .unwrap();
    rt.invoke_async("single", 0).unwrap();
    let next = rt.invoke_async("single", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::RetriesExhausted)
    );
    let m = rt.function_metrics("single").unwrap();
    assert_eq!(m.concurrent_executions, 0);
    assert_eq!(rt.metrics().total.concurrent_executions, 0);

    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.request_id, next);
    assert_eq!(step.outcome, StepOutcome::Ended(Condition::Success));
    assert_eq!(successes.try_recv().unwrap().request_id, next);
    let m = rt.function_metrics("single").unwrap();
    assert_eq!((m.throttles, m.peak_concurrent_executions), (0, 1));
}

#[test]
fn panic_releases_the_account_slot_for_other_functions() {
    // One execution slot in the whole account, no reservations.
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .account_concurrency(1)
        .unreserved_floor(0)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicU32::new(0));
    let r = ran.clone();
    rt.register(
        Function::new("crash", |_: &u32, _ctx| -> Result<(), FunctionError> {
            panic!("crash")
        })
        .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.register(Function::new("other", move |_: &u32, _ctx| {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("crash", 0).unwrap();
    rt.run_until_idle();
    rt.invoke_async("other", 0).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::Success)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(rt.metrics().total.throttles, 0);
}

#[test]
fn panicking_synchronous_invoke_returns_a_function_error_and_frees_the_slot() {
    let rt = runtime::<u32>();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n == 0 {
                panic!("sync crash");
            }
            Ok(())
        })
        .reserved_concurrency(1),
    )
    .unwrap();
    match rt.invoke("f", &0) {
        Err(InvokeSyncError::Function(e)) => {
            assert_eq!(e.error_type(), FunctionError::PANIC);
            assert_eq!(e.kind(), ErrorKind::Unhandled);
            assert_eq!(e.message(), "sync crash");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    rt.invoke("f", &1).expect("the slot was released");
    assert_eq!(rt.function_metrics("f").unwrap().concurrent_executions, 0);
}

#[test]
fn worker_threads_survive_panicking_handlers() {
    let rt = runtime::<u32>();
    let (on_success, successes) = sink();
    let (on_failure, failures) = sink();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if n % 2 == 0 {
                panic!("even payload {n}");
            }
            Ok(())
        })
        .maximum_retry_attempts(0)
        .on_success(on_success)
        .on_failure(on_failure),
    )
    .unwrap();
    let workers = rt.spawn_workers(2).unwrap();
    assert_eq!(workers.len(), 2);
    for n in 0..20 {
        rt.invoke_async("f", n).unwrap();
    }
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));

    // The same threads keep working after the panics.
    for n in 20..40 {
        rt.invoke_async("f", n).unwrap();
    }
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    assert_eq!(workers.stop(), 40);

    let ok: Vec<_> = successes.try_iter().map(|r| r.request_payload).collect();
    let failed: Vec<_> = failures.try_iter().collect();
    assert_eq!(ok.len(), 20);
    assert!(ok.iter().all(|n| n % 2 == 1));
    assert_eq!(failed.len(), 20);
    assert!(failed.iter().all(|r| r.request_payload % 2 == 0
        && r.condition == Condition::RetriesExhausted
        && r.error().unwrap().error_type() == FunctionError::PANIC));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors), (40, 20));
    assert_eq!(m.concurrent_executions, 0);
    assert!(m.is_balanced());
}

#[test]
fn panicking_closure_destination_kills_nothing() {
    let rt = runtime::<u32>();
    let delivered = Arc::new(AtomicU32::new(0));
    let d = delivered.clone();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(())).on_success(Destination::closure(move |r| {
            d.fetch_add(1, Ordering::SeqCst);
            if r.request_payload % 2 == 0 {
                panic!("destination crashed");
            }
        })),
    )
    .unwrap();
    for n in 0..4 {
        rt.invoke_async("f", n).unwrap();
    }
    assert_eq!(rt.run_until_idle(), 4);
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        4,
        "every record was offered"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Success), 4);
    assert_eq!(m.destination_delivery_failures, 2);
    let mut dead: Vec<_> = rt
        .drain_dead_letters()
        .into_iter()
        .map(|r| r.request_payload)
        .collect();
    dead.sort();
    assert_eq!(dead, vec![0, 2]);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn panicking_closure_destination_does_not_stop_worker_threads() {
    let rt = runtime::<u32>();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(())).on_success(Destination::closure(|_| {
            panic!("destination crashed");
        })),
    )
    .unwrap();
    let workers = rt.spawn_workers(2).unwrap();
    for n in 0..10 {
        rt.invoke_async("f", n).unwrap();
    }
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    assert_eq!(workers.stop(), 10);
    assert_eq!(rt.drain_dead_letters().len(), 10);
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        10
    );
}

#[test]
fn panicking_destination_map_counts_a_delivery_failure() {
    let rt = runtime::<u32>();
    let audited = Arc::new(AtomicU32::new(0));
    let a = audited.clone();
    rt.register(Function::new("audit", move |_: &u32, _ctx| {
        a.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(())).on_success(Destination::function(
            "audit",
            |r: &InvocationRecord<u32, ()>| {
                if r.request_payload == 0 {
                    panic!("cannot map");
                }
                r.request_payload
            },
        )),
    )
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(audited.load(Ordering::SeqCst), 1);
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        1
    );
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_payload, 0);
}

#[test]
fn panicking_observer_does_not_stop_delivery() {
    let observed = Arc::new(Mutex::new(Vec::new()));
    let o = observed.clone();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .on_record(move |r| {
            o.lock().unwrap().push(r.request_payload);
            panic!("observer crashed");
        })
        .build()
        .unwrap();
    let (on_success, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();
    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(*observed.lock().unwrap(), vec![1, 2]);
    assert_eq!(records.try_iter().count(), 2);
    assert!(rt.drain_dead_letters().is_empty());
}

/// A payload whose drop panics: the one panic no guard of the engine catches (it happens
/// wherever the event ends, on a worker thread after its handler ran), so a worker really
/// dies.
#[derive(Clone)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the payload's drop panicked");
        }
    }
}

/// A runtime whose function "f" runs a `Bomb` event on `workers` threads and tells `ran`
/// before the event ends (and its payload kills the worker).
fn dying_worker(workers: usize) -> (Runtime<Bomb>, event_invoke::Workers) {
    let rt = runtime::<Bomb>();
    let (ran, handler_ran) = crossbeam_channel::unbounded();
    rt.register(Function::new("f", move |_: &Bomb, _ctx| {
        ran.send(()).unwrap();
        Ok(())
    }))
    .unwrap();
    let pool = rt.spawn_workers(workers).unwrap();
    assert!(rt.invoke_async("f", Bomb).is_ok());
    handler_ran
        .recv_timeout(Duration::from_secs(10))
        .expect("a worker ran the handler");
    (rt, pool)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("?")
}

#[test]
fn stopping_workers_re_raises_the_panic_of_a_worker_that_died() {
    // Not "0 dispatched": the dead worker's panic comes back to whoever stops the pool, once
    // every worker has been joined.
    let (_rt, workers) = dying_worker(2);
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workers.stop()));
    let panic = stopped.expect_err("a dead worker is reported");
    assert_eq!(panic_message(&*panic), "the payload's drop panicked");
}

#[test]
fn dropping_workers_re_raises_a_dead_worker_s_panic_but_never_while_unwinding() {
    let (_rt, workers) = dying_worker(1);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(workers)));
    let panic = dropped.expect_err("a dead worker is reported on drop too");
    assert_eq!(panic_message(&*panic), "the payload's drop panicked");

    // Dropped while a panic unwinds: no second panic (that would abort the process).
    let (_rt, workers) = dying_worker(1);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _workers = workers;
        panic!("the caller's own panic");
    }));
    assert_eq!(
        panic_message(&*unwound.unwrap_err()),
        "the caller's own panic"
    );
}

#[test]
fn a_payload_whose_drop_kills_a_worker_still_ends_its_event() {
    let (rt, workers) = dying_worker(1);
    // The worker died, but not with the event outstanding: `wait_idle` returns.
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    assert_eq!(rt.outstanding(), 0);
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workers.stop()));
    assert!(stopped.is_err());
}

#[test]
fn a_payload_whose_drop_panics_in_a_single_step_still_ends_its_event() {
    for fails in [false, true] {
        // No dead letters kept: a failure's record, and its payload, drop when delivered.
        let rt: Runtime<Bomb> = Runtime::builder()
            .clock(ManualClock::new())
            .keep_dead_letters(false)
            .build()
            .unwrap();
        rt.register(
            Function::new("f", move |_: &Bomb, _ctx| {
                if fails {
                    Err(FunctionError::new("E", "fails"))
                } else {
                    Ok(())
                }
            })
            .maximum_retry_attempts(0),
        )
        .unwrap();
        assert!(rt.invoke_async("f", Bomb).is_ok());
        // The panic reaches the caller of the step, whose thread runs the payload's drop.
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.try_dispatch()));
        assert_eq!(
            panic_message(&*step.expect_err("the drop's panic")),
            "the payload's drop panicked"
        );
        assert_eq!(rt.outstanding(), 0, "fails: {fails}");
    }
}

/// A queue of `Bomb`s: every payload's drop panics (unless the thread already unwinds).
fn bombs_queued(n: usize) -> Runtime<Bomb> {
    bombs_queued_on(n, ManualClock::new())
}

/// [`bombs_queued`] on `clock`; "f"'s events age out after 60 s.
fn bombs_queued_on(n: usize, clock: ManualClock) -> Runtime<Bomb> {
    let rt: Runtime<Bomb> = Runtime::builder()
        .clock(clock)
        .keep_dead_letters(false)
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &Bomb, _ctx| Ok(())).maximum_event_age(Duration::from_secs(60)),
    )
    .unwrap();
    for _ in 0..n {
        assert!(rt.invoke_async("f", Bomb).is_ok());
    }
    rt
}

#[test]
fn purging_events_whose_payloads_drop_panics_ends_them_all_then_raises_the_panic() {
    let rt = bombs_queued(3);
    let purged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.purge("f")));
    assert_eq!(
        panic_message(&*purged.expect_err("the drop's panic")),
        "the payload's drop panicked"
    );
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 3);
}

#[test]
fn deleting_a_function_whose_payloads_drop_panics_ends_every_queued_event() {
    let rt = bombs_queued(3);
    let deleted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.delete("f")));
    assert!(deleted.is_err());
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn held_events_whose_payloads_drop_panics_all_age_out() {
    let clock = ManualClock::new();
    let rt = bombs_queued_on(0, clock.clone());
    rt.pause("f").unwrap();
    // Accepted a second apart: each ages out at a deadline of its own.
    for _ in 0..3 {
        assert!(rt.invoke_async("f", Bomb).is_ok());
        clock.advance(Duration::from_secs(1));
    }
    // The first deadline ages out the first event; the panic of its drop comes back to the
    // caller, and the next deadline is armed all the same.
    let mut panics = 0;
    for _ in 0..10 {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.run_for(Duration::from_secs(30))
        }));
        panics += usize::from(ran.is_err());
        if rt.outstanding() == 0 {
            break;
        }
    }
    assert_eq!(rt.outstanding(), 0);
    assert!(panics >= 1);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 3);
}

/// A value whose drop panics (unless the thread already unwinds): a response, or a panic's
/// payload, that the engine drops on the way to its event's end.
#[derive(Debug)]
struct Dud;

impl Drop for Dud {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a dud's drop panicked");
        }
    }
}

/// How "f"'s handler comes to hand the engine a `Dud` that no record carries.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// Its response comes back after the timeout: a timeout error replaces it.
    TimedOut,
    /// Fault injection replaces its response with a function error.
    InjectedError,
    /// It panics with a `Dud` as the panic's payload.
    PanicPayload,
}

impl Lost {
    const ALL: [Lost; 3] = [Lost::TimedOut, Lost::InjectedError, Lost::PanicPayload];

    /// The `errorType` of the record that takes the `Dud`'s place.
    fn error_type(self) -> &'static str {
        match self {
            Lost::TimedOut => FunctionError::TIMEOUT,
            Lost::InjectedError => "Injected.FunctionError",
            Lost::PanicPayload => FunctionError::PANIC,
        }
    }
}

/// A runtime whose function "f" (`retries` retries, 1 s apart) loses a `Dud` as `lost` says on
/// every attempt.
fn losing(lost: Lost, clock: &ManualClock, retries: u32) -> Runtime<u32, Dud> {
    losing_with(lost, clock, retries, true)
}

/// [`losing`] for any payload, keeping dead letters or not (without, a failure's record and
/// its payload drop at its end).
fn losing_with<P: Clone + Send + 'static>(
    lost: Lost,
    clock: &ManualClock,
    retries: u32,
    keep_dead_letters: bool,
) -> Runtime<P, Dud> {
    let mut builder = Runtime::builder()
        .clock(clock.clone())
        .keep_dead_letters(keep_dead_letters);
    if let Lost::InjectedError = lost {
        builder = builder.fault_injection(FaultInjection::new(1).function_errors(1.0));
    }
    let rt: Runtime<P, Dud> = builder.build().unwrap();
    let clock = clock.clone();
    let handler = move |_: &P, _ctx: &event_invoke::Context<'_, P, Dud>| match lost {
        Lost::TimedOut => {
            clock.advance(Duration::from_secs(2));
            Ok(Dud)
        }
        Lost::InjectedError => Ok(Dud),
        Lost::PanicPayload => std::panic::panic_any(Dud),
    };
    let retry = RetryPolicy::builder()
        .maximum_retry_attempts(retries)
        .retry_delays([Duration::from_secs(1)])
        .build()
        .unwrap();
    rt.register(
        Function::new("f", handler)
            .timeout(Duration::from_secs(1))
            .retry_policy(retry),
    )
    .unwrap();
    rt
}

#[test]
fn a_lost_response_or_panic_payload_whose_drop_panics_still_ends_its_event_with_its_record() {
    for lost in Lost::ALL {
        let clock = ManualClock::new();
        let rt = losing(lost, &clock, 1);
        let id = rt.invoke_async("f", 7).unwrap();
        // The first attempt's retry is scheduled, then the drop's panic reaches the caller.
        for attempt in 1..=2_u64 {
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.try_dispatch()));
            assert_eq!(
                panic_message(&*step.expect_err("the drop's panic")),
                "a dud's drop panicked",
                "{lost:?}, attempt {attempt}"
            );
            let m = rt.function_metrics("f").unwrap();
            assert_eq!(m.concurrent_executions, 0, "{lost:?}");
            assert!(m.is_balanced(), "{lost:?}: {m:?}");
            assert_eq!(rt.outstanding(), 2 - attempt, "{lost:?}");
            clock.advance(Duration::from_secs(1));
        }
        // Ended once, with the record of its last attempt.
        let dead = rt.drain_dead_letters();
        assert_eq!(dead.len(), 1, "{lost:?}");
        assert_eq!(dead[0].request_id, id);
        assert_eq!(dead[0].condition, Condition::RetriesExhausted);
        assert_eq!(dead[0].approximate_invoke_count, 2);
        assert_eq!(dead[0].error().unwrap().error_type(), lost.error_type());
        let m = rt.function_metrics("f").unwrap();
        assert_eq!((m.invocations, m.errors, m.retries), (2, 2, 1), "{lost:?}");
        assert_eq!(m.outcome(Condition::RetriesExhausted), 1);
        assert!(rt.try_dispatch().is_none());
    }
}

/// Two panics in one step: the lost value's `Drop`, then the payload's at the event's end.
/// Rust unwinds one at a time: the first goes on, the later one is dropped.
#[test]
fn when_the_payload_s_drop_panics_too_the_lost_value_s_panic_goes_on_and_the_event_ends() {
    for lost in Lost::ALL {
        let rt = losing_with::<Bomb>(lost, &ManualClock::new(), 0, false);
        assert!(rt.invoke_async("f", Bomb).is_ok());
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.try_dispatch()));
        assert_eq!(
            panic_message(&*step.expect_err("the first drop's panic")),
            "a dud's drop panicked",
            "{lost:?}"
        );
        assert_eq!(rt.outstanding(), 0, "{lost:?}");
        let m = rt.function_metrics("f").unwrap();
        assert_eq!(m.concurrent_executions, 0, "{lost:?}");
        assert_eq!(m.outcome(Condition::RetriesExhausted), 1, "{lost:?}");
        assert!(m.is_balanced(), "{lost:?}: {m:?}");
        assert!(rt.try_dispatch().is_none());
    }
}

/// Runs `payload` on one worker of `rt`, whose lost value's `Drop` kills the worker: the event
/// has ended all the same, and stopping the workers reports that panic.
fn a_dead_worker_ends_its_event_and_reports_the_lost_value_s_panic<P: Send + 'static>(
    rt: &Runtime<P, Dud>,
    payload: P,
    lost: Lost,
) {
    let workers = rt.spawn_workers(1).unwrap();
    assert!(rt.invoke_async("f", payload).is_ok());
    // Bounded: an event that never ends fails the test instead of hanging it.
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)), "{lost:?}");
    assert_eq!(rt.outstanding(), 0);
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workers.stop()));
    assert_eq!(
        panic_message(&*stopped.expect_err("the dead worker is reported")),
        "a dud's drop panicked",
        "{lost:?}"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::RetriesExhausted), 1, "{lost:?}");
    assert!(m.is_balanced(), "{lost:?}: {m:?}");
}

#[test]
fn a_worker_killed_by_two_drop_panics_ends_its_event_and_reports_the_first() {
    for lost in Lost::ALL {
        let rt = losing_with::<Bomb>(lost, &ManualClock::new(), 0, false);
        a_dead_worker_ends_its_event_and_reports_the_lost_value_s_panic(&rt, Bomb, lost);
    }
}

#[test]
fn a_worker_killed_by_a_lost_response_s_drop_still_ends_its_event() {
    for lost in Lost::ALL {
        let rt = losing(lost, &ManualClock::new(), 0);
        a_dead_worker_ends_its_event_and_reports_the_lost_value_s_panic(&rt, 7, lost);
    }
}

#[test]
fn a_synchronous_invoke_whose_late_response_s_drop_panics_counts_its_error_and_frees_its_slot() {
    let clock = ManualClock::new();
    let rt = losing(Lost::TimedOut, &clock, 0);
    let invoked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.invoke("f", &7)));
    assert_eq!(
        panic_message(&*invoked.expect_err("the drop's panic")),
        "a dud's drop panicked"
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.invocations, m.errors), (1, 1));
    assert_eq!(m.concurrent_executions, 0);
    assert!(m.is_balanced(), "{m:?}");
}

#[test]
fn a_duplicate_filter_that_panics_still_ends_the_event_it_was_asked_about() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .fault_injection(
            FaultInjection::new(1)
                .duplicate_when(|_| -> bool { panic!("the duplicate filter panicked") }),
        )
        .build()
        .unwrap();
    let (on_success, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.try_dispatch()));
    assert_eq!(
        panic_message(&*step.expect_err("the filter's panic")),
        "the duplicate filter panicked"
    );
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(records.try_recv().unwrap().request_id, id);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.outcome(Condition::Success), m.duplicates), (1, 0));
    assert!(m.is_balanced(), "{m:?}");
}

/// A payload whose copies' drop panics (unless the thread already unwinds).
struct Original(bool);

impl Clone for Original {
    fn clone(&self) -> Self {
        Original(false)
    }
}

impl Drop for Original {
    fn drop(&mut self) {
        if !self.0 && !std::thread::panicking() {
            panic!("a copy's drop panicked");
        }
    }
}

#[test]
fn a_duplicate_that_a_deleted_function_drops_untaken_does_not_keep_the_original_outstanding() {
    let rt: Runtime<Original> = Runtime::builder()
        .clock(ManualClock::new())
        .fault_injection(FaultInjection::new(1).duplicates(1.0))
        .build()
        .unwrap();
    // The function is deleted while its event runs: the duplicate made after its success is
    // dropped, untaken.
    let operator = rt.clone();
    rt.register(Function::new("f", move |_: &Original, _ctx| {
        operator.delete("f").unwrap();
        Ok(())
    }))
    .unwrap();
    assert!(rt.invoke_async("f", Original(true)).is_ok());
    let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.try_dispatch()));
    assert_eq!(
        panic_message(&*step.expect_err("the copy's panic")),
        "a copy's drop panicked"
    );
    assert_eq!(rt.outstanding(), 0);
}

/// Model mode: a model runtime whose "f" (no retries) returns a `Dud` after `cost`, under a
/// 1 s timeout.
#[cfg(feature = "model")]
fn modelled(cost: event_invoke::CostModel) -> Runtime<u32, Dud> {
    let rt: Runtime<u32, Dud> = Runtime::builder()
        .model(event_invoke::ModelOptions::new())
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(Dud))
            .cost(cost)
            .timeout(Duration::from_secs(1))
            .maximum_retry_attempts(0),
    )
    .unwrap();
    rt
}

#[cfg(feature = "model")]
#[test]
fn model_mode_ends_an_event_whose_response_a_drawn_failure_or_the_timeout_replaced() {
    use event_invoke::CostModel;
    let cases = [
        (
            CostModel::fixed(Duration::ZERO).failure_rate(1.0),
            "Model.Failure",
        ),
        (
            CostModel::fixed(Duration::from_secs(2)),
            FunctionError::TIMEOUT,
        ),
    ];
    for (cost, error_type) in cases {
        let rt = modelled(cost);
        rt.invoke_async("f", 7).unwrap();
        // The drop's panic reaches the caller of the run; a run after it finds nothing left
        // undone, and the event ended once, with its record.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run_until_idle()));
        assert_eq!(
            panic_message(&*run.expect_err("the drop's panic")),
            "a dud's drop panicked",
            "{error_type}"
        );
        rt.run_until_idle();
        assert_eq!(rt.outstanding(), 0, "{error_type}");
        let dead = rt.drain_dead_letters();
        assert_eq!(dead.len(), 1, "{error_type}");
        assert_eq!(dead[0].condition, Condition::RetriesExhausted);
        assert_eq!(dead[0].error().unwrap().error_type(), error_type);
        let m = rt.function_metrics("f").unwrap();
        assert_eq!(m.outcome(Condition::RetriesExhausted), 1, "{error_type}");
        assert!(m.is_balanced(), "{error_type}: {m:?}");
    }
}

/// A response or payload whose `Drop` panics when it is lit (model mode's tests).
#[cfg(feature = "model")]
#[derive(Clone)]
struct Fuse(bool);

#[cfg(feature = "model")]
impl Drop for Fuse {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("a fuse blew");
        }
    }
}

/// Runs `rt` until idle, again after each panic that goes on; returns how many went on, once
/// no event is left outstanding.
#[cfg(feature = "model")]
fn run_counting_panics<P: Send + 'static, R: Send + 'static>(rt: &Runtime<P, R>) -> u32 {
    let mut panics = 0;
    while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run_until_idle())).is_err() {
        panics += 1;
    }
    assert_eq!(rt.outstanding(), 0);
    panics
}

/// Model mode: an execution's end is in the model's books (its retry, the reserved pool's
/// samples, the pollers woken) before the panic of a replaced response's `Drop` goes on, so
/// the report is the one a run without the panics makes.
#[cfg(feature = "model")]
#[test]
fn model_mode_books_an_execution_s_end_before_a_replaced_response_s_drop_panic_goes_on() {
    use event_invoke::{CostModel, ModelOptions, ModelReport};

    let run = |lit: bool| -> (u32, ModelReport) {
        let rt: Runtime<u32, Fuse> = Runtime::builder()
            .model(ModelOptions::new())
            .build()
            .unwrap();
        // Every attempt takes 2 s against a 1 s timeout: its response is replaced by the
        // timeout's error, and dropped.
        rt.register(
            Function::new("f", move |_: &u32, _ctx| Ok(Fuse(lit)))
                .cost(CostModel::fixed(Duration::from_secs(2)))
                .timeout(Duration::from_secs(1))
                .reserved_concurrency(1)
                .maximum_retry_attempts(1),
        )
        .unwrap();
        for payload in 0..3 {
            rt.invoke_async("f", payload).unwrap();
        }
        let panics = run_counting_panics(&rt);
        (panics, rt.model_report().unwrap())
    };
    let (none, quiet) = run(false);
    let (panics, blown) = run(true);
    assert_eq!(none, 0);
    // Three events, two attempts each.
    assert_eq!(panics, 6);
    assert_eq!(blown, quiet);
}

/// Model mode: an event's end itself panics (its payload's `Drop`); the panic goes on only after
/// the model has booked the execution's end, so the report is the one a run without it makes.
#[cfg(feature = "model")]
#[test]
fn model_mode_books_an_execution_s_end_before_its_payload_s_drop_panic_goes_on() {
    use event_invoke::{CostModel, ModelOptions, ModelReport, Timeline};

    let run = |lit: bool| -> (u32, ModelReport, Option<Timeline>) {
        let rt: Runtime<Fuse> = Runtime::builder()
            .model(ModelOptions::new())
            .build()
            .unwrap();
        rt.register(
            Function::new("f", |_: &Fuse, _ctx| Ok(()))
                .cost(CostModel::fixed(Duration::from_secs(2)))
                .reserved_concurrency(1),
        )
        .unwrap();
        for _ in 0..3 {
            assert!(rt.invoke_async("f", Fuse(lit)).is_ok());
        }
        let panics = run_counting_panics(&rt);
        (panics, rt.model_report().unwrap(), rt.timeline())
    };
    let (none, quiet, quiet_timeline) = run(false);
    let (panics, blown, blown_timeline) = run(true);
    assert_eq!(none, 0);
    assert_eq!(panics, 3);
    assert_eq!(blown, quiet);
    // The timeline samples each end too, the ones whose panic went on included.
    assert!(quiet_timeline.is_some());
    assert_eq!(blown_timeline, quiet_timeline);
}

/// Model mode under fault injection: a lost response's `Drop` panic, and a duplicate filter's
/// panic, go on only after the model has booked the execution's end, so the report is the one
/// a run without the panics makes.
#[cfg(feature = "model")]
#[test]
fn model_mode_books_an_execution_s_end_before_a_fault_seam_s_panic_goes_on() {
    use event_invoke::{CostModel, ModelOptions, ModelReport};

    #[derive(Clone, Copy)]
    enum Seam {
        LostResponse,
        DuplicateFilter,
    }

    let run = |seam: Seam, lit: bool| -> (u32, ModelReport) {
        let faults = match seam {
            Seam::LostResponse => FaultInjection::new(1).function_errors(1.0),
            Seam::DuplicateFilter => FaultInjection::new(1).duplicate_when(move |_| {
                assert!(!lit, "a filter that panics");
                false
            }),
        };
        let rt: Runtime<u32, Fuse> = Runtime::builder()
            .model(ModelOptions::new())
            .fault_injection(faults)
            .build()
            .unwrap();
        let lit_response = lit && matches!(seam, Seam::LostResponse);
        rt.register(
            Function::new("f", move |_: &u32, _ctx| Ok(Fuse(lit_response)))
                .cost(CostModel::fixed(Duration::from_millis(100)))
                .reserved_concurrency(1)
                .maximum_retry_attempts(1),
        )
        .unwrap();
        for payload in 0..3 {
            rt.invoke_async("f", payload).unwrap();
        }
        let panics = run_counting_panics(&rt);
        (panics, rt.model_report().unwrap())
    };
    for (seam, expected) in [(Seam::LostResponse, 6), (Seam::DuplicateFilter, 3)] {
        let (none, quiet) = run(seam, false);
        let (panics, blown) = run(seam, true);
        assert_eq!(none, 0);
        assert_eq!(panics, expected);
        assert_eq!(blown, quiet);
    }
}

/// Model mode: [`when_the_payload_s_drop_panics_too_the_lost_value_s_panic_goes_on_and_the_event_ends`]
/// for a response that the timeout replaced.
#[cfg(feature = "model")]
#[test]
fn model_mode_lets_the_lost_value_s_panic_go_on_when_the_payload_s_drop_panics_too() {
    use event_invoke::CostModel;
    let rt: Runtime<Bomb, Dud> = Runtime::builder()
        .model(event_invoke::ModelOptions::new())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &Bomb, _ctx| Ok(Dud))
            .cost(CostModel::fixed(Duration::from_secs(2)))
            .timeout(Duration::from_secs(1))
            .maximum_retry_attempts(0),
    )
    .unwrap();
    assert!(rt.invoke_async("f", Bomb).is_ok());
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run_until_idle()));
    assert_eq!(
        panic_message(&*run.expect_err("the first drop's panic")),
        "a dud's drop panicked"
    );
    rt.run_until_idle();
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::RetriesExhausted), 1);
    assert!(m.is_balanced(), "{m:?}");
}

/// Model mode: a runtime dropped while an execution has not reached its virtual end drops
/// it like the events still waiting, and with it the panic of a `Drop` it carries (a
/// response its timeout replaced): that panic would go on only once its event ended.
#[cfg(feature = "model")]
#[test]
fn model_mode_drops_a_pending_execution_s_panic_with_the_runtime() {
    let rt = modelled(event_invoke::CostModel::fixed(Duration::from_secs(2)));
    rt.invoke_async("f", 7).unwrap();
    rt.run_for(Duration::from_millis(500));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.concurrent_executions, rt.outstanding()), (1, 1));
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rt)));
    assert!(dropped.is_ok());
}

/// Model mode: a step nested in an observer (its `try_dispatch`) concludes another execution
/// while the outer step's duplicate filter panic waits for the model's books. The nested step
/// leaves that panic alone: it goes on from the outer step, whose event it came from.
#[cfg(feature = "model")]
#[test]
fn model_mode_a_step_nested_in_an_observer_leaves_the_outer_step_its_panic() {
    use event_invoke::{CostModel, ModelOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    let fired = Arc::new(AtomicBool::new(false));
    let filter_fired = Arc::clone(&fired);
    let faults = FaultInjection::new(1).duplicate_when(move |_| {
        if !filter_fired.swap(true, Ordering::SeqCst) {
            panic!("the first filter call panics");
        }
        false
    });
    let runtime: Arc<OnceLock<Runtime<u32>>> = Arc::new(OnceLock::new());
    let nested = Arc::clone(&runtime);
    // Whether a record came while a nested step ran: the nested step concluded an execution.
    let inside = Arc::new(AtomicBool::new(false));
    let concluded_inside = Arc::new(AtomicBool::new(false));
    let (inside_seen, concluded_seen) = (Arc::clone(&inside), Arc::clone(&concluded_inside));
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new())
        .fault_injection(faults)
        .on_record(move |_| {
            if inside_seen.load(Ordering::SeqCst) {
                concluded_seen.store(true, Ordering::SeqCst);
                return;
            }
            if let Some(rt) = nested.get() {
                inside_seen.store(true, Ordering::SeqCst);
                let _ = rt.try_dispatch();
                inside_seen.store(false, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    assert!(runtime.set(rt.clone()).is_ok());
    // Both end at the same virtual instant: the first one's record runs the observer, whose
    // nested step concludes the second.
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(()))
            .cost(CostModel::fixed(Duration::from_secs(1)))
            .reserved_concurrency(2),
    )
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.invoke_async("f", 1).unwrap();

    let outer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run_until_idle()));
    let panic = outer.expect_err("the filter's panic goes on from the outer run");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the first filter call panics")
    );
    assert!(fired.load(Ordering::SeqCst));
    assert!(
        concluded_inside.load(Ordering::SeqCst),
        "the nested step concluded the other execution"
    );
    rt.run_until_idle();
    assert_eq!(rt.outstanding(), 0);
}

/// Model mode: the duplicate filter panics, then the event's payload panics as the event ends;
/// the first (the filter's) goes on, as the crate docs say, and the event has ended once.
#[cfg(feature = "model")]
#[test]
fn model_mode_lets_the_duplicate_filter_s_panic_go_on_when_the_payload_s_drop_panics_too() {
    use event_invoke::{CostModel, ModelOptions};

    let faults = FaultInjection::new(1).duplicate_when(|_| panic!("the filter panicked"));
    let rt: Runtime<Fuse> = Runtime::builder()
        .model(ModelOptions::new())
        .fault_injection(faults)
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &Fuse, _ctx| Ok(())).cost(CostModel::fixed(Duration::from_secs(1))),
    )
    .unwrap();
    assert!(rt.invoke_async("f", Fuse(true)).is_ok());
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run_until_idle()));
    let panic = ran.expect_err("a panic goes on");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"the filter panicked"));
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Success), 1);
    assert!(m.is_balanced(), "{m:?}");
}
