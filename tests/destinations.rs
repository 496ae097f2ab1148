//! On-success / on-failure destinations of each kind, the record's fields, dead letters, failed
//! deliveries, and the runtime-wide record observer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Destination, Error, ErrorKind, Function, FunctionError, InvocationRecord,
    ManualClock, Runtime, StepOutcome, Timestamp,
};

mod common;
use common::{manual_runtime as runtime, sink};

fn secs(s: u64) -> Timestamp {
    Timestamp::ZERO + Duration::from_secs(s)
}

type Collected<P, R> = Arc<Mutex<Vec<InvocationRecord<P, R>>>>;

fn collector<P: Clone + Send + 'static, R: Clone + Send + 'static>(
) -> (Destination<P, R>, Collected<P, R>) {
    let records: Collected<P, R> = Arc::new(Mutex::new(Vec::new()));
    let keep = records.clone();
    (
        Destination::closure(move |r| keep.lock().unwrap().push(r.clone())),
        records,
    )
}

// ----- closure destination and the record's fields ------------------------------------------

#[test]
fn success_record_reaches_a_closure_destination_with_every_field() {
    let (clock, rt) = runtime::<String, usize>();
    let (on_success, records) = collector();
    let handler_clock = clock.clone();
    rt.register(
        Function::new("measure", move |s: &String, _ctx| {
            handler_clock.advance(Duration::from_secs(1)); // the handler takes 1 s
            Ok(s.len())
        })
        .on_success(on_success),
    )
    .unwrap();
    clock.advance(Duration::from_secs(5));
    let id = rt.invoke_async("measure", "hello".to_string()).unwrap();
    rt.run_until_idle();

    let records = records.lock().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.request_id, id);
    assert_eq!(&*r.function, "measure");
    assert_eq!(r.condition, Condition::Success);
    assert_eq!(r.approximate_invoke_count, 1);
    assert_eq!(r.request_payload, "hello");
    assert!(matches!(r.response, Some(Ok(5))));
    assert_eq!(r.response_payload(), Some(&5));
    assert!(r.error().is_none());
    assert_eq!(r.executed_version, Some(1));
    assert_eq!(r.enqueued_at, secs(5));
    assert_eq!(r.timestamp, secs(6), "stamped when the outcome was decided");
    assert_eq!(r.chain_depth, 1);
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn failure_record_reaches_a_channel_destination_with_the_last_error() {
    let (clock, rt) = runtime::<u32, ()>();
    let (on_failure, records) = sink();
    rt.register(
        Function::new("charge", |_: &u32, ctx| {
            Err(FunctionError::new(
                "Declined",
                format!("attempt {}", ctx.approximate_invoke_count()),
            ))
        })
        .on_failure(on_failure),
    )
    .unwrap();
    clock.advance(Duration::from_secs(5));
    let id = rt.invoke_async("charge", 500).unwrap();
    rt.run_until_idle();

    let r = records.try_recv().unwrap();
    assert!(records.try_recv().is_err(), "exactly one record per event");
    assert_eq!(r.request_id, id);
    assert_eq!(&*r.function, "charge");
    assert_eq!(r.condition, Condition::RetriesExhausted);
    assert_eq!(r.approximate_invoke_count, 3);
    assert_eq!(r.request_payload, 500);
    let e = r.error().unwrap();
    assert_eq!(e.error_type(), "Declined");
    assert_eq!(e.message(), "attempt 3", "the last attempt's error");
    assert_eq!(e.kind(), ErrorKind::Handled);
    assert!(r.response_payload().is_none());
    assert_eq!(r.executed_version, Some(1));
    assert_eq!(r.enqueued_at, secs(5));
    assert_eq!(r.timestamp, secs(5 + 60 + 120));
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn success_and_failure_records_go_to_their_own_destinations() {
    let (_clock, rt) = runtime::<u32, u32>();
    let (on_success, successes) = sink();
    let (on_failure, failures) = sink();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n == 0 {
                Err(FunctionError::new("Zero", "no"))
            } else {
                Ok(*n)
            }
        })
        .maximum_retry_attempts(0)
        .on_success(on_success)
        .on_failure(on_failure),
    )
    .unwrap();
    let ok = rt.invoke_async("f", 1).unwrap();
    let bad = rt.invoke_async("f", 0).unwrap();
    rt.run_until_idle();
    let s: Vec<_> = successes.try_iter().map(|r| r.request_id).collect();
    let f: Vec<_> = failures.try_iter().map(|r| r.request_id).collect();
    assert_eq!((s, f), (vec![ok], vec![bad]));
}

