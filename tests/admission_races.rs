//! Invokes racing each other, operator calls, workers and panics: an accepted event is always
//! visible to the next lock holder (operator calls, worker steps, a step nested in a handler),
//! never stranded by a pause, a delete or a panic, never admitted past the queue's capacity;
//! each producer's events keep its order. Written for a per-function inbox that producers
//! append to without the function's lock (measured and not kept, see issue #11); they hold
//! any admission path to the same rules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use event_invoke::{
    Condition, Function, FunctionError, InvokeError, ManualClock, RequestId, Runtime,
};
use parking_lot::Mutex;

/// Every record made, by request id.
type Records = Arc<Mutex<HashMap<RequestId, Vec<Condition>>>>;

/// Waits (bounded, so that a stranded event fails the test instead of hanging it) until every
/// accepted event has ended, then stops the workers.
fn idle_then_stop(rt: &Runtime<u64>, workers: event_invoke::Workers, what: &str) {
    assert!(
        rt.wait_idle_timeout(Duration::from_secs(20)),
        "{what}: {} events stranded",
        rt.outstanding()
    );
    workers.stop();
}

/// A runtime on the system clock (so that workers run) whose records are all kept.
fn recorded_runtime() -> (Runtime<u64>, Records) {
    let records: Records = Arc::default();
    let seen = Arc::clone(&records);
    let rt = Runtime::builder()
        .keep_dead_letters(false)
        .on_record(move |r| {
            seen.lock()
                .entry(r.request_id)
                .or_default()
                .push(r.condition);
        })
        .build()
        .unwrap();
    (rt, records)
}

/// Asserts that each accepted event has exactly one record, and no other event has one.
fn one_record_per_accepted_event(records: &Records, accepted: &[RequestId]) {
    let records = records.lock();
    assert_eq!(records.len(), accepted.len(), "records of unknown events");
    for id in accepted {
        let mine = records.get(id).map_or(0, Vec::len);
        assert_eq!(mine, 1, "{id}: {:?}", records.get(id));
    }
}

#[test]
fn events_accepted_with_no_worker_are_visible_to_every_operator_call() {
    let rt: Runtime<u64> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let f = rt
        .register(Function::new("f", |_: &u64, _ctx| Ok(())))
        .unwrap();
    let ids: Vec<RequestId> = (0..5).map(|n| f.invoke_async(n).unwrap()).collect();

    let snapshot = f.queue_snapshot().unwrap();
    let seen: Vec<RequestId> = snapshot.iter().map(|e| e.request_id).collect();
    assert_eq!(seen, ids, "in the order they were accepted");
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.events_received, m.queue_depth()), (5, 5));
    assert!(m.is_balanced());

    assert!(f.edit_queued(ids[3], |p| *p = 30).unwrap());
    assert!(f.remove_queued(ids[1]).unwrap());
    let payloads = rt
        .inspect_queue("f", |q| q.iter().map(|e| *e.payload()).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(payloads, [0, 2, 30, 4]);

    // Accepted after the last operator call: a purge still finds them.
    f.invoke_async(5).unwrap();
    f.invoke_async(6).unwrap();
    assert_eq!(f.purge().unwrap(), 6);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 7);
    assert!(m.is_balanced());
    assert_eq!(rt.run_until_idle(), 0);
}

