//! The recursion guard: chain depth, Lambda's loop rule (the same function reached more than
//! 16 times in one chain) by default, the plain hop limit as an option, custom limits,
//! switching it off, and multi-level fan-out.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use event_invoke::{
    Condition, Destination, Error, FaultInjection, Function, FunctionError, InvocationRecord,
    ManualClock, RecursionGuard, Runtime, StepOutcome, DEFAULT_RECURSION_LIMIT,
};

fn runtime(limit: Option<u32>) -> Runtime<u32> {
    Runtime::builder()
        .clock(ManualClock::new())
        .recursion_limit(limit)
        .build()
        .unwrap()
}

fn guarded(guard: RecursionGuard) -> Runtime<u32> {
    Runtime::builder()
        .clock(ManualClock::new())
        .recursion_guard(guard)
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

type Hops = Arc<Mutex<Vec<(String, u32, u32)>>>;

/// Registers "ping" and "pong", each invoking the other with `n + 1` (pong through a handle),
/// and records (function, n, chain depth) of every run.
fn register_ping_pong(rt: &Runtime<u32>) -> Hops {
    let hops: Hops = Arc::new(Mutex::new(Vec::new()));
    let seen = hops.clone();
    let ping = rt
        .register(Function::new("ping", move |n: &u32, ctx| {
            seen.lock()
                .unwrap()
                .push(("ping".to_string(), *n, ctx.chain_depth()));
            if *n < RUNAWAY {
                ctx.invoke_async("pong", n + 1).map_err(invoke_failed)?;
            }
            Ok(())
        }))
        .unwrap();
    let seen = hops.clone();
    rt.register(Function::new("pong", move |n: &u32, ctx| {
        seen.lock()
            .unwrap()
            .push(("pong".to_string(), *n, ctx.chain_depth()));
        if *n < RUNAWAY {
            // Through a handle: the hop counts the same.
            ctx.invoke_async_handle(&ping, n + 1)
                .map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    hops
}

/// Checks that `hops` are ping, pong, ping, ... with n and the chain depth 1, 2, 3, ...
fn assert_alternating(hops: &[(String, u32, u32)]) {
    for (i, (name, n, depth)) in hops.iter().enumerate() {
        let i = i as u32;
        assert_eq!(*depth, i + 1);
        assert_eq!(*n, i + 1);
        assert_eq!(name, if i % 2 == 0 { "ping" } else { "pong" });
    }
}

#[test]
fn the_hop_guard_counts_the_whole_chain_whatever_its_functions() {
    let rt = guarded(RecursionGuard::Hops(DEFAULT_RECURSION_LIMIT));
    let hops = register_ping_pong(&rt);
    rt.invoke_async("ping", 1).unwrap();
    rt.run_until_idle();

    let hops = hops.lock().unwrap();
    assert_eq!(
        hops.len(),
        16,
        "the hop guard counts the whole chain, not one function"
    );
    assert_alternating(&hops);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "ping");
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
    assert_eq!(dead[0].chain_depth, 17);
}

#[test]
fn ping_pong_is_stopped_when_one_function_is_reached_the_seventeenth_time() {
    // Lambda's rule, the default: ping and pong each run 16 times (32 hops); the 33rd event
    // would be ping's 17th.
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let hops = register_ping_pong(&rt);
    rt.invoke_async("ping", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 33);

    let hops = hops.lock().unwrap();
    assert_eq!(hops.len(), 32);
    assert_alternating(&hops);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "ping");
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
    assert_eq!((dead[0].chain_depth, dead[0].request_payload), (33, 33));
    let m = rt.metrics();
    assert_eq!(m.function("ping").unwrap().outcome(Condition::Success), 16);
    assert_eq!(m.function("pong").unwrap().outcome(Condition::Success), 16);
}

/// Registers `stage-0` .. `stage-{n-1}`, each invoking the next; the last invokes `last`
/// (if any). Returns the chain depths each stage ran at.
fn register_pipeline(rt: &Runtime<u32>, n: u32, last: Option<&'static str>) -> Hops {
    let hops: Hops = Arc::new(Mutex::new(Vec::new()));
    for i in 0..n {
        let seen = hops.clone();
        let next = if i + 1 < n {
            Some(format!("stage-{}", i + 1))
        } else {
            last.map(str::to_string)
        };
        rt.register(Function::new(format!("stage-{i}"), move |p: &u32, ctx| {
            seen.lock()
                .unwrap()
                .push((ctx.function_name().to_string(), *p, ctx.chain_depth()));
            if let Some(next) = &next {
                ctx.invoke_async(next, p + 1).map_err(invoke_failed)?;
            }
            Ok(())
        }))
        .unwrap();
    }
    hops
}

#[test]
fn a_pipeline_of_twenty_different_functions_runs_to_the_end() {
    // No function comes back: Lambda's loop detection lets it run, and so does the default.
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let hops = register_pipeline(&rt, 20, None);
    rt.invoke_async("stage-0", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 20);
    let hops = hops.lock().unwrap();
    let depths: Vec<u32> = hops.iter().map(|h| h.2).collect();
    assert_eq!(depths, (1..=20).collect::<Vec<_>>());
    assert_eq!(hops[19].0, "stage-19");
    assert!(rt.drain_dead_letters().is_empty());
    assert_eq!(rt.metrics().total.outcome(Condition::RecursionLimit), 0);
}

#[test]
fn the_hop_guard_stops_a_pipeline_of_twenty_at_hop_seventeen() {
    let rt = guarded(RecursionGuard::Hops(16));
    let hops = register_pipeline(&rt, 20, None);
    rt.invoke_async("stage-0", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(hops.lock().unwrap().len(), 16);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "stage-16");
    assert_eq!(dead[0].chain_depth, 17);
}

#[test]
fn a_loop_at_the_end_of_a_pipeline_counts_only_its_repeated_function() {
    // Five stages, then a function that invokes itself: it runs three times (Loops(3)),
    // whatever the depth it started at; its fourth event, at depth 5 + 4, is stopped.
    let rt = guarded(RecursionGuard::Loops(3));
    let stages = register_pipeline(&rt, 5, Some("loop"));
    let depths = register_self_invoker(&rt, "loop", u32::MAX);
    rt.invoke_async("stage-0", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(stages.lock().unwrap().len(), 5);
    assert_eq!(*depths.lock().unwrap(), vec![6, 7, 8]);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "loop");
    assert_eq!(dead[0].chain_depth, 9);
}

#[test]
fn each_branch_of_a_recursive_fan_out_counts_its_own_path() {
    // "tree" invokes itself twice per run: with Loops(3) the paths run 1 + 2 + 4 events, and
    // the 8 events at the fourth level are stopped. Siblings do not add to each other's count.
    let rt = guarded(RecursionGuard::Loops(3));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = runs.clone();
    rt.register(Function::new("tree", move |n: &u32, ctx| {
        seen.lock().unwrap().push(ctx.chain_depth());
        if *n < 10 {
            ctx.invoke_async("tree", n + 1).map_err(invoke_failed)?;
            // An unrelated function in between does not reset or raise the count.
            ctx.invoke_async("leaf", 0).map_err(invoke_failed)?;
            ctx.invoke_async("tree", n + 1).map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    rt.register(Function::new("leaf", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.invoke_async("tree", 1).unwrap();
    rt.run_until_idle();
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, [1, 2, 2, 3, 3, 3, 3]);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 8);
    assert!(dead
        .iter()
        .all(|r| r.condition == Condition::RecursionLimit && r.chain_depth == 4));
    let m = rt.metrics();
    assert_eq!(m.function("leaf").unwrap().outcome(Condition::Success), 7);
}

#[test]
fn siblings_that_share_their_place_in_a_chain_keep_their_own_retries() {
    // The children one execution invokes in one function share their chain's history until
    // one of them changes it: a failing sibling's retry and error stay its own.
    let records = Arc::new(Mutex::new(Vec::new()));
    let seen = records.clone();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .on_record(move |r| seen.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    rt.register(
        Function::new("child", |n: &u32, _ctx| match n {
            0 => Err(FunctionError::new("Boom", "child 0 fails")),
            _ => Ok(()),
        })
        .maximum_retry_attempts(1),
    )
    .unwrap();
    rt.register(Function::new("parent", |_: &u32, ctx| {
        for i in 0..3 {
            ctx.invoke_async("child", i).map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("parent", 0).unwrap();
    rt.try_dispatch().unwrap(); // the parent
    rt.try_dispatch().unwrap(); // child 0 fails: its retry waits a minute
    let snapshot = rt.queue_snapshot("child").unwrap();
    let attempts: Vec<_> = snapshot
        .iter()
        .map(|e| (e.attempts, e.chain_depth))
        .collect();
    assert_eq!(attempts, [(0, 2), (0, 2), (1, 2)]);
    rt.run_until_idle();

    let mut records = records.lock().unwrap().clone();
    records.retain(|r| &*r.function == "child");
    records.sort_by_key(|r| r.request_payload);
    let summary: Vec<_> = records
        .iter()
        .map(|r| {
            let error = r.error().map(|e| e.error_type().to_string());
            (
                r.request_payload,
                r.condition,
                r.approximate_invoke_count,
                error,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, Condition::RetriesExhausted, 2, Some("Boom".to_string())),
            (1, Condition::Success, 1, None),
            (2, Condition::Success, 1, None),
        ]
    );
    assert!(records.iter().all(|r| r.chain_depth == 2));
}

#[test]
fn a_loop_through_function_destinations_is_counted_per_function() {
    // "a" feeds "b" and "b" feeds "a" through on-success destinations: each runs 16 times,
    // and a's 17th event is stopped (the hop guard would stop the chain after 16 runs).
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    for me in ["a", "b"] {
        let r = runs.clone();
        rt.register(
            Function::new(me, move |n: &u32, _ctx| {
                r.fetch_add(1, Ordering::SeqCst);
                if *n >= RUNAWAY {
                    return Err(FunctionError::new("Runaway", "not stopped"));
                }
                Ok(())
            })
            .maximum_retry_attempts(0),
        )
        .unwrap();
    }
    // Each destination names the other, so both are set once both exist.
    for (me, other) in [("a", "b"), ("b", "a")] {
        rt.update_config(me, |c| {
            c.on_success = Some(Destination::function(
                other,
                |rec: &InvocationRecord<u32, ()>| rec.request_payload + 1,
            ));
        })
        .unwrap();
    }
    rt.invoke_async("a", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 32);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].function, "a");
    assert_eq!(dead[0].condition, Condition::RecursionLimit);
    assert_eq!((dead[0].request_payload, dead[0].chain_depth), (33, 33));
}

#[test]
fn a_duplicate_delivery_stays_in_its_event_s_chain() {
    // Every success is delivered once more, and each run (the duplicate's too) invokes the
    // next: with Loops(3), two runs at count 1, four at count 2, eight at count 3, and the
    // eight events at count 4 are stopped. A duplicate that forgot its chain would start
    // counting again, and its children would run on.
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .recursion_guard(RecursionGuard::Loops(3))
        .fault_injection(FaultInjection::new(3).duplicates(1.0))
        .build()
        .unwrap();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = runs.clone();
    rt.register(Function::new("loop", move |n: &u32, ctx| {
        seen.lock().unwrap().push((*n, ctx.chain_depth()));
        if *n < 10 {
            ctx.invoke_async("loop", n + 1).map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("loop", 1).unwrap();
    rt.run_until_idle();
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    let expected: Vec<(u32, u32)> = [(1, 2), (2, 4), (3, 8)]
        .iter()
        .flat_map(|&(n, times)| std::iter::repeat_n((n, n), times))
        .collect();
    assert_eq!(runs, expected);
    let m = rt.function_metrics("loop").unwrap();
    assert_eq!(m.outcome(Condition::RecursionLimit), 8);
}

#[test]
fn with_the_guard_off_a_chain_past_65535_hops_keeps_counting() {
    // A handler that stops on its chain depth stops: the depth does not stall at 65,535.
    const STOP: u32 = 65_540;
    let rt = runtime(None);
    let last = Arc::new(AtomicU32::new(0));
    let seen = last.clone();
    rt.register(Function::new("deep", move |n: &u32, ctx| {
        seen.store(ctx.chain_depth(), Ordering::SeqCst);
        // The payload is the safety net: the test fails instead of running forever.
        if ctx.chain_depth() < STOP && *n < STOP + 10 {
            ctx.invoke_async("deep", n + 1).map_err(invoke_failed)?;
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("deep", 1).unwrap();
    assert_eq!(rt.run_until_idle(), u64::from(STOP));
    assert_eq!(last.load(Ordering::SeqCst), STOP);
}

#[cfg(feature = "model")]
#[test]
fn the_guard_counts_loops_in_model_mode_too() {
    // Children arrive when their invoke calls return (virtual time): the chain goes with them.
    let rt: Runtime<u32> = Runtime::builder()
        .model(
            event_invoke::ModelOptions::new().invoke_latency(std::time::Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let hops = register_ping_pong(&rt);
    rt.invoke_async("ping", 1).unwrap();
    rt.run_until_idle();
    let hops = hops.lock().unwrap();
    assert_eq!(hops.len(), 32);
    assert_alternating(&hops);
    let report = rt.model_report().unwrap();
    assert_eq!(report.dropped, [(Condition::RecursionLimit, 1)]);
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
    for guard in [
        RecursionGuard::Loops(0),
        RecursionGuard::Hops(0),
        RecursionGuard::Loops(10_001),
        RecursionGuard::Hops(10_001),
    ] {
        let err = Runtime::<u32>::builder()
            .recursion_guard(guard)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "recursion_limit",
                    ..
                }
            ),
            "{guard:?}: {err}"
        );
    }
    for guard in [
        RecursionGuard::Loops(1),
        RecursionGuard::Hops(10_000),
        RecursionGuard::Off,
    ] {
        assert!(Runtime::<u32>::builder()
            .recursion_guard(guard)
            .build()
            .is_ok());
    }
}

#[test]
fn recursion_limit_is_the_loop_guard_and_none_switches_it_off() {
    assert_eq!(RecursionGuard::default(), RecursionGuard::Loops(16));
    let shown = |b: event_invoke::RuntimeBuilder<u32, ()>| format!("{b:?}");
    let builder = || Runtime::<u32>::builder();
    assert!(shown(builder()).contains("recursion_guard: Loops(16)"));
    assert!(shown(builder().recursion_limit(Some(5))).contains("recursion_guard: Loops(5)"));
    assert!(shown(builder().recursion_limit(None)).contains("recursion_guard: Off"));
}
