//! Operator controls: pause / update_code / resume, purge, delete, queue view and edit, queue
//! capacity, configuration updates, and synchronous invokes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Destination, Error, EventState, Function, FunctionError, InvocationRecord,
    InvokeError, InvokeSyncError, ManualClock, Runtime, StepOutcome, Timestamp,
};

mod common;
use common::sink;

fn runtime<P: Send + 'static>() -> (ManualClock, Runtime<P>) {
    let clock = ManualClock::new();
    let rt = Runtime::builder().clock(clock.clone()).build().unwrap();
    (clock, rt)
}

fn secs(s: u64) -> Timestamp {
    Timestamp::ZERO + Duration::from_secs(s)
}

fn fail() -> FunctionError {
    FunctionError::new("Boom", "always fails")
}

// ----- pause / update_code / resume ------------------------------------------------------------

#[test]
fn paused_function_holds_its_events_until_resumed() {
    let (clock, rt) = runtime::<u32>();
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    rt.register(Function::new("f", move |_: &u32, _ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();

    let before = rt.invoke_async("f", 1).unwrap(); // queued (and scheduled) before the pause
    rt.pause("f").unwrap();
    let during = rt.invoke_async("f", 2).unwrap(); // accepted while paused

    assert!(rt.is_paused("f").unwrap());
    let snap = rt.queue_snapshot("f").unwrap();
    let ids: Vec<_> = snap.iter().map(|e| e.request_id).collect();
    assert_eq!(ids, vec![before, during]);
    assert!(snap.iter().all(|e| e.state == EventState::Held));

    assert_eq!(rt.run_until_idle(), 0);
    assert!(rt.try_dispatch().is_none());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        clock.now(),
        Timestamp::ZERO,
        "held events must not make time jump"
    );
    let m = rt.function_metrics("f").unwrap();
    assert!(m.paused);
    assert_eq!((m.invocations, m.finished(), m.queue_depth()), (0, 0, 2));

    rt.resume("f").unwrap();
    assert!(!rt.is_paused("f").unwrap());
    assert!(rt
        .queue_snapshot("f")
        .unwrap()
        .iter()
        .all(|e| e.state == EventState::Ready));
    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        rt.function_metrics("f")
            .unwrap()
            .outcome(Condition::Success),
        2
    );
}

#[test]
fn held_events_run_on_the_code_installed_while_paused() {
    let (_clock, rt) = runtime::<u32>();
    let (on_success, records) = sink();
    let old_runs = Arc::new(AtomicU32::new(0));
    let seen_old = old_runs.clone();
    rt.register(
        Function::new("f", move |_: &u32, _ctx| {
            seen_old.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .on_success(on_success),
    )
    .unwrap();

    rt.pause("f").unwrap();
    let ids: Vec<_> = (0..3).map(|i| rt.invoke_async("f", i).unwrap()).collect();
    assert_eq!(rt.run_until_idle(), 0);

    let versions = Arc::new(Mutex::new(Vec::new()));
    let seen_new = versions.clone();
    let v = rt
        .update_code("f", move |n: &u32, ctx| {
            seen_new.lock().unwrap().push((*n, ctx.code_version()));
            Ok(())
        })
        .unwrap();
    assert_eq!(v, 2);

    rt.resume("f").unwrap();
    assert_eq!(rt.run_until_idle(), 3);
    assert_eq!(old_runs.load(Ordering::SeqCst), 0, "version 1 must not run");
    assert_eq!(*versions.lock().unwrap(), vec![(0, 2), (1, 2), (2, 2)]);

    let got: Vec<_> = records.try_iter().collect();
    assert_eq!(got.len(), 3);
    for (r, id) in got.iter().zip(&ids) {
        assert_eq!(r.request_id, *id);
        assert_eq!(r.condition, Condition::Success);
        assert_eq!(r.executed_version, Some(2));
    }
}

#[test]
fn retry_held_by_a_pause_runs_on_the_new_code_after_resume() {
    let (clock, rt) = runtime::<u32>();
    let (on_success, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Err(fail())).on_success(on_success))
        .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: secs(60) }
    );
    rt.pause("f").unwrap();
    assert_eq!(rt.update_code("f", |_: &u32, _ctx| Ok(())).unwrap(), 2);
    assert_eq!(rt.run_until_idle(), 0, "a held retry does not run");
    assert_eq!(clock.now(), Timestamp::ZERO, "nor does it make time jump");
    assert_eq!(rt.queue_snapshot("f").unwrap()[0].state, EventState::Held);

    rt.resume("f").unwrap();
    assert_eq!(
        rt.queue_snapshot("f").unwrap()[0].state,
        EventState::Delayed { due: secs(60) }
    );
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(clock.now(), secs(60));
    let r = records.try_recv().unwrap();
    assert_eq!(r.request_id, id);
    assert_eq!(
        (r.approximate_invoke_count, r.executed_version),
        (2, Some(2))
    );
}

