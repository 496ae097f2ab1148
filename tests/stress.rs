//! Several worker threads, random failures and panics, small limits and operator actions in
//! between: nothing is lost, nothing ends twice, no limit is exceeded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    Condition, Function, FunctionError, ManualClock, RequestId, RetryPolicy, Runtime,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic coin per (request, attempt), so the handler's fate does not depend on which
/// thread runs it.
fn fate(id: RequestId, attempt: u32, seed: u64) -> u64 {
    let mut x = id.as_u64() ^ (u64::from(attempt) << 48) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % 100
}

/// Tracks executions running at once, as the handlers themselves see them.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Run {
    rt: Runtime<u32>,
    clock: ManualClock,
    records: Arc<Mutex<HashMap<RequestId, Vec<Condition>>>>,
    gauges: Vec<Arc<Gauge>>,
    account: Arc<Gauge>,
}

const NAMES: [&str; 3] = ["reserved-3", "reserved-2", "unreserved"];

fn setup(seed: u64) -> Run {
    let clock = ManualClock::new();
    let records: Arc<Mutex<HashMap<RequestId, Vec<Condition>>>> = Arc::default();
    let seen = Arc::clone(&records);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .account_concurrency(8)
        .unreserved_floor(3)
        .seed(seed)
        .on_record(move |r| {
            seen.lock()
                .entry(r.request_id)
                .or_default()
                .push(r.condition)
        })
        .build()
        .unwrap();
    let account = Arc::new(Gauge::default());
    let mut gauges = Vec::new();
    let policy = RetryPolicy::builder()
        .maximum_retry_attempts(2)
        .retry_delays(vec![Duration::from_secs(1)])
        .maximum_event_age(Duration::from_secs(600))
        .build()
        .unwrap();
    for (i, name) in NAMES.iter().enumerate() {
        let gauge = Arc::new(Gauge::default());
        gauges.push(Arc::clone(&gauge));
        let account = Arc::clone(&account);
        let mut f = Function::new(*name, move |_: &u32, ctx| {
            gauge.enter();
            account.enter();
            std::thread::yield_now();
            let roll = fate(ctx.request_id(), ctx.approximate_invoke_count(), seed);
            gauge.leave();
            account.leave();
            match roll {
                0..=19 => Err(FunctionError::new("Random", "unlucky")),
                20..=29 => panic!("random panic"),
                _ => Ok(()),
            }
        })
        .retry_policy(policy.clone());
        if i == 0 {
            f = f.reserved_concurrency(3);
        } else if i == 1 {
            f = f.reserved_concurrency(2);
        }
        rt.register(f).unwrap();
    }
    Run {
        rt,
        clock,
        records,
        gauges,
        account,
    }
}

/// Moves virtual time until every event has ended; bounded so a bug fails instead of hanging.
fn drain(run: &Run) {
    for _ in 0..200_000 {
        if run.rt.outstanding() == 0 {
            return;
        }
        if !run.rt.wait_idle_timeout(Duration::from_millis(1)) {
            run.clock.advance(Duration::from_secs(1));
        }
    }
    panic!("events never drained: {} outstanding", run.rt.outstanding());
}

fn check_accounting(run: &Run, received: u64) {
    let m = run.rt.metrics();
    for f in &m.functions {
        assert!(f.is_balanced(), "unbalanced: {f:?}");
    }
    assert!(m.total.is_balanced(), "unbalanced total: {:?}", m.total);
    assert_eq!(m.total.events_received, received);
    // One terminal record per request id, and as many as there were events.
    let records = run.records.lock();
    assert_eq!(records.len() as u64, received);
    for (id, conditions) in records.iter() {
        assert_eq!(conditions.len(), 1, "{id} ended {conditions:?}");
    }
    for (condition, counted) in m.total.outcomes() {
        let recorded = records.values().filter(|c| c[0] == condition).count() as u64;
        assert_eq!(recorded, counted, "{condition}");
    }
}

