//! Capacity questions in model mode: arrivals, what a full pool does to the events behind it,
//! and the report's account of waiting. Every expected figure is worked out by hand in the
//! comment above it; the last test checks the report's identities on random runs.
#![cfg(feature = "model")]

use std::time::Duration;

use event_invoke::{
    Arrivals, ArrivalsError, Condition, CostModel, Function, ModelOptions, ModelReport,
    RetryPolicy, Runtime, RuntimeBuilder, ScalingRate, ScalingScope, ThrottleCauses,
    ThrottledEvents, TraceKind,
};
use proptest::prelude::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// No throttle jitter, so that every backoff can be worked out by hand.
fn exact_backoff() -> RetryPolicy {
    RetryPolicy::builder().throttle_jitter(0.0).build().unwrap()
}

fn one_second_jobs(reserved: Option<u32>) -> Function<u64, ()> {
    let mut f = Function::new("job", |_: &u64, _ctx| Ok(()))
        .cost(CostModel::fixed(secs(1)))
        .retry_policy(exact_backoff());
    if let Some(r) = reserved {
        f = f.reserved_concurrency(r);
    }
    f
}

/// The report of `jobs` one-second jobs (reserved `reserved`) all invoked at 0 s on the
/// runtime `builder` makes.
fn report_of(builder: RuntimeBuilder<u64, ()>, reserved: Option<u32>, jobs: u64) -> ModelReport {
    let rt: Runtime<u64> = builder.build().unwrap();
    rt.register(one_second_jobs(reserved)).unwrap();
    rt.invoke_arrivals("job", &Arrivals::bursts(jobs, Duration::ZERO, 1), |i| i)
        .unwrap();
    rt.run_until_idle();
    rt.model_report().unwrap()
}

fn causes(reserved_pool: u64, account: u64, scaling_rate: u64) -> ThrottleCauses {
    let mut c = ThrottleCauses::default();
    c.reserved_pool = reserved_pool;
    c.account = account;
    c.scaling_rate = scaling_rate;
    c
}

#[test]
fn ten_one_second_jobs_on_reserved_2_take_6_s_with_one_idle_slot_second() {
    let rt: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new())
        .build()
        .unwrap();
    rt.register(one_second_jobs(Some(2))).unwrap();
    let arrivals = Arrivals::bursts(10, Duration::ZERO, 1);
    assert_eq!(rt.invoke_arrivals("job", &arrivals, |i| i).unwrap(), 10);
    rt.run_until_idle();
    let r = rt.model_report().unwrap();
    // Events e1..e10 are accepted at 0 s, in order. The poller reads in order; a throttled
    // event comes back 1 s later (then 2 s) at the back of the ready line.
    // 0 s: e1, e2 run to 1 s; e3 is throttled (back at 1 s) and the poller backs off: e4..e10
    //      wait, ready, unthrottled.
    // 1 s: e1, e2 end and hand their slots over: e4, e5 run; e6 throttled (back at 2 s).
    //      Ready line: e7 e8 e9 e10 e3.
    // 2 s: e7, e8 run; e9 throttled (back at 3 s). Ready: e10 e3 e6.
    // 3 s: e10, e3 run; e6 throttled a second time (2 s: back at 5 s). Ready: e9.
    // 4 s: e9 runs; the other slot is idle while e6 waits out its backoff (4 to 5 s).
    // 5 s: e6 runs, to 6 s.
    assert_eq!(r.makespan, secs(6));
    assert_eq!(r.all_ended, Some(secs(6)));
    assert_eq!((r.executions, r.successes, r.outstanding), (10, 10, 0));
    assert_eq!(r.peak_concurrency, 2);
    // Two environments made, one per slot.
    assert_eq!(r.cold_starts, 2);
    // e3, e6, e9, e6 again: all refused by the function's reserved concurrency.
    assert_eq!(r.throttles, 4);
    assert_eq!(r.throttle_causes, causes(4, 0, 0));
    assert_eq!(r.functions[0].throttle_causes, causes(4, 0, 0));
    // First attempts at 0 0 1 1 2 2 3 3 4 5 s (e1 e2 e4 e5 e7 e8 e10 e3 e9 e6), all accepted
    // at 0. Nearest rank of 10: p50 the 5th (2 s), p90 the 9th (4 s), p99 the 10th (5 s).
    let a = r.first_attempt_age;
    assert_eq!(a.count, 10);
    assert!(a.exact);
    assert_eq!(
        (a.p50, a.p90, a.p99, a.max),
        (secs(2), secs(4), secs(5), secs(5))
    );
    // No retries: every attempt is a first one.
    assert_eq!(r.retried_attempt_age.count, 0);
    assert_eq!(r.event_age, r.first_attempt_age);
    // The last first attempt (e6) started at 5 s.
    assert_eq!(r.first_attempts_started, secs(5));
    // One reserved slot idle from 4 to 5 s while e6 waited: 1 slot-second.
    assert_eq!(r.idle_reserved, secs(1));
    assert_eq!(r.functions[0].idle_reserved, secs(1));
    let text = r.to_string();
    assert!(text.contains("first-attempt age p50 2.000 s  p90 4.000 s  p99 5.000 s  max 5.000 s\n"));
    assert!(text.contains("first attempts    all started by 5.000 s\n"));
    assert!(text.contains("all ended         by 6.000 s\n"));
    assert!(text.contains("throttled by      reserved pool 4  account 0  scaling rate 0\n"));
    assert!(text.contains("idle reserved     1.000 slot-s while events waited\n"));
}

