//! Golden runs: the exact output of fixed seeds, pinned. "Same seed, same run" holds across
//! releases of the crate's dependencies only if every seeded draw comes from a generator whose
//! output is fixed by its definition (ChaCha8, see `RetryPolicy`, `FaultInjection` and
//! `ModelOptions`); `rand`'s `StdRng` is free to change between `rand` releases. A change in
//! the generator, its seeding, or the order in which the engine draws fails one of these tests.
//!
//! The pinned values were produced by running each scenario once on the ChaCha8 generator and
//! copying its output here; the raw ChaCha8 stream behind them is checked against an
//! independent implementation in `src/parts/rng.rs`. Change them only on purpose, with a
//! CHANGELOG line: every user's seeded runs change with them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    FaultInjection, Function, FunctionError, ManualClock, OutcomeAudit, RequestId, RetryPolicy,
    Runtime, TraceKind, ZeroConcurrency,
};
use parking_lot::Mutex;

/// One line per handler run and per injected fault, in the order they happened, for a fault
/// injection seed: `12:1` is event 12's first attempt, `12:1d` a duplicate delivery of it,
/// `err 12:1` an injected function error, `sys 12 +1234ms` an injected system error and its
/// backoff (with the drawn extra delay), `dup 12` an injected duplicate.
fn fault_run(seed: u64) -> String {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let payloads: Arc<Mutex<HashMap<RequestId, u32>>> = Arc::default();
    let (trace_log, trace_payloads) = (Arc::clone(&log), Arc::clone(&payloads));
    let audit = OutcomeAudit::new();
    let audit_tracer = audit.tracer();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .seed(seed)
        .fault_injection(
            FaultInjection::new(seed)
                .duplicates(0.3)
                .function_errors(0.25)
                .system_errors(0.15)
                .reorder(0.5)
                .retry_delay(Duration::from_secs(3)),
        )
        .on_trace(move |e| {
            audit_tracer(e);
            if let TraceKind::Accepted { .. } = e.kind {
                // The invoke below holds the payload map while it is accepted.
                return;
            }
            let Some(p) = trace_payloads.lock().get(&e.request_id).copied() else {
                return;
            };
            let line = match e.kind {
                TraceKind::Started {
                    attempt, duplicate, ..
                } => format!("{p}:{attempt}{}", if duplicate { "d" } else { "" }),
                TraceKind::Failed { attempt, error, .. }
                    if error.error_type().starts_with("Injected") =>
                {
                    format!("err {p}:{attempt}")
                }
                TraceKind::Throttled {
                    due,
                    injected: true,
                } => format!(
                    "sys {p} +{}ms",
                    due.saturating_duration_since(e.at).as_millis()
                ),
                TraceKind::DuplicateInjected => format!("dup {p}"),
                _ => return,
            };
            trace_log.lock().push(line);
        })
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if n % 5 == 0 {
                Err(FunctionError::new("Five", "a multiple of five"))
            } else {
                Ok(())
            }
        })
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(1)
                .retry_delays(vec![Duration::from_secs(10)])
                .build()
                .unwrap(),
        ),
    )
    .unwrap();
    for n in 1..=12 {
        // Invoke with the payload lock held: the trace of its acceptance waits for the entry.
        let mut ids = payloads.lock();
        let id = rt.invoke_async("f", n).unwrap();
        ids.insert(id, n);
    }
    rt.run_until_idle();
    audit.assert_each_ended_once();
    let lines = log.lock().join(", ");
    lines
}

#[test]
fn a_fault_injection_seed_replays_its_pinned_faults() {
    let run = fault_run(11);
    assert_eq!(run, fault_run(11), "one seed, one run");
    assert_eq!(run, GOLDEN_FAULTS_SEED_11, "the faults of seed 11 moved");
    assert_ne!(fault_run(12), run, "another seed, other faults");
}

const GOLDEN_FAULTS_SEED_11: &str = "1:1, err 1:1, 8:1, dup 8, 7:1, sys 4 +2590ms, \
    sys 2 +3700ms, 3:1, err 3:1, sys 12 +1548ms, 5:1, 6:1, 9:1, 8:1d, 10:1, sys 11 +3751ms, 12:1, \
    dup 12, 12:1d, 4:1, 2:1, sys 11 +2516ms, 11:1, 1:2, dup 1, 1:2d, err 1:2, 10:2, 5:2, 3:2, \
    err 3:2";

/// The throttle backoffs of two functions with the default 20 % jitter, in nanoseconds, while
/// reserved concurrency 0 holds their events throttled (Lambda's 2018 behaviour): each
/// function draws from its own generator, seeded from the runtime's seed and its index.
fn jitter_schedule(seed: u64) -> Vec<(String, Vec<u64>)> {
    let delays: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let seen = Arc::clone(&delays);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .seed(seed)
        .zero_concurrency(ZeroConcurrency::Throttle)
        .on_trace(move |e| {
            if let TraceKind::Throttled { due, .. } = e.kind {
                let d = due.saturating_duration_since(e.at);
                seen.lock()
                    .push((e.function.to_string(), d.as_nanos() as u64));
            }
        })
        .build()
        .unwrap();
    for name in ["first", "second"] {
        rt.register(
            Function::new(name, |_: &u32, _ctx| Ok(()))
                .reserved_concurrency(0)
                .maximum_event_age(Duration::from_secs(60)),
        )
        .unwrap();
        rt.invoke_async(name, 0).unwrap();
    }
    rt.run_until_idle();
    let delays = delays.lock();
    ["first", "second"]
        .iter()
        .map(|name| {
            let own = delays.iter().filter(|(f, _)| f == name).map(|(_, d)| *d);
            (name.to_string(), own.collect())
        })
        .collect()
}

