//! The engine's own reliability suite: many seeds of random functions, limits, retry policies,
//! failures, panics, duplicates, pauses, purges, deletions and limit changes on several worker
//! threads. After each run nothing is lost and nothing is doubled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    FaultInjection, Function, FunctionError, ManualClock, OutcomeAudit, RequestId, RetryPolicy,
    Runtime,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How many seeds: 500 by default (CI), more with `RELIABILITY_SEEDS`.
fn seeds() -> u64 {
    std::env::var("RELIABILITY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500)
}

fn hash(id: RequestId, attempt: u32, seed: u64) -> u64 {
    let mut x = id.as_u64() ^ (u64::from(attempt) << 50) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    x % 1000
}

/// Executions running at once, per function and in all, as the handlers see them.
#[derive(Default)]
struct Gauges {
    running: Mutex<HashMap<String, usize>>,
    peak: Mutex<HashMap<String, usize>>,
    all: AtomicUsize,
    all_peak: AtomicUsize,
}

impl Gauges {
    fn enter(&self, name: &str) {
        let mut running = self.running.lock();
        let n = running.entry(name.to_string()).or_default();
        *n += 1;
        let mut peak = self.peak.lock();
        let p = peak.entry(name.to_string()).or_default();
        *p = (*p).max(*n);
        let all = self.all.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_peak.fetch_max(all, Ordering::SeqCst);
    }

    fn leave(&self, name: &str) {
        *self.running.lock().entry(name.to_string()).or_default() -= 1;
        self.all.fetch_sub(1, Ordering::SeqCst);
    }
}

fn one_run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let account = rng.random_range(6..=16u32);
    let floor = rng.random_range(1..=3u32);
    let mut faults = FaultInjection::new(seed);
    if rng.random_bool(0.5) {
        faults = faults
            .duplicates(0.2)
            .function_errors(0.1)
            .system_errors(0.05)
            .reorder(0.3)
            .retry_delay(Duration::from_secs(3));
    }
    // Every record made, by request id: each must end exactly once.
    let records: Arc<Mutex<HashMap<RequestId, u32>>> = Arc::default();
    let seen = Arc::clone(&records);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .account_concurrency(account)
        .unreserved_floor(floor)
        .seed(seed)
        .fault_injection(faults)
        .on_trace(audit.tracer())
        .on_record(move |r| *seen.lock().entry(r.request_id).or_default() += 1)
        .keep_dead_letters(false)
        .build()
        .unwrap();
    let gauges = Arc::new(Gauges::default());
    let names: Vec<String> = (0..rng.random_range(2..=4))
        .map(|i| format!("f{i}"))
        .collect();
    // The most each limit was ever set to: peaks are checked against these.
    let mut max_reserved: HashMap<String, Option<u32>> = HashMap::new();
    let mut max_account = account;
    let register = |rt: &Runtime<u32>, rng: &mut StdRng, name: &str| -> Option<u32> {
        let policy = RetryPolicy::builder()
            .maximum_retry_attempts(rng.random_range(0..=2))
            .retry_delays(vec![Duration::from_secs(rng.random_range(1..=5))])
            .maximum_event_age(Duration::from_secs(rng.random_range(30..=600)))
            .build()
            .unwrap();
        let gauges = Arc::clone(&gauges);
        let all: Vec<String> = names.clone();
        let own = name.to_string();
        let mut f = Function::new(name, move |n: &u32, ctx| {
            gauges.enter(&own);
            let roll = hash(ctx.request_id(), ctx.approximate_invoke_count(), seed);
            std::thread::yield_now();
            gauges.leave(&own);
            // Some events fan out one level further.
            if roll < 100 && *n > 0 {
                let target = &all[(roll as usize) % all.len()];
                let _ = ctx.invoke_async(target, n - 1);
            }
            match roll {
                0..=149 => Err(FunctionError::new("Random", "unlucky")),
                150..=199 => panic!("random panic"),
                _ => Ok(()),
            }
        })
        .retry_policy(policy);
        let reserved = if rng.random_bool(0.5) {
            Some(rng.random_range(0..=3))
        } else {
            None
        };
        if let Some(r) = reserved {
            f = f.reserved_concurrency(r);
        }
        match rt.register(f) {
            Ok(_) => reserved,
            Err(_) => {
                // The reservation did not fit: register without one.
                let f = Function::new(name, |_: &u32, _ctx| Ok(()));
                rt.register(f).unwrap();
                None
            }
        }
    };
    for name in &names {
        let r = register(&rt, &mut rng, name);
        max_reserved.insert(name.clone(), r);
    }
    let workers = rt.spawn_workers(3).unwrap();
    let mut paused: Vec<String> = Vec::new();
    for round in 0..40 {
        let name = &names[rng.random_range(0..names.len())];
        let _ = rt.invoke_async(name, rng.random_range(0..3));
        match rng.random_range(0..40) {
            0 => {
                rt.pause(name).ok();
                paused.push(name.clone());
            }
            1 => {
                for p in paused.drain(..) {
                    rt.resume(&p).ok();
                }
            }
            2 => {
                rt.purge(name).ok();
            }
            3 if round > 10 && rt.delete(name).is_ok() => {
                paused.retain(|p| p != name);
                register(&rt, &mut rng, name);
                // The old function's last executions may still run beside the new one's,
                // and the gauge counts both under one name: no per-function bound applies.
                max_reserved.insert(name.clone(), None);
            }
            4 => {
                let n = rng.random_range(0..=3);
                if rt.set_reserved_concurrency(name, Some(n)).is_ok() {
                    let m = max_reserved.entry(name.clone()).or_insert(Some(n));
                    *m = m.map(|m| m.max(n));
                }
            }
            5 => {
                let n = rng.random_range(6..=16);
                if rt.set_account_concurrency(n).is_ok() {
                    max_account = max_account.max(n);
                }
            }
            6 => clock.advance(Duration::from_secs(rng.random_range(1..=10))),
            _ => {}
        }
    }
    // Stop the workers mid-run: with nothing moving, the books balance with events waiting.
    drop(workers);
    let m = rt.metrics().total;
    assert!(m.is_balanced(), "seed {seed}: mid-run {m:?}");
    let workers = rt.spawn_workers(3).unwrap();
    for p in paused.drain(..) {
        rt.resume(&p).ok();
    }
    // Let virtual time pass until every event has ended; bounded, so a bug fails, not hangs.
    let mut rounds = 0;
    while rt.outstanding() > 0 {
        if !rt.wait_idle_timeout(Duration::from_millis(1)) {
            clock.advance(Duration::from_secs(2));
        }
        rounds += 1;
        assert!(
            rounds < 100_000,
            "seed {seed}: {} events never ended",
            rt.outstanding()
        );
    }
    drop(workers);

    audit.assert_each_ended_once();
    let records = records.lock();
    assert_eq!(records.len(), audit.accepted().len(), "seed {seed}");
    assert!(
        records.values().all(|n| *n == 1),
        "seed {seed}: a request ended twice"
    );
    let m = rt.metrics();
    if std::env::var("RELIABILITY_VERBOSE").is_ok() {
        eprintln!("seed {seed}: {:?}", m.total);
    }
    assert!(m.total.is_balanced(), "seed {seed}: {:?}", m.total);
    assert_eq!(
        m.total.finished() as usize,
        audit.accepted().len(),
        "seed {seed}"
    );
    assert_eq!(m.total.events_received as usize, audit.accepted().len());
    assert_eq!(m.total.duplicates, m.total.duplicates_finished);
    assert_eq!(m.total.concurrent_executions, 0);
    assert!(m.total.peak_concurrent_executions <= u64::from(max_account));
    assert!(gauges.all_peak.load(Ordering::SeqCst) <= max_account as usize);
    for (name, peak) in gauges.peak.lock().iter() {
        if let Some(Some(limit)) = max_reserved.get(name) {
            assert!(
                *peak <= *limit as usize,
                "seed {seed}: {name} peaked at {peak} > {limit}"
            );
        }
    }
}

#[test]
fn random_runs_lose_nothing_double_nothing_and_keep_every_limit() {
    // Panicking handlers are part of the run; keep the output readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let random = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| *s == "random panic");
        if !random {
            hook(info);
        }
    }));
    for seed in 0..seeds() {
        one_run(seed);
    }
}
