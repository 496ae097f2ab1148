//! Model mode: the engine in virtual time with a cost model. Every expected figure here is
//! worked out by hand in the comment above its assertion.
#![cfg(feature = "model")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, CostModel, Error, Function, InvokeError, ManualClock, ModelOptions, RetryPolicy,
    Runtime, ScalingRate, ScalingScope, StepOutcome, SystemClock, ThrottledEvents, TraceKind,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A model-mode runtime with this invoke latency.
fn model(latency: Duration) -> Runtime<u32> {
    Runtime::builder()
        .model(ModelOptions::new().invoke_latency(latency))
        .build()
        .unwrap()
}

/// Model options where every event that finds no slot backs off on its own (the behaviour
/// before pollers backed off), so that each throttle below can be worked out per event.
fn each_backs_off() -> ModelOptions {
    ModelOptions::new().throttled_events(ThrottledEvents::EachEventBacksOff)
}

/// A model runtime (10 ms per invoke) that records when `function`'s events are accepted.
fn model_recording_arrivals(function: &'static str) -> (Runtime<u32>, Arc<Mutex<Vec<Duration>>>) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&accepted);
    let rt = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(ms(10)))
        .on_trace(move |e| {
            if matches!(e.kind, TraceKind::Accepted { .. }) && e.function == function {
                seen.lock().unwrap().push(e.at.as_duration());
            }
        })
        .build()
        .unwrap();
    (rt, accepted)
}

/// A function that invokes `child` `n` times per event, with a timeout long enough for it.
fn fan_out(name: &str, child: &'static str, n: u32) -> Function<u32, ()> {
    Function::new(name, move |_: &u32, ctx| {
        for i in 0..n {
            ctx.invoke_async(child, i)?;
        }
        Ok(())
    })
    .timeout(secs(900))
}

/// No throttle jitter, so that backoff times can be worked out by hand.
fn exact_backoff() -> RetryPolicy {
    RetryPolicy::builder().throttle_jitter(0.0).build().unwrap()
}