// ----- function destination -----------------------------------------------------------------

#[test]
fn function_destination_receives_a_payload_built_from_the_record() {
    let (_clock, rt) = runtime::<String, ()>();
    let audit = Arc::new(Mutex::new(Vec::new()));
    let seen = audit.clone();
    let (audit_done, audit_records) = sink();
    rt.register(
        Function::new("audit", move |p: &String, ctx| {
            seen.lock().unwrap().push((p.clone(), ctx.chain_depth()));
            Ok(())
        })
        .on_success(audit_done),
    )
    .unwrap();
    let map = |r: &InvocationRecord<String, ()>| {
        format!(
            "{}:{}:{}:{}",
            r.function, r.condition, r.approximate_invoke_count, r.request_payload
        )
    };
    rt.register(
        Function::new("worker", |p: &String, _ctx| {
            if p == "bad" {
                Err(FunctionError::new("Bad", "bad input"))
            } else {
                Ok(())
            }
        })
        .maximum_retry_attempts(0)
        .on_success(Destination::function("audit", map))
        .on_failure(Destination::function("audit", map)),
    )
    .unwrap();

    rt.invoke_async("worker", "good".to_string()).unwrap();
    rt.invoke_async("worker", "bad".to_string()).unwrap();
    rt.run_until_idle();

    let mut got = audit.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("worker:RetriesExhausted:1:bad".to_string(), 2),
            ("worker:Success:1:good".to_string(), 2),
        ]
    );
    // The destination's events are one hop deeper, and recorded like any other event.
    let depths: Vec<_> = audit_records.try_iter().map(|r| r.chain_depth).collect();
    assert_eq!(depths, vec![2, 2]);
    let m = rt.function_metrics("audit").unwrap();
    assert_eq!((m.events_received, m.outcome(Condition::Success)), (2, 2));
    assert_eq!(
        rt.function_metrics("worker")
            .unwrap()
            .destination_delivery_failures,
        0
    );
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn function_destination_event_is_one_hop_deeper_than_the_source_event() {
    let (_clock, rt) = runtime::<u32, ()>();
    let depth = Arc::new(AtomicU32::new(0));
    let d = depth.clone();
    rt.register(Function::new("sink", move |_: &u32, ctx| {
        d.store(ctx.chain_depth(), Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();
    rt.register(
        Function::new("leaf", |_: &u32, _ctx| Ok(()))
            .on_success(Destination::function("sink", |r| r.chain_depth)),
    )
    .unwrap();
    rt.register(Function::new("root", |_: &u32, ctx| {
        ctx.invoke_async("leaf", 0)
            .map(|_| ())
            .map_err(|e| FunctionError::new("InvokeFailed", e.to_string()))
    }))
    .unwrap();
    rt.invoke_async("root", 0).unwrap();
    rt.run_until_idle();
    // root (1) -> leaf (2) -> destination event (3), which carries leaf's depth as payload.
    assert_eq!(depth.load(Ordering::SeqCst), 3);
}

#[test]
fn function_destination_must_name_a_registered_function() {
    let (_clock, rt) = runtime::<u32, ()>();
    let err = rt
        .register(
            Function::new("f", |_: &u32, _ctx| Ok(()))
                .on_failure(Destination::function("missing", |r| r.request_payload)),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownDestination {
            function: "f".into(),
            destination: "missing".into()
        }
    );
    assert!(rt.function("f").is_none());

    let err = rt
        .register(
            Function::new("g", |_: &u32, _ctx| Ok(()))
                .on_success(Destination::function("missing", |r| r.request_payload)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnknownDestination { .. }));

    // A function may name itself.
    rt.register(
        Function::new("self-audit", |_: &u32, _ctx| Ok(()))
            .on_failure(Destination::function("self-audit", |r| r.request_payload)),
    )
    .unwrap();
}

#[test]
fn function_destination_deleted_after_registration_counts_a_delivery_failure() {
    let (_clock, rt) = runtime::<u32, ()>();
    rt.register(Function::new("audit", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Err(FunctionError::new("E", "e")))
            .maximum_retry_attempts(0)
            .on_failure(Destination::function("audit", |r| r.request_payload)),
    )
    .unwrap();
    rt.delete("audit").unwrap();
    let id = rt.invoke_async("f", 3).unwrap();
    rt.run_until_idle();
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        1
    );
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::RetriesExhausted);
}

// ----- dead letters -------------------------------------------------------------------------

#[test]
fn failures_without_destination_land_in_dead_letters() {
    let (_clock, rt) = runtime::<u32, ()>();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Err(FunctionError::new("E", "e")))
            .maximum_retry_attempts(1),
    )
    .unwrap();
    let a = rt.invoke_async("f", 1).unwrap();
    let b = rt.invoke_async("f", 2).unwrap();
    rt.run_until_idle();
    let dead = rt.drain_dead_letters();
    let mut ids: Vec<_> = dead.iter().map(|r| r.request_id).collect();
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    assert!(dead
        .iter()
        .all(|r| r.condition == Condition::RetriesExhausted && r.approximate_invoke_count == 2));
    assert!(
        rt.drain_dead_letters().is_empty(),
        "draining empties the list"
    );
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        0,
        "no destination is not a failed delivery"
    );
}

