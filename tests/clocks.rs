//! Clocks of the caller's own: the runtime reads, moves and listens to any [`Clock`], not only
//! the two the crate ships.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Clock, Condition, Function, FunctionError, ManualClock, Runtime, StepOutcome, Timestamp,
};

type Listener = Box<dyn Fn() -> bool + Send + Sync>;

/// A virtual clock written for this test: time moves only when the runtime moves it.
#[derive(Clone, Default)]
struct OwnVirtualClock {
    now: Arc<AtomicU64>,
    moves: Arc<AtomicU64>,
    listeners: Arc<Mutex<Vec<Listener>>>,
}

impl Clock for OwnVirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.now.load(Ordering::SeqCst))
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn advance_to(&self, t: Timestamp) -> bool {
        if self.now.fetch_max(t.as_nanos(), Ordering::SeqCst) < t.as_nanos() {
            self.moves.fetch_add(1, Ordering::SeqCst);
            self.listeners.lock().unwrap().retain(|listener| listener());
        }
        true
    }

    fn subscribe(&self, listener: Listener) {
        self.listeners.lock().unwrap().push(listener);
    }
}

/// A real clock written for this test: the runtime cannot move it; the test sets it.
#[derive(Clone, Default)]
struct SetClock(Arc<AtomicU64>);

impl Clock for SetClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn a_virtual_clock_of_the_caller_s_own_runs_the_retry_schedule() {
    let clock = OwnVirtualClock::default();
    let rt: Runtime<u8> = Runtime::builder().clock(clock.clone()).build().unwrap();
    rt.register(Function::new("f", |_: &u8, _ctx| {
        Err(FunctionError::new("Boom", "always"))
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();

    // Two retries, 1 and 2 minutes apart: the runtime moved this clock to each.
    assert_eq!(rt.run_until_idle(), 3);
    assert!(rt.clock().is_virtual());
    assert!(clock.moves.load(Ordering::SeqCst) >= 2);
    assert!(rt.now() >= Timestamp::from_secs(180), "{:?}", rt.now());
    let records = rt.drain_dead_letters();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].condition, Condition::RetriesExhausted);
    assert_eq!(records[0].approximate_invoke_count, 3);
}

#[test]
fn a_real_clock_of_the_caller_s_own_stamps_and_ages_events() {
    let clock = SetClock::default();
    clock.0.store(5_000, Ordering::SeqCst);
    let rt: Runtime<u8> = Runtime::builder().clock(clock.clone()).build().unwrap();
    rt.register(
        Function::new("f", |_: &u8, _ctx| Ok(())).maximum_event_age(Duration::from_secs(60)),
    )
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(
        rt.queue_snapshot("f").unwrap()[0].enqueued_at,
        Timestamp::from_nanos(5_000)
    );
    assert!(!rt.clock().is_virtual());

    // The runtime cannot move a real clock: the test does, past the event's maximum age.
    clock.0.store(5_000 + 61_000_000_000, Ordering::SeqCst);
    let step = rt.try_dispatch().unwrap();
    assert_eq!(
        step.outcome,
        StepOutcome::Ended(Condition::EventAgeExceeded)
    );
}

#[test]
fn a_clone_of_a_manual_clock_given_to_the_builder_is_the_same_clock() {
    let clock = ManualClock::new();
    let rt: Runtime<u8> = Runtime::builder().clock(clock.clone()).build().unwrap();
    clock.advance(Duration::from_secs(7));
    assert_eq!(rt.now(), Timestamp::from_secs(7));
    rt.clock().advance_to(Timestamp::from_secs(9));
    assert_eq!(clock.now(), Timestamp::from_secs(9));
}

/// A real clock whose reading parks the calling thread for a moment, as a clock asking a time
/// service over a blocking channel would: each reading uses up the thread's park token.
#[derive(Clone)]
struct ParkingClock(std::time::Instant);

impl Clock for ParkingClock {
    fn now(&self) -> Timestamp {
        std::thread::park_timeout(Duration::from_micros(1));
        Timestamp::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

#[test]
fn a_clock_that_parks_the_worker_does_not_use_up_the_wake_up_of_an_event() {
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ParkingClock(std::time::Instant::now()))
        .keep_dead_letters(false)
        .build()
        .unwrap();
    rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
        .unwrap();
    let workers = rt.spawn_workers(1).unwrap();
    // Each event finds the worker on its way to park, often inside a clock reading: a wake-up
    // lost there would leave the event waiting until the workers stop.
    for i in 0..300 {
        rt.invoke_async("f", i).unwrap();
        assert!(
            rt.wait_idle_timeout(Duration::from_secs(10)),
            "event {i} waits for a worker that sleeps on"
        );
    }
    assert_eq!(workers.stop(), 300);
}

#[test]
fn the_system_clock_stamps_an_event_no_later_than_now_and_at_most_a_tick_earlier() {
    // The default clock stamps events from the kernel's coarse clock on Linux: never ahead of
    // `now`, behind it by at most one scheduler tick (10 ms at the slowest common tick; the
    // bound below leaves room for that).
    let rt: Runtime<u32> = Runtime::builder().keep_dead_letters(false).build().unwrap();
    let f = rt
        .register(Function::new("f", |_: &u32, _ctx| Ok(())).queue_capacity(10_000))
        .unwrap();
    let read_on = |rt: &Runtime<u32>| {
        let mut seen = Vec::new();
        for i in 0..250 {
            let before = rt.now();
            let id = f.invoke_async(i).unwrap();
            seen.push((id, before, rt.now()));
        }
        seen
    };
    // From four threads at once, so a stamp is also checked against the other threads' clock.
    let seen: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4).map(|_| s.spawn(|| read_on(&rt))).collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    let stamps: std::collections::HashMap<_, _> = rt
        .queue_snapshot("f")
        .unwrap()
        .into_iter()
        .map(|e| (e.request_id, e.enqueued_at))
        .collect();
    assert_eq!(stamps.len(), 1_000);
    for (id, before, after) in seen {
        let stamp = stamps[&id];
        assert!(
            stamp <= after,
            "{id:?} stamped {stamp:?}, after the invoke {after:?}"
        );
        assert!(
            before - stamp <= Duration::from_millis(50),
            "{id:?} stamped {stamp:?}, before the invoke {before:?}"
        );
    }
}
