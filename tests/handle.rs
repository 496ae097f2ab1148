//! The per-function calls through a `FunctionHandle`: the same as by name, and refused once the
//! handle's function is deleted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    Condition, Error, EventState, Function, FunctionError, FunctionHandle, InvokeError,
    InvokeSyncError, ManualClock, Runtime,
};

mod common;
use common::{manual_runtime, sink};

/// A function that counts its runs, registered on a fresh manual-clock runtime.
fn counted(
    name: &str,
) -> (
    ManualClock,
    Runtime<u32>,
    FunctionHandle<u32, ()>,
    Arc<AtomicU32>,
) {
    let (clock, rt) = manual_runtime();
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let f = rt
        .register(Function::new(name, move |_: &u32, _ctx| {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    (clock, rt, f, runs)
}

#[test]
fn a_handle_pauses_and_resumes_its_function() {
    let (_clock, rt, f, runs) = counted("f");

    f.pause().unwrap();
    assert!(f.is_paused().unwrap());
    assert!(rt.is_paused("f").unwrap(), "the same function, by name");
    let id = f.invoke_async(1).unwrap();
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let waiting = f.queue_snapshot().unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (waiting[0].request_id, waiting[0].state),
        (id, EventState::Held)
    );

    f.resume().unwrap();
    assert!(!f.is_paused().unwrap());
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(f.metrics().unwrap().outcome(Condition::Success), 1);
}

#[test]
fn purging_through_a_handle_records_purged() {
    let (_clock, rt) = manual_runtime::<u32, ()>();
    let (failures, failed) = sink();
    let f = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).on_failure(failures))
        .unwrap();
    let ids: Vec<_> = (0..3).map(|i| f.invoke_async(i).unwrap()).collect();

    assert_eq!(f.purge().unwrap(), 3);

    let records: Vec<_> = failed.try_iter().collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.condition == Condition::Purged));
    let purged: Vec<_> = records.iter().map(|r| r.request_id).collect();
    assert_eq!(purged, ids);
    assert!(f.queue_snapshot().unwrap().is_empty());
    let m = f.metrics().unwrap();
    assert_eq!(m.outcome(Condition::Purged), 3);
    assert!(m.is_balanced());
    assert_eq!(rt.run_until_idle(), 0);
}

#[test]
fn removing_and_editing_one_queued_event_through_a_handle_touches_only_that_event() {
    let (_clock, rt) = manual_runtime::<u32, u32>();
    let f = rt
        .register(Function::new("f", |n: &u32, _ctx| Ok(*n)))
        .unwrap();
    let (a, b, c) = (
        f.invoke_async(1).unwrap(),
        f.invoke_async(2).unwrap(),
        f.invoke_async(3).unwrap(),
    );

    assert!(f.edit_queued(b, |n| *n = 20).unwrap());
    assert!(f.remove_queued(a).unwrap());
    assert!(!f.remove_queued(a).unwrap(), "already gone");
    assert_eq!(f.remove_queued_where(|e| *e.payload() == 3).unwrap(), 1);

    let payloads = f
        .inspect_queue(|q| q.iter().map(|e| *e.payload()).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(payloads, [20]);
    let left: Vec<_> = f
        .queue_snapshot()
        .unwrap()
        .iter()
        .map(|e| e.request_id)
        .collect();
    assert_eq!(left, [b]);
    assert!(rt
        .queue_snapshot("f")
        .unwrap()
        .iter()
        .all(|e| e.request_id != a && e.request_id != c));
    let m = f.metrics().unwrap();
    assert_eq!(m.outcome(Condition::Purged), 2);
}

#[test]
fn new_code_and_settings_through_a_handle_are_the_functions_own() {
    let (_clock, rt) = manual_runtime::<u32, u32>();
    let f = rt
        .register(Function::new("f", |n: &u32, _ctx| Ok(*n)))
        .unwrap();

    assert_eq!(f.update_code(|n: &u32, _ctx| Ok(n * 10)).unwrap(), 2);
    assert_eq!(rt.invoke("f", &3).unwrap(), 30, "the new code, by name");

    f.update_config(|c| c.timeout = Duration::from_secs(30))
        .unwrap();
    f.set_reserved_concurrency(Some(5)).unwrap();
    let by_handle = f.config().unwrap();
    let by_name = rt.config("f").unwrap();
    assert_eq!(by_handle.timeout, Duration::from_secs(30));
    assert_eq!(by_handle.reserved_concurrency, Some(5));
    assert_eq!(
        (by_name.timeout, by_name.reserved_concurrency),
        (by_handle.timeout, by_handle.reserved_concurrency)
    );

    let err = f.set_reserved_concurrency(Some(5_000)).unwrap_err();
    assert!(
        matches!(err, Error::ReservedConcurrencyExceeded { .. }),
        "{err}"
    );
    assert_eq!(
        f.config().unwrap().reserved_concurrency,
        Some(5),
        "unchanged"
    );
}

#[test]
fn metrics_through_a_handle_equal_metrics_by_name() {
    let (_clock, rt) = manual_runtime::<u32, ()>();
    let f = rt
        .register(
            Function::new("f", |n: &u32, _ctx| {
                if n % 2 == 1 {
                    return Err(FunctionError::new("Odd", "odd numbers fail"));
                }
                Ok(())
            })
            .maximum_retry_attempts(1),
        )
        .unwrap();
    for i in 0..10 {
        f.invoke_async(i).unwrap();
    }
    assert_eq!(f.metrics().unwrap(), rt.function_metrics("f").unwrap());

    rt.run_until_idle();

    let by_handle = f.metrics().unwrap();
    assert_eq!(by_handle, rt.function_metrics("f").unwrap());
    assert_eq!(by_handle.outcome(Condition::Success), 5);
    assert_eq!(by_handle.outcome(Condition::RetriesExhausted), 5);
    assert_eq!(
        by_handle.outcomes().map(|(_, n)| n).sum::<u64>(),
        by_handle.finished()
    );
    assert_eq!(Some(&by_handle), rt.metrics().function("f"));
}

#[test]
fn deleting_through_a_handle_ends_the_waiting_events_as_function_deleted() {
    let (_clock, rt) = manual_runtime::<u32, ()>();
    let (failures, failed) = sink();
    let f = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).on_failure(failures))
        .unwrap();
    f.invoke_async(1).unwrap();
    f.invoke_async(2).unwrap();

    assert_eq!(f.delete().unwrap(), 2);

    let conditions: Vec<_> = failed.try_iter().map(|r| r.condition).collect();
    assert_eq!(conditions, [Condition::FunctionDeleted; 2]);
    assert!(rt.function_names().is_empty());
    assert_eq!(
        rt.function_metrics("f"),
        Err(Error::UnknownFunction("f".into()))
    );
}