#[test]
fn a_seed_replays_its_pinned_throttle_jitter() {
    let schedule = jitter_schedule(2024);
    let pinned: Vec<(String, Vec<u64>)> = GOLDEN_JITTER_SEED_2024
        .iter()
        .map(|(name, delays)| (name.to_string(), delays.to_vec()))
        .collect();
    assert_eq!(schedule, pinned, "the throttle jitter of seed 2024 moved");
    // Each delay is the nominal backoff (1 s, 2 s, 4 s, ...) shortened by at most 20 %.
    for (_, delays) in &schedule {
        for (k, d) in delays.iter().enumerate() {
            let nominal = 1_000_000_000u64 << k;
            assert!(*d <= nominal && *d >= nominal / 5 * 4, "{d} vs {nominal}");
        }
    }
    assert_ne!(
        jitter_schedule(2025),
        schedule,
        "another seed, other jitter"
    );
}

const GOLDEN_JITTER_SEED_2024: [(&str, &[u64]); 2] = [
    (
        "first",
        &[
            909_927_561,
            1_777_234_290,
            3_411_806_238,
            7_518_406_532,
            13_477_320_980,
            28_572_042_655,
            58_302_802_851,
        ],
    ),
    (
        "second",
        &[
            850_943_861,
            1_847_902_904,
            3_261_568_428,
            7_391_356_602,
            15_689_443_234,
            30_720_227_424,
            53_320_195_910,
        ],
    ),
];

#[cfg(feature = "model")]
mod model {
    use std::time::Duration;

    use event_invoke::{CostModel, Function, ModelOptions, RetryPolicy, Runtime, ThrottledEvents};

    /// A small seeded model whose report depends on every kind of cost draw: log-normal and
    /// uniform durations, sampled durations, and failure rates (retried after 1 s).
    fn report(seed: u64) -> String {
        let ms = Duration::from_millis;
        let rt: Runtime<u32> = Runtime::builder()
            .model(
                ModelOptions::new()
                    .invoke_latency(ms(5))
                    .throttled_events(ThrottledEvents::EachEventBacksOff),
            )
            .seed(seed)
            .account_concurrency(8)
            .unreserved_floor(0)
            .build()
            .unwrap();
        let retry = RetryPolicy::builder()
            .retry_delays(vec![Duration::from_secs(1)])
            .build()
            .unwrap();
        rt.register(
            Function::new("leaf", |_: &u32, _ctx| Ok(()))
                .cost(
                    CostModel::log_normal(ms(80), 0.7)
                        .cold_start(ms(250))
                        .failure_rate(0.2),
                )
                .retry_policy(retry.clone()),
        )
        .unwrap();
        rt.register(
            Function::new("fan", |n: &u32, ctx| {
                for i in 0..n % 7 {
                    ctx.invoke_async("leaf", i)?;
                }
                Ok(())
            })
            .cost(CostModel::uniform(ms(10), ms(400)).failure_rate(0.1))
            .retry_policy(retry.clone()),
        )
        .unwrap();
        rt.register(
            Function::new("sampled", |_: &u32, _ctx| Ok(()))
                .cost(CostModel::samples(vec![ms(30), ms(60), ms(900)]).failure_rate(0.3))
                .reserved_concurrency(2)
                .retry_policy(retry),
        )
        .unwrap();
        for i in 0..30 {
            rt.invoke_async(["fan", "leaf", "sampled"][i % 3], i as u32)
                .unwrap();
        }
        rt.run_until_idle();
        rt.model_report().unwrap().to_string()
    }

    #[test]
    fn a_seeded_models_report_is_pinned_byte_for_byte() {
        let got = report(7);
        assert_eq!(got, report(7), "one seed, one report");
        assert_eq!(got, GOLDEN_REPORT_SEED_7, "the report of seed 7 moved");
        assert_ne!(report(8), got, "another seed, another report");
    }

    // `leaf` peaks at 5, its cold starts: an attempt refused a new environment by the scaling
    // rate took no slot that counts (before that fix it read 6). Pinned with each throttled
    // event backing off on its own (`ThrottledEvents::EachEventBacksOff`), the behaviour it was
    // first pinned under; the lines from "first-attempt age" to "idle reserved" were added with
    // them and checked against the figures above: the throttle causes add up to 70 (`sampled`,
    // reserved 2, has the 12 reserved-pool ones; `leaf` and `fan` the 58 of the account of 8),
    // the first attempts' and retried ages' maxima are the event age's and below it, and every
    // event ended (no outstanding) at the makespan.
    const GOLDEN_REPORT_SEED_7: &str = "\
makespan          6.720 s
executions        92
peak concurrency  8
cold starts       10
throttles         70
retries           20
successes         70
dropped           2 RetriesExhausted=2
event age         p50 0.962 s  p90 3.135 s  p99 6.650 s  max 6.650 s
first-attempt age p50 0.875 s  p90 2.866 s  p99 6.650 s  max 6.650 s
retried age       p50 2.026 s  p90 3.806 s  p99 4.006 s  max 4.006 s
first attempts    all started by 6.695 s
all ended         by 6.720 s
throttled by      reserved pool 12  account 58  scaling rate 0
idle reserved     7.612 slot-s while events waited
function  executions    peak    cold  throttles  retries  successes  dropped
leaf              67       5       5         50       15         50        2
fan               14       3       3          8        4         10        0
sampled           11       2       2         12        1         10        0
";
}