#[test]
fn successes_without_destination_are_not_kept() {
    let (_clock, rt) = runtime::<u32, ()>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    for n in 0..5 {
        rt.invoke_async("f", n).unwrap();
    }
    assert_eq!(rt.run_until_idle(), 5);
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .outcome(Condition::Success),
        5
    );
}

#[test]
fn dead_letters_can_be_switched_off() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Err(FunctionError::new("E", "e")))
            .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .outcome(Condition::RetriesExhausted),
        1
    );
}

// ----- failed deliveries --------------------------------------------------------------------

#[test]
fn channel_whose_receiver_was_dropped_counts_a_delivery_failure() {
    let (_clock, rt) = runtime::<u32, ()>();
    let (on_failure, failures) = sink();
    let (on_success, successes) = sink();
    drop(failures);
    drop(successes);
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n == 0 {
                Err(FunctionError::new("E", "e"))
            } else {
                Ok(())
            }
        })
        .maximum_retry_attempts(0)
        .on_success(on_success)
        .on_failure(on_failure),
    )
    .unwrap();
    let failed = rt.invoke_async("f", 0).unwrap();
    let succeeded = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.destination_delivery_failures, 2);
    let dead = rt.drain_dead_letters();
    let by_id: HashMap<_, _> = dead.iter().map(|r| (r.request_id, r.condition)).collect();
    assert_eq!(by_id.len(), 2, "each undelivered record is kept once");
    assert_eq!(by_id[&failed], Condition::RetriesExhausted);
    assert_eq!(by_id[&succeeded], Condition::Success);
}

#[test]
fn closure_destination_that_panics_counts_a_delivery_failure() {
    let (_clock, rt) = runtime::<u32, ()>();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Err(FunctionError::new("E", "e")))
            .maximum_retry_attempts(0)
            .on_failure(Destination::closure(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                panic!("destination is down");
            })),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert_eq!(
        step.outcome,
        StepOutcome::Ended(Condition::RetriesExhausted)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        1
    );
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(rt.outstanding(), 0);
}

// ----- the observer ---------------------------------------------------------------------------