#[test]
fn a_handle_to_a_deleted_function_refuses_operations_with_a_clear_error() {
    let (_clock, rt, f, runs) = counted("f");
    let id = f.invoke_async(1).unwrap();
    rt.delete("f").unwrap();

    let deleted = Error::FunctionDeleted("f".into());
    assert_eq!(f.pause(), Err(deleted.clone()));
    assert_eq!(f.resume(), Err(deleted.clone()));
    assert_eq!(f.is_paused(), Err(deleted.clone()));
    assert_eq!(f.update_code(|_: &u32, _ctx| Ok(())), Err(deleted.clone()));
    assert!(matches!(f.config(), Err(e) if e == deleted));
    assert_eq!(
        f.update_config(|c| c.queue_capacity = 5),
        Err(deleted.clone())
    );
    assert_eq!(f.set_reserved_concurrency(Some(1)), Err(deleted.clone()));
    assert_eq!(f.purge(), Err(deleted.clone()));
    assert_eq!(f.remove_queued(id), Err(deleted.clone()));
    assert_eq!(f.remove_queued_where(|_| true), Err(deleted.clone()));
    assert_eq!(f.edit_queued(id, |n| *n = 2), Err(deleted.clone()));
    assert_eq!(f.queue_snapshot(), Err(deleted.clone()));
    assert_eq!(f.inspect_queue(|q| q.len()), Err(deleted.clone()));
    assert_eq!(f.metrics(), Err(deleted.clone()));
    assert_eq!(f.delete(), Err(deleted.clone()));
    assert!(matches!(
        f.invoke_async(2),
        Err(InvokeError::FunctionDeleted { .. })
    ));
    assert_eq!(
        f.invoke(&3),
        Err(InvokeSyncError::FunctionDeleted("f".into()))
    );

    let message = deleted.to_string();
    assert!(message.contains("`f` was deleted"), "{message}");
    assert!(message.contains("new handle"), "{message}");
    assert_eq!(rt.run_until_idle(), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stale_handle_never_acts_on_a_function_registered_again_under_its_name() {
    let (_clock, rt, stale, old_runs) = counted("f");
    stale.delete().unwrap();
    let new_runs = Arc::new(AtomicU32::new(0));
    let seen = new_runs.clone();
    let fresh = rt
        .register(Function::new("f", move |_: &u32, _ctx| {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    fresh.invoke_async(1).unwrap();

    let deleted = Error::FunctionDeleted("f".into());
    assert_eq!(stale.pause(), Err(deleted.clone()));
    assert_eq!(stale.purge(), Err(deleted.clone()));
    assert_eq!(stale.delete(), Err(deleted));
    assert!(matches!(
        stale.invoke_async(2),
        Err(InvokeError::FunctionDeleted { .. })
    ));

    assert!(
        !fresh.is_paused().unwrap(),
        "the new function was not paused"
    );
    assert_eq!(fresh.queue_snapshot().unwrap().len(), 1, "nor purged");
    assert_eq!(rt.function_names(), ["f"], "nor deleted");
    assert_eq!(rt.run_until_idle(), 1);
    assert_eq!(
        (
            old_runs.load(Ordering::SeqCst),
            new_runs.load(Ordering::SeqCst)
        ),
        (0, 1)
    );
    // A handle from the registry reaches the new function.
    assert_eq!(
        rt.function("f").unwrap().metrics().unwrap(),
        fresh.metrics().unwrap()
    );
}
