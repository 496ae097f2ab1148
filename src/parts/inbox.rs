//! A function's inbox: where new events wait, in order, for whoever holds the function's own
//! lock to move them into its queue, so that an invoke never waits for a worker taking
//! events (a two-lock queue: producers at one end, the function's lock holder at the other).
//!
//! The inbox also keeps what producers must change with each event: the last sequence number
//! given out (the request ids), the run token (whether the function is scheduled), and the
//! room left: how many more events may arrive before the lock holder must look at the queue
//! again. The lock holder sets the room whenever it moves events in; it is 0 while the
//! function must decide every admission under its own lock (paused, deleted, model mode,
//! fault injection, a queue near its capacity).
//!
//! Lock order: the function's lock first, then the inbox's. A producer takes only the
//! inbox's.

use std::ops::DerefMut;

use crate::parts::queue::RunToken;
use crate::parts::sync::Mutex;

/// The most events an inbox holds before an invoke takes the function's lock to move them
/// into the queue: the inbox's buffers stay small (two of 64 events), whatever the depth of
/// the queue, and its events join the queue, whose ready line grows a segment at a time,
/// before they are many.
pub const MOST_ARRIVALS: usize = 64;

/// New events on their way into one function's queue, with the function's sequence numbers
/// and run token.
///
/// Public only for the loom model check (`--cfg loom`); not part of the API.
///
/// Aligned to its own pair of cache lines, apart from the function's lock, which workers take.
#[doc(hidden)]
#[derive(Debug)]
#[repr(align(128))]
pub struct Inbox<T> {
    arrivals: Mutex<Arrivals<T>>,
}

/// What an [`Inbox`] guards: the events that arrived, in order, and the counts that go with
/// them.
///
/// Public only for the loom model check (`--cfg loom`); not part of the API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Arrivals<T> {
    items: Vec<T>,
    /// How many more items may arrive before the lock holder looks again (0: none).
    room: usize,
    /// The last sequence number given out.
    seq: u64,
    /// Whether the function is scheduled: claimed by whoever makes events ready, kept or
    /// dropped by the worker that took it.
    token: RunToken,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Inbox<T> {
    /// An empty inbox with no room (nothing arrives until the lock holder gives room) and its
    /// token in.
    pub fn new() -> Self {
        Inbox {
            arrivals: Mutex::new(Arrivals {
                items: Vec::new(),
                room: 0,
                seq: 0,
                token: RunToken::new(),
            }),
        }
    }

    /// A producer's path: when there is room, takes the next sequence number, appends
    /// `make(seq, arg)` and claims the run token; returns the sequence number and whether
    /// the caller must schedule the function (the token was in). With no room `arg` comes
    /// back, and the caller decides under the function's lock.
    #[inline]
    pub fn offer<A>(&self, arg: A, make: impl FnOnce(u64, A) -> T) -> Result<(u64, bool), A> {
        let mut arrivals = self.arrivals.lock();
        if arrivals.room == 0 {
            return Err(arg);
        }
        arrivals.room -= 1;
        arrivals.seq += 1;
        let seq = arrivals.seq;
        arrivals.items.push(make(seq, arg));
        let schedule = arrivals.token.claim(true);
        Ok((seq, schedule))
    }

    /// The inbox, locked (for the function's lock holder: take the function's lock first).
    #[inline]
    pub fn lock(&self) -> impl DerefMut<Target = Arrivals<T>> + '_ {
        self.arrivals.lock()
    }
}

impl<T> Arrivals<T> {
    /// Whether no event waits here.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Swaps the events that arrived (in order) into `into`, which must be empty, and
    /// returns how many: the caller moves them into its queue, and keeps the emptied buffer
    /// for the next swap.
    #[inline]
    pub fn take_into(&mut self, into: &mut Vec<T>) -> usize {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.items, into);
        into.len()
    }

    /// How many more events may arrive before the lock holder looks again.
    #[inline]
    pub fn set_room(&mut self, room: usize) {
        self.room = room;
    }

    /// The next sequence number (for an event admitted under the function's lock).
    #[inline]
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The function's run token.
    #[inline]
    pub fn token(&mut self) -> &mut RunToken {
        &mut self.token
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn an_inbox_without_room_hands_the_argument_back() {
        let inbox: Inbox<u32> = Inbox::new();
        assert_eq!(inbox.offer(7, |_, a| a), Err(7));
        inbox.lock().set_room(1);
        assert_eq!(inbox.offer(7, |_, a| a), Ok((1, true)));
        assert_eq!(inbox.offer(8, |_, a| a), Err(8));
    }

    #[test]
    fn arrivals_keep_their_order_and_number_on_from_the_lock_holders() {
        let inbox: Inbox<u64> = Inbox::new();
        inbox.lock().set_room(10);
        assert_eq!(inbox.offer((), |seq, ()| seq * 10), Ok((1, true)));
        assert_eq!(inbox.lock().next_seq(), 2);
        // The token is out: the second producer does not schedule again.
        assert_eq!(inbox.offer((), |seq, ()| seq * 10), Ok((3, false)));
        let mut taken = Vec::new();
        assert_eq!(inbox.lock().take_into(&mut taken), 2);
        assert_eq!(taken, vec![10, 30]);
        assert!(inbox.lock().is_empty());
    }
}
