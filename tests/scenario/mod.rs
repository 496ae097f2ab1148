//! Random operation sequences on a runtime, shared by the reliability and stress suites and
//! the property tests.
//!
//! A [`Scenario`] is the whole of one random run: the account, the functions (retries, event
//! age, reservation), whether faults are injected, how the handlers fare, and a list of
//! [`Op`]s (invokes, pauses, purges, deletions, limit changes, time). It is drawn from a seed
//! ([`scenario_from_seed`]) or by proptest ([`scenario`], which shrinks a failing run to a
//! minimal one), and run two ways:
//!
//! * [`run_threaded`]: on worker threads (and producer threads), where the interleaving
//!   differs from run to run: the books are checked with every worker stopped, and at the end;
//! * [`run_single_threaded`]: on the calling thread under the manual clock, driven by the
//!   scenario's own `Dispatch`, `RunFor` and `RunUntilIdle` steps, where a seed replays
//!   exactly: the books are checked after every step.
//!
//! A handler's fate (success, error, panic, fan-out) is a hash of its request id, attempt and
//! the scenario's seed, so it does not depend on which thread runs it.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    Condition, FaultInjection, Function, FunctionError, ManualClock, OutcomeAudit, RequestId,
    RetryPolicy, Runtime,
};
use parking_lot::Mutex;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// One function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnSpec {
    pub retries: u32,
    pub retry_delay_secs: u64,
    pub max_age_secs: u64,
    pub reserved: Option<u32>,
}

/// How handlers fare, in events per thousand: `fail` return an error, the next `panic` panic,
/// and `fan_out` (overlapping those) invoke one more event first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    pub fail: u64,
    pub panic: u64,
    pub fan_out: u64,
}

/// One step of a run. `f` indexes the scenario's functions (named `f0`, `f1`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Invoke {
        f: usize,
        payload: u32,
    },
    Pause(usize),
    ResumeAll,
    Purge(usize),
    /// Delete the function (its queue ends `FunctionDeleted`) and register it anew.
    Replace {
        f: usize,
        spec: FnSpec,
    },
    SetReserved {
        f: usize,
        n: u32,
    },
    SetAccount(u32),
    /// Move the manual clock.
    Advance(u64),
    /// One thread only: up to this many `try_dispatch` steps.
    Dispatch(u8),
    /// One thread only: `run_for` this many seconds.
    RunFor(u64),
    /// One thread only: `run_until_idle`.
    RunUntilIdle,
}

/// A whole random run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seeds the runtime, the fault injection and the handlers' fate.
    pub seed: u64,
    pub account: u32,
    pub floor: u32,
    pub faults: bool,
    pub fate: Fate,
    pub functions: Vec<FnSpec>,
    pub ops: Vec<Op>,
}

/// The handlers' fate in the reliability suite: 15 % errors, 5 % panics, 10 % fan out.
pub const RELIABILITY_FATE: Fate = Fate {
    fail: 150,
    panic: 50,
    fan_out: 100,
};

fn fn_spec() -> impl Strategy<Value = FnSpec> {
    (
        0..=2u32,
        1..=5u64,
        30..=600u64,
        prop_oneof![Just(None), (0..=3u32).prop_map(Some)],
    )
        .prop_map(
            |(retries, retry_delay_secs, max_age_secs, reserved)| FnSpec {
                retries,
                retry_delay_secs,
                max_age_secs,
                reserved,
            },
        )
}

fn op(functions: usize) -> impl Strategy<Value = Op> {
    let f = 0..functions;
    prop_oneof![
        12 => (f.clone(), 0..3u32).prop_map(|(f, payload)| Op::Invoke { f, payload }),
        1 => f.clone().prop_map(Op::Pause),
        1 => Just(Op::ResumeAll),
        1 => f.clone().prop_map(Op::Purge),
        1 => (f.clone(), fn_spec()).prop_map(|(f, spec)| Op::Replace { f, spec }),
        1 => (f, 0..=3u32).prop_map(|(f, n)| Op::SetReserved { f, n }),
        1 => (6..=16u32).prop_map(Op::SetAccount),
        2 => (1..=10u64).prop_map(Op::Advance),
        6 => (1..=4u8).prop_map(Op::Dispatch),
        1 => (1..=30u64).prop_map(Op::RunFor),
        1 => Just(Op::RunUntilIdle),
    ]
}