#[test]
fn held_events_still_age_out_while_paused() {
    let (clock, rt) = runtime::<u32>();
    rt.register(
        Function::new("f", |_: &u32, _ctx| Ok(())).maximum_event_age(Duration::from_secs(120)),
    )
    .unwrap();
    rt.pause("f").unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_for(Duration::from_secs(119)), 0);
    assert_eq!(rt.queue_snapshot("f").unwrap().len(), 1);
    rt.run_for(Duration::from_secs(10));
    assert_eq!(clock.now(), secs(129));
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::EventAgeExceeded);
    assert_eq!(dead[0].approximate_invoke_count, 0);
    assert_eq!(dead[0].timestamp, secs(120));
    assert!(rt.queue_snapshot("f").unwrap().is_empty());
}

#[test]
fn update_code_numbers_versions_from_one_upwards() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    assert_eq!(rt.update_code("f", |_: &u32, _ctx| Ok(())).unwrap(), 2);
    assert_eq!(rt.update_code("f", |_: &u32, _ctx| Ok(())).unwrap(), 3);
    assert_eq!(
        rt.update_code("missing", |_: &u32, _ctx| Ok(())),
        Err(Error::UnknownFunction("missing".into()))
    );
    let seen = Arc::new(AtomicU32::new(0));
    let s = seen.clone();
    rt.update_code("f", move |_: &u32, ctx| {
        s.store(ctx.code_version() as u32, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.run_until_idle();
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[test]
fn event_that_failed_on_version_1_retries_on_version_2() {
    let (clock, rt) = runtime::<u32>();
    let (on_success, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Err(fail())).on_success(on_success))
        .unwrap();
    let id = rt.invoke_async("f", 7).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.request_id, id);
    assert_eq!(step.outcome, StepOutcome::RetryScheduled { due: secs(60) });

    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    assert_eq!(
        rt.update_code("f", move |_: &u32, ctx| {
            seen.lock()
                .unwrap()
                .push((ctx.approximate_invoke_count(), ctx.code_version()));
            Ok(())
        })
        .unwrap(),
        2
    );
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(clock.now(), secs(60));
    assert_eq!(*attempts.lock().unwrap(), vec![(2, 2)]);

    let r = records.try_recv().unwrap();
    assert_eq!(r.request_id, id);
    assert_eq!(r.condition, Condition::Success);
    assert_eq!(r.approximate_invoke_count, 2);
    assert_eq!(r.executed_version, Some(2));
    assert!(rt.drain_dead_letters().is_empty());
}

// ----- purge -------------------------------------------------------------------------------------

#[test]
fn purge_records_every_waiting_event_as_purged() {
    let (_clock, rt) = runtime::<u32>();
    let (on_failure, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Err(fail())).on_failure(on_failure))
        .unwrap();
    // Two events fail once and wait for their retry; two more wait, ready.
    let retried = [
        rt.invoke_async("f", 1).unwrap(),
        rt.invoke_async("f", 2).unwrap(),
    ];
    for _ in 0..2 {
        assert!(matches!(
            rt.try_dispatch().unwrap().outcome,
            StepOutcome::RetryScheduled { .. }
        ));
    }
    let fresh = [
        rt.invoke_async("f", 3).unwrap(),
        rt.invoke_async("f", 4).unwrap(),
    ];
    let states: Vec<_> = rt
        .queue_snapshot("f")
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states[..2], [EventState::Ready, EventState::Ready]);
    assert!(states[2..]
        .iter()
        .all(|s| matches!(s, EventState::Delayed { .. })));

    assert_eq!(rt.purge("f").unwrap(), 4);
    assert!(rt.queue_snapshot("f").unwrap().is_empty());

    let got: Vec<_> = records.try_iter().collect();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.condition == Condition::Purged));
    for id in retried {
        let r = got.iter().find(|r| r.request_id == id).unwrap();
        assert_eq!(r.approximate_invoke_count, 1);
        assert_eq!(r.executed_version, Some(1));
        assert_eq!(r.error().unwrap().error_type(), "Boom");
    }
    for id in fresh {
        let r = got.iter().find(|r| r.request_id == id).unwrap();
        assert_eq!(r.approximate_invoke_count, 0);
        assert_eq!(r.executed_version, None);
        assert!(r.response.is_none());
    }

    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::Purged), 4);
    assert_eq!(m.dropped(), 4);
    assert_eq!(m.queue_depth(), 0);
    assert!(m.is_balanced());
    assert_eq!(rt.outstanding(), 0);

    // Nothing purged comes back: the retries' timers find nothing to run.
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(rt.function_metrics("f").unwrap().invocations, 2);
}

