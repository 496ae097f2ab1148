//! The virtual time line of one execution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::ExecutionLine;
use crate::parts::clock::{duration_nanos, Timestamp};

/// The virtual time line of one execution in model mode: where its handler is in virtual
/// time, moved by its invokes and by `Context::spend`.
#[derive(Debug)]
pub(crate) struct Cursor {
    at: AtomicU64,
    deadline: u64,
    latency: u64,
    /// A call was refused for the timeout: the execution ran out of time.
    timed_out: std::sync::atomic::AtomicBool,
}

impl Cursor {
    pub(crate) fn new(start: Timestamp, deadline: Timestamp, latency: Duration) -> Self {
        Cursor {
            at: AtomicU64::new(start.as_nanos()),
            deadline: deadline.as_nanos(),
            latency: duration_nanos(latency),
            timed_out: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the handler tried to go on past its timeout.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    pub(crate) fn at(&self) -> Timestamp {
        Timestamp::from_nanos(self.at.load(Ordering::Relaxed))
    }

    /// Virtual time left before the timeout.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_nanos(
            self.deadline
                .saturating_sub(self.at.load(Ordering::Relaxed)),
        )
    }

    /// Charges one invoke; the time its call returns, or `None` past the deadline (the
    /// execution has timed out by then, and the cursor stays at the deadline).
    pub(crate) fn call(&self) -> Option<Timestamp> {
        let at = self.at.load(Ordering::Relaxed).saturating_add(self.latency);
        if at > self.deadline {
            self.at.store(self.deadline, Ordering::Relaxed);
            self.timed_out.store(true, Ordering::Relaxed);
            return None;
        }
        self.at.store(at, Ordering::Relaxed);
        Some(Timestamp::from_nanos(at))
    }

    pub(crate) fn spend(&self, d: Duration) {
        let at = self
            .at
            .load(Ordering::Relaxed)
            .saturating_add(duration_nanos(d));
        self.at.store(at, Ordering::Relaxed);
    }
}

impl ExecutionLine for Cursor {
    fn remaining(&self) -> Duration {
        Cursor::remaining(self)
    }

    fn spend(&self, d: Duration) {
        Cursor::spend(self, d);
    }

    fn call(&self) -> Option<Timestamp> {
        Cursor::call(self)
    }
}