/// Random scenarios of the reliability suite: 2 to 4 functions on a small account, faults
/// injected in half of them, up to 80 operations.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    (any::<u64>(), 6..=16u32, 1..=3u32, any::<bool>(), 2..=4usize)
        .prop_flat_map(|(seed, account, floor, faults, n)| {
            (
                Just((seed, account, floor, faults)),
                prop::collection::vec(fn_spec(), n),
                prop::collection::vec(op(n), 0..=80),
            )
        })
        .prop_map(
            |((seed, account, floor, faults), functions, ops)| Scenario {
                seed,
                account,
                floor,
                faults,
                fate: RELIABILITY_FATE,
                functions,
                ops,
            },
        )
}

/// The scenario of `seed`: [`scenario`] drawn by proptest's ChaCha generator seeded with
/// `seed`, and `seed` as the scenario's own seed, so that one number names the whole run.
/// (The draw depends on proptest's release, pinned by Cargo.lock; a seed replays on the same
/// lock file.)
pub fn scenario_from_seed(seed: u64) -> Scenario {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut s = scenario()
        .new_tree(&mut runner)
        .expect("the scenario strategy never rejects")
        .current();
    s.seed = seed;
    s
}

/// A hash of (request, attempt, seed) in `0..1000`: a handler's fate.
pub fn fate_roll(id: RequestId, attempt: u32, seed: u64) -> u64 {
    let mut x = id.as_u64() ^ (u64::from(attempt) << 50) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    x % 1000
}

/// Keeps the handlers' deliberate panics out of the test output (other panics still show).
pub fn quiet_random_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"random panic") {
                hook(info);
            }
        }));
    });
}

/// Executions running at once, per function and in all, as the handlers see them.
#[derive(Default)]
struct Gauges {
    running: Vec<AtomicUsize>,
    peak: Vec<AtomicUsize>,
    all: AtomicUsize,
    all_peak: AtomicUsize,
}

impl Gauges {
    fn new(n: usize) -> Self {
        Gauges {
            running: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            peak: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            ..Gauges::default()
        }
    }

    fn enter(&self, f: usize) {
        let n = self.running[f].fetch_add(1, Ordering::SeqCst) + 1;
        self.peak[f].fetch_max(n, Ordering::SeqCst);
        let all = self.all.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_peak.fetch_max(all, Ordering::SeqCst);
    }

    fn leave(&self, f: usize) {
        self.running[f].fetch_sub(1, Ordering::SeqCst);
        self.all.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a run is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    OneThread,
    Threads,
}

/// A runtime playing a scenario, and what is known of the limits it must keep.
struct World {
    rt: Runtime<u32>,
    clock: ManualClock,
    audit: OutcomeAudit,
    records: Arc<Mutex<HashMap<RequestId, Vec<Condition>>>>,
    gauges: Arc<Gauges>,
    names: Arc<Vec<String>>,
    seed: u64,
    fate: Fate,
    mode: Mode,
    account: u32,
    max_account: u32,
    /// The reservation each function has now (`None`: the unreserved pool).
    reserved_now: Vec<Option<u32>>,
    /// The most executions each function may ever have run at once: the highest limit it had;
    /// `None` once replaced on threads, where the old function's last executions may still run
    /// beside the new one's under the same gauge.
    caps: Vec<Option<u32>>,
    /// Whether each function ever drew from the unreserved pool. Its counted peak can then
    /// include an attempt that took its own counter and was throttled by the pool a moment
    /// later, so only the handlers' gauge bounds it.
    pooled: Vec<bool>,
    paused: BTreeSet<usize>,
    invoked: Arc<AtomicU64>,
}

impl World {
    fn new(s: &Scenario, mode: Mode) -> Result<World, String> {
        let clock = ManualClock::new();
        let audit = OutcomeAudit::new();
        let records: Arc<Mutex<HashMap<RequestId, Vec<Condition>>>> = Arc::default();
        let seen = Arc::clone(&records);
        let mut builder = Runtime::builder()
            .clock(clock.clone())
            .account_concurrency(s.account)
            .unreserved_floor(s.floor)
            .seed(s.seed)
            .on_trace(audit.tracer())
            .on_record(move |r| {
                seen.lock()
                    .entry(r.request_id)
                    .or_default()
                    .push(r.condition)
            })
            .keep_dead_letters(false);
        if s.faults {
            builder = builder.fault_injection(
                FaultInjection::new(s.seed)
                    .duplicates(0.2)
                    .function_errors(0.1)
                    .system_errors(0.05)
                    .reorder(0.3)
                    .retry_delay(Duration::from_secs(3)),
            );
        }
        let rt = builder.build().map_err(|e| format!("build: {e}"))?;
        let n = s.functions.len();
        let mut world = World {
            rt,
            clock,
            audit,
            records,
            gauges: Arc::new(Gauges::new(n)),
            names: Arc::new((0..n).map(|i| format!("f{i}")).collect()),
            seed: s.seed,
            fate: s.fate,
            mode,
            account: s.account,
            max_account: s.account,
            reserved_now: vec![None; n],
            caps: vec![Some(0); n],
            pooled: vec![false; n],
            paused: BTreeSet::new(),
            invoked: Arc::default(),
        };
        for (f, spec) in s.functions.iter().enumerate() {
            world.register(f, spec)?;
        }
        world.update_caps();
        Ok(world)
    }