#[test]
fn purge_without_on_failure_destination_keeps_dead_letters() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    assert_eq!(rt.purge("f").unwrap(), 0);
    rt.pause("f").unwrap();
    let ids: Vec<_> = (0..3).map(|i| rt.invoke_async("f", i).unwrap()).collect();
    assert_eq!(rt.purge("f").unwrap(), 3);
    let dead = rt.drain_dead_letters();
    assert_eq!(
        dead.iter().map(|r| r.request_id).collect::<Vec<_>>(),
        ids,
        "held events are purged in queue order"
    );
    assert!(dead.iter().all(|r| r.condition == Condition::Purged));
    assert_eq!(
        dead.iter().map(|r| r.request_payload).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        rt.function_metrics("f").unwrap().outcome(Condition::Purged),
        3
    );
    assert_eq!(
        rt.purge("missing"),
        Err(Error::UnknownFunction("missing".into()))
    );
}

// ----- delete ------------------------------------------------------------------------------------

#[test]
fn delete_ends_queued_events_as_function_deleted() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |n: &u32, _ctx| {
        if *n == 0 {
            Err(fail())
        } else {
            Ok(())
        }
    }))
    .unwrap();
    let failing = rt.invoke_async("f", 0).unwrap();
    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { .. }
    ));
    let a = rt.invoke_async("f", 1).unwrap();
    let b = rt.invoke_async("f", 2).unwrap();

    assert_eq!(rt.delete("f").unwrap(), 3);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 3);
    assert!(dead
        .iter()
        .all(|r| r.condition == Condition::FunctionDeleted));
    let mut ids: Vec<_> = dead.iter().map(|r| r.request_id).collect();
    ids.sort();
    let mut expected = vec![failing, a, b];
    expected.sort();
    assert_eq!(ids, expected);

    assert_eq!(rt.outstanding(), 0);
    assert_eq!(rt.metrics().total.outcome(Condition::FunctionDeleted), 3);
    assert!(rt.metrics().function("f").is_none());
    assert!(rt.function_names().is_empty());
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(rt.delete("f"), Err(Error::UnknownFunction("f".into())));
}

#[test]
fn deleted_function_handle_refuses_events_with_the_payload_back() {
    let (_clock, rt) = runtime::<String>();
    let handle = rt
        .register(Function::new("f", |_: &String, _ctx| Ok(())))
        .unwrap();
    rt.delete("f").unwrap();
    let err = handle.invoke_async("lost?".to_string()).unwrap_err();
    assert!(
        matches!(&err, InvokeError::FunctionDeleted { name, .. } if name == "f"),
        "{err:?}"
    );
    assert_eq!(err.into_inner(), "lost?");
    assert!(matches!(
        handle.invoke(&"sync".to_string()),
        Err(InvokeSyncError::FunctionDeleted(name)) if name == "f"
    ));
    assert_eq!(rt.metrics().total.events_received, 0);
}

#[test]
fn invoking_a_deleted_function_by_name_returns_function_deleted() {
    let (_clock, rt) = runtime::<String>();
    rt.register(Function::new("f", |_: &String, _ctx| Ok(())))
        .unwrap();
    rt.delete("f").unwrap();
    let err = rt.invoke_async("f", "late".to_string()).unwrap_err();
    assert!(
        matches!(&err, InvokeError::FunctionDeleted { name, .. } if name == "f"),
        "expected FunctionDeleted, got {err:?}"
    );
    assert_eq!(err.into_inner(), "late");
}

#[test]
fn invoking_an_unknown_name_returns_unknown_function_with_the_payload_back() {
    let (_clock, rt) = runtime::<String>();
    let err = rt
        .invoke_async("never-registered", "hello".to_string())
        .unwrap_err();
    assert!(
        matches!(&err, InvokeError::UnknownFunction { name, .. } if name == "never-registered")
    );
    assert_eq!(err.payload(), "hello");
    assert_eq!(err.into_inner(), "hello");
    assert!(matches!(
        rt.invoke("never-registered", &"x".to_string()),
        Err(InvokeSyncError::UnknownFunction(_))
    ));
}

