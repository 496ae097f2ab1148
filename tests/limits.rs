//! Concurrency limits: the limiter itself, and limit changes while the runtime is busy.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    ConcurrencyLimitExceeded, ConcurrencyLimiter, Condition, Error, Function, ManualClock, Runtime,
};

#[test]
fn a_permit_is_released_when_its_holder_panics() {
    let limiter = ConcurrencyLimiter::new(1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _permit = limiter.try_acquire().unwrap();
        panic!("handler blew up");
    }));
    assert!(result.is_err());
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.try_acquire().is_some());
}

#[test]
fn lowering_a_limit_keeps_old_permits_and_refuses_new_ones_until_below() {
    let limiter = ConcurrencyLimiter::new(3);
    let permits: Vec<_> = (0..3).map(|_| limiter.try_acquire().unwrap()).collect();
    limiter.set_limit(1);
    assert_eq!(limiter.in_flight(), 3);
    let mut permits = permits.into_iter();
    drop(permits.next());
    assert!(limiter.try_acquire().is_none(), "2 out, limit 1");
    drop(permits.next());
    assert!(limiter.try_acquire().is_none(), "1 out, limit 1");
    drop(permits.next());
    assert!(limiter.try_acquire().is_some());
    assert_eq!(limiter.peak(), 3);
}

#[test]
fn an_unlimited_limiter_only_counts() {
    let limiter = ConcurrencyLimiter::unlimited();
    let permits: Vec<_> = (0..1000).map(|_| limiter.try_acquire().unwrap()).collect();
    assert_eq!(limiter.in_flight(), 1000);
    drop(permits);
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.peak(), 1000);
    limiter.reset_peak();
    assert_eq!(limiter.peak(), 0);
}

#[test]
fn many_threads_never_hold_more_permits_than_the_limit() {
    for _ in 0..20 {
        let limiter = Arc::new(ConcurrencyLimiter::new(3));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                std::thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..5_000 {
                        if let Some(p) = limiter.try_acquire() {
                            assert!(limiter.in_flight() <= 3);
                            got += 1;
                            drop(p);
                        }
                    }
                    got
                })
            })
            .collect();
        let got: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(got > 0);
        assert_eq!(limiter.in_flight(), 0);
        assert!(limiter.peak() <= 3);
    }
}

#[test]
fn the_account_limit_cannot_drop_below_reservations_plus_the_floor() {
    let rt: Runtime<()> = Runtime::builder().account_concurrency(300).build().unwrap();
    rt.register(Function::new("a", |_: &(), _ctx| Ok(())).reserved_concurrency(150))
        .unwrap();
    let err = rt.set_account_concurrency(249).unwrap_err();
    assert_eq!(
        err,
        Error::AccountConcurrencyTooLow {
            requested: 249,
            reserved: 150,
            unreserved_floor: 100,
            minimum: 250
        }
    );
    assert_eq!(rt.account_concurrency(), 300, "unchanged on error");
    rt.set_account_concurrency(250).unwrap();
    assert_eq!(rt.account_concurrency(), 250);
}

#[test]
fn lowering_the_account_limit_while_busy_throttles_until_executions_finish() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .account_concurrency(4)
        .unreserved_floor(1)
        // Lambda's throttle on real threads (by default the event would wait for a slot).
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    rt.register(Function::new("slow", move |_: &u32, _ctx| {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Ok(())
    }))
    .unwrap();
    // Four workers: three block in handlers, the fourth is free to meet the lowered limit.
    let workers = rt.spawn_workers(4).unwrap();
    // Declared after the workers, so dropped (and the handlers released) before they are
    // joined, even when an assertion below fails: a failure must not hang the suite.
    let release = ReleaseOnDrop(release);
    for i in 0..3 {
        rt.invoke_async("slow", i).unwrap();
    }
    for _ in 0..3 {
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(rt.metrics().total.concurrent_executions, 3);
    rt.set_account_concurrency(1).unwrap();
    // Three still run on the old limit; a new event finds no room and is throttled.
    rt.invoke_async("slow", 99).unwrap();
    let throttled = wait_until(|| rt.function_metrics("slow").unwrap().throttles > 0);
    assert!(
        throttled,
        "the fourth event must be throttled under the lowered limit"
    );
    for _ in 0..4 {
        release.0.send(()).unwrap();
    }
    for _ in 0..10_000 {
        if rt.wait_idle_timeout(Duration::from_millis(1)) {
            break;
        }
        // Virtual time moves only while no handler runs: a released handler that a loaded
        // machine has not scheduled yet must not run past its timeout in virtual time (it
        // would be retried, and wait for a fifth release that never comes).
        if rt.metrics().total.concurrent_executions == 0 {
            clock.advance(Duration::from_secs(1));
        }
    }
    // The handlers' channel closes before the workers are joined, so no worker can wait on it.
    drop(release);
    drop(workers);
    let m = rt.function_metrics("slow").unwrap();
    assert_eq!(m.outcome(Condition::Success), 4);
    assert!(m.is_balanced());
}