    /// Registers function `f`; when its reservation does not fit, without one.
    fn register(&mut self, f: usize, spec: &FnSpec) -> Result<(), String> {
        let policy = RetryPolicy::builder()
            .maximum_retry_attempts(spec.retries)
            .retry_delays(vec![Duration::from_secs(spec.retry_delay_secs)])
            .maximum_event_age(Duration::from_secs(spec.max_age_secs))
            .build()
            .map_err(|e| format!("retry policy: {e}"))?;
        let make = || self.function(f, policy.clone());
        let reserved = match spec.reserved {
            Some(r) if self.rt.register(make().reserved_concurrency(r)).is_ok() => Some(r),
            _ => {
                self.rt
                    .register(make())
                    .map_err(|e| format!("register {}: {e}", self.names[f]))?;
                None
            }
        };
        self.reserved_now[f] = reserved;
        Ok(())
    }

    /// Function `f`'s handler: its fate is a hash of the request, the attempt and the seed.
    fn function(&self, f: usize, policy: RetryPolicy) -> Function<u32, ()> {
        let (gauges, names, seed, fate) = (
            Arc::clone(&self.gauges),
            Arc::clone(&self.names),
            self.seed,
            self.fate,
        );
        Function::new(self.names[f].as_str(), move |n: &u32, ctx| {
            gauges.enter(f);
            let roll = fate_roll(ctx.request_id(), ctx.approximate_invoke_count(), seed);
            std::thread::yield_now();
            gauges.leave(f);
            if roll < fate.fan_out && *n > 0 {
                let target = &names[roll as usize % names.len()];
                let _ = ctx.invoke_async(target, n - 1);
            }
            if roll < fate.fail {
                Err(FunctionError::new("Random", "unlucky"))
            } else if roll < fate.fail + fate.panic {
                panic!("random panic")
            } else {
                Ok(())
            }
        })
        .retry_policy(policy)
    }

    /// Raises each function's cap to the limit it has now.
    fn update_caps(&mut self) {
        let reserved: u32 = self.reserved_now.iter().flatten().sum();
        let pool = self.account.saturating_sub(reserved);
        for (f, now) in self.reserved_now.iter().enumerate() {
            if let Some(c) = &mut self.caps[f] {
                *c = (*c).max(now.unwrap_or(pool));
            }
            self.pooled[f] |= now.is_none();
        }
        self.max_account = self.max_account.max(self.account);
    }