#[test]
fn sequential_invokes_at_10_ms_take_100_s() {
    let rt = model(ms(10));
    rt.register(Function::new("leaf", |_: &u32, _ctx| Ok(())))
        .unwrap();
    for i in 0..10_000 {
        rt.invoke_async("leaf", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 10,000 calls of 10 ms, one after the other; the leaf takes no time.
    assert_eq!(report.makespan, secs(100));
    assert_eq!(report.executions, 10_000);
    assert_eq!(report.successes, 10_000);
    assert_eq!(report.peak_concurrency, 1);
}

#[test]
fn fan_out_1_100_100_takes_2_01_s() {
    let rt = model(ms(10));
    rt.register(Function::new("function_3", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.register(fan_out("function_2", "function_3", 100))
        .unwrap();
    rt.register(fan_out("function_1", "function_2", 100))
        .unwrap();
    rt.invoke_async("function_1", 0).unwrap();
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 10 ms for the client's call, 100 x 10 ms in function_1, 100 x 10 ms in the last
    // function_2 to start.
    assert_eq!(report.makespan, ms(2010));
    let executions: Vec<u64> = report.functions.iter().map(|f| f.executions).collect();
    assert_eq!(executions, vec![10_000, 100, 1]);
    assert_eq!(rt.outstanding(), 0);
    assert!(rt.metrics().total.is_balanced());
}

#[test]
fn other_shapes_of_ten_thousand_leaves_take_10_11_s() {
    for (mid, leaves) in [(10, 1000), (1000, 10)] {
        let rt = model(ms(10));
        rt.register(Function::new("leaf", |_: &u32, _ctx| Ok(())))
            .unwrap();
        rt.register(fan_out("mid", "leaf", leaves)).unwrap();
        rt.register(fan_out("top", "mid", mid)).unwrap();
        rt.invoke_async("top", 0).unwrap();
        rt.run_until_idle();
        let report = rt.model_report().unwrap();
        // 10 ms + mid x 10 ms + leaves x 10 ms = 10 ms + 10,100 ms / ... : 0.01 + 0.1 + 10.
        assert_eq!(report.makespan, ms(10 + 10 * u64::from(mid + leaves)));
        assert_eq!(report.makespan, ms(10_110));
        assert_eq!(report.functions[0].executions, 10_000);
    }
}

#[test]
fn children_arrive_one_invoke_latency_apart() {
    let (rt, accepted) = model_recording_arrivals("child");
    rt.register(Function::new("child", |_: &u32, _ctx| Ok(())))
        .unwrap();
    // The parent works 50 ms before its calls; its own duration comes after them.
    let parent = Function::new("parent", |_: &u32, ctx| {
        ctx.spend(ms(50));
        for i in 0..3 {
            ctx.invoke_async("child", i)?;
        }
        Ok(())
    })
    .cost(CostModel::fixed(ms(200)));
    rt.register(parent).unwrap();
    rt.invoke_async("parent", 0).unwrap();
    // The client's call returns at 10 ms: nothing is due at 0.
    assert!(rt.try_dispatch().is_none());
    rt.run_until_idle();
    // Parent starts at 10 ms, spends 50 ms, then three calls of 10 ms each.
    assert_eq!(*accepted.lock().unwrap(), vec![ms(70), ms(80), ms(90)]);
    // ... then 200 ms of its own: it ends at 290 ms, the last thing to happen.
    assert_eq!(rt.model_report().unwrap().makespan, ms(290));
}

#[test]
fn an_execution_holds_its_slot_until_its_virtual_end() {
    let rt: Runtime<u32> = Runtime::builder().model(each_backs_off()).build().unwrap();
    let f = Function::new("one_at_a_time", |_: &u32, _ctx| Ok(()))
        .reserved_concurrency(1)
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(secs(1)));
    rt.register(f).unwrap();
    for i in 0..3 {
        rt.invoke_async("one_at_a_time", i).unwrap();
    }
    let first = rt.try_dispatch().unwrap();
    assert_eq!(
        first.outcome,
        StepOutcome::Running {
            until: event_invoke::Timestamp::from_secs(1)
        }
    );
    rt.run_until_idle();
    // 0 s: A runs to 1 s; B and C throttle (back at 1 s). 1 s: A ends, B runs to 2 s, C
    // throttles again (back at 1 + 2 = 3 s). 3 s: C runs to 4 s.
    let report = rt.model_report().unwrap();
    assert_eq!(report.makespan, secs(4));
    assert_eq!(report.throttles, 3);
    assert_eq!(report.peak_concurrency, 1);
    assert_eq!(report.successes, 3);
}

#[test]
fn a_failing_execution_is_retried_after_one_then_two_minutes() {
    let rt = model(Duration::ZERO);
    let cost = CostModel::fixed(ms(100)).failure_rate(1.0);
    rt.register(Function::new("flaky", |_: &u32, _ctx| Ok(())).cost(cost))
        .unwrap();
    rt.invoke_async("flaky", 0).unwrap();
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 0.1 s, 60 s wait, 0.1 s, 120 s wait, 0.1 s.
    assert_eq!(report.makespan, ms(180_300));
    assert_eq!((report.executions, report.retries), (3, 2));
    assert_eq!(report.dropped, vec![(Condition::RetriesExhausted, 1)]);
    // Event ages at the three starts: 0, 60.1 s, 180.2 s.
    assert_eq!(report.event_age.max, ms(180_200));
    assert_eq!(report.event_age.p50, ms(60_100));
    let records = rt.drain_dead_letters();
    assert_eq!(records[0].error().unwrap().error_type(), "Model.Failure");
}

#[test]
fn a_failure_rate_fails_about_that_share_of_executions() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new())
        .seed(11)
        .build()
        .unwrap();
    let cost = CostModel::fixed(ms(10)).failure_rate(0.2);
    let f = Function::new("f", |_: &u32, _ctx| Ok(()))
        .maximum_retry_attempts(0)
        .cost(cost);
    rt.register(f).unwrap();
    for i in 0..5_000 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    let failed = report.dropped[0].1;
    assert!((850..1150).contains(&failed), "{failed} of 5,000 failed");
    assert_eq!(report.successes + failed, 5_000);
}

#[test]
fn scaling_2023_adds_1000_environments_every_10_s() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(each_backs_off())
        .account_concurrency(10_000)
        .scaling_rate(ScalingRate::lambda_2023())
        .build()
        .unwrap();
    let f = Function::new("burst", |_: &u32, _ctx| Ok(()))
        .timeout(secs(60))
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(secs(30)));
    rt.register(f).unwrap();
    for i in 0..2_500 {
        rt.invoke_async("burst", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 0 s: 1,000 environments, 1,500 throttled; they come back at 1, 3, 7 and 15 s (backoff
    // 1, 2, 4, 8 s). At 15 s the allowance is 2,000: 1,000 more start, 500 throttle a fifth
    // time (16 s: back at 31 s). At 30 s the first 1,000 end, so at 31 s the last 500 start on
    // warm environments, and end at 61 s.
    assert_eq!(report.makespan, secs(61));
    assert_eq!(report.cold_starts, 2_000);
    assert_eq!(report.throttles, 1_500 * 4 + 500);
    assert_eq!(report.peak_concurrency, 2_000);
    assert_eq!(report.successes, 2_500);
    // Ages: 1,000 at 0 s, 1,000 at 15 s, 500 at 31 s.
    assert_eq!(report.event_age.p50, secs(15));
    assert_eq!(report.event_age.p90, secs(31));
}

#[test]
fn scaling_2018_shares_one_burst_across_the_account() {
    let run = |rate: ScalingRate| {
        let rt: Runtime<u32> = Runtime::builder()
            .model(each_backs_off())
            .scaling_rate(rate)
            .build()
            .unwrap();
        for name in ["a", "b"] {
            let f = Function::new(name, |_: &u32, _ctx| Ok(()))
                .timeout(secs(900))
                .retry_policy(exact_backoff())
                .cost(CostModel::fixed(secs(120)));
            rt.register(f).unwrap();
            for i in 0..400 {
                rt.invoke_async(name, i).unwrap();
            }
        }
        rt.run_until_idle();
        rt.model_report().unwrap()
    };
    let shared = run(ScalingRate::lambda_2018(500).unwrap());
    // 800 events, a burst of 500 for both functions: 300 throttle at 0, 1, 3, 7, 15 and 31 s
    // (backoff 1 to 32 s) and come back at 63 s, when a minute has added 500 more. They end
    // at 63 + 120 s.
    assert_eq!(shared.makespan, secs(183));
    assert_eq!(shared.throttles, 300 * 6);
    assert_eq!(shared.cold_starts, 800);
    // The same burst per function: each fits its 400 at once.
    let own = run(ScalingRate::new(500, 500, secs(60), ScalingScope::Function).unwrap());
    assert_eq!(own.makespan, secs(120));
    assert_eq!(own.throttles, 0);
}

#[test]
fn the_account_limit_throttles_a_wide_fan_out() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(each_backs_off())
        .account_concurrency(100)
        .unreserved_floor(0)
        .build()
        .unwrap();
    let f = Function::new("leaf", |_: &u32, _ctx| Ok(()))
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(ms(500)));
    rt.register(f).unwrap();
    for i in 0..150 {
        rt.invoke_async("leaf", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 100 run from 0 to 0.5 s; 50 throttle and come back at 1 s, then run to 1.5 s.
    assert_eq!(report.makespan, ms(1500));
    assert_eq!(report.throttles, 50);
    assert_eq!(report.peak_concurrency, 100);
}

#[test]
fn a_cold_start_delays_only_new_environments() {
    let cold = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&cold);
    let rt = model(secs(2));
    let f = Function::new("f", move |_: &u32, ctx| {
        seen.lock().unwrap().push(ctx.is_cold_start());
        Ok(())
    })
    .cost(CostModel::fixed(ms(100)).cold_start(secs(1)));
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();
    rt.run_until_idle();
    // Accepted at 2 s and 4 s. The first needs an environment: 1 s + 0.1 s, ending at 3.1 s;
    // the second finds it warm: 4 s to 4.1 s.
    assert_eq!(*cold.lock().unwrap(), vec![true, false]);
    let report = rt.model_report().unwrap();
    assert_eq!(report.makespan, ms(4100));
    assert_eq!(report.cold_starts, 1);
}

#[test]
fn a_timeout_ends_the_execution_and_refuses_later_calls() {
    let refused = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&refused);
    let rt = model(ms(10));
    rt.register(Function::new("child", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let parent = Function::new("parent", move |_: &u32, ctx| {
        for i in 0..200 {
            if let Err(e) = ctx.invoke_async("child", i) {
                assert!(matches!(e, InvokeError::CallerTimedOut { .. }), "{e}");
                assert!(e.is_caller_timed_out() && !e.is_full() && !e.is_not_found());
                assert_eq!(e.into_inner(), i);
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    })
    .timeout(secs(1))
    .maximum_retry_attempts(0);
    rt.register(parent).unwrap();
    rt.invoke_async("parent", 0).unwrap();
    rt.run_until_idle();
    // From 10 ms, 100 calls fit in its 1 s; the other 100 would return after the timeout.
    assert_eq!(refused.load(Ordering::Relaxed), 100);
    let m = rt.function_metrics("child").unwrap();
    assert_eq!(m.events_received, 100);
    let records = rt.drain_dead_letters();
    assert_eq!(records[0].error().unwrap().error_type(), "Sandbox.Timedout");
    assert_eq!(rt.model_report().unwrap().makespan, ms(1010));
}

#[test]
fn durations_from_a_distribution_are_drawn_from_the_seed() {
    let run = |seed: u64| {
        let rt: Runtime<u32> = Runtime::builder()
            .model(ModelOptions::new().invoke_latency(ms(5)))
            .seed(seed)
            .build()
            .unwrap();
        let costs = [
            CostModel::uniform(ms(50), ms(150)).cold_start(ms(300)),
            CostModel::exponential(ms(80)).failure_rate(0.1),
            CostModel::log_normal(ms(100), 0.5),
            CostModel::samples(vec![ms(20), ms(40), ms(900)]),
        ];
        for (i, cost) in costs.into_iter().enumerate() {
            let name = format!("f{i}");
            rt.register(Function::new(name, |_: &u32, _ctx| Ok(())).cost(cost))
                .unwrap();
        }
        for i in 0..400 {
            rt.invoke_async(&format!("f{}", i % 4), i).unwrap();
        }
        rt.run_until_idle();
        let report = rt.model_report().unwrap();
        let timeline = rt.timeline().unwrap();
        (report.to_string(), timeline.to_csv(), timeline.to_svg())
    };
    let a = run(7);
    assert_eq!(a, run(7), "same seed, same bytes");
    assert_ne!(a.0, run(8).0, "another seed draws other durations");
}

#[test]
fn the_timeline_stays_bounded_and_keeps_peaks() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(
            ModelOptions::new()
                .invoke_latency(ms(10))
                .timeline(ms(1), 100),
        )
        .build()
        .unwrap();
    let f = Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(ms(25)));
    rt.register(f).unwrap();
    for i in 0..1_000 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let timeline = rt.timeline().unwrap();
    // 10 s at 1 ms would be 10,000 buckets: the resolution doubled until 100 could hold them.
    assert!(timeline.points().len() <= 100);
    assert_eq!(timeline.resolution(), ms(128));
    // Each execution takes 25 ms and one starts every 10 ms: 3 run at once at the peak.
    let peak = timeline.points().iter().map(|p| p.concurrency).max();
    assert_eq!(peak, Some(3));
    assert_eq!(rt.model_report().unwrap().peak_concurrency, 3);
    let csv = timeline.to_csv();
    assert_eq!(csv.lines().count(), timeline.points().len() + 1);
    assert!(csv.lines().nth(1).unwrap().starts_with("0.000000,"));
}

#[test]
fn events_still_on_their_way_to_a_deleted_function_end_with_records() {
    let rt = model(ms(10));
    rt.register(Function::new("gone", |_: &u32, _ctx| Ok(())))
        .unwrap();
    for i in 0..5 {
        rt.invoke_async("gone", i).unwrap();
    }
    assert_eq!(rt.outstanding(), 5);
    // None has arrived yet: nothing is queued to discard.
    assert_eq!(rt.delete("gone").unwrap(), 0);
    rt.run_until_idle();
    assert_eq!(rt.outstanding(), 0);
    let records = rt.drain_dead_letters();
    assert_eq!(records.len(), 5);
    assert!(records
        .iter()
        .all(|r| r.condition == Condition::FunctionDeleted));
}

#[test]
fn paused_functions_hold_arrivals_and_age_them_out() {
    let rt = model(ms(10));
    let f = Function::new("held", |_: &u32, _ctx| Ok(())).maximum_event_age(secs(60));
    rt.register(f).unwrap();
    rt.pause("held").unwrap();
    rt.invoke_async("held", 1).unwrap();
    rt.run_for(secs(120));
    // Accepted at 10 ms, held, aged out 60 s later.
    let m = rt.function_metrics("held").unwrap();
    assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
    assert_eq!(rt.model_report().unwrap().makespan, ms(60_010));
}

#[test]
fn model_mode_needs_a_virtual_clock_and_cost_models_need_model_mode() {
    let real = Runtime::<u32>::builder()
        .model(ModelOptions::new())
        .clock(SystemClock::new())
        .build();
    assert!(matches!(
        real,
        Err(Error::InvalidConfig { field: "clock", .. })
    ));
    // A manual clock of the caller's own is fine.
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .model(ModelOptions::new())
        .build()
        .unwrap();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(secs(3))))
        .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.run_until_idle();
    assert_eq!(clock.now().as_duration(), secs(3));

    let plain: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let err = plain
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(secs(1))))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "cost", .. }));
    assert!(err.to_string().contains("RuntimeBuilder::model"));
    assert!(plain.model_report().is_none());
    assert!(plain.timeline().is_none());
}