#[test]
fn each_event_backing_off_leaves_reserved_slots_idle_that_a_backed_off_poller_uses() {
    // The same 10 jobs when every event that finds no slot is throttled and backs off on its
    // own: at 0 s e3..e10 all throttle and come back together at 1 s, when only 2 can run.
    // 1 s: e3, e4 run; e5..e10 throttle again (back at 1 + 2 = 3 s). 2 s: both slots idle.
    // 3 s: e5, e6 run; e7..e10 back at 3 + 4 = 7 s. 4..7 s: idle. 7 s: e7, e8 run; e9, e10
    // back at 7 + 8 = 15 s. 15 s: e9, e10 run to 16 s.
    let builder = Runtime::builder()
        .model(ModelOptions::new().throttled_events(ThrottledEvents::EachEventBacksOff));
    let r = report_of(builder, Some(2), 10);
    assert_eq!(r.makespan, secs(16));
    // Throttles: 8 at 0 s, 6 at 1 s, 4 at 3 s, 2 at 7 s.
    assert_eq!(r.throttle_causes, causes(20, 0, 0));
    // First attempts at 0 0 1 1 3 3 7 7 15 15 s: p50 the 5th (3 s), p90 the 9th (15 s).
    let a = r.first_attempt_age;
    assert_eq!((a.p50, a.p90, a.max), (secs(3), secs(15), secs(15)));
    assert_eq!(r.first_attempts_started, secs(15));
    // Idle slots while events waited: 2 from 2 to 3 s, 2 from 4 to 7 s, 2 from 8 to 15 s:
    // 2 + 6 + 14 = 22 slot-seconds.
    assert_eq!(r.idle_reserved, secs(22));
}

#[test]
fn a_full_account_throttles_once_and_hands_the_slot_over_when_it_frees() {
    // Account 2 (none kept unreserved), 3 one-second jobs at 0 s: e1, e2 run; e3 throttled by
    // the account (back at 1 s). 1 s: e3 runs to 2 s.
    let builder = Runtime::builder()
        .model(ModelOptions::new())
        .account_concurrency(2)
        .unreserved_floor(0);
    let r = report_of(builder, None, 3);
    assert_eq!(r.makespan, secs(2));
    assert_eq!(r.throttle_causes, causes(0, 1, 0));
    // Ages 0, 0, 1 s: p50 the 2nd (0), p90 and p99 the 3rd (1 s).
    let a = r.first_attempt_age;
    assert_eq!((a.p50, a.p90, a.p99), (Duration::ZERO, secs(1), secs(1)));
    // No reservation, nothing reserved to sit idle.
    assert_eq!(r.idle_reserved, Duration::ZERO);
}

