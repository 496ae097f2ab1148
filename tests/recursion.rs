//! The recursion guard: chain depth, the default limit of 16, custom limits, switching it off,
//! and multi-level fan-out.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use event_invoke::{
    Condition, Destination, Error, Function, FunctionError, InvocationRecord, ManualClock, Runtime,
    StepOutcome, DEFAULT_RECURSION_LIMIT,
};

fn runtime(limit: Option<u32>) -> Runtime<u32> {
    Runtime::builder()
        .clock(ManualClock::new())
        .recursion_limit(limit)
        .build()
        .unwrap()
}

fn invoke_failed(e: event_invoke::InvokeError<u32>) -> FunctionError {
    FunctionError::new("InvokeFailed", e.to_string())
}

/// A safety net: chains that should have been stopped by the guard stop here instead of
/// hanging the test (and then fail its assertions).
const RUNAWAY: u32 = 1_000;

/// Registers `name`, which records its chain depth and invokes itself again with `payload + 1`
/// while `payload < stop_at` (forever with `u32::MAX`). Every invoke must be accepted.
fn register_self_invoker(rt: &Runtime<u32>, name: &str, stop_at: u32) -> Arc<Mutex<Vec<u32>>> {
    let depths = Arc::new(Mutex::new(Vec::new()));
    let seen = depths.clone();
    rt.register(Function::new(name, move |n: &u32, ctx| {
        seen.lock().unwrap().push(ctx.chain_depth());
        if *n < stop_at.min(RUNAWAY) {
            ctx.invoke_async(ctx.function_name(), n + 1)
                .map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    depths
}

#[test]
fn self_invoking_function_runs_sixteen_times_and_the_seventeenth_event_is_stopped() {
    assert_eq!(DEFAULT_RECURSION_LIMIT, 16);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let depths = register_self_invoker(&rt, "loop", u32::MAX);
    rt.invoke_async("loop", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 17);

    assert_eq!(*depths.lock().unwrap(), (1..=16).collect::<Vec<_>>());
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    let r = &dead[0];
    assert_eq!(r.condition, Condition::RecursionLimit);
    assert_eq!(r.chain_depth, 17);
    assert_eq!(r.request_payload, 17);
    assert_eq!(r.approximate_invoke_count, 0, "the 17th event never ran");
    assert!(r.response.is_none());
    assert_eq!(r.executed_version, None);

    let m = rt.function_metrics("loop").unwrap();
    assert_eq!(m.events_received, 17);
    assert_eq!(m.invocations, 16);
    assert_eq!(m.outcome(Condition::Success), 16);
    assert_eq!(m.outcome(Condition::RecursionLimit), 1);
    assert_eq!(rt.outstanding(), 0);
}

#[test]
fn recursion_limit_ends_the_event_in_one_dispatch_step() {
    let rt = runtime(Some(1));
    let depths = register_self_invoker(&rt, "loop", u32::MAX);
    let first = rt.invoke_async("loop", 1).unwrap();
    assert_eq!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Ended(Condition::Success)
    );
    let step = rt.try_dispatch().unwrap();
    assert_ne!(step.request_id, first);
    assert_eq!(step.outcome, StepOutcome::Ended(Condition::RecursionLimit));
    assert!(rt.try_dispatch().is_none());
    assert_eq!(*depths.lock().unwrap(), vec![1]);
}

#[test]
fn chain_depth_grows_by_one_per_hop_across_functions() {
    let rt = runtime(Some(DEFAULT_RECURSION_LIMIT));
    let hops = Arc::new(Mutex::new(Vec::new()));
    for (me, other) in [("ping", "pong"), ("pong", "ping")] {
        let seen = hops.clone();
        rt.register(Function::new(me, move |n: &u32, ctx| {
            seen.lock()
                .unwrap()
                .push((ctx.function_name().to_string(), *n, ctx.chain_depth()));
            if *n < RUNAWAY {
                ctx.invoke_async(other, n + 1).map_err(invoke_failed)?;
            }
            Ok(())
        }))
        .unwrap();
    }
    rt.invoke_async("ping", 1).unwrap();
    rt.run_until_idle();

    let hops = hops.lock().unwrap();
    assert_eq!(
        hops.len(),
        16,
        "the guard counts the whole chain, not one function"
    );
    for (i, (name, n, depth)) in hops.iter().enumerate() {
        let i = i as u32;
        assert_eq!(*depth, i + 1);
        assert_eq!(*n, i + 1);
        assert_eq!(name, if i % 2 == 0 { "ping" } else { "pong" });
    }
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "ping");
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
}

#[test]
fn recursion_limit_three_stops_the_chain_after_three_runs() {
    let rt = runtime(Some(3));
    let depths = register_self_invoker(&rt, "loop", u32::MAX);
    rt.invoke_async("loop", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(*depths.lock().unwrap(), vec![1, 2, 3]);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
    assert_eq!(dead[0].chain_depth, 4);
}

#[test]
fn recursion_limit_record_goes_to_the_on_failure_destination() {
    let rt = runtime(Some(2));
    let (tx, rx) = crossbeam_channel::unbounded();
    rt.register(
        Function::new("loop", |n: &u32, ctx| {
            if *n < RUNAWAY {
                ctx.invoke_async("loop", n + 1).map_err(invoke_failed)?;
            }
            Ok(())
        })
        .on_failure(Destination::channel(tx)),
    )
    .unwrap();
    rt.invoke_async("loop", 1).unwrap();
    rt.run_until_idle();
    let r = rx.try_recv().unwrap();
    assert_eq!(r.condition, Condition::RecursionLimit);
    assert_eq!(r.chain_depth, 3);
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn recursion_guard_switched_off_lets_a_forty_hop_chain_finish() {
    let rt = runtime(None);
    let depths = register_self_invoker(&rt, "deep", 40);
    rt.invoke_async("deep", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 40);
    assert_eq!(*depths.lock().unwrap(), (1..=40).collect::<Vec<_>>());
    let m = rt.function_metrics("deep").unwrap();
    assert_eq!(m.outcome(Condition::Success), 40);
    assert_eq!(m.outcome(Condition::RecursionLimit), 0);
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn recursion_limit_counts_hops_through_function_destinations() {
    let rt = runtime(Some(DEFAULT_RECURSION_LIMIT));
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    // Each success feeds the next event through the on-success destination: a loop without any
    // invoke in the handler.
    rt.register(
        Function::new("echo", move |n: &u32, _ctx| {
            r.fetch_add(1, Ordering::SeqCst);
            if *n >= RUNAWAY {
                return Err(FunctionError::new(
                    "Runaway",
                    "the guard did not stop the loop",
                ));
            }
            Ok(())
        })
        .maximum_retry_attempts(0)
        .on_success(Destination::function(
            "echo",
            |rec: &InvocationRecord<u32, ()>| rec.request_payload + 1,
        )),
    )
    .unwrap();
    rt.invoke_async("echo", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 16);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
    assert_eq!(dead[0].request_payload, 17);
}

#[test]
fn fan_out_one_to_ten_to_ten_runs_a_hundred_leaves_at_depth_three() {
    let rt = runtime(Some(DEFAULT_RECURSION_LIMIT));
    let leaves = Arc::new(Mutex::new(Vec::new()));
    let seen = leaves.clone();
    rt.register(Function::new("leaf", move |n: &u32, ctx| {
        seen.lock().unwrap().push((*n, ctx.chain_depth()));
        Ok(())
    }))
    .unwrap();
    let mid = rt
        .register(Function::new("mid", |n: &u32, ctx| {
            assert_eq!(ctx.chain_depth(), 2);
            for i in 0..10 {
                ctx.invoke_async("leaf", n * 10 + i)
                    .map_err(invoke_failed)?;
            }
            Ok(())
        }))
        .unwrap();
    rt.register(Function::new("root", move |_: &u32, ctx| {
        assert_eq!(ctx.chain_depth(), 1);
        for i in 0..10 {
            // Through a handle: the hop counts the same.
            ctx.invoke_async_handle(&mid, i).map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("root", 0).unwrap();
    assert_eq!(rt.run_until_idle(), 111);

    let mut leaves = leaves.lock().unwrap().clone();
    leaves.sort();
    assert_eq!(leaves.len(), 100);
    assert!(leaves.iter().all(|(_, depth)| *depth == 3));
    assert_eq!(
        leaves.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    let m = rt.metrics();
    let ok = |name: &str| m.function(name).unwrap().outcome(Condition::Success);
    assert_eq!((ok("root"), ok("mid"), ok("leaf")), (1, 10, 100));
    assert_eq!(m.total.outcome(Condition::RecursionLimit), 0);
}

#[test]
fn recursion_limit_out_of_range_is_refused() {
    let err = Runtime::<u32>::builder()
        .recursion_limit(Some(0))
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "recursion_limit",
            ..
        }
    ));
    assert!(Runtime::<u32>::builder()
        .recursion_limit(Some(10_001))
        .build()
        .is_err());
}