#[test]
fn nonsense_cost_models_are_refused_with_the_field_named() {
    let rt = model(Duration::ZERO);
    let cases = [
        (
            CostModel::fixed(ms(1)).failure_rate(1.5),
            "cost_model.failure_rate",
        ),
        (
            CostModel::fixed(ms(1)).failure_rate(f64::NAN),
            "cost_model.failure_rate",
        ),
        (CostModel::uniform(ms(9), ms(1)), "cost_model.uniform"),
        (CostModel::samples(Vec::new()), "cost_model.samples"),
        (
            CostModel::log_normal(ms(100), -1.0),
            "cost_model.log_normal",
        ),
        (CostModel::fixed(secs(2 * 24 * 3600)), "cost_model.duration"),
        (
            CostModel::fixed(ms(1)).cold_start(secs(100_000)),
            "cost_model.cold_start",
        ),
    ];
    for (cost, field) in cases {
        let err = rt
            .register(Function::new("f", |_: &u32, _ctx| Ok(())).cost(cost))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert!(rt.function_names().is_empty());
    let bad_latency = Runtime::<u32>::builder()
        .model(ModelOptions::new().invoke_latency(secs(7200)))
        .build();
    assert!(bad_latency.is_err());
    let bad_timeline = Runtime::<u32>::builder()
        .model(ModelOptions::new().timeline(Duration::ZERO, 10))
        .build();
    assert!(bad_timeline.is_err());
    assert!(ScalingRate::new(10, 1, Duration::ZERO, ScalingScope::Account).is_err());
}

#[test]
fn a_scaling_rate_outside_model_mode_marks_cold_starts() {
    let cold = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&cold);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .scaling_rate(ScalingRate::lambda_2023())
        .build()
        .unwrap();
    rt.register(Function::new("f", move |_: &u32, ctx| {
        seen.lock().unwrap().push(ctx.is_cold_start());
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();
    rt.run_until_idle();
    assert_eq!(*cold.lock().unwrap(), vec![true, false]);
}

/// One random model run: random costs, limits, scaling, latency, fan-out and timeouts, with
/// pauses, code updates, purges, deletions and limit changes at random virtual times. Checks
/// that every accepted event ended exactly once and every slot came back; returns the report
/// and the timeline's CSV, to compare runs of the same seed.
fn random_run(seed: u64) -> String {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let books: Arc<Mutex<HashMap<event_invoke::RequestId, (u32, u32)>>> = Arc::default();
    let (accepted, ended) = (Arc::clone(&books), Arc::clone(&books));
    let mut builder = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(ms(rng.random_range(0..20))))
        .seed(seed)
        .account_concurrency(rng.random_range(5..50))
        .unreserved_floor(0)
        .keep_dead_letters(false)
        .on_trace(move |e| {
            if let TraceKind::Accepted { .. } = e.kind {
                accepted.lock().unwrap().entry(e.request_id).or_default().0 += 1;
            }
        })
        .on_record(move |r| {
            ended.lock().unwrap().entry(r.request_id).or_default().1 += 1;
        });
    if rng.random_bool(0.5) {
        let scope = if rng.random_bool(0.5) {
            ScalingScope::Function
        } else {
            ScalingScope::Account
        };
        let rate = ScalingRate::new(
            rng.random_range(1..10),
            rng.random_range(0..5),
            secs(rng.random_range(1..10)),
            scope,
        )
        .unwrap();
        builder = builder.scaling_rate(rate);
    }
    let rt: Runtime<u32> = builder.build().unwrap();
    let leaf_cost = |rng: &mut ChaCha8Rng| {
        let cost = match rng.random_range(0..4) {
            0 => CostModel::fixed(ms(rng.random_range(0..500))),
            1 => CostModel::uniform(ms(10), ms(rng.random_range(10..2_000))),
            2 => CostModel::exponential(ms(rng.random_range(1..300))),
            _ => CostModel::log_normal(ms(rng.random_range(1..300)), 0.8),
        };
        cost.cold_start(ms(rng.random_range(0..300)))
            .failure_rate(rng.random_range(0.0..0.3))
    };
    let leaf = |rng: &mut ChaCha8Rng| {
        let mut f = Function::new("leaf", |_: &u32, _ctx| Ok(()))
            .timeout(secs(rng.random_range(1..4)))
            .maximum_retry_attempts(rng.random_range(0..3))
            .maximum_event_age(secs(rng.random_range(60..600)))
            .cost(leaf_cost(rng));
        if rng.random_bool(0.3) {
            f = f.reserved_concurrency(rng.random_range(0..4));
        }
        f
    };
    rt.register(leaf(&mut rng)).unwrap();
    let fan = rng.random_range(1..30);
    let mid = Function::new("mid", move |_: &u32, ctx| {
        for i in 0..fan {
            ctx.invoke_async("leaf", i)?;
        }
        Ok(())
    })
    .timeout(ms(rng.random_range(100..2_000)))
    .maximum_event_age(secs(rng.random_range(60..600)))
    .cost(leaf_cost(&mut rng));
    rt.register(mid).unwrap();
    let names = ["leaf", "mid"];
    for i in 0..rng.random_range(10..80) {
        let _ = rt.invoke_async(names[rng.random_range(0..2)], i);
    }
    for _ in 0..rng.random_range(0..12) {
        rt.run_for(ms(rng.random_range(0..20_000)));
        let name = names[rng.random_range(0..2)];
        let _ = match rng.random_range(0..7) {
            0 => rt.pause(name),
            1 => rt.resume(name),
            2 => rt.update_code(name, |_: &u32, _ctx| Ok(())).map(drop),
            3 => rt.purge(name).map(drop),
            4 => rt.set_reserved_concurrency(name, Some(rng.random_range(0..5))),
            5 if name == "leaf" => rt
                .delete("leaf")
                .and_then(|_| rt.register(leaf(&mut rng)).map(drop)),
            _ => rng.random_range(0..20).try_into().map_or(Ok(()), |n: u32| {
                for i in 0..n {
                    let _ = rt.invoke_async(name, i);
                }
                Ok(())
            }),
        };
    }
    for name in names {
        let _ = rt.resume(name);
        let _ = rt.set_reserved_concurrency(name, None);
    }
    rt.run_until_idle();
    rt.run_for(secs(3_600)); // anything still held ages out
    rt.run_until_idle();

    assert_eq!(rt.outstanding(), 0, "seed {seed}: events left");
    let m = rt.metrics();
    assert_eq!(m.total.concurrent_executions, 0, "seed {seed}: slots kept");
    for f in &m.functions {
        assert!(f.is_balanced(), "seed {seed}: {f:?}");
    }
    for (id, (accepted, ended)) in books.lock().unwrap().iter() {
        assert_eq!((*accepted, *ended), (1, 1), "seed {seed}: request {id:?}");
    }
    let report = rt.model_report().unwrap();
    assert!(report.peak_concurrency <= 50, "seed {seed}");
    format!("{report}{}", rt.timeline().unwrap().to_csv())
}

#[test]
fn random_model_runs_end_every_event_once_and_give_every_slot_back() {
    for seed in 0..150 {
        let first = random_run(seed);
        assert_eq!(first, random_run(seed), "seed {seed}: not deterministic");
    }
}

#[test]
fn a_burst_after_a_quiet_spell_gets_its_burst_back_not_the_unused_steps() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(each_backs_off())
        .account_concurrency(10_000)
        .scaling_rate(ScalingRate::lambda_2023())
        .build()
        .unwrap();
    let f = Function::new("burst", |_: &u32, _ctx| Ok(()))
        .timeout(secs(60))
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(secs(30)));
    rt.register(f).unwrap();
    rt.invoke_async("burst", 0).unwrap();
    rt.run_for(secs(60));
    for i in 0..5_000 {
        rt.invoke_async("burst", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 60 s: 1 warm + 1,000 new environments start (the allowance refilled to its burst, not
    // by the 6 steps of the quiet minute); 3,999 throttle at 60, 61, 63 and 67 s. 75 s: 1,000 more new ones; 2,999
    // throttle (back at 91 s). 90 s: the first 1,001 end. 91 s: 1,001 warm + 1,000 new start
    // (3,001 running with the 1,000 of 75 s); 998 throttle (back at 123 s), when all is done
    // and they start warm, ending at 153 s.
    assert_eq!(report.makespan, secs(153));
    assert_eq!(report.peak_concurrency, 3_001);
    assert_eq!(report.cold_starts, 3_001);
    assert_eq!(report.throttles, 3_999 * 4 + 2_999 + 998);
}

#[test]
fn a_cold_start_does_not_use_up_the_timeout() {
    let rt = model(Duration::ZERO);
    let left = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&left);
    let f = Function::new("f", move |_: &u32, ctx| {
        seen.lock().unwrap().push(ctx.remaining_time());
        Ok(())
    })
    .timeout(secs(3))
    .cost(CostModel::fixed(ms(2_500)).cold_start(secs(1)));
    rt.register(f).unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.run_until_idle();
    // Lambda's init phase has its own limit: 1 s of cold start, then 2.5 s of a 3 s timeout.
    assert_eq!(*left.lock().unwrap(), vec![secs(3)]);
    let report = rt.model_report().unwrap();
    assert_eq!(report.successes, 1);
    assert_eq!(report.makespan, ms(3_500));
}

#[test]
fn events_on_their_way_count_against_the_queue_capacity() {
    let rt = model(ms(10));
    rt.register(Function::new("small", |_: &u32, _ctx| Ok(())).queue_capacity(5))
        .unwrap();
    let refused = (0..20)
        .filter(|i| {
            matches!(
                rt.invoke_async("small", *i),
                Err(InvokeError::QueueFull { .. })
            )
        })
        .count();
    assert_eq!(refused, 15);
    rt.run_until_idle();
    assert_eq!(rt.model_report().unwrap().successes, 5);
}

#[test]
fn an_execution_deferred_when_its_function_is_deleted_still_ends_once() {
    let rt = model(Duration::ZERO);
    let cost = CostModel::fixed(secs(5)).failure_rate(1.0);
    let f = Function::new("doomed", |_: &u32, _ctx| Ok(()))
        .timeout(secs(10))
        .cost(cost);
    rt.register(f).unwrap();
    rt.invoke_async("doomed", 0).unwrap();
    let step = rt.try_dispatch().unwrap();
    assert!(matches!(step.outcome, StepOutcome::Running { .. }));
    assert_eq!(rt.metrics().total.concurrent_executions, 1);
    rt.delete("doomed").unwrap();
    rt.run_until_idle();
    // It ran to its end at 5 s, failed, and its retry found the function gone.
    let records = rt.drain_dead_letters();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].condition, Condition::FunctionDeleted);
    assert_eq!(rt.metrics().total.concurrent_executions, 0);
    assert_eq!(rt.outstanding(), 0);
    assert_eq!(rt.model_report().unwrap().makespan, secs(5));
}

