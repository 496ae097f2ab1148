//! `wait_idle` returns only once every event has fully ended: its execution slots given back,
//! its payload and response dropped, its record delivered.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use event_invoke::{
    Condition, Destination, FaultInjection, Function, FunctionError, ManualClock, Runtime,
    StepOutcome,
};

/// A payload whose drop takes a while: it tells `started` when the drop begins, then waits
/// (at most a bounded real time) for `release`, which only a waiter that returned from
/// `wait_idle` too early would send, and marks `done`.
struct SlowDrop {
    started: Sender<()>,
    release: Receiver<()>,
    done: Arc<AtomicBool>,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let _ = self.started.send(());
        let _ = self.release.recv_timeout(Duration::from_millis(300));
        self.done.store(true, Ordering::SeqCst);
    }
}

/// How the test's thread runs the event: one step, or the batch step `run_until_idle` and
/// workers take.
#[derive(Clone, Copy)]
enum Drive {
    TryDispatch,
    RunUntilIdle,
}

/// Runs one `SlowDrop` event on this thread (as `drive` says) while another thread waits in
/// `wait_idle`; returns whether the waiter found the payload dropped, and how many executions
/// of the function it found running, when it returned.
fn waiter_finds_the_event_ended(function: Function<SlowDrop, ()>, drive: Drive) -> (bool, u64) {
    let rt: Runtime<SlowDrop> = Runtime::builder()
        .clock(ManualClock::new())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    let h = rt.register(function).unwrap();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    let done = Arc::new(AtomicBool::new(false));
    let payload = SlowDrop {
        started: started_tx,
        release: release_rx,
        done: Arc::clone(&done),
    };
    h.invoke_async(payload).map_err(|_| ()).unwrap();
    let waiter = {
        let (rt, h, done) = (rt.clone(), h.clone(), Arc::clone(&done));
        thread::spawn(move || {
            // Bounded, so that a regression that never ends the event fails instead of hanging.
            assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
            let dropped = done.load(Ordering::SeqCst);
            let running = h.metrics().unwrap().concurrent_executions;
            let _ = release.send(());
            (dropped, running)
        })
    };
    match drive {
        Drive::TryDispatch => assert!(rt.try_dispatch().is_some()),
        Drive::RunUntilIdle => assert_eq!(rt.run_until_idle(), 1),
    }
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap()
}

#[test]
fn a_quiet_success_counts_as_ended_only_after_its_payload_is_dropped() {
    for drive in [Drive::TryDispatch, Drive::RunUntilIdle] {
        let f = Function::new("f", |_: &SlowDrop, _ctx| Ok(()));
        assert_eq!(waiter_finds_the_event_ended(f, drive), (true, 0));
    }
}

#[test]
fn a_failure_counts_as_ended_only_after_its_payload_is_dropped_and_its_slot_given_back() {
    for drive in [Drive::TryDispatch, Drive::RunUntilIdle] {
        let f = Function::new("f", |_: &SlowDrop, _ctx| -> Result<(), FunctionError> {
            Err(FunctionError::new("E", "always"))
        })
        .maximum_retry_attempts(0);
        assert_eq!(waiter_finds_the_event_ended(f, drive), (true, 0));
    }
}

/// Held by the first code of "f": its drop, when the step's last reference to that code goes
/// (the on-failure destination replaced it), keeps the step open until a waiter answered.
struct Blocker {
    started: Sender<()>,
    release: Receiver<()>,
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = self.started.send(());
        let _ = self.release.recv_timeout(Duration::from_secs(2));
    }
}

/// One event of "f" ends in `try_dispatch` without running, after `advance` of virtual time,
/// with these faults; a waiter in `wait_idle` returns how many executions of "f" it found
/// running. The on-failure destination replaces the code, so that the old handler (and its
/// `Blocker`) drops at the end of the step: the waiter answers while the step is not over.
fn running_seen_by_waiter(advance: Duration, faults: Option<FaultInjection>) -> (StepOutcome, u64) {
    let clock = ManualClock::new();
    let mut builder = Runtime::builder()
        .clock(clock.clone())
        .keep_dead_letters(false);
    if let Some(faults) = faults {
        builder = builder.fault_injection(faults);
    }
    let rt: Runtime<u32> = builder.build().unwrap();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    let blocker = Blocker {
        started: started_tx,
        release: release_rx,
    };
    let replacer = rt.clone();
    let f = Function::new("f", move |_: &u32, _ctx| {
        let _ = &blocker;
        Ok(())
    })
    .maximum_event_age(Duration::from_secs(60))
    .on_failure(Destination::closure(move |_| {
        replacer.update_code("f", |_: &u32, _ctx| Ok(())).unwrap();
    }));
    let h = rt.register(f).unwrap();
    h.invoke_async(1).unwrap();
    clock.advance(advance);
    let waiter = {
        let (rt, h) = (rt.clone(), h.clone());
        thread::spawn(move || {
            assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
            let running = h.metrics().unwrap().concurrent_executions;
            let _ = release.send(());
            running
        })
    };
    let step = rt.try_dispatch().unwrap();
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    (step.outcome, waiter.join().unwrap())
}

