//! Driving the engine: worker threads, waking, stopping, single steps.

mod common;
use common::counting;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    Condition, Function, FunctionError, ManualClock, RetryPolicy, Runtime, StepOutcome, StopSignal,
};

#[test]
fn nothing_runs_until_the_runtime_is_driven() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let runs = counting(&rt, "f");
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(rt.function_metrics("f").unwrap().queue_ready, 1);
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn try_dispatch_runs_exactly_one_event_per_call() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let runs = counting(&rt, "f");
    let ids: Vec<_> = (0..3).map(|i| rt.invoke_async("f", i).unwrap()).collect();
    for (n, id) in ids.iter().enumerate() {
        let step = rt.try_dispatch().unwrap();
        assert_eq!(step.request_id, *id, "FIFO order");
        assert_eq!(step.outcome, StepOutcome::Ended(Condition::Success));
        assert_eq!(runs.load(Ordering::SeqCst), n as u32 + 1);
    }
    assert!(rt.try_dispatch().is_none());
}

#[test]
fn try_dispatch_does_not_move_virtual_time() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    rt.register(Function::new("fails", |_: &u32, _ctx| {
        Err(FunctionError::new("E", "e"))
    }))
    .unwrap();
    rt.invoke_async("fails", 0).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert_eq!(
        step.outcome,
        StepOutcome::RetryScheduled {
            due: event_invoke::Timestamp::ZERO + Duration::from_secs(60)
        }
    );
    assert!(rt.try_dispatch().is_none(), "the retry is not due yet");
    clock.advance(Duration::from_secs(59));
    assert!(rt.try_dispatch().is_none());
    clock.advance(Duration::from_secs(1));
    assert_eq!(rt.try_dispatch().unwrap().request_id, step.request_id);
}

#[test]
fn run_worker_returns_when_stopped_while_parked() {
    let rt: Runtime<u32> = Runtime::new();
    counting(&rt, "f");
    let stop = StopSignal::new();
    let worker = {
        let (rt, stop) = (rt.clone(), stop.clone());
        std::thread::spawn(move || rt.run_worker(&stop))
    };
    rt.invoke_async("f", 1).unwrap();
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    // The worker is parked now (or about to be); stopping must wake it.
    stop.stop();
    assert_eq!(worker.join().unwrap(), 1);
    assert!(stop.is_stopped());
}

#[test]
fn a_parked_worker_wakes_when_the_manual_clock_moves_a_retry_due() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    rt.register(Function::new("flaky", move |_: &u32, ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        if ctx.approximate_invoke_count() == 1 {
            Err(FunctionError::new("Flaky", "first try fails"))
        } else {
            Ok(())
        }
    }))
    .unwrap();
    let workers = rt.spawn_workers(2).unwrap();
    rt.invoke_async("flaky", 1).unwrap();
    // The first attempt fails; the retry waits for virtual time, which nobody moves yet.
    assert!(!rt.wait_idle_timeout(Duration::from_millis(50)));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(60));
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(workers.stop(), 2);
}

#[test]
fn a_worker_wakes_by_itself_for_a_retry_due_on_the_system_clock() {
    let rt: Runtime<u32> = Runtime::new();
    rt.register(
        Function::new("flaky", |_: &u32, ctx| {
            if ctx.approximate_invoke_count() == 1 {
                Err(FunctionError::new("Flaky", "first try fails"))
            } else {
                Ok(())
            }
        })
        .retry_policy(
            RetryPolicy::builder()
                .retry_delays(vec![Duration::from_millis(20)])
                .build()
                .unwrap(),
        ),
    )
    .unwrap();
    let workers = rt.spawn_workers(1).unwrap();
    let before = rt.now();
    rt.invoke_async("flaky", 1).unwrap();
    // No invoke and no clock move arrives: only the worker's own deadline can run the retry.
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    assert!(rt.now() - before >= Duration::from_millis(20));
    let m = rt.function_metrics("flaky").unwrap();
    assert_eq!((m.invocations, m.retries), (2, 1));
    assert_eq!(m.outcome(Condition::Success), 1);
    workers.stop();
}

#[test]
fn run_until_idle_on_the_system_clock_waits_for_due_retries() {
    let rt: Runtime<u32> = Runtime::new();
    rt.register(
        Function::new("fails", |_: &u32, _ctx| Err(FunctionError::new("E", "e"))).retry_policy(
            RetryPolicy::builder()
                .retry_delays(vec![Duration::from_millis(5)])
                .build()
                .unwrap(),
        ),
    )
    .unwrap();
    rt.invoke_async("fails", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    assert_eq!(rt.outstanding(), 0);
    let m = rt.function_metrics("fails").unwrap();
    assert_eq!(m.outcome(Condition::RetriesExhausted), 1);
}

#[test]
fn many_workers_share_one_function_queue() {
    let rt: Runtime<u32> = Runtime::new();
    let runs = counting(&rt, "f");
    let workers = rt.spawn_workers(4).unwrap();
    assert_eq!(workers.len(), 4);
    for i in 0..1000 {
        rt.invoke_async("f", i).unwrap();
    }
    assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
    assert_eq!(workers.stop(), 1000);
    assert_eq!(runs.load(Ordering::SeqCst), 1000);
}

#[test]
fn run_for_moves_the_manual_clock_to_the_deadline() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    counting(&rt, "f");
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_for(Duration::from_secs(30)), 1);
    assert_eq!(clock.now().as_duration(), Duration::from_secs(30));
}

#[test]
fn wait_idle_returns_at_once_when_nothing_is_outstanding() {
    let rt: Runtime<u32> = Runtime::new();
    rt.wait_idle();
    assert!(rt.wait_idle_timeout(Duration::ZERO));
}