#[test]
fn on_record_observer_sees_every_record_exactly_once() {
    let seen: Arc<Mutex<Vec<(event_invoke::RequestId, Condition)>>> =
        Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .on_record(move |r| s.lock().unwrap().push((r.request_id, r.condition)))
        .build()
        .unwrap();
    let (on_success, successes) = sink();
    rt.register(Function::new("audit", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n % 2 == 1 {
                Err(FunctionError::new("Odd", "odd"))
            } else {
                Ok(())
            }
        })
        .on_success(on_success)
        .on_failure(Destination::function("audit", |r| r.request_payload)),
    )
    .unwrap();
    rt.register(Function::new("stopped", |_: &u32, _ctx| Ok(())).reserved_concurrency(0))
        .unwrap();
    rt.register(Function::new("doomed", |_: &u32, _ctx| Ok(())))
        .unwrap();

    let mut expected = HashMap::new();
    for n in 0..4 {
        let c = if n % 2 == 1 {
            Condition::RetriesExhausted
        } else {
            Condition::Success
        };
        expected.insert(rt.invoke_async("f", n).unwrap(), c);
    }
    expected.insert(
        rt.invoke_async("stopped", 0).unwrap(),
        Condition::ZeroReservedConcurrency,
    );
    let purged = rt.invoke_async("f", 10).unwrap();
    rt.remove_queued("f", purged).unwrap();
    expected.insert(purged, Condition::Purged);
    expected.insert(
        rt.invoke_async("doomed", 0).unwrap(),
        Condition::FunctionDeleted,
    );
    rt.delete("doomed").unwrap();
    rt.run_until_idle();

    let seen = seen.lock().unwrap();
    let mut by_id: HashMap<_, Vec<Condition>> = HashMap::new();
    for (id, c) in seen.iter() {
        by_id.entry(*id).or_default().push(*c);
    }
    assert!(
        by_id.values().all(|cs| cs.len() == 1),
        "a record was observed twice: {by_id:?}"
    );
    for (id, c) in &expected {
        assert_eq!(by_id.get(id), Some(&vec![*c]), "event {id}");
    }
    // Plus one success record for each failure forwarded to `audit` (two exhausted, one purged).
    assert_eq!(seen.len(), expected.len() + 3);
    assert_eq!(successes.try_iter().count(), 2);
    assert_eq!(rt.metrics().total.finished(), seen.len() as u64);
}

#[test]
fn a_full_bounded_channel_is_a_failed_delivery_not_a_blocked_worker() {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    rt.register(
        Function::new("fails", |_: &u32, _ctx| Err(FunctionError::new("E", "e")))
            .maximum_retry_attempts(0)
            .on_failure(Destination::channel(tx)),
    )
    .unwrap();
    rt.invoke_async("fails", 1).unwrap();
    rt.invoke_async("fails", 2).unwrap();
    rt.run_until_idle(); // would block forever on a blocking send
    assert_eq!(rx.try_recv().unwrap().request_payload, 1);
    let m = rt.function_metrics("fails").unwrap();
    assert_eq!(m.destination_delivery_failures, 1);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_payload, 2);
}

#[test]
fn the_books_balance_while_a_purge_delivers_its_records() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let balanced = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&balanced);
    let observer = rt.clone();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(())).on_failure(Destination::closure(move |_| {
            let m = observer.function_metrics("f").unwrap();
            seen.lock().unwrap().push(m.is_balanced());
        })),
    )
    .unwrap();
    rt.pause("f").unwrap();
    for i in 0..3 {
        rt.invoke_async("f", i).unwrap();
    }
    assert_eq!(rt.purge("f").unwrap(), 3);
    assert_eq!(*balanced.lock().unwrap(), vec![true, true, true]);
}