#[test]
fn a_handler_that_invokes_a_name_deleted_and_registered_again_meanwhile_reaches_the_new_function() {
    // The context resolves the name it invokes once per execution: a deletion and a new
    // registration under that name, made while the handler runs, must still be seen.
    let (_clock, rt) = runtime::<u32>();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let old_ran = ran.clone();
    rt.register(Function::new("b", move |n: &u32, _ctx| {
        old_ran.lock().unwrap().push(("old", *n));
        Ok(())
    }))
    .unwrap();
    let new_ran = ran.clone();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let seen = refused.clone();
    rt.register(Function::new("fan", move |_: &u32, ctx| {
        let rt = ctx.runtime().expect("a runtime's context");
        ctx.invoke_async("b", 1)?;
        rt.delete("b").unwrap();
        if let Err(e) = ctx.invoke_async("b", 2) {
            let deleted = matches!(e, InvokeError::FunctionDeleted { payload: 2, .. });
            seen.lock().unwrap().push(deleted);
        }
        let new_ran = new_ran.clone();
        rt.register(Function::new("b", move |n: &u32, _ctx| {
            new_ran.lock().unwrap().push(("new", *n));
            Ok(())
        }))
        .unwrap();
        ctx.invoke_async("b", 3)?;
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("fan", 0).unwrap();
    rt.run_until_idle();
    assert_eq!(*refused.lock().unwrap(), [true], "refused while deleted");
    assert_eq!(
        *ran.lock().unwrap(),
        [("new", 3)],
        "event 1 ended with the old function"
    );
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].condition, Condition::FunctionDeleted);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn deleted_name_can_be_registered_again() {
    let (_clock, rt) = runtime::<u32>();
    let old_runs = Arc::new(AtomicU32::new(0));
    let new_runs = Arc::new(AtomicU32::new(0));
    let o = old_runs.clone();
    let old = rt
        .register(Function::new("f", move |_: &u32, _ctx| {
            o.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    let old_id = rt.invoke_async("f", 1).unwrap();
    rt.delete("f").unwrap();
    rt.drain_dead_letters();

    let n = new_runs.clone();
    let new = rt
        .register(Function::new("f", move |_: &u32, _ctx| {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    let new_id = rt.invoke_async("f", 2).unwrap();
    assert_ne!(
        new_id, old_id,
        "request ids stay unique across re-registration"
    );
    new.invoke_async(3).unwrap();
    assert!(matches!(
        old.invoke_async(4),
        Err(InvokeError::FunctionDeleted { .. })
    ));
    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(old_runs.load(Ordering::SeqCst), 0);
    assert_eq!(new_runs.load(Ordering::SeqCst), 2);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.events_received, m.outcome(Condition::Success)), (2, 2));
}

#[test]
fn re_registered_name_is_listed_once_with_the_new_function_metrics() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    rt.delete("f").unwrap();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    for n in 0..3 {
        rt.invoke_async("f", n).unwrap();
    }
    rt.run_until_idle();

    assert_eq!(rt.function_names(), vec!["f".to_string()]);
    let all = rt.metrics();
    assert_eq!(all.functions.len(), 1, "the deleted `f` is not live");
    assert_eq!(all.function("f").unwrap().events_received, 3);
    // The totals still include the deleted function's event.
    assert_eq!(all.total.events_received, 4);
}

#[test]
fn retry_pending_when_the_function_is_deleted_ends_function_deleted() {
    let (_clock, rt) = runtime::<u32>();
    let (on_failure, records) = sink();
    rt.register(Function::new("f", |_: &u32, _ctx| Err(fail())).on_failure(on_failure))
        .unwrap();
    let id = rt.invoke_async("f", 9).unwrap();
    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { .. }
    ));
    assert_eq!(rt.delete("f").unwrap(), 1);
    let r = records.try_recv().unwrap();
    assert_eq!(r.request_id, id);
    assert_eq!(r.condition, Condition::FunctionDeleted);
    assert_eq!(r.approximate_invoke_count, 1);
    assert_eq!(r.error().unwrap().error_type(), "Boom");
    assert_eq!(rt.run_until_idle(), 0, "the retry's timer must not run it");
    assert!(records.try_recv().is_err());
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn retry_needed_by_an_execution_running_during_delete_ends_function_deleted() {
    let (_clock, rt) = runtime::<u32>();
    let (on_failure, records) = sink();
    // The handler deletes its own function while it runs, then fails.
    rt.register(
        Function::new("f", |_: &u32, ctx| {
            assert_eq!(
                ctx.runtime().unwrap().delete(ctx.function_name()).unwrap(),
                0
            );
            Err(fail())
        })
        .on_failure(on_failure),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.request_id, id);
    assert_eq!(step.outcome, StepOutcome::Ended(Condition::FunctionDeleted));
    let r = records.try_recv().unwrap();
    assert_eq!(r.condition, Condition::FunctionDeleted);
    assert_eq!(r.approximate_invoke_count, 1);
    assert_eq!(r.error().unwrap().message(), "always fails");
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(rt.run_until_idle(), 0);
    let total = rt.metrics().total;
    assert_eq!((total.invocations, total.errors), (1, 1));
    assert_eq!(total.outcome(Condition::FunctionDeleted), 1);
}

#[test]
fn retry_refused_because_the_function_was_deleted_is_not_counted_as_scheduled() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, ctx| {
        ctx.runtime().unwrap().delete(ctx.function_name()).unwrap();
        Err(fail())
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::FunctionDeleted)
    );
    // `retries` counts "retries scheduled after function errors"; none was scheduled.
    assert_eq!(rt.metrics().total.retries, 0);
}

// ----- queue view and edit -------------------------------------------------------------------

#[test]
fn queue_snapshot_lists_ready_events_in_order_then_delayed_ones_by_due_time() {
    let (clock, rt) = runtime::<u32>();
    // Odd payloads fail, even ones succeed.
    rt.register(Function::new("f", |n: &u32, _ctx| {
        if n % 2 == 1 {
            Err(fail())
        } else {
            Ok(())
        }
    }))
    .unwrap();
    let one = rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: secs(60) }
    );
    clock.advance(Duration::from_secs(10));
    let three = rt.invoke_async("f", 3).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { due: secs(70) }
    );
    let two = rt.invoke_async("f", 2).unwrap();
    let four = rt.invoke_async("f", 4).unwrap();

    let snap = rt.queue_snapshot("f").unwrap();
    let view: Vec<_> = snap
        .iter()
        .map(|e| (e.request_id, e.state, e.attempts, e.enqueued_at))
        .collect();
    assert_eq!(
        view,
        vec![
            (two, EventState::Ready, 0, secs(10)),
            (four, EventState::Ready, 0, secs(10)),
            (one, EventState::Delayed { due: secs(60) }, 1, secs(0)),
            (three, EventState::Delayed { due: secs(70) }, 1, secs(10)),
        ]
    );
    assert!(snap.iter().all(|e| e.chain_depth == 1 && e.throttles == 0));
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.queue_ready, m.queue_delayed), (2, 2));
    assert_eq!(
        rt.queue_snapshot("nope"),
        Err(Error::UnknownFunction("nope".into()))
    );
}