#[test]
fn stress_nothing_lost_nothing_doubled_no_limit_exceeded() {
    for seed in 0..100u64 {
        let run = setup(seed);
        let mut rng = StdRng::seed_from_u64(seed);
        // More workers than the account has slots, so the account limit is what holds them.
        let workers = run.rt.spawn_workers(10).unwrap();
        // Two producers invoke at once while the workers run.
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let rt = run.rt.clone();
                std::thread::spawn(move || {
                    let handles: Vec<_> = NAMES.iter().map(|n| rt.function(n).unwrap()).collect();
                    for i in 0..60u32 {
                        handles[(i as usize + p) % 3].invoke_async(i).unwrap();
                    }
                })
            })
            .collect();
        // Operator actions in between: pauses, purges, limit changes.
        let mut max_limit = [3usize, 2, 8 - 3 - 2];
        for _ in 0..5 {
            match rng.random_range(0..4) {
                0 => {
                    run.rt.pause("reserved-2").unwrap();
                    run.clock.advance(Duration::from_secs(1));
                    run.rt.resume("reserved-2").unwrap();
                }
                1 => {
                    run.rt.purge("unreserved").unwrap();
                }
                2 => {
                    let n = rng.random_range(1..=3);
                    run.rt
                        .set_reserved_concurrency("reserved-3", Some(n))
                        .unwrap();
                    max_limit[2] = max_limit[2].max(8 - n as usize - 2);
                }
                _ => run.clock.advance(Duration::from_secs(1)),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        // Stop mid-run: with nothing moving, the books must balance with events still waiting.
        drop(workers);
        let m = run.rt.metrics().total;
        assert!(m.is_balanced(), "seed {seed}: {m:?}");
        assert_eq!(m.concurrent_executions, 0);
        let workers = run.rt.spawn_workers(10).unwrap();
        drain(&run);
        drop(workers);
        check_accounting(&run, 120);
        for (gauge, limit) in run.gauges.iter().zip(max_limit) {
            assert!(gauge.peak.load(Ordering::SeqCst) <= limit, "seed {seed}");
        }
        assert!(run.account.peak.load(Ordering::SeqCst) <= 8, "seed {seed}");
        let m = run.rt.metrics();
        assert!(m.total.peak_concurrent_executions <= 8);
        assert_eq!(m.total.concurrent_executions, 0);
        assert!(m.function("reserved-2").unwrap().peak_concurrent_executions <= 2);
    }
}

#[test]
fn accounting_holds_while_executions_are_in_flight() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    rt.register(
        Function::new("blocking", move |_: &u32, _ctx| {
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
        .reserved_concurrency(2),
    )
    .unwrap();
    for i in 0..10 {
        rt.invoke_async("blocking", i).unwrap();
    }
    let workers = rt.spawn_workers(4).unwrap();
    // Dropped before the workers are joined, even when an assertion fails: no hang.
    let release = ReleaseOnDrop(release);
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    // Two handlers hold the two slots; the other workers throttle what they take until every
    // other event waits, delayed. Then nothing moves, and the identity must hold exactly.
    let mut settled = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while settled.is_none() && std::time::Instant::now() < deadline {
        let m = rt.function_metrics("blocking").unwrap();
        if m.in_flight_events == 2 && m.queue_depth() == 8 {
            settled = Some(m);
        }
        std::thread::yield_now();
    }
    let m = settled.expect("the workers never settled");
    assert_eq!(m.concurrent_executions, 2);
    assert!(m.is_balanced());
    assert_eq!(m.events_received, 10);
    assert_eq!(m.finished(), 0);
    for _ in 0..10 {
        release.0.send(()).unwrap();
    }
    for _ in 0..10_000 {
        if rt.outstanding() == 0 {
            break;
        }
        if !rt.wait_idle_timeout(Duration::from_millis(1)) {
            clock.advance(Duration::from_secs(1));
        }
    }
    drop(workers);
    let m = rt.function_metrics("blocking").unwrap();
    assert_eq!(m.outcome(Condition::Success), 10);
    assert!(m.is_balanced());
    assert!(m.peak_concurrent_executions <= 2);
}

#[test]
fn concurrent_producers_and_workers_on_the_system_clock_end_every_event_once() {
    for _ in 0..100 {
        let ended: Arc<Mutex<HashMap<RequestId, u32>>> = Arc::default();
        let seen = Arc::clone(&ended);
        let rt: Runtime<u64> = Runtime::builder()
            .account_concurrency(4)
            .unreserved_floor(1)
            .on_record(move |r| *seen.lock().entry(r.request_id).or_default() += 1)
            .build()
            .unwrap();
        rt.register(
            Function::new("fast", |n: &u64, _ctx| {
                if n % 7 == 0 {
                    Err(FunctionError::new("Seven", "multiple of seven"))
                } else {
                    Ok(())
                }
            })
            .maximum_retry_attempts(0),
        )
        .unwrap();
        let workers = rt.spawn_workers(3).unwrap();
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let h = rt.function("fast").unwrap();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        h.invoke_async(i).unwrap();
                    }
                    200usize
                })
            })
            .collect();
        let sent: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
        assert!(rt.wait_idle_timeout(Duration::from_secs(30)));
        drop(workers);
        let m = rt.function_metrics("fast").unwrap();
        assert_eq!(m.events_received, sent as u64);
        assert!(m.is_balanced());
        assert_eq!(m.outcome(Condition::RetriesExhausted), 2 * 29);
        assert_eq!(ended.lock().len(), sent);
        assert!(ended.lock().values().all(|n| *n == 1));
        assert!(m.peak_concurrent_executions <= 4);
    }
}

/// Releases blocked handlers when dropped.
struct ReleaseOnDrop(crossbeam_channel::Sender<()>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        for _ in 0..64 {
            let _ = self.0.send(());
        }
    }
}
