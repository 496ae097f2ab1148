//! Helpers shared by the test files (each file uses some of them).
#![allow(dead_code)]

use crossbeam_channel::Receiver;
use event_invoke::{Destination, InvocationRecord, ManualClock, Runtime};

/// A runtime on a fresh manual clock, and the clock.
pub fn manual_runtime<P: Send + 'static, R: Send + 'static>() -> (ManualClock, Runtime<P, R>) {
    let clock = ManualClock::new();
    let rt = Runtime::builder().clock(clock.clone()).build().unwrap();
    (clock, rt)
}

/// A channel destination and the receiver of its records.
pub fn sink<P, R>() -> (Destination<P, R>, Receiver<InvocationRecord<P, R>>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Destination::channel(tx), rx)
}
