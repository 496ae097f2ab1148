//! Worker threads are a local resource: an event whose execution slots are all taken waits at
//! the front of its queue (not in throttle backoff) until a slot is given back, so more
//! workers than slots neither slow a run nor count throttles. Lambda's throttle stays an
//! opt-in (`ConcurrencyLimitExceeded::Throttle`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    ConcurrencyLimitExceeded, Condition, Function, ManualClock, Runtime, StepOutcome,
};

mod common;
use common::one_slot_function_that_steps_inside;

/// Releases blocked handlers when dropped, so that a failed assertion cannot hang the suite.
struct ReleaseOnDrop(crossbeam_channel::Sender<()>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        for _ in 0..1_000 {
            let _ = self.0.send(());
        }
    }
}

#[test]
fn an_event_with_no_free_slot_stays_queued_and_runs_when_the_slot_is_given_back_unthrottled() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let (inner_steps, starts) = one_slot_function_that_steps_inside(&rt, |f| f);
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();

    assert_eq!(rt.run_until_idle(), 2);
    // The inner step found no slot: it took nothing, and the event waited, unthrottled.
    assert_eq!(inner_steps.try_recv().unwrap(), None);
    // The second event ran as soon as the slot was given back: no backoff, no time passed.
    assert_eq!(
        starts.try_iter().collect::<Vec<_>>(),
        vec![(1, clock.now()), (2, clock.now())]
    );
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.throttles, m.invocations, m.retries), (0, 2, 0));
    assert_eq!(m.outcome(Condition::Success), 2);
    assert!(m.is_balanced());
}

#[test]
fn the_throttle_opt_in_backs_the_same_event_off_as_lambda_does() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .concurrency_limit_exceeded(ConcurrencyLimitExceeded::Throttle)
        .build()
        .unwrap();
    let (inner_steps, _starts) = one_slot_function_that_steps_inside(&rt, |f| f);
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();
    rt.run_until_idle();
    let step = inner_steps.try_recv().unwrap().unwrap();
    assert!(matches!(step.outcome, StepOutcome::Throttled { .. }));
    assert_eq!(rt.function_metrics("f").unwrap().throttles, 1);
}

/// 1,500 events of about 1 ms on `workers` threads, reserved concurrency 4 (the case).
/// Returns the worker steps taken and the function's metrics.
fn reserved_four(workers: usize) -> (u64, event_invoke::FunctionMetrics) {
    let rt: Runtime<u32> = Runtime::new();
    rt.register(
        Function::new("f", |_: &u32, _ctx| {
            std::thread::sleep(Duration::from_millis(1));
            Ok(())
        })
        .reserved_concurrency(4),
    )
    .unwrap();
    let pool = rt.spawn_workers(workers).unwrap();
    for i in 0..1_500 {
        rt.invoke_async("f", i).unwrap();
    }
    assert!(
        rt.wait_idle_timeout(Duration::from_secs(120)),
        "{workers} workers never finished: {:?}",
        rt.function_metrics("f").unwrap()
    );
    let steps = pool.stop();
    (steps, rt.function_metrics("f").unwrap())
}

#[test]
fn more_workers_than_reserved_slots_throttle_nothing_and_take_one_step_per_event() {
    for workers in [4, 8, 16] {
        let (steps, m) = reserved_four(workers);
        assert_eq!(m.throttles, 0, "{workers} workers: {m:?}");
        // Every step ran an event: none was spent finding no slot.
        assert_eq!(steps, 1_500, "{workers} workers");
        assert_eq!(m.invocations, 1_500);
        assert_eq!(m.outcome(Condition::Success), 1_500);
        assert!(m.peak_concurrent_executions <= 4, "{m:?}");
        assert!(m.is_balanced(), "{m:?}");
        assert_eq!(m.queue_depth() + m.in_flight_events, 0);
    }
}