#[test]
fn new_code_takes_over_the_retry_of_an_execution_still_running_the_old() {
    let rt = model(Duration::ZERO);
    let f = Function::new("fixme", |_: &u32, _ctx| {
        Err(event_invoke::FunctionError::new("Bug", "version 1"))
    })
    .cost(CostModel::fixed(secs(2)));
    rt.register(f).unwrap();
    rt.invoke_async("fixme", 0).unwrap();
    rt.try_dispatch().unwrap(); // running version 1 until 2 s
    rt.pause("fixme").unwrap();
    rt.update_code("fixme", |_: &u32, _ctx| Ok(())).unwrap();
    rt.run_until_idle(); // the execution ends at 2 s; its retry is held
    assert_eq!(rt.queue_snapshot("fixme").unwrap().len(), 1);
    rt.resume("fixme").unwrap();
    rt.run_until_idle();
    // Failed at 2 s, retried a minute later with version 2, which ran 2 s.
    let report = rt.model_report().unwrap();
    assert_eq!(report.makespan, secs(64));
    assert_eq!((report.successes, report.retries), (1, 1));
}

#[test]
fn a_function_destination_receives_the_record_at_the_execution_end() {
    let (rt, arrived) = model_recording_arrivals("audit");
    rt.register(Function::new("audit", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let f = Function::new("work", |_: &u32, _ctx| Ok(()))
        .cost(CostModel::fixed(ms(300)))
        .on_success(event_invoke::Destination::function("audit", |r| {
            r.request_payload + 1
        }));
    rt.register(f).unwrap();
    rt.invoke_async("work", 1).unwrap();
    rt.run_until_idle();
    // Accepted at 10 ms, ended at 310 ms: Lambda sends the record then, with no call latency.
    assert_eq!(*arrived.lock().unwrap(), vec![ms(310)]);
    assert_eq!(rt.function_metrics("audit").unwrap().invocations, 1);
}

#[test]
fn injected_faults_play_out_in_virtual_time_too() {
    let run = || {
        let rt: Runtime<u32> = Runtime::builder()
            .model(ModelOptions::new().invoke_latency(ms(1)))
            .fault_injection(
                event_invoke::FaultInjection::new(3)
                    .duplicates(0.2)
                    .function_errors(0.1)
                    .system_errors(0.1),
            )
            .build()
            .unwrap();
        let f = Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(ms(50)));
        rt.register(f).unwrap();
        for i in 0..300 {
            rt.invoke_async("f", i).unwrap();
        }
        rt.run_until_idle();
        let m = rt.function_metrics("f").unwrap();
        assert!(m.duplicates > 0 && m.injected_errors > 0);
        assert!(m.is_balanced());
        assert_eq!(rt.outstanding(), 0);
        assert_eq!(rt.metrics().total.concurrent_executions, 0);
        rt.model_report().unwrap().to_string()
    };
    assert_eq!(run(), run());
}

#[test]
fn synchronous_invokes_and_worker_threads_are_refused_in_model_mode() {
    let rt = model(Duration::ZERO);
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let err = rt.invoke("f", &1).unwrap_err();
    assert_eq!(err, event_invoke::InvokeSyncError::ModelMode("f".into()));
    assert!(err.to_string().contains("invoke_async"));
    assert!(err.is_model_mode());
    let err = rt.spawn_workers(2).unwrap_err();
    assert_eq!(
        err,
        event_invoke::Error::ModelMode {
            call: "spawn_workers"
        }
    );
    assert!(err.to_string().contains("run_until_idle"));
}

#[test]
fn a_scaling_rate_outside_model_mode_throttles_new_environments() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .scaling_rate(ScalingRate::new(1, 1, secs(10), ScalingScope::Function).unwrap())
        .build()
        .unwrap();
    let inner = Arc::new(Mutex::new(None));
    let result = Arc::clone(&inner);
    rt.register(Function::new("f", move |n: &u32, ctx| {
        if *n == 0 {
            // A second execution of `f` while this one runs needs a second environment.
            *result.lock().unwrap() = Some(ctx.runtime().unwrap().invoke("f", &1));
        }
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 0).unwrap();
    rt.run_until_idle();
    let nested = inner.lock().unwrap().take().unwrap();
    assert_eq!(
        nested,
        Err(event_invoke::InvokeSyncError::Throttled("f".into()))
    );
    assert_eq!(rt.function_metrics("f").unwrap().throttles, 1);
}

#[test]
fn the_timeline_shows_a_retry_waiting_after_a_zero_time_failure() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new().timeline(secs(1), 1_000))
        .build()
        .unwrap();
    let f = Function::new("fails", |_: &u32, _ctx| {
        Err(event_invoke::FunctionError::new("E", "always"))
    });
    rt.register(f).unwrap();
    rt.invoke_async("fails", 0).unwrap();
    rt.run_until_idle();
    let points = rt.timeline().unwrap().points().to_vec();
    // Attempts at 0, 60 and 180 s, each taking no time; between them one retry waits.
    assert_eq!(points.len(), 181);
    assert_eq!(points[0].concurrency, 1);
    for p in &points[1..60] {
        assert_eq!((p.concurrency, p.queued), (0, 1), "{p:?}");
    }
}