    fn invoke(&self, f: usize, payload: u32) {
        if self.rt.invoke_async(&self.names[f], payload).is_ok() {
            self.invoked.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        let one_thread = self.mode == Mode::OneThread;
        match *op {
            Op::Invoke { f, payload } => self.invoke(f, payload),
            Op::Pause(f) => {
                if self.rt.pause(&self.names[f]).is_ok() {
                    self.paused.insert(f);
                }
            }
            Op::ResumeAll => {
                for f in std::mem::take(&mut self.paused) {
                    let _ = self.rt.resume(&self.names[f]);
                }
            }
            Op::Purge(f) => {
                let _ = self.rt.purge(&self.names[f]);
            }
            Op::Replace { f, ref spec } => {
                if self.rt.delete(&self.names[f]).is_ok() {
                    self.paused.remove(&f);
                    self.reserved_now[f] = None;
                    self.register(f, spec)?;
                    if !one_thread {
                        self.caps[f] = None;
                    }
                }
            }
            Op::SetReserved { f, n } => {
                if self
                    .rt
                    .set_reserved_concurrency(&self.names[f], Some(n))
                    .is_ok()
                {
                    self.reserved_now[f] = Some(n);
                }
            }
            Op::SetAccount(n) => {
                if self.rt.set_account_concurrency(n).is_ok() {
                    self.account = n;
                }
            }
            Op::Advance(secs) => self.clock.advance(Duration::from_secs(secs)),
            Op::Dispatch(steps) if one_thread => {
                for _ in 0..steps {
                    if self.rt.try_dispatch().is_none() {
                        break;
                    }
                }
            }
            Op::RunFor(secs) if one_thread => {
                self.rt.run_for(Duration::from_secs(secs));
            }
            Op::RunUntilIdle if one_thread => {
                self.rt.run_until_idle();
            }
            Op::Dispatch(_) | Op::RunFor(_) | Op::RunUntilIdle => {}
        }
        self.update_caps();
        Ok(())
    }

    /// The books, exact while nothing runs: received = finished by each outcome + still
    /// queued + in flight (none), for each function and in total; one record per ended
    /// request, as many of each condition as the metrics count; every accepted event counted.
    fn check_books(&self) -> Result<(), String> {
        let m = self.rt.metrics();
        for f in m.functions.iter().chain([&m.total]) {
            if !f.is_balanced() {
                return Err(format!("unbalanced books of {}: {f:?}", f.name));
            }
        }
        let t = &m.total;
        if t.in_flight_events != 0 || t.concurrent_executions != 0 {
            return Err(format!("work in flight with nothing running: {t:?}"));
        }
        let accepted = self.audit.accepted().len() as u64;
        if t.events_received != accepted {
            return Err(format!(
                "{} events received, {accepted} accepted",
                t.events_received
            ));
        }
        let records = self.records.lock();
        if let Some((id, c)) = records.iter().find(|(_, c)| c.len() != 1) {
            return Err(format!(
                "request {id} ended {c:?}\n{}",
                self.audit.timeline(*id)
            ));
        }
        if records.len() as u64 != t.finished() {
            return Err(format!(
                "{} records, {} events finished",
                records.len(),
                t.finished()
            ));
        }
        for (condition, counted) in t.outcomes() {
            let recorded = records.values().filter(|c| c[0] == condition).count() as u64;
            if recorded != counted {
                return Err(format!(
                    "{recorded} records of {condition}, {counted} counted"
                ));
            }
        }
        if t.duplicates_finished > t.duplicates {
            return Err(format!("more duplicates finished than injected: {t:?}"));
        }
        Ok(())
    }

    /// After the last event ended: everything accepted ended exactly once, and no execution
    /// ran past a limit.
    fn check_end(&self) -> Result<(), String> {
        self.check_books()?;
        let m = self.rt.metrics();
        let t = &m.total;
        let accepted = self.audit.accepted();
        if let Some(id) = accepted
            .iter()
            .find(|id| self.audit.endings(**id).len() != 1)
        {
            return Err(format!(
                "request {id} did not end exactly once\n{}",
                self.audit.timeline(*id)
            ));
        }
        if t.finished() != accepted.len() as u64 || t.queue_depth() != 0 {
            return Err(format!("{} accepted, at the end {t:?}", accepted.len()));
        }
        if t.duplicates != t.duplicates_finished {
            return Err(format!("a duplicate never finished: {t:?}"));
        }
        let invoked = self.invoked.load(Ordering::SeqCst);
        let only_ours = self.fate.fan_out == 0 && t.duplicates == 0;
        if t.events_received < invoked || (only_ours && t.events_received != invoked) {
            return Err(format!(
                "{invoked} invokes accepted, {} events received",
                t.events_received
            ));
        }
        let max_account = u64::from(self.max_account);
        let all_peak = self.gauges.all_peak.load(Ordering::SeqCst) as u64;
        if t.peak_concurrent_executions > max_account || all_peak > max_account {
            return Err(format!(
                "{all_peak} executions at once (counted {}) on an account of at most {max_account}",
                t.peak_concurrent_executions
            ));
        }
        for (f, cap) in self.caps.iter().enumerate() {
            let Some(cap) = *cap else { continue };
            let peak = self.gauges.peak[f].load(Ordering::SeqCst);
            let counted = m
                .function(&self.names[f])
                .map_or(0, |m| m.peak_concurrent_executions);
            if peak > cap as usize || (!self.pooled[f] && counted > u64::from(cap)) {
                return Err(format!(
                    "{} peaked at {peak} (counted {counted}) > its highest limit {cap}",
                    self.names[f]
                ));
            }
        }
        Ok(())
    }

    /// What a run did, step by step: every request's timeline, in order of acceptance.
    fn fingerprint(&self) -> String {
        let mut out = String::new();
        for id in self.audit.accepted() {
            out.push_str(&self.audit.timeline(id));
        }
        let _ = write!(
            out,
            "{:?}",
            self.rt.metrics().total.outcomes().collect::<Vec<_>>()
        );
        out
    }
}

/// Runs `s` on the calling thread under the manual clock, checking the books after every
/// step; then resumes what is paused, runs everything to its end and checks the end. Returns
/// a fingerprint of the run (every request's timeline): the same scenario gives the same one.
///
/// # Errors
///
/// The step that broke the books (its number and operation) and how; a panic is caught and
/// reported the same way.
pub fn run_single_threaded(s: &Scenario) -> Result<String, String> {
    catch(|| {
        let mut world = World::new(s, Mode::OneThread)?;
        world
            .check_books()
            .map_err(|e| format!("after setup: {e}"))?;
        for (i, op) in s.ops.iter().enumerate() {
            world.apply(op)?;
            world
                .check_books()
                .map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
        }
        world.apply(&Op::ResumeAll)?;
        for _ in 0..1_000 {
            world.rt.run_until_idle();
            if world.rt.outstanding() == 0 {
                break;
            }
            world.clock.advance(Duration::from_secs(1));
        }
        if world.rt.outstanding() != 0 {
            return Err(format!("{} events never ended", world.rt.outstanding()));
        }
        world.check_end().map_err(|e| format!("at the end: {e}"))?;
        Ok(world.fingerprint())
    })
}

/// Runs `s` on `workers` worker threads; with `producers` > 0, its invokes come from that many
/// threads at once (round robin) while this thread applies the other operations. Stops the
/// workers mid-run to check the books with events still waiting, then runs everything to its
/// end and checks the end.
///
/// # Errors
///
/// What broke; a panic is caught and reported the same way.
pub fn run_threaded(s: &Scenario, workers: usize, producers: usize) -> Result<(), String> {
    catch(|| {
        let mut world = World::new(s, Mode::Threads)?;
        let running = world.rt.spawn_workers(workers).map_err(|e| e.to_string())?;
        let mut threads = Vec::new();
        if producers > 0 {
            let invokes: Vec<(usize, u32)> = s
                .ops
                .iter()
                .filter_map(|op| match *op {
                    Op::Invoke { f, payload } => Some((f, payload)),
                    _ => None,
                })
                .collect();
            for p in 0..producers {
                let handles: Vec<_> = world
                    .names
                    .iter()
                    .map(|n| world.rt.function(n).expect("registered"))
                    .collect();
                let mine: Vec<(usize, u32)> =
                    invokes.iter().skip(p).step_by(producers).copied().collect();
                let invoked = Arc::clone(&world.invoked);
                threads.push(std::thread::spawn(move || {
                    for (f, payload) in mine {
                        if handles[f].invoke_async(payload).is_ok() {
                            invoked.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
        }
        for op in &s.ops {
            if producers > 0 && matches!(op, Op::Invoke { .. }) {
                continue;
            }
            world.apply(op)?;
        }
        for t in threads {
            t.join().map_err(|_| "a producer panicked".to_string())?;
        }
        // Stop the workers mid-run: with nothing moving, the books balance with events waiting.
        drop(running);
        world.check_books().map_err(|e| format!("mid-run: {e}"))?;
        let running = world.rt.spawn_workers(workers).map_err(|e| e.to_string())?;
        world.apply(&Op::ResumeAll)?;
        // Let virtual time pass until every event has ended; bounded, so a bug fails, not hangs.
        let mut rounds = 0;
        while world.rt.outstanding() > 0 {
            if !world.rt.wait_idle_timeout(Duration::from_millis(1)) {
                world.clock.advance(Duration::from_secs(2));
            }
            rounds += 1;
            if rounds == 200_000 {
                return Err(format!(
                    "{} events never ended: {:?}",
                    world.rt.outstanding(),
                    world.rt.metrics().functions
                ));
            }
        }
        drop(running);
        world.check_end().map_err(|e| format!("at the end: {e}"))
    })
}

/// `run`, with a panic turned into an error.
fn catch<T>(run: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {message}"))
    })
}

/// The seeds to run: `0..default` or `0..$COUNT_VAR`, or only `$SEED_VAR` when it is set.
pub fn seeds(seed_var: &str, count_var: &str, default: u64) -> Vec<u64> {
    let read = |var: &str| std::env::var(var).ok().and_then(|s| s.parse::<u64>().ok());
    match read(seed_var) {
        Some(seed) => vec![seed],
        None => (0..read(count_var).unwrap_or(default)).collect(),
    }
}
