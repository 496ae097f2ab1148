//! Workers take several ready events of a fast function at once; slow functions one at a time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{Function, ManualClock, Runtime, Timestamp};

/// A function whose handler pauses the function itself on its `pause_at`-th run and takes
/// `took` of virtual time per run. Returns the runtime and the run count.
fn pausing(took: Duration, pause_at: u32) -> (Runtime<u32>, Arc<AtomicU32>) {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let (seen, me) = (Arc::clone(&runs), rt.clone());
    rt.register(Function::new("f", move |_: &u32, _ctx| {
        clock.advance(took);
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == pause_at {
            me.pause("f").unwrap();
        }
        Ok(())
    }))
    .unwrap();
    for i in 0..40 {
        rt.invoke_async("f", i).unwrap();
    }
    (rt, runs)
}

#[test]
fn a_pause_during_a_batch_gives_the_rest_of_the_batch_back_to_the_queue() {
    let (rt, runs) = pausing(Duration::ZERO, 20);
    rt.run_until_idle();
    // The batch that paused the function did not go on: what it had taken waits, held.
    assert_eq!(runs.load(Ordering::SeqCst), 20);
    let m = rt.function_metrics("f").unwrap();
    assert!(m.is_balanced(), "{m:?}");
    assert_eq!((m.queue_ready, m.in_flight_events), (20, 0));
    rt.resume("f").unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 40);
    assert_eq!(rt.function_metrics("f").unwrap().finished(), 40);
}

/// The most events in a worker's hands at once, seen from a destination, when the handler
/// takes `took` of virtual time.
fn most_in_hand(took: Duration) -> u64 {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let most = Arc::new(AtomicU32::new(0));
    let (seen, me) = (Arc::clone(&most), rt.clone());
    rt.register(
        Function::new("f", move |_: &u32, _ctx| {
            clock.advance(took);
            Ok(())
        })
        .on_success(event_invoke::Destination::closure(move |_| {
            let n = me.function_metrics("f").unwrap().in_flight_events as u32;
            seen.fetch_max(n, Ordering::SeqCst);
        })),
    )
    .unwrap();
    for i in 0..100 {
        rt.invoke_async("f", i).unwrap();
    }
    assert_eq!(rt.run_until_idle(), 100);
    assert!(rt.function_metrics("f").unwrap().is_balanced());
    u64::from(most.load(Ordering::SeqCst))
}

#[test]
fn a_worker_takes_several_events_of_a_fast_function_at_once() {
    let most = most_in_hand(Duration::from_micros(1));
    assert!(most > 1 && most <= 16, "{most}");
}

#[test]
fn a_worker_takes_one_event_of_a_slow_function_at_a_time() {
    assert_eq!(most_in_hand(Duration::from_millis(1)), 1);
}

#[test]
fn new_code_takes_effect_on_the_rest_of_a_running_batch() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let versions = Arc::new(Mutex::new(Vec::new()));
    let (seen, me) = (Arc::clone(&versions), rt.clone());
    rt.register(Function::new("f", move |n: &u32, ctx| {
        seen.lock().unwrap().push(ctx.code_version());
        if *n == 30 {
            let seen = Arc::clone(&seen);
            me.update_code("f", move |_: &u32, ctx| {
                seen.lock().unwrap().push(ctx.code_version());
                Ok(())
            })
            .unwrap();
        }
        Ok(())
    }))
    .unwrap();
    for i in 0..40 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let versions = versions.lock().unwrap();
    assert_eq!(versions.len(), 40);
    assert!(versions[..31].iter().all(|v| *v == 1));
    assert!(versions[31..].iter().all(|v| *v == 2), "{versions:?}");
}

#[test]
fn a_slow_function_runs_one_event_per_step_so_a_pause_holds_the_next_at_once() {
    // 1 ms per run is far above the batching threshold (20 us on average).
    let (rt, runs) = pausing(Duration::from_millis(1), 20);
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 20);
    assert_eq!(rt.function_metrics("f").unwrap().queue_ready, 20);
}

#[test]
fn each_event_of_a_batch_starts_when_the_previous_one_ended() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&starts);
    let c = clock.clone();
    rt.register(Function::new("f", move |_: &u32, ctx| {
        seen.lock().unwrap().push(ctx.started_at());
        c.advance(Duration::from_micros(5)); // fast enough to be batched
        Ok(())
    }))
    .unwrap();
    for i in 0..40 {
        rt.invoke_async("f", i).unwrap();
    }
    assert_eq!(rt.run_until_idle(), 40);
    let starts = starts.lock().unwrap();
    let expected: Vec<Timestamp> = (0..40)
        .map(|i| Timestamp::ZERO + Duration::from_micros(5 * i))
        .collect();
    assert_eq!(*starts, expected);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.invocations, 40);
    assert_eq!(m.duration_total, Duration::from_micros(200));
    assert_eq!(m.event_age_max, Duration::from_micros(195));
}