#[test]
fn the_timeline_shows_arrivals_held_by_a_paused_function() {
    for latency in [ms(10), Duration::ZERO] {
        let rt = model(latency);
        rt.register(Function::new("held", |_: &u32, _ctx| Ok(())))
            .unwrap();
        rt.pause("held").unwrap();
        for i in 0..100 {
            rt.invoke_async("held", i).unwrap();
        }
        rt.run_for(secs(2));
        let peak = rt
            .timeline()
            .unwrap()
            .points()
            .iter()
            .map(|p| p.queued)
            .max();
        assert_eq!(peak, Some(100), "latency {latency:?}");
    }
}

#[test]
fn the_timeline_drops_a_throttled_event_that_aged_out() {
    let rt = model(Duration::ZERO);
    let f = Function::new("slow", |_: &u32, _ctx| Ok(()))
        .reserved_concurrency(1)
        .timeout(secs(300))
        .retry_policy(
            RetryPolicy::builder()
                .throttle_jitter(0.0)
                .maximum_event_age(secs(60))
                .build()
                .unwrap(),
        )
        .cost(CostModel::fixed(secs(120)));
    rt.register(f).unwrap();
    rt.invoke_async("slow", 0).unwrap();
    rt.invoke_async("slow", 1).unwrap();
    rt.run_until_idle();
    // B throttles at 0, 1, 3, 7, 15 and 31 s; its next try (63 s) would be past 60 s, so it
    // ends at 31 s. From then on only A runs and nothing waits.
    let timeline = rt.timeline().unwrap();
    let after: Vec<_> = timeline
        .points()
        .iter()
        .filter(|p| p.at > secs(32) && p.at < secs(119))
        .collect();
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|p| (p.concurrency, p.queued) == (1, 0)),
        "{after:?}"
    );
}

