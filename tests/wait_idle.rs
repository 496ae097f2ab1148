//! `wait_idle` returns only once every event has fully ended: its execution slots given back,
//! its payload and response dropped, its record delivered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use event_invoke::{Function, FunctionError, ManualClock, Runtime};

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
            rt.wait_idle();
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
