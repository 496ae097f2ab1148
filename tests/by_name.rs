//! Invoking by name: a thread remembers the functions it invoked by name last, and what it
//! remembers never sends an event to the wrong function or keeps a function alive.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use event_invoke::{Function, InvokeError, ManualClock, Runtime};

/// A runtime on a manual clock.
fn runtime() -> Runtime<u32> {
    Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// A function `name` that adds each payload to `sum`.
fn summing(name: &str, sum: &Arc<AtomicU32>) -> Function<u32, ()> {
    let sum = Arc::clone(sum);
    Function::new(name, move |n: &u32, _ctx| {
        sum.fetch_add(*n, Ordering::SeqCst);
        Ok(())
    })
}

#[test]
fn a_name_deleted_and_registered_again_reaches_the_new_function() {
    let rt = runtime();
    let (old, new) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    rt.register(summing("f", &old)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    rt.delete("f").unwrap();
    assert!(matches!(
        rt.invoke_async("f", 10),
        Err(InvokeError::FunctionDeleted { payload: 10, .. })
    ));
    rt.register(summing("f", &new)).unwrap();
    rt.invoke_async("f", 100).unwrap();
    rt.invoke_async("f", 1000).unwrap();
    rt.run_until_idle();
    assert_eq!(old.load(Ordering::SeqCst), 1);
    assert_eq!(new.load(Ordering::SeqCst), 1100);
}

#[test]
fn two_runtimes_with_the_same_names_on_one_thread_keep_their_events_apart() {
    let (a, b) = (runtime(), runtime());
    let (in_a, in_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    a.register(summing("f", &in_a)).unwrap();
    b.register(summing("f", &in_b)).unwrap();
    for _ in 0..3 {
        a.invoke_async("f", 1).unwrap();
        b.invoke_async("f", 100).unwrap();
    }
    assert_eq!(a.queue_snapshot("f").unwrap().len(), 3);
    assert_eq!(b.queue_snapshot("f").unwrap().len(), 3);
    a.run_until_idle();
    b.run_until_idle();
    assert_eq!(in_a.load(Ordering::SeqCst), 3);
    assert_eq!(in_b.load(Ordering::SeqCst), 300);
}

#[test]
fn a_runtime_built_after_one_was_dropped_gets_its_own_events() {
    let first = Arc::new(AtomicU32::new(0));
    let rt = runtime();
    rt.register(summing("f", &first)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    drop(rt);
    // The next runtime may well sit at the address the first one had.
    let second = Arc::new(AtomicU32::new(0));
    let rt = runtime();
    rt.register(summing("f", &second)).unwrap();
    rt.invoke_async("f", 5).unwrap();
    assert_eq!(rt.queue_snapshot("f").unwrap().len(), 1);
    rt.run_until_idle();
    assert_eq!(first.load(Ordering::SeqCst), 1);
    assert_eq!(second.load(Ordering::SeqCst), 5);
}

#[test]
fn a_function_invoked_by_name_is_dropped_with_its_runtime() {
    let captured = Arc::new(AtomicU32::new(0));
    let rt = runtime();
    rt.register(summing("f", &captured)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(Arc::strong_count(&captured), 2);
    drop(rt);
    // The handler (and what it captured) went with the runtime: nothing this thread
    // remembers of the name keeps it.
    assert_eq!(Arc::strong_count(&captured), 1);
}

#[test]
fn invokes_alternating_over_more_names_than_a_thread_remembers_reach_each_function() {
    let rt = runtime();
    let sums: Vec<Arc<AtomicU32>> = (0..7).map(|_| Arc::new(AtomicU32::new(0))).collect();
    for (i, sum) in sums.iter().enumerate() {
        rt.register(summing(&format!("f{i}"), sum)).unwrap();
    }
    for round in 1..=3u32 {
        for i in 0..7u32 {
            rt.invoke_async(&format!("f{i}"), round * (i + 1)).unwrap();
        }
    }
    rt.run_until_idle();
    for (i, sum) in sums.iter().enumerate() {
        assert_eq!(sum.load(Ordering::SeqCst), 6 * (i as u32 + 1), "f{i}");
    }
}

#[test]
fn an_unknown_name_is_refused_with_its_payload_after_a_known_one_was_invoked() {
    let rt = runtime();
    let sum = Arc::new(AtomicU32::new(0));
    rt.register(summing("f", &sum)).unwrap();
    rt.invoke_async("f", 1).unwrap();
    match rt.invoke_async("g", 7) {
        Err(InvokeError::UnknownFunction { name, payload }) => {
            assert_eq!((name.as_str(), payload), ("g", 7));
        }
        other => panic!("expected UnknownFunction, got {other:?}"),
    }
}