#[test]
fn a_step_inside_a_handler_finds_the_event_the_handler_just_invoked() {
    let rt: Runtime<u64> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (tx, inner) = crossbeam_channel::unbounded();
    rt.register(Function::new("f", move |n: &u64, ctx| {
        if *n == 0 {
            ctx.invoke_async("f", 1).unwrap();
            tx.send(ctx.runtime().unwrap().try_dispatch()).unwrap();
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    assert_eq!(
        rt.run_until_idle(),
        1,
        "the nested step ran the second event"
    );
    let step = inner
        .try_recv()
        .unwrap()
        .expect("the nested step took the event");
    assert_eq!(
        step.outcome,
        event_invoke::StepOutcome::Ended(Condition::Success)
    );
    assert!(rt.function_metrics("f").unwrap().is_balanced());
}

#[test]
fn concurrent_producers_fill_the_queue_to_exactly_its_capacity() {
    for paused in [false, true] {
        for _ in 0..10 {
            let rt: Runtime<u64> = Runtime::builder()
                .clock(ManualClock::new())
                .build()
                .unwrap();
            let f = rt
                .register(Function::new("f", |_: &u64, _ctx| Ok(())).queue_capacity(100))
                .unwrap();
            if paused {
                f.pause().unwrap();
            }
            let accepted = AtomicU64::new(0);
            thread::scope(|s| {
                for p in 0..4u64 {
                    let (f, accepted) = (&f, &accepted);
                    s.spawn(move || {
                        for i in 0..100u64 {
                            let payload = p * 1000 + i;
                            match f.invoke_async(payload) {
                                Ok(_) => {
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(InvokeError::QueueFull {
                                    capacity,
                                    payload: back,
                                    ..
                                }) => {
                                    assert_eq!((capacity, back), (100, payload));
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    });
                }
            });
            assert_eq!(accepted.load(Ordering::Relaxed), 100, "paused: {paused}");
            let m = rt.function_metrics("f").unwrap();
            assert_eq!((m.events_received, m.queue_depth()), (100, 100));
            // One leaves, one more fits.
            let first = f.queue_snapshot().unwrap()[0].request_id;
            assert!(f.remove_queued(first).unwrap());
            assert!(f.invoke_async(7).is_ok());
            assert!(matches!(
                f.invoke_async(8),
                Err(InvokeError::QueueFull { payload: 8, .. })
            ));
        }
    }
}

#[test]
fn each_producer_s_events_run_in_the_order_it_sent_them() {
    for _ in 0..5 {
        let rt: Runtime<u64> = Runtime::builder().build().unwrap();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&ran);
        let f = rt
            .register(Function::new("f", move |n: &u64, _ctx| {
                log.lock().push(*n);
                Ok(())
            }))
            .unwrap();
        // One worker: it runs events in queue order.
        let workers = rt.spawn_workers(1).unwrap();
        thread::scope(|s| {
            for p in 0..3u64 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..3000u64 {
                        f.invoke_async(p << 32 | i).unwrap();
                    }
                });
            }
        });
        rt.wait_idle();
        workers.stop();
        let ran = ran.lock();
        assert_eq!(ran.len(), 9000);
        for p in 0..3u64 {
            let mine: Vec<u64> = ran
                .iter()
                .filter(|n| *n >> 32 == p)
                .map(|n| n & 0xffff_ffff)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} reordered"
            );
        }
    }
}

#[test]
fn producers_racing_pause_purge_edit_snapshot_and_capacity_keep_the_books() {
    for round in 0..10 {
        let (rt, records) = recorded_runtime();
        let f = rt
            .register(
                Function::new("f", |n: &u64, _ctx| {
                    if n % 7 == 0 {
                        Err(FunctionError::new("Odd", "a seventh fails"))
                    } else {
                        Ok(())
                    }
                })
                .maximum_retry_attempts(0)
                .queue_capacity(64),
            )
            .unwrap();
        let workers = rt.spawn_workers(2).unwrap();
        let accepted = Mutex::new(Vec::new());
        let producing = AtomicBool::new(true);
        thread::scope(|s| {
            let producers: Vec<_> = (0..3u64)
                .map(|p| {
                    let (f, accepted) = (&f, &accepted);
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0..2000u64 {
                            match f.invoke_async(p * 10_000 + i) {
                                Ok(id) => mine.push(id),
                                Err(InvokeError::QueueFull { payload, .. }) => {
                                    assert_eq!(payload, p * 10_000 + i);
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                        accepted.lock().extend(mine);
                    })
                })
                .collect();
            let (f, rt, producing) = (&f, &rt, &producing);
            s.spawn(move || {
                let mut n = 0u64;
                while producing.load(Ordering::Relaxed) {
                    n += 1;
                    match (n + round) % 6 {
                        0 => {
                            f.pause().unwrap();
                            let held = f.queue_snapshot().unwrap();
                            let m = rt.function_metrics("f").unwrap();
                            assert!(m.queue_depth() <= 64 + held.len() as u64);
                            f.resume().unwrap();
                        }
                        1 => {
                            f.purge().unwrap();
                        }
                        2 => {
                            if let Some(e) = f.queue_snapshot().unwrap().first() {
                                f.edit_queued(e.request_id, |p| *p += 1).unwrap();
                            }
                        }
                        3 => {
                            let cap = if n % 4 == 3 { 16 } else { 64 };
                            f.update_config(|c| c.queue_capacity = cap).unwrap();
                        }
                        4 => {
                            if let Some(e) = f.queue_snapshot().unwrap().last() {
                                f.remove_queued(e.request_id).unwrap();
                            }
                        }
                        _ => {
                            let m = rt.function_metrics("f").unwrap();
                            assert!(m.queue_depth() <= 64);
                        }
                    }
                    thread::yield_now();
                }
            });
            for p in producers {
                p.join().unwrap();
            }
            producing.store(false, Ordering::Relaxed);
        });
        idle_then_stop(&rt, workers, &format!("round {round}"));
        let accepted = accepted.into_inner();
        one_record_per_accepted_event(&records, &accepted);
        let m = rt.function_metrics("f").unwrap();
        assert_eq!(m.events_received, accepted.len() as u64);
        assert_eq!(m.finished(), accepted.len() as u64);
        assert!(m.is_balanced(), "{m:?}");
    }
}

#[test]
fn an_invoke_racing_delete_is_refused_or_ends_with_its_record() {
    for round in 0..40 {
        let (rt, records) = recorded_runtime();
        let f = rt
            .register(Function::new("f", |_: &u64, _ctx| Ok(())))
            .unwrap();
        let workers = rt.spawn_workers(2).unwrap();
        let accepted = Mutex::new(Vec::new());
        let refused = AtomicU64::new(0);
        thread::scope(|s| {
            for p in 0..2u64 {
                let (f, accepted, refused) = (&f, &accepted, &refused);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..3000u64 {
                        match f.invoke_async(p << 32 | i) {
                            Ok(id) => mine.push(id),
                            Err(InvokeError::FunctionDeleted { payload, .. }) => {
                                assert_eq!(payload, p << 32 | i);
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    accepted.lock().extend(mine);
                });
            }
            // Delete somewhere in the middle of the stream.
            for _ in 0..(round % 5) * 100 {
                thread::yield_now();
            }
            f.delete().unwrap();
        });
        idle_then_stop(&rt, workers, &format!("round {round}"));
        let accepted = accepted.into_inner();
        assert_eq!(
            accepted.len() as u64 + refused.load(Ordering::Relaxed),
            6000
        );
        one_record_per_accepted_event(&records, &accepted);
        for conditions in records.lock().values() {
            assert!(matches!(
                conditions[..],
                [Condition::Success] | [Condition::FunctionDeleted]
            ));
        }
    }
}

#[test]
fn a_handler_that_panics_strands_no_accepted_event() {
    event_invoke::quiet_handler_panics();
    for _ in 0..5 {
        let (rt, records) = recorded_runtime();
        let f = rt
            .register(
                Function::new("f", |n: &u64, _ctx| {
                    assert!(n % 3 != 0, "a third panic");
                    Ok(())
                })
                .maximum_retry_attempts(0),
            )
            .unwrap();
        let workers = rt.spawn_workers(2).unwrap();
        let accepted = Mutex::new(Vec::new());
        thread::scope(|s| {
            for p in 0..2u64 {
                let (f, accepted) = (&f, &accepted);
                s.spawn(move || {
                    let ids: Vec<_> = (0..3000u64)
                        .map(|i| f.invoke_async(p * 10_000 + i).unwrap())
                        .collect();
                    accepted.lock().extend(ids);
                });
            }
        });
        idle_then_stop(&rt, workers, "");
        one_record_per_accepted_event(&records, &accepted.into_inner());
        let m = rt.function_metrics("f").unwrap();
        assert_eq!(m.outcome(Condition::RetriesExhausted), 2000);
        assert_eq!(m.outcome(Condition::Success), 4000);
        assert!(m.is_balanced());
    }
}