#[test]
fn raising_the_limit_lets_a_waiting_event_run_without_any_slot_given_back() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    rt.register(
        Function::new("f", move |n: &u32, _ctx| {
            entered_tx.send(*n).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
        .reserved_concurrency(1),
    )
    .unwrap();
    let workers = rt.spawn_workers(3).unwrap();
    let release = ReleaseOnDrop(release);
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(entered.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    rt.invoke_async("f", 2).unwrap();
    // The second waits for the only slot, which stays taken.
    assert!(entered.recv_timeout(Duration::from_millis(50)).is_err());
    rt.set_reserved_concurrency("f", Some(2)).unwrap();
    assert_eq!(entered.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
    drop(release);
    assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
    drop(workers);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.throttles, m.outcome(Condition::Success)), (0, 2));
}

#[test]
fn an_idle_worker_takes_the_unstarted_rest_of_a_batch_behind_a_blocked_event() {
    for manual in [true, false] {
        let builder = Runtime::<u32>::builder();
        let builder = if manual {
            builder.clock(ManualClock::new())
        } else {
            builder
        };
        let rt = builder.build().unwrap();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let (release, release_rx) = crossbeam_channel::unbounded::<()>();
        rt.register(Function::new("f", move |n: &u32, _ctx| {
            if *n == 1 {
                release_rx.recv().unwrap();
            }
            done_tx.send(*n).unwrap();
            Ok(())
        }))
        .unwrap();
        let workers = rt.spawn_workers(4).unwrap();
        let release = ReleaseOnDrop(release);
        // Warm up: the function is known to be fast, so its events are batched.
        for _ in 0..200 {
            rt.invoke_async("f", 0).unwrap();
        }
        assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
        done.try_iter().count();
        // Eight events become ready at once; event 1 blocks.
        rt.pause("f").unwrap();
        for n in 1..=8 {
            rt.invoke_async("f", n).unwrap();
        }
        rt.resume("f").unwrap();
        let mut others: Vec<u32> = (0..7)
            .map(|_| {
                done.recv_timeout(Duration::from_secs(10))
                    .expect("an event waited behind the blocked one while workers were idle")
            })
            .collect();
        others.sort_unstable();
        assert_eq!(others, vec![2, 3, 4, 5, 6, 7, 8], "manual clock: {manual}");
        drop(release);
        assert_eq!(done.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
        drop(workers);
        assert_eq!(
            rt.function_metrics("f")
                .unwrap()
                .outcome(Condition::Success),
            208
        );
    }
}

/// Many threads, a few slots, pauses and limit changes: after each round, with the functions
/// paused and every execution ended, the books balance exactly; in the end every event has
/// ended once, nothing was throttled, no limit was exceeded, and nothing waited forever (a
/// lost wake-up would leave events queued and `wait_idle_timeout` false).
#[test]
fn waiting_for_slots_under_pauses_and_limit_changes_loses_no_event_and_no_wake_up() {
    const FUNCTIONS: [&str; 3] = ["a", "b", "c"];
    let rt: Runtime<u32> = Runtime::builder()
        .account_concurrency(6)
        .unreserved_floor(2)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicU64::new(0));
    for (i, name) in FUNCTIONS.iter().enumerate() {
        let ran = Arc::clone(&ran);
        let f = Function::new(*name, move |n: &u32, _ctx| {
            ran.fetch_add(1, Ordering::Relaxed);
            if n % 7 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(())
        });
        // "a" and "b" reserved, "c" from the unreserved pool.
        let f = if i < 2 { f.reserved_concurrency(1) } else { f };
        rt.register(f).unwrap();
    }
    let invoked = Arc::new(AtomicU32::new(0));
    for round in 0..8u32 {
        let workers = rt.spawn_workers(8).unwrap();
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let (rt, invoked) = (rt.clone(), Arc::clone(&invoked));
                std::thread::spawn(move || {
                    for i in 0..400u32 {
                        let name = FUNCTIONS[((i + p) % 3) as usize];
                        rt.invoke_async(name, i).unwrap();
                        invoked.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Meanwhile: limits change and functions pause and resume.
        rt.set_reserved_concurrency("a", Some(1 + round % 3))
            .unwrap();
        rt.pause("b").unwrap();
        std::thread::sleep(Duration::from_millis(1));
        rt.resume("b").unwrap();
        rt.set_account_concurrency(6 + round % 2).unwrap();
        for p in producers {
            p.join().unwrap();
        }
        // Stop the workers mid-run: with nothing moving, the books balance exactly, with
        // events still waiting for their slots.
        drop(workers);
        let m = rt.metrics();
        for f in &m.functions {
            assert!(f.is_balanced(), "round {round}: {f:?}");
        }
        assert_eq!(
            m.total.events_received,
            u64::from(invoked.load(Ordering::Relaxed))
        );
    }
    let workers = rt.spawn_workers(8).unwrap();
    assert!(
        rt.wait_idle_timeout(Duration::from_secs(60)),
        "events were left waiting: {:?}",
        rt.metrics().total
    );
    drop(workers);
    let m = rt.metrics().total;
    let invoked = u64::from(invoked.load(Ordering::Relaxed));
    assert_eq!(m.outcome(Condition::Success), invoked, "{m:?}");
    assert_eq!(ran.load(Ordering::Relaxed), invoked);
    assert_eq!(m.throttles, 0);
    assert!(m.is_balanced());
    for name in ["a", "b"] {
        let f = rt.function_metrics(name).unwrap();
        assert!(f.peak_concurrent_executions <= 3, "{f:?}");
    }
    assert!(rt.metrics().total.peak_concurrent_executions <= 7);
}

/// One slot, many workers, many tiny events from several producers: the slot changes hands
/// tens of thousands of times, each time racing a worker that just found it taken.
#[test]
fn one_slot_shared_by_many_workers_never_loses_its_wake_up() {
    for _ in 0..5 {
        let rt: Runtime<u32> = Runtime::new();
        rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).reserved_concurrency(1))
            .unwrap();
        rt.register(Function::new("g", |_: &u32, _ctx| Ok(())).reserved_concurrency(1))
            .unwrap();
        let workers = rt.spawn_workers(6).unwrap();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000u32 {
                        rt.invoke_async(if (i + p) % 2 == 0 { "f" } else { "g" }, i)
                            .unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        assert!(
            rt.wait_idle_timeout(Duration::from_secs(60)),
            "a wake-up was lost: {:?}",
            rt.metrics().total
        );
        drop(workers);
        let m = rt.metrics().total;
        assert_eq!(m.outcome(Condition::Success), 10_000);
        assert_eq!(m.throttles, 0);
        assert!(m.is_balanced());
    }
}