#[test]
fn edit_queued_changes_the_payload_the_handler_later_sees() {
    let (_clock, rt) = runtime::<String>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rt.register(Function::new("f", move |p: &String, ctx| {
        s.lock().unwrap().push(p.clone());
        if p.starts_with("retry") && ctx.approximate_invoke_count() == 1 {
            return Err(fail());
        }
        Ok(())
    }))
    .unwrap();

    let ready = rt.invoke_async("f", "draft".to_string()).unwrap();
    assert!(rt
        .edit_queued("f", ready, |p| *p = "final".to_string())
        .unwrap());
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(*seen.lock().unwrap(), vec!["final".to_string()]);
    assert!(
        !rt.edit_queued("f", ready, |p| p.push('!')).unwrap(),
        "an ended event is no longer in the queue"
    );

    // A delayed retry can be edited too.
    let delayed = rt.invoke_async("f", "retry-v1".to_string()).unwrap();
    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { .. }
    ));
    assert!(rt
        .edit_queued("f", delayed, |p| *p = "retry-v2".to_string())
        .unwrap());
    rt.run_until_idle();
    assert_eq!(
        seen.lock().unwrap()[1..],
        ["retry-v1".to_string(), "retry-v2".to_string()]
    );
    assert!(rt.edit_queued("missing", delayed, |_| {}).is_err());
}

#[test]
fn remove_queued_ends_the_event_as_purged() {
    let (_clock, rt) = runtime::<u32>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rt.register(Function::new("f", move |n: &u32, _ctx| {
        s.lock().unwrap().push(*n);
        Ok(())
    }))
    .unwrap();
    let keep = rt.invoke_async("f", 1).unwrap();
    let drop_me = rt.invoke_async("f", 2).unwrap();
    assert!(rt.remove_queued("f", drop_me).unwrap());
    assert!(!rt.remove_queued("f", drop_me).unwrap());
    assert_eq!(rt.queue_snapshot("f").unwrap()[0].request_id, keep);

    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, drop_me);
    assert_eq!(dead[0].condition, Condition::Purged);
    assert_eq!(dead[0].request_payload, 2);

    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(*seen.lock().unwrap(), vec![1]);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(
        (m.outcome(Condition::Success), m.outcome(Condition::Purged)),
        (1, 1)
    );
}

#[test]
fn remove_queued_where_purges_only_matching_events() {
    let (_clock, rt) = runtime::<u32>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rt.register(Function::new("f", move |n: &u32, _ctx| {
        s.lock().unwrap().push(*n);
        Ok(())
    }))
    .unwrap();
    for n in 1..=6 {
        rt.invoke_async("f", n).unwrap();
    }
    assert_eq!(
        rt.remove_queued_where("f", |e| e.payload() % 2 == 0)
            .unwrap(),
        3
    );
    let mut purged: Vec<_> = rt
        .drain_dead_letters()
        .into_iter()
        .inspect(|r| assert_eq!(r.condition, Condition::Purged))
        .map(|r| r.request_payload)
        .collect();
    purged.sort();
    assert_eq!(purged, vec![2, 4, 6]);
    assert_eq!(rt.run_until_idle(), 3);
    assert_eq!(*seen.lock().unwrap(), vec![1, 3, 5]);
    assert_eq!(
        rt.function_metrics("f").unwrap().outcome(Condition::Purged),
        3
    );
}