#[test]
fn a_scaling_rate_refusal_counts_as_a_scaling_throttle() {
    // One environment at first, one more every 10 s. 0 s: e1 runs in the one environment;
    // e2 would need a second: throttled by the scaling rate (back at 1 s). 1 s: e1 ended,
    // its environment is warm, and e2 runs there to 2 s.
    let rate = ScalingRate::new(1, 1, secs(10), ScalingScope::Function).unwrap();
    let builder = Runtime::builder()
        .model(ModelOptions::new())
        .scaling_rate(rate);
    let r = report_of(builder, None, 2);
    assert_eq!(r.makespan, secs(2));
    assert_eq!(r.throttle_causes, causes(0, 0, 1));
    assert_eq!(r.cold_starts, 1);
}

#[test]
fn a_full_reserved_pool_is_the_cause_when_the_scaling_allowance_is_spent_too() {
    // Reserved 1; one environment at first, one more every 10 s. 0 s: e1 runs in the one
    // environment, which spends the allowance (0 left until 10 s). e2 would make 2 running:
    // the reserved pool (1 in use of 1) is full and the scaling rate would refuse a second
    // environment too. More environments would not give e2 a slot: a reserved-pool throttle
    // (back at 1 s). 1 s: e1 ended, e2 runs in its warm environment to 2 s.
    let rate = ScalingRate::new(1, 1, secs(10), ScalingScope::Function).unwrap();
    let builder = Runtime::builder()
        .model(ModelOptions::new())
        .scaling_rate(rate);
    let r = report_of(builder, Some(1), 2);
    assert_eq!(r.makespan, secs(2));
    assert_eq!(r.throttle_causes, causes(1, 0, 0));
    assert_eq!(r.functions[0].throttle_causes, causes(1, 0, 0));
    assert_eq!(r.cold_starts, 1);
}

#[test]
fn a_full_account_is_the_cause_when_the_scaling_allowance_is_spent_too() {
    // Account 2 (none kept unreserved), no reservation; two environments at first, one more
    // every 10 s. 0 s: e1, e2 run in the two environments, which spends the allowance. e3
    // would make 3 running: the account (2 in use of 2) is full and the scaling rate would
    // refuse a third environment too: an account throttle (back at 1 s). 1 s: e1, e2 ended;
    // e3 runs warm to 2 s.
    let rate = ScalingRate::new(2, 1, secs(10), ScalingScope::Function).unwrap();
    let builder = Runtime::builder()
        .model(ModelOptions::new())
        .account_concurrency(2)
        .unreserved_floor(0)
        .scaling_rate(rate);
    let r = report_of(builder, None, 3);
    assert_eq!(r.makespan, secs(2));
    assert_eq!(r.throttle_causes, causes(0, 1, 0));
    assert_eq!(r.cold_starts, 2);
}

#[test]
fn retried_attempts_are_aged_apart_and_their_wait_is_not_idle_capacity() {
    // One event that always fails, reserved 1, Lambda's retries (1 min, then 2 min): attempts
    // at 0 s (age 0), 61 s (age 61 s) and 182 s (age 182 s), ending at 183 s.
    let rt: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new())
        .build()
        .unwrap();
    let f = Function::new("fails", |_: &u64, _ctx| Ok(()))
        .cost(CostModel::fixed(secs(1)).failure_rate(1.0))
        .reserved_concurrency(1);
    rt.register(f).unwrap();
    rt.invoke_async("fails", 1).unwrap();
    rt.run_until_idle();
    let r = rt.model_report().unwrap();
    assert_eq!(r.dropped, vec![(Condition::RetriesExhausted, 1)]);
    let first = r.first_attempt_age;
    assert_eq!((first.count, first.max), (1, Duration::ZERO));
    // Two retried attempts: p50 the 1st (61 s), p90 the 2nd (182 s).
    let retried = r.retried_attempt_age;
    assert_eq!(retried.count, 2);
    assert_eq!((retried.p50, retried.p90), (secs(61), secs(182)));
    assert_eq!(r.event_age.max, secs(182));
    assert_eq!(r.first_attempts_started, Duration::ZERO);
    assert_eq!(r.all_ended, Some(secs(183)));
    // The slot is idle from 1 to 61 s and 62 to 182 s, but the event waits for its retry,
    // not for capacity: no idle reserved time.
    assert_eq!(r.idle_reserved, Duration::ZERO);
}