#[test]
fn a_step_larger_than_the_burst_does_not_raise_the_first_burst() {
    let rt: Runtime<u32> = Runtime::builder()
        .model(each_backs_off())
        .scaling_rate(ScalingRate::new(1, 100, secs(10), ScalingScope::Function).unwrap())
        .build()
        .unwrap();
    let f = Function::new("f", |_: &u32, _ctx| Ok(()))
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(secs(1)));
    rt.register(f).unwrap();
    for i in 0..50 {
        rt.invoke_async("f", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    // 0 s: one environment (the burst), one event. The others throttle at 0, 1, 3 and 7 s;
    // meanwhile the one environment runs one event at 1, 3 and 7 s. At 15 s a step of 100 has
    // come back: the last 46 start at once (1 warm, 45 new) and end at 16 s.
    assert_eq!(report.peak_concurrency, 46);
    assert_eq!(report.cold_starts, 46);
    assert_eq!(report.makespan, secs(16));
}

#[test]
fn a_panicking_handler_in_model_mode_is_retried_and_gives_its_slot_back() {
    let rt = model(Duration::ZERO);
    let f = Function::new("panics", |n: &u32, ctx| {
        if ctx.approximate_invoke_count() == 1 {
            panic!("first attempt of {n}");
        }
        Ok(())
    })
    .cost(CostModel::fixed(secs(1)));
    rt.register(f).unwrap();
    rt.invoke_async("panics", 7).unwrap();
    rt.run_until_idle();
    // 1 s, a minute's wait, 1 s.
    let report = rt.model_report().unwrap();
    assert_eq!(report.makespan, secs(62));
    assert_eq!((report.successes, report.retries), (1, 1));
    assert_eq!(rt.metrics().total.concurrent_executions, 0);
}

#[test]
fn a_function_never_peaks_above_the_account_limit_that_throttled_it() {
    // 1,001 events at once, 100 ms each, no reservation, the account's 1,000: the 1,001st is
    // throttled, so neither the account nor the function ever runs more than 1,000 at once.
    let rt = model(Duration::ZERO);
    let f = Function::new("leaf", |_: &u32, _ctx| Ok(()))
        .retry_policy(exact_backoff())
        .cost(CostModel::fixed(ms(100)));
    rt.register(f).unwrap();
    for i in 0..1001 {
        rt.invoke_async("leaf", i).unwrap();
    }
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    assert_eq!(report.throttles, 1);
    assert_eq!(report.peak_concurrency, 1000);
    assert_eq!(report.functions[0].peak_concurrency, 1000, "{report}");
    assert_eq!(
        rt.function_metrics("leaf")
            .unwrap()
            .peak_concurrent_executions,
        1000
    );
    let table = report.to_string();
    let row = table.lines().find(|l| l.starts_with("leaf")).unwrap();
    assert_eq!(row.split_whitespace().nth(2), Some("1000"), "{table}");
}