#[test]
fn inspect_queue_reads_waiting_payloads_in_place() {
    let (_clock, rt) = runtime::<String>();
    rt.register(Function::new("f", |_: &String, _ctx| Ok(())).queue_capacity(10))
        .unwrap();
    for s in ["a", "b", "c"] {
        rt.invoke_async("f", s.to_string()).unwrap();
    }
    let (len, cap, payloads) = rt
        .inspect_queue("f", |q| {
            (
                q.len(),
                q.capacity(),
                q.iter().map(|e| e.payload().clone()).collect::<Vec<_>>(),
            )
        })
        .unwrap();
    assert_eq!((len, cap), (3, 10));
    assert_eq!(payloads, vec!["a", "b", "c"]);
    rt.run_until_idle();
    assert!(rt.inspect_queue("f", |q| q.is_empty()).unwrap());
    assert!(rt.inspect_queue("missing", |q| q.len()).is_err());
}

// ----- queue capacity ------------------------------------------------------------------------

#[test]
fn full_queue_refuses_the_next_invoke_and_hands_the_payload_back() {
    let (_clock, rt) = runtime::<String>();
    let handle = rt
        .register(Function::new("f", |_: &String, _ctx| Ok(())).queue_capacity(2))
        .unwrap();
    rt.invoke_async("f", "a".to_string()).unwrap();
    handle.invoke_async("b".to_string()).unwrap();

    let err = rt.invoke_async("f", "c".to_string()).unwrap_err();
    assert!(
        matches!(&err, InvokeError::QueueFull { function, capacity: 2, .. } if function == "f"),
        "{err:?}"
    );
    assert_eq!(err.into_inner(), "c");
    let err = handle.invoke_async("d".to_string()).unwrap_err();
    assert!(matches!(err, InvokeError::QueueFull { .. }));
    assert_eq!(err.into_inner(), "d");

    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.events_received, m.queue_depth()), (2, 2));
    assert_eq!(rt.outstanding(), 2);

    assert_eq!(rt.run_until_idle(), 2);
    rt.invoke_async("f", "e".to_string()).unwrap();
    assert_eq!(rt.run_until_idle(), 1);
}

#[test]
fn paused_function_refuses_an_invoke_past_its_capacity_and_keeps_the_events_it_holds() {
    let (_clock, rt) = runtime::<u32>();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let handle = rt
        .register(
            Function::new("f", move |n: &u32, _ctx| {
                seen.lock().unwrap().push(*n);
                Ok(())
            })
            .queue_capacity(2),
        )
        .unwrap();
    rt.pause("f").unwrap();
    rt.invoke_async("f", 1).unwrap();
    handle.invoke_async(2).unwrap();

    let err = handle.invoke_async(3).unwrap_err();
    assert!(
        matches!(&err, InvokeError::QueueFull { function, capacity: 2, .. } if function == "f"),
        "{err:?}"
    );
    assert_eq!(err.into_inner(), 3);
    let err = rt.invoke_async("f", 4).unwrap_err();
    assert_eq!(err.into_inner(), 4);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!((m.events_received, m.queue_depth()), (2, 2));
    assert_eq!(rt.outstanding(), 2);

    assert_eq!(rt.run_until_idle(), 0);
    rt.resume("f").unwrap();
    assert_eq!(rt.run_until_idle(), 2);
    handle.invoke_async(5).unwrap();
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(*ran.lock().unwrap(), vec![1, 2, 5]);
}

#[test]
fn queue_capacity_counts_delayed_retries() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Err(fail())).queue_capacity(1))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::RetryScheduled { .. }
    ));
    assert!(matches!(
        rt.invoke_async("f", 2),
        Err(InvokeError::QueueFull { capacity: 1, .. })
    ));
}

// ----- update_config -------------------------------------------------------------------------

#[test]
fn update_config_rejects_invalid_settings_and_leaves_the_runtime_unchanged() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).reserved_concurrency(10))
        .unwrap();
    let before = rt.config("f").unwrap();

    let err = rt
        .update_config("f", |c| c.timeout = Duration::ZERO)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "timeout",
            ..
        }
    ));

    let err = rt.update_config("f", |c| c.queue_capacity = 0).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "queue_capacity",
            ..
        }
    ));

    // Whole or nothing: a valid timeout next to an impossible reservation is not applied.
    let err = rt
        .update_config("f", |c| {
            c.timeout = Duration::from_secs(30);
            c.reserved_concurrency = Some(5000);
        })
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ReservedConcurrencyExceeded {
            requested: 5000,
            ..
        }
    ));

    let err = rt
        .update_config("f", |c| {
            c.on_failure = Some(Destination::function(
                "nowhere",
                |r: &InvocationRecord<u32, ()>| r.request_payload,
            ))
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownDestination {
            function: "f".into(),
            destination: "nowhere".into()
        }
    );

    assert_eq!(
        rt.update_config("missing", |c| c.timeout = Duration::from_secs(1)),
        Err(Error::UnknownFunction("missing".into()))
    );

    let after = rt.config("f").unwrap();
    assert_eq!(after.timeout, before.timeout);
    assert_eq!(after.reserved_concurrency, Some(10));
    assert_eq!(after.queue_capacity, before.queue_capacity);
    assert!(after.on_failure.is_none());

    // The account's reservations were not touched by the failed calls: 900 is still the most.
    rt.set_reserved_concurrency("f", Some(900)).unwrap();
    assert!(rt.set_reserved_concurrency("f", Some(901)).is_err());

    // And the function still runs.
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 1);
}