#[test]
fn a_reserved_pool_of_zero_still_ages_every_event_out_when_pollers_back_off() {
    // Reserved 0 with Lambda's 2018 behaviour (events stay, throttled), maximum age 10 s,
    // exact backoff. The poller reads one event per poll and backs off until it comes back:
    // 0 s e1 (back at 1), 1 s e2 (back at 2), 2 s e3 (back at 3), 3 s e1 again (2 s: back at
    // 5), 5 s e2 (at 7), 7 s e3 (at 9), 9 s e1 a third time: 4 s would bring it back at 13 s,
    // past its 10 s, so it ends; the poller reads on: e2 and e3 end the same way at 9 s.
    let rt: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new())
        .zero_concurrency(event_invoke::ZeroConcurrency::Throttle)
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .throttle_jitter(0.0)
        .maximum_event_age(secs(10))
        .build()
        .unwrap();
    let f = Function::new("held", |_: &u64, _ctx| Ok(()))
        .retry_policy(policy)
        .reserved_concurrency(0);
    rt.register(f).unwrap();
    rt.invoke_arrivals("held", &Arrivals::bursts(3, Duration::ZERO, 1), |i| i)
        .unwrap();
    rt.run_until_idle();
    let r = rt.model_report().unwrap();
    assert_eq!(r.outstanding, 0);
    assert_eq!(r.dropped, vec![(Condition::EventAgeExceeded, 3)]);
    assert_eq!(r.makespan, secs(9));
    assert_eq!(r.throttle_causes, causes(9, 0, 0));
    assert_eq!((r.executions, r.first_attempt_age.count), (0, 0));
    // No first attempt ever started.
    assert_eq!(r.first_attempts_started, Duration::ZERO);
    // Reserved 0: no slot to sit idle.
    assert_eq!(r.idle_reserved, Duration::ZERO);
}

#[test]
fn arrivals_are_accepted_at_their_offsets() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    let rt2: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new())
        .on_trace(move |e| {
            if matches!(e.kind, TraceKind::Accepted { .. }) {
                log.lock().unwrap().push(e.at.as_duration());
            }
        })
        .build()
        .unwrap();
    rt2.register(Function::new("f", |_: &u64, _ctx| Ok(())))
        .unwrap();
    let arrivals = Arrivals::replay([secs(3), Duration::from_millis(500), secs(1)]);
    assert_eq!(rt2.invoke_arrivals("f", &arrivals, |i| i).unwrap(), 3);
    rt2.run_until_idle();
    // Replayed in time order, each accepted at its offset from the start (0 s).
    assert_eq!(
        *seen.lock().unwrap(),
        [Duration::from_millis(500), secs(1), secs(3)]
    );
}

#[test]
fn arrivals_closer_than_the_invoke_latency_are_accepted_late_as_by_one_client() {
    // Arrivals at 0, 1 and 2 ms, each call taking 10 ms: one client calls at 0 ms (accepted
    // at 10 ms), at 10 ms (accepted at 20 ms) and at 20 ms (accepted at 30 ms). One-second
    // jobs, room for all: the last ends at 1.030 s, not 1.012 s.
    let rt: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(Duration::from_millis(10)))
        .build()
        .unwrap();
    rt.register(one_second_jobs(None)).unwrap();
    let arrivals = Arrivals::replay([0, 1, 2].map(Duration::from_millis));
    rt.invoke_arrivals("job", &arrivals, |i| i).unwrap();
    rt.run_until_idle();
    let r = rt.model_report().unwrap();
    assert_eq!(r.makespan, Duration::from_millis(1_030));
    // Every event ran at once when accepted: no age.
    assert_eq!(r.first_attempt_age.max, Duration::ZERO);
}

