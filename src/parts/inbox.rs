//! A function's inbox (prototype C): armed only while the run token is out and producers
//! contend for the function's lock; then invokes append here without that lock.

use std::ops::DerefMut;

use crate::parts::sync::{AtomicUsize, Mutex, Ordering};

/// The most events an inbox holds before an invoke takes the function's lock.
pub const MOST_ARRIVALS: usize = 64;

/// Prototype.
#[doc(hidden)]
#[derive(Debug)]
#[repr(align(128))]
pub struct Inbox<T> {
    /// Non-zero while armed (a hint read without the lock; `room` under the lock decides).
    armed: AtomicUsize,
    arrivals: Mutex<Arrivals<T>>,
}

/// Prototype.
#[doc(hidden)]
#[derive(Debug)]
pub struct Arrivals<T> {
    items: Vec<T>,
    room: usize,
    seq_next: u64,
    seq_end: u64,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Inbox<T> {
    /// Disarmed and empty.
    pub fn new() -> Self {
        Inbox {
            armed: AtomicUsize::new(0),
            arrivals: Mutex::new(Arrivals {
                items: Vec::new(),
                room: 0,
                seq_next: 0,
                seq_end: 0,
            }),
        }
    }

    /// Whether it may hold events (read under the function's lock: exact, since arming and
    /// disarming happen under it).
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed) != 0
    }

    /// A producer's path.
    #[inline]
    pub fn offer<A>(&self, arg: A, make: impl FnOnce(u64, A) -> T) -> Result<u64, A> {
        if self.armed.load(Ordering::Relaxed) == 0 {
            return Err(arg);
        }
        let mut a = self.arrivals.lock();
        if a.room == 0 || a.seq_next >= a.seq_end {
            return Err(arg);
        }
        a.room -= 1;
        let seq = a.seq_next;
        a.seq_next += 1;
        a.items.push(make(seq, arg));
        Ok(seq)
    }

    /// Locked (function's lock first).
    #[inline]
    pub fn lock(&self) -> impl DerefMut<Target = Arrivals<T>> + '_ {
        self.arrivals.lock()
    }

    /// Arms with `room` places and sequence numbers from `*seq + 1` (advanced past them), or
    /// disarms when `room` is 0; under both locks.
    #[inline]
    pub fn set(&self, a: &mut Arrivals<T>, room: usize, seq: &mut u64) {
        a.room = room;
        if room == 0 {
            a.seq_next = 0;
            a.seq_end = 0;
            self.armed.store(0, Ordering::Relaxed);
        } else {
            if a.seq_end - a.seq_next < room as u64 {
                a.seq_next = *seq + 1;
                a.seq_end = a.seq_next + MOST_ARRIVALS as u64;
                *seq = a.seq_end - 1;
            }
            self.armed.store(1, Ordering::Relaxed);
        }
    }
}

impl<T> Arrivals<T> {
    /// Whether empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Swaps the events into `into` (empty); returns how many.
    #[inline]
    pub fn take_into(&mut self, into: &mut Vec<T>) -> usize {
        std::mem::swap(&mut self.items, into);
        into.len()
    }
}