#[test]
fn update_config_applies_to_events_already_queued() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let id = rt.invoke_async("f", 5).unwrap();
    let (on_success, records) = sink();
    rt.update_config("f", |c| c.on_success = Some(on_success))
        .unwrap();
    assert!(rt.config("f").unwrap().on_success.is_some());
    rt.run_until_idle();
    assert_eq!(records.try_recv().unwrap().request_id, id);
}

// ----- synchronous invoke ----------------------------------------------------------------------

#[test]
fn synchronous_invoke_returns_the_handler_response() {
    let clock = ManualClock::new();
    let rt: Runtime<u32, u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let (on_success, records) = sink();
    let handle = rt
        .register(Function::new("double", |n: &u32, _ctx| Ok(n * 2)).on_success(on_success))
        .unwrap();
    assert_eq!(rt.invoke("double", &21).unwrap(), 42);
    assert_eq!(rt.invoke("double", &0).unwrap(), 0);
    assert_eq!(handle.invoke(&5).unwrap(), 10);
    let m = rt.function_metrics("double").unwrap();
    assert_eq!(m.invocations, 3);
    assert_eq!(m.events_received, 0, "a synchronous invoke is not an event");
    assert_eq!(m.finished(), 0);
    assert!(
        records.try_recv().is_err(),
        "a synchronous invoke makes no record"
    );
}

#[test]
fn synchronous_invoke_is_throttled_when_the_function_limit_is_taken() {
    let clock = ManualClock::new();
    let rt: Runtime<u32, u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let inner = Arc::new(Mutex::new(None));
    let slot = inner.clone();
    // With reserved concurrency 1, the handler's synchronous call to itself finds no slot.
    rt.register(
        Function::new("selfish", move |n: &u32, ctx| {
            if *n > 0 {
                let r = ctx.runtime().unwrap().invoke(ctx.function_name(), &(n - 1));
                *slot.lock().unwrap() = Some(r);
            }
            Ok(*n)
        })
        .reserved_concurrency(1),
    )
    .unwrap();
    assert_eq!(rt.invoke("selfish", &1).unwrap(), 1);
    let got = inner.lock().unwrap().take().unwrap();
    assert!(
        matches!(&got, Err(InvokeSyncError::Throttled(name)) if name == "selfish"),
        "{got:?}"
    );
    let m = rt.function_metrics("selfish").unwrap();
    assert_eq!((m.invocations, m.throttles), (1, 1));
    // The slot is free again afterwards.
    assert_eq!(rt.invoke("selfish", &0).unwrap(), 0);

    // Reserved concurrency 0: no slot at all.
    rt.set_reserved_concurrency("selfish", Some(0)).unwrap();
    assert!(matches!(
        rt.invoke("selfish", &0),
        Err(InvokeSyncError::Throttled(_))
    ));
    assert_eq!(rt.function_metrics("selfish").unwrap().throttles, 2);
}