#[test]
fn the_tracer_hears_each_delivery_and_each_failed_one_after_the_ending() {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let trace = Arc::clone(&lines);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .on_trace(move |e: &event_invoke::TraceEvent<'_>| {
            if let event_invoke::TraceKind::DestinationDelivery { .. }
            | event_invoke::TraceKind::Ended { .. } = e.kind
            {
                trace.lock().unwrap().push(e.to_string());
            }
        })
        .build()
        .unwrap();
    let (ok, _records) = sink::<u32, ()>();
    let (gone, closed) = sink::<u32, ()>();
    drop(closed);
    rt.register(Function::new("target", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n == 0 {
                return Err(FunctionError::new("Zero", "zero"));
            }
            Ok(())
        })
        .maximum_retry_attempts(0)
        .on_success(ok)
        .on_failure(gone),
    )
    .unwrap();
    rt.register(
        Function::new("g", |_: &u32, _ctx| Err(FunctionError::new("No", "no")))
            .maximum_retry_attempts(0)
            .on_failure(Destination::function("target", |r| r.request_payload)),
    )
    .unwrap();
    rt.register(
        Function::new("h", |_: &u32, _ctx| Err(FunctionError::new("No", "no")))
            .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.invoke_async("g", 7).unwrap();
    rt.invoke_async("h", 7).unwrap(); // no destination: a dead letter, no delivery step
    rt.run_until_idle();
    let lines = lines.lock().unwrap();
    let mut steps: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start().split_once("  ").unwrap().1)
        .collect();
    // Functions take turns; each one's steps keep their order.
    steps.sort_by_key(|l| l.split_once("  ").unwrap().0);
    assert_eq!(
        steps,
        [
            "f  ended Success after 1 execution(s)",
            "f  record delivered to the on-success destination",
            "f  ended RetriesExhausted after 1 execution(s)",
            "f  delivery to the on-failure destination failed",
            "g  ended RetriesExhausted after 1 execution(s)",
            "g  record delivered to the on-failure destination (function target)",
            "h  ended RetriesExhausted after 1 execution(s)",
            "target  ended Success after 1 execution(s)",
        ]
    );
}

// ----- channels without a crossbeam dependency of one's own --------------------------------

#[test]
fn a_std_mpsc_channel_takes_each_record_once_like_a_crossbeam_one() {
    let (_clock, rt) = runtime::<u32, ()>();
    let (success_tx, successes) = std::sync::mpsc::channel();
    let (failure_tx, failures) = std::sync::mpsc::channel();
    let on_failure = Destination::channel(failure_tx);
    assert_eq!(format!("{on_failure:?}"), "Destination::StdChannel");
    rt.register(
        Function::new("f", |n: &u32, _ctx| match n {
            0 => Err(FunctionError::new("Zero", "no zeros")),
            _ => Ok(()),
        })
        .maximum_retry_attempts(1)
        .on_success(Destination::channel(success_tx))
        .on_failure(on_failure.clone()),
    )
    .unwrap();
    let failed = rt.invoke_async("f", 0).unwrap();
    let succeeded = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();

    let r = failures.try_recv().unwrap();
    assert!(failures.try_recv().is_err(), "exactly one record per event");
    assert_eq!(r.request_id, failed);
    assert_eq!(r.condition, Condition::RetriesExhausted);
    assert_eq!(r.approximate_invoke_count, 2);
    assert_eq!(r.error().unwrap().error_type(), "Zero");
    let r = successes.try_recv().unwrap();
    assert!(
        successes.try_recv().is_err(),
        "exactly one record per event"
    );
    assert_eq!((r.request_id, r.condition), (succeeded, Condition::Success));
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        0
    );
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn a_std_channel_whose_receiver_was_dropped_counts_a_delivery_failure() {
    let (_clock, rt) = runtime::<u32, ()>();
    let (tx, rx) = std::sync::mpsc::channel();
    drop(rx);
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).on_success(Destination::channel(tx)))
        .unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    rt.run_until_idle();

    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .destination_delivery_failures,
        1
    );
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1, "the undelivered record is kept, not lost");
    assert_eq!(
        (dead[0].request_id, dead[0].condition),
        (id, Condition::Success)
    );
    assert_eq!(dead[0].request_payload, 7);
}

#[test]
fn the_reexported_crossbeam_channel_is_the_one_destinations_take() {
    use event_invoke::crossbeam_channel;

    let (_clock, rt) = runtime::<u32, ()>();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let on_success = Destination::channel(tx);
    assert_eq!(format!("{on_success:?}"), "Destination::Channel");
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    rt.run_until_idle();
    let r = rx.try_recv().unwrap();
    assert_eq!((r.request_id, r.condition), (id, Condition::Success));
}