#[test]
fn an_arrival_refused_stops_the_feed_with_its_error() {
    let rt: Runtime<u64> = Runtime::builder()
        .model(ModelOptions::new())
        .build()
        .unwrap();
    let err = rt
        .invoke_arrivals("nobody", &Arrivals::constant(3, secs(1)), |i| i)
        .unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
}

#[test]
fn the_kinds_of_arrivals_give_their_documented_offsets() {
    let ms = Duration::from_millis;
    let constant: Vec<_> = Arrivals::constant(4, secs(1)).offsets().collect();
    assert_eq!(constant, [ms(0), ms(250), ms(500), ms(750)]);
    let bursts: Vec<_> = Arrivals::bursts(2, ms(100), 3).offsets().collect();
    assert_eq!(bursts, [ms(0), ms(0), ms(100), ms(100), ms(200), ms(200)]);
    assert_eq!(Arrivals::bursts(2, ms(100), 3).len(), 6);
    assert!(Arrivals::replay([]).is_empty());
    // Poisson: seeded, non-decreasing, and its mean gap near 1 / rate (10,000 gaps at
    // 1,000 a second: 10 s give or take a few percent).
    let p = Arrivals::poisson(10_000, 1_000.0).unwrap().seed(42);
    let offsets: Vec<_> = p.offsets().collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    let last = offsets[offsets.len() - 1];
    assert!(last > ms(9_500) && last < ms(10_500), "{last:?}");
    assert_eq!(offsets, p.offsets().collect::<Vec<_>>());
    assert_ne!(
        offsets,
        Arrivals::poisson(10_000, 1_000.0)
            .unwrap()
            .seed(43)
            .offsets()
            .collect::<Vec<_>>()
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            Arrivals::poisson(1, bad),
            Err(ArrivalsError::Rate { .. })
        ));
    }
}