#[test]
fn synchronous_invoke_reports_a_function_error() {
    let clock = ManualClock::new();
    let rt: Runtime<u32, u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    rt.register(Function::new("half", |n: &u32, _ctx| {
        if n % 2 == 1 {
            return Err(FunctionError::new("OddNumber", "cannot halve"));
        }
        Ok(n / 2)
    }))
    .unwrap();
    match rt.invoke("half", &3) {
        Err(InvokeSyncError::Function(e)) => {
            assert_eq!(e.error_type(), "OddNumber");
            assert_eq!(e.message(), "cannot halve");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let m = rt.function_metrics("half").unwrap();
    assert_eq!((m.invocations, m.errors, m.retries), (1, 1, 0));
    assert!(rt.drain_dead_letters().is_empty());

    rt.pause("half").unwrap();
    assert!(matches!(
        rt.invoke("half", &4),
        Err(InvokeSyncError::Paused(_))
    ));
    rt.resume("half").unwrap();
    assert_eq!(rt.invoke("half", &4).unwrap(), 2);
}

#[test]
fn update_config_runs_its_edit_without_locks_so_it_may_call_the_runtime() {
    let (_clock, rt) = runtime::<u32>();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let rt2 = rt.clone();
    rt.update_config("f", move |c| {
        // Reading the runtime from inside the edit would deadlock if a lock were held.
        c.timeout = rt2.config("f").unwrap().timeout * 2;
        assert_eq!(rt2.function_names(), vec!["f".to_string()]);
    })
    .unwrap();
    assert_eq!(rt.config("f").unwrap().timeout, Duration::from_secs(6));
}

#[test]
fn a_handle_of_another_runtime_invokes_into_that_runtime() {
    let (_c1, a) = runtime::<u32>();
    let (_c2, b) = runtime::<u32>();
    let runs = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&runs);
    let in_b = b
        .register(Function::new("x", move |_: &u32, _ctx| {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    a.register(Function::new("parent", move |n: &u32, ctx| {
        ctx.invoke_async_handle(&in_b, *n)?;
        Ok(())
    }))
    .unwrap();
    a.invoke_async("parent", 1).unwrap();
    a.run_until_idle();
    assert_eq!(a.outstanding(), 0);
    assert_eq!(b.outstanding(), 1, "the child waits in b's queue");
    assert_eq!(b.run_until_idle(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(b.function_metrics("x").unwrap().is_balanced());
}

// ----- error predicates -------------------------------------------------------------------------

/// Which predicates an async refusal answers: (not found, full).
fn async_kind<P>(err: &InvokeError<P>) -> (bool, bool) {
    (err.is_not_found(), err.is_full())
}

#[test]
fn both_404s_of_an_async_invoke_answer_is_not_found_and_a_full_queue_is_full() {
    let (_clock, rt) = runtime::<u32>();
    let unknown = rt.invoke_async("never-registered", 1).unwrap_err();
    assert!(matches!(unknown, InvokeError::UnknownFunction { .. }));
    assert_eq!(async_kind(&unknown), (true, false));

    let deleted = rt
        .register(Function::new("deleted", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.delete("deleted").unwrap();
    let by_handle = deleted.invoke_async(2).unwrap_err();
    assert!(matches!(by_handle, InvokeError::FunctionDeleted { .. }));
    assert_eq!(async_kind(&by_handle), (true, false));
    let by_name = rt.invoke_async("deleted", 3).unwrap_err();
    assert!(matches!(by_name, InvokeError::FunctionDeleted { .. }));
    assert_eq!(async_kind(&by_name), (true, false));

    rt.register(Function::new("small", |_: &u32, _ctx| Ok(())).queue_capacity(1))
        .unwrap();
    rt.invoke_async("small", 4).unwrap();
    let full = rt.invoke_async("small", 5).unwrap_err();
    assert!(matches!(full, InvokeError::QueueFull { .. }));
    assert_eq!(async_kind(&full), (false, true));
    assert_eq!(full.into_inner(), 5);
}

/// Which predicates a sync refusal answers: (not found, throttled, paused, function error).
fn sync_kind(err: &InvokeSyncError) -> (bool, bool, bool, bool) {
    (
        err.is_not_found(),
        err.is_throttled(),
        err.is_paused(),
        err.is_function_error(),
    )
}

#[test]
fn each_sync_refusal_answers_exactly_its_own_predicate() {
    let (_clock, rt) = runtime::<u32>();
    let unknown = rt.invoke("never-registered", &1).unwrap_err();
    assert!(matches!(unknown, InvokeSyncError::UnknownFunction(_)));
    assert_eq!(sync_kind(&unknown), (true, false, false, false));

    let deleted = rt
        .register(Function::new("deleted", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.delete("deleted").unwrap();
    let gone = deleted.invoke(&1).unwrap_err();
    assert!(matches!(gone, InvokeSyncError::FunctionDeleted(_)));
    assert_eq!(sync_kind(&gone), (true, false, false, false));

    let none = rt
        .register(Function::new("none", |_: &u32, _ctx| Ok(())).reserved_concurrency(0))
        .unwrap();
    let throttled = none.invoke(&1).unwrap_err();
    assert!(matches!(throttled, InvokeSyncError::Throttled(_)));
    assert_eq!(sync_kind(&throttled), (false, true, false, false));

    let paused = rt
        .register(Function::new("paused", |_: &u32, _ctx| Ok(())))
        .unwrap();
    paused.pause().unwrap();
    let held = paused.invoke(&1).unwrap_err();
    assert!(matches!(held, InvokeSyncError::Paused(_)));
    assert_eq!(sync_kind(&held), (false, false, true, false));

    let failing = rt
        .register(Function::new("failing", |_: &u32, _ctx| Err(fail())))
        .unwrap();
    let failed = failing.invoke(&1).unwrap_err();
    assert!(matches!(failed, InvokeSyncError::Function(_)));
    assert_eq!(sync_kind(&failed), (false, false, false, true));
}

#[test]
fn both_404s_of_an_operator_call_answer_is_not_found() {
    let (_clock, rt) = runtime::<u32>();
    assert!(rt.purge("never-registered").unwrap_err().is_not_found());
    let f = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    f.delete().unwrap();
    let err = f.resume().unwrap_err();
    assert!(matches!(err, Error::FunctionDeleted(_)));
    assert!(err.is_not_found());
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap(); // the name is free again
    let exists = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap_err();
    assert!(!exists.is_not_found());
}