#[test]
fn an_event_too_old_to_run_ends_after_the_slot_taken_for_it_is_given_back() {
    // Wait mode (the default) takes the slot before the event; the age guard then ends it.
    let (outcome, running) = running_seen_by_waiter(Duration::from_secs(61), None);
    assert_eq!(outcome, StepOutcome::Ended(Condition::EventAgeExceeded));
    assert_eq!(running, 0);
}

#[test]
fn an_injected_system_error_that_ages_the_event_out_ends_after_its_slot_is_given_back() {
    let faults = FaultInjection::new(1).system_errors(1.0);
    let (outcome, running) = running_seen_by_waiter(Duration::from_millis(59_999), Some(faults));
    assert_eq!(outcome, StepOutcome::Ended(Condition::EventAgeExceeded));
    assert_eq!(running, 0);
}

/// A thread that waits in `wait_idle` (bounded, so that an event that never ends fails the
/// test instead of hanging it), then tells whether `done` (a `SlowDrop`'s drop) had finished,
/// and lets the drop finish.
fn waiter_for_the_drop<R: Send + 'static>(
    rt: &Runtime<u32, R>,
    done: &Arc<AtomicBool>,
    release: Sender<()>,
) -> thread::JoinHandle<bool> {
    let (rt, done) = (rt.clone(), Arc::clone(done));
    thread::spawn(move || {
        assert!(rt.wait_idle_timeout(Duration::from_secs(10)));
        let dropped = done.load(Ordering::SeqCst);
        let _ = release.send(());
        dropped
    })
}

#[test]
fn a_duplicate_delivery_s_response_is_dropped_before_its_end_counts() {
    let rt: Runtime<u32, Option<SlowDrop>> = Runtime::builder()
        .clock(ManualClock::new())
        .keep_dead_letters(false)
        .fault_injection(FaultInjection::new(1).duplicate_when(|_| true))
        .build()
        .unwrap();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    let done = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU32::new(0));
    let (dropped, called) = (Arc::clone(&done), Arc::clone(&calls));
    // The original's response is nothing; the duplicate's takes a while to drop.
    let f = Function::new("f", move |_: &u32, _ctx| {
        if called.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(None)
        } else {
            Ok(Some(SlowDrop {
                started: started_tx.clone(),
                release: release_rx.clone(),
                done: Arc::clone(&dropped),
            }))
        }
    });
    let h = rt.register(f).unwrap();
    h.invoke_async(1).map_err(|_| ()).unwrap();
    assert!(rt.try_dispatch().is_some()); // the original; its duplicate is queued
    assert_eq!(rt.outstanding(), 1);
    let waiter = waiter_for_the_drop(&rt, &done, release);
    assert!(rt.try_dispatch().is_some()); // the duplicate
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(waiter.join().unwrap());
}

#[test]
fn a_response_that_came_past_the_timeout_is_dropped_before_its_end_counts() {
    let clock = ManualClock::new();
    let rt: Runtime<u32, SlowDrop> = Runtime::builder()
        .clock(clock.clone())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    let done = Arc::new(AtomicBool::new(false));
    let dropped = Arc::clone(&done);
    // The response comes back after the timeout: the timeout's error takes its place, and the
    // response is dropped on the way.
    let f = Function::new("f", move |_: &u32, _ctx| {
        clock.advance(Duration::from_secs(2));
        Ok(SlowDrop {
            started: started_tx.clone(),
            release: release_rx.clone(),
            done: Arc::clone(&dropped),
        })
    })
    .timeout(Duration::from_secs(1))
    .maximum_retry_attempts(0);
    let h = rt.register(f).unwrap();
    h.invoke_async(1).map_err(|_| ()).unwrap();
    let waiter = waiter_for_the_drop(&rt, &done, release);
    let step = rt.try_dispatch().unwrap();
    assert_eq!(
        step.outcome,
        StepOutcome::Ended(Condition::RetriesExhausted)
    );
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(waiter.join().unwrap());
}