#[test]
fn a_csv_of_offsets_is_read_and_a_bad_line_is_named() {
    let a = Arrivals::from_csv("# recorded\noffset\n0.25\n\n0.125,extra\n").unwrap();
    let got: Vec<_> = a.offsets().collect();
    assert_eq!(
        got,
        [Duration::from_millis(125), Duration::from_millis(250)]
    );
    for (text, line) in [("0.1\n-2\n", 2), ("1\n2\nthree\n", 3), ("0\nNaN\n", 2)] {
        match Arrivals::from_csv(text) {
            Err(ArrivalsError::Line { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let message = Arrivals::from_csv("x\ny\n").unwrap_err().to_string();
    assert!(
        message.contains("line 2") && message.contains("offset in seconds"),
        "{message}"
    );
}

/// A random small workload: 1 to 3 functions, some reserved, on a small account.
#[derive(Debug, Clone)]
struct Workload {
    account: u32,
    functions: Vec<(Option<u32>, u64, u64, f64)>, // reserved, min ms, max ms, failure rate
    events: Vec<(usize, u64, u64)>,               // function, burst size, every ms
    poller: bool,
    scaling: bool,
    seed: u64,
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        4u32..40,
        prop::collection::vec(
            (
                prop::option::of(1u32..4),
                0u64..300,
                0u64..900,
                prop::sample::select(vec![0.0, 0.1, 0.5]),
            ),
            1..4,
        ),
        prop::collection::vec((0usize..3, 1u64..30, 0u64..700), 1..4),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(account, functions, events, poller, scaling, seed)| Workload {
                account,
                functions,
                events,
                poller,
                scaling,
                seed,
            },
        )
}

fn play(w: &Workload) -> (ModelReport, u64, Vec<Option<u32>>) {
    let mode = if w.poller {
        ThrottledEvents::PollerBacksOff
    } else {
        ThrottledEvents::EachEventBacksOff
    };
    let mut b = Runtime::builder()
        .model(ModelOptions::new().throttled_events(mode))
        .account_concurrency(w.account)
        .unreserved_floor(1)
        .keep_dead_letters(false)
        .seed(w.seed);
    if w.scaling {
        b = b.scaling_rate(ScalingRate::new(2, 1, secs(1), ScalingScope::Function).unwrap());
    }
    let rt: Runtime<u64> = b.build().unwrap();
    let retry = RetryPolicy::builder()
        .retry_delays(vec![secs(1), secs(2)])
        .build()
        .unwrap();
    let mut reserved = Vec::new();
    for (i, (r, lo, hi, fail)) in w.functions.iter().enumerate() {
        let (lo, hi) = (*lo.min(hi), *lo.max(hi));
        let make = || {
            Function::new(format!("f{i}"), |_: &u64, _ctx| Ok(()))
                .cost(
                    CostModel::uniform(Duration::from_millis(lo), Duration::from_millis(hi))
                        .failure_rate(*fail),
                )
                .retry_policy(retry.clone())
        };
        // Reservations beyond what the account can carve are left off.
        let r = r.filter(|r| rt.register(make().reserved_concurrency(*r)).is_ok());
        if r.is_none() {
            rt.register(make()).unwrap();
        }
        reserved.push(r);
    }
    let mut accepted = 0;
    for (i, size, every) in &w.events {
        let name = format!("f{}", i % w.functions.len());
        let a = Arrivals::bursts(*size, Duration::from_millis(*every), 2);
        accepted += rt.invoke_arrivals(&name, &a, |n| n).unwrap();
    }
    rt.run_until_idle();
    (rt.model_report().unwrap(), accepted, reserved)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_report_identity_holds_on_random_runs(w in workload()) {
        let (r, accepted, reserved) = play(&w);
        // Every event ended, at the makespan.
        prop_assert_eq!(r.outstanding, 0);
        prop_assert_eq!(r.all_ended, Some(r.makespan));
        let dropped: u64 = r.dropped.iter().map(|(_, n)| n).sum();
        prop_assert_eq!(r.successes + dropped, accepted);
        // Throttles add up by cause, in total and per function.
        prop_assert_eq!(r.throttle_causes.total(), r.throttles);
        let mut by_fn = ThrottleCauses::default();
        let mut idle = Duration::ZERO;
        for (f, reserved) in r.functions.iter().zip(&reserved) {
            prop_assert_eq!(f.throttle_causes.total(), f.throttles);
            by_fn.reserved_pool += f.throttle_causes.reserved_pool;
            by_fn.account += f.throttle_causes.account;
            by_fn.scaling_rate += f.throttle_causes.scaling_rate;
            idle += f.idle_reserved;
            match reserved {
                None => {
                    prop_assert_eq!(f.idle_reserved, Duration::ZERO);
                    prop_assert_eq!(f.throttle_causes.reserved_pool, 0);
                }
                Some(n) => {
                    prop_assert!(f.peak_concurrency <= u64::from(*n));
                    prop_assert!(f.idle_reserved <= r.makespan * *n);
                }
            }
        }
        prop_assert_eq!(by_fn, r.throttle_causes);
        prop_assert_eq!(idle, r.idle_reserved);
        if !w.scaling {
            prop_assert_eq!(r.throttle_causes.scaling_rate, 0);
        }
        // Every attempt is a first one or a later one; ages split accordingly.
        let (first, later, all) = (r.first_attempt_age, r.retried_attempt_age, r.event_age);
        prop_assert_eq!(first.count + later.count, r.executions);
        prop_assert_eq!(all.count, r.executions);
        prop_assert!(first.count <= accepted);
        prop_assert_eq!(all.max, first.max.max(later.max));
        prop_assert!(first.p50 <= first.p90 && first.p90 <= first.p99 && first.p99 <= first.max);
        // Retries come only after a function error.
        prop_assert!(later.count <= r.retries);
        prop_assert!(r.first_attempts_started <= r.makespan);
        prop_assert!(first.max <= r.makespan);
        // By definition: the span starts when the first invoke call starts, and every event
        // here comes from an invoke call, so it is accepted then or later. An attempt started
        // at t (from the span's start) is at most t old, and t is at most the makespan (the
        // span ends at the last end); a first attempt's t is at most the last first start.
        prop_assert!(first.max <= r.first_attempts_started);
        prop_assert!(all.max <= r.makespan);
        // With no first attempt there is no last first start: zero.
        if first.count == 0 {
            prop_assert_eq!(r.first_attempts_started, Duration::ZERO);
        }
    }
}