#[test]
fn a_throttled_attempt_counts_in_no_peak_in_real_time() {
    // Account 3, floor 0: "held" reserves 1, "free" shares the other 2. Two "free" handlers
    // run (on threads of their own); a third "free" event is throttled by the pool, then the
    // account is lowered to 2 and "held" is throttled by it. Neither throttle ran anything, so
    // neither counts in a peak.
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .account_concurrency(3)
        .unreserved_floor(0)
        // Lambda's throttle on real threads (by default the event would wait for a slot).
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    rt.register(Function::new("free", move |_: &u32, _ctx| {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Ok(())
    }))
    .unwrap();
    rt.register(Function::new("held", |_: &u32, _ctx| Ok(())).reserved_concurrency(1))
        .unwrap();
    let release = ReleaseOnDrop(release);
    for i in 0..3 {
        rt.invoke_async("free", i).unwrap();
    }
    let mut running = Vec::new();
    for _ in 0..2 {
        let rt = rt.clone();
        running.push(std::thread::spawn(move || rt.try_dispatch()));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let throttled = |step: Option<event_invoke::Dispatched>| {
        matches!(
            step.map(|d| d.outcome),
            Some(event_invoke::StepOutcome::Throttled { .. })
        )
    };
    assert!(throttled(rt.try_dispatch()), "the pool is full");
    rt.set_account_concurrency(2).unwrap();
    rt.invoke_async("held", 0).unwrap();
    assert!(throttled(rt.try_dispatch()), "the account is full");

    let m = rt.metrics();
    let peak = |name: &str| m.function(name).unwrap().peak_concurrent_executions;
    assert_eq!((peak("free"), peak("held")), (2, 0));
    assert_eq!(m.total.peak_concurrent_executions, 2);
    drop(release);
    for thread in running {
        thread.join().unwrap();
    }
}

#[test]
fn a_reserved_execution_takes_an_account_slot_but_leaves_the_unreserved_pool_alone() {
    // Account 3, floor 0: "held" reserves 1, "free" shares the other 2. One "held" and two
    // "free" handlers run at once: the account is full, and so is the pool. A third "free"
    // event is throttled; once "held" is done the account has room again, but the pool has
    // not, so "free" is still throttled.
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .account_concurrency(3)
        .unreserved_floor(0)
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    let (held_release, held_release_rx) = crossbeam_channel::unbounded::<()>();
    let tx = entered_tx.clone();
    rt.register(Function::new("free", move |_: &u32, _ctx| {
        tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Ok(())
    }))
    .unwrap();
    rt.register(
        Function::new("held", move |_: &u32, _ctx| {
            entered_tx.send(()).unwrap();
            held_release_rx.recv().unwrap();
            Ok(())
        })
        .reserved_concurrency(1),
    )
    .unwrap();
    let release = ReleaseOnDrop(release);
    let held_release = ReleaseOnDrop(held_release);
    let mut running = Vec::new();
    for name in ["held", "free", "free"] {
        rt.invoke_async(name, 0).unwrap();
        let rt = rt.clone();
        running.push(std::thread::spawn(move || rt.try_dispatch()));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(rt.metrics().total.concurrent_executions, 3);
    let throttled = |step: Option<event_invoke::Dispatched>| {
        matches!(
            step.map(|d| d.outcome),
            Some(event_invoke::StepOutcome::Throttled { .. })
        )
    };
    rt.invoke_async("free", 1).unwrap();
    assert!(
        throttled(rt.try_dispatch()),
        "the account and the pool are full"
    );
    held_release.0.send(()).unwrap();
    running.remove(0).join().unwrap();
    assert_eq!(rt.metrics().total.concurrent_executions, 2);
    // Due again after its throttle backoff.
    clock.advance(Duration::from_secs(600));
    assert!(throttled(rt.try_dispatch()), "the pool is still full");
    let m = rt.metrics();
    let peak = |name: &str| m.function(name).unwrap().peak_concurrent_executions;
    assert_eq!((peak("free"), peak("held")), (2, 1));
    assert_eq!(m.total.peak_concurrent_executions, 3);
    drop((release, held_release));
    for thread in running {
        thread.join().unwrap();
    }
}

#[test]
fn an_account_limit_above_a_million_is_an_invalid_setting() {
    let rt: Runtime<()> = Runtime::new();
    let err = rt.set_account_concurrency(2_000_000).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "account_concurrency",
            ..
        }
    ));
    assert_eq!(rt.account_concurrency(), 1000);
}

/// Releases blocked handlers when dropped.
struct ReleaseOnDrop(crossbeam_channel::Sender<()>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        for _ in 0..64 {
            let _ = self.0.send(());
        }
    }
}

/// Waits (in real time, at most 30 s) for `cond`: worker threads need real time to move.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}
