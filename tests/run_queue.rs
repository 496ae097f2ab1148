//! The run queue between whoever makes events ready and the workers: no wake-up is lost,
//! whoever stops the workers reaches every parked one, and the accounting holds meanwhile.

mod common;
use common::counting;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use event_invoke::{Function, FunctionError, RetryPolicy, Runtime, StopSignal};

#[test]
fn one_stop_signal_wakes_the_parked_workers_of_two_runtimes() {
    let (a, b): (Runtime<u32>, Runtime<u32>) = (Runtime::new(), Runtime::new());
    let (runs_a, runs_b) = (counting(&a, "f"), counting(&b, "f"));
    let stop = StopSignal::new();
    let workers: Vec<_> = [&a, &a, &b, &b]
        .into_iter()
        .map(|rt| {
            let (rt, stop) = (rt.clone(), stop.clone());
            std::thread::spawn(move || rt.run_worker(&stop))
        })
        .collect();
    a.invoke_async("f", 1).unwrap();
    b.invoke_async("f", 2).unwrap();
    assert!(a.wait_idle_timeout(Duration::from_secs(10)));
    assert!(b.wait_idle_timeout(Duration::from_secs(10)));
    // Every worker is parked now (or about to be); one stop reaches all four.
    stop.stop();
    let dispatched: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(dispatched, 2);
    assert_eq!(runs_a.load(Ordering::SeqCst), 1);
    assert_eq!(runs_b.load(Ordering::SeqCst), 1);
}

/// Each event is invoked only once the workers have run out of work, so each one has to wake a
/// parked worker: a wake-up lost would leave the event queued and `wait_idle_timeout` false.
#[test]
fn every_event_invoked_while_the_workers_are_parked_wakes_one() {
    let rt: Runtime<u32> = Runtime::new();
    let runs: Vec<_> = ["f", "g"].iter().map(|n| counting(&rt, n)).collect();
    let workers = rt.spawn_workers(3).unwrap();
    for i in 0..300u32 {
        let name = if i % 2 == 0 { "f" } else { "g" };
        rt.invoke_async(name, i).unwrap();
        assert!(
            rt.wait_idle_timeout(Duration::from_secs(10)),
            "event {i} was never run"
        );
    }
    assert_eq!(workers.stop(), 300);
    let total: u32 = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
    assert_eq!(total, 300);
}

/// Producers on two threads and workers on three, over four functions: every event runs once,
/// and received = ended + queued + in flight at the end.
#[test]
fn producers_and_workers_on_many_threads_lose_no_event_and_run_none_twice() {
    let rt: Runtime<u32> = Runtime::new();
    let names = ["a", "b", "c", "d"];
    let runs: Vec<_> = names.iter().map(|n| counting(&rt, n)).collect();
    let workers = rt.spawn_workers(3).unwrap();
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    let name = names[((i + p) % 4) as usize];
                    rt.invoke_async(name, i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
    assert_eq!(workers.stop(), 4_000);
    let total: u32 = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
    assert_eq!(total, 4_000);
    for n in names {
        let m = rt.function_metrics(n).unwrap();
        assert_eq!(m.events_received, 1_000);
        assert_eq!(m.finished(), 1_000);
        assert!(m.is_balanced(), "{n}: {m:?}");
    }
}

/// Three workers parked before any timer; a retry's timer is armed 300 ms out; then two slow
/// events take two workers. The third worker must serve the retry on time: the slow handlers
/// wait for it (at most 10 s), so a retry served only once a handler ends fails the test
/// instead of passing late. Real time: the bug was in real-time parking, which a manual clock
/// does not use. The short sleeps only let the workers park before the timer exists; a pass
/// does not depend on them.
#[test]
fn a_due_retry_runs_on_time_while_other_workers_run_slow_handlers() {
    let rt: Runtime<u32> = Runtime::new();
    let (retried_tx, retried) = crossbeam_channel::unbounded::<()>();
    let attempts = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&attempts);
    let policy = RetryPolicy::builder()
        .retry_delays(vec![Duration::from_millis(300)])
        .build()
        .unwrap();
    rt.register(
        Function::new("flaky", move |_: &u32, _ctx| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(FunctionError::new("Boom", "first attempt"))
            } else {
                // One signal for each slow handler.
                let _ = retried_tx.send(());
                let _ = retried_tx.send(());
                Ok(())
            }
        })
        .retry_policy(policy),
    )
    .unwrap();
    let waited_in_vain = Arc::new(AtomicU64::new(0));
    let vain = Arc::clone(&waited_in_vain);
    rt.register(
        Function::new("slow", move |_: &u32, _ctx| {
            if retried.recv_timeout(Duration::from_secs(10)).is_err() {
                vain.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })
        // Longer than its wait, so that a late retry fails the test here, not as a timeout.
        .timeout(Duration::from_secs(15)),
    )
    .unwrap();
    let workers = rt.spawn_workers(3).unwrap();
    thread::sleep(Duration::from_millis(100)); // the three park, with no timer yet
    rt.invoke_async("flaky", 0).unwrap(); // fails at once: its retry is due in 300 ms
    thread::sleep(Duration::from_millis(50));
    rt.invoke_async("slow", 1).unwrap();
    rt.invoke_async("slow", 2).unwrap();
    assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
    workers.stop();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // The retry ran while the slow handlers waited for it.
    assert_eq!(waited_in_vain.load(Ordering::SeqCst), 0);
}
