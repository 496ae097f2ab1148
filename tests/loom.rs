//! Model checks with loom: every interleaving (up to a preemption bound) of the limiter, of
//! the run-queue hand-off and of the inbox (append, schedule, drain, delete). Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.
#![cfg(loom)]

use event_invoke::__loom::Inbox;
use event_invoke::ConcurrencyLimiter;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{mpsc, Arc, Mutex};
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn the_limiter_never_lets_more_than_its_limit_in() {
    model(|| {
        let limiter = Arc::new(ConcurrencyLimiter::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (limiter, inside) = (limiter.clone(), inside.clone());
                thread::spawn(move || {
                    if let Some(permit) = limiter.try_acquire() {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(limiter.in_flight(), 0);
        assert!(limiter.peak() <= 1);
    });
}

#[test]
fn a_limit_lowered_while_permits_are_out_admits_none_until_below() {
    model(|| {
        // A std `Arc`, which owned permits need (only the limiter's atomics are modelled).
        let limiter = std::sync::Arc::new(ConcurrencyLimiter::new(2));
        // Owned permits, so that the other thread's stays out after it ends.
        let first = limiter.try_acquire_owned();
        assert!(first.is_some());
        let l = limiter.clone();
        let lower = thread::spawn(move || l.set_limit(1));
        let l = limiter.clone();
        let other = thread::spawn(move || l.try_acquire_owned());
        lower.join().unwrap();
        let second = other.join().unwrap();
        // Either the second permit came before the limit dropped, or it was refused.
        assert_eq!(limiter.in_flight(), 1 + usize::from(second.is_some()));
        assert!(limiter.try_acquire().is_none());
        drop((first, second));
        assert_eq!(limiter.in_flight(), 0);
    });
}

#[test]
fn a_permit_turned_owned_never_frees_its_slot_on_the_way() {
    model(|| {
        let limiter = std::sync::Arc::new(ConcurrencyLimiter::new(1));
        let permit = limiter.try_acquire().unwrap();
        let l = limiter.clone();
        let other = thread::spawn(move || l.try_acquire_owned());
        let owned = permit.into_owned(&limiter).unwrap();
        let got = other.join().unwrap();
        assert!(got.is_none(), "the slot was never free");
        let l = limiter.clone();
        thread::spawn(move || drop(owned)).join().unwrap();
        assert_eq!(l.in_flight(), 0);
    });
}

/// A function as the engine keeps it, in miniature: its state under a lock (the queue, and
/// whether it was deleted) and its inbox beside it.
struct Function {
    state: Mutex<State>,
    inbox: Inbox<u32>,
}

#[derive(Default)]
struct State {
    queue: Vec<u32>,
    spare: Vec<u32>,
    deleted: bool,
}

impl Function {
    fn new() -> Self {
        Function {
            state: Mutex::new(State::default()),
            inbox: Inbox::new(8),
        }
    }

    /// The function's lock, with the inbox moved into the queue first (`FunctionShared::lock`).
    fn lock(&self) -> loom::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap();
        let State { queue, spare, .. } = &mut *st;
        if self.inbox.take_all(spare, queue.len()) > 0 {
            queue.append(spare);
        }
        st
    }

    /// An invoke (`Runtime::enqueue`): appended without the lock while the inbox is open,
    /// settled under the lock when it closed meanwhile. `Some(true)` when the caller must send
    /// the function to the run queue; `None` when refused.
    fn invoke(&self, event: u32) -> Option<bool> {
        if !self.inbox.is_open() {
            let st = self.lock();
            assert!(st.deleted);
            return None;
        }
        self.inbox.admit().expect("room").push(event);
        if !self.inbox.is_open() {
            // Settle: deleted meanwhile, take it back if the delete's drain missed it.
            let mut st = self.lock();
            assert!(st.deleted);
            if let Some(at) = st.queue.iter().position(|e| *e == event) {
                st.queue.remove(at);
                return None;
            }
            return Some(false);
        }
        Some(self.inbox.claim())
    }

    /// A worker step (`take_batch`): pop one event; `(event, send again)`.
    fn step(&self) -> (Option<u32>, bool) {
        let mut st = self.lock();
        if st.deleted {
            self.inbox.drop_token();
            return (None, false);
        }
        let event = (!st.queue.is_empty()).then(|| st.queue.remove(0));
        let more = self.inbox.keep(event.is_some() && !st.queue.is_empty());
        (event, more)
    }

    /// `delete`: closed, drained, and every waiting event ended; returns how many.
    fn delete(&self) -> usize {
        let mut st = self.lock();
        st.deleted = true;
        self.inbox.close();
        let State { queue, spare, .. } = &mut *st;
        if self.inbox.take_all(spare, queue.len()) > 0 {
            queue.append(spare);
        }
        std::mem::take(&mut st.queue).len()
    }
}

/// The function-side hand-off with the inbox: producers append without the function's lock
/// and send the function only when they claimed its token; a worker drains, pops one event,
/// and gives the token back only after looking at the inbox again. No event may be stranded
/// with no token out.
#[test]
fn the_run_token_hand_off_never_strands_an_appended_event() {
    model(|| {
        let f = Arc::new(Function::new());
        let (tx, rx) = mpsc::channel::<()>();
        let done = Arc::new(AtomicUsize::new(0));

        let producer = {
            let (f, tx) = (f.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..2u32 {
                    if f.invoke(i) == Some(true) {
                        // The worker may have run both already (it drained the second before
                        // this claimed the token) and gone: a spare token is harmless.
                        let _ = tx.send(());
                    }
                }
            })
        };
        // One worker takes tokens until both events ran; a token lost would leave it spinning,
        // which loom reports.
        let worker = {
            let (f, done) = (f.clone(), done.clone());
            thread::spawn(move || {
                let mut ran = Vec::new();
                while done.load(Ordering::SeqCst) < 2 {
                    if rx.try_recv().is_err() {
                        thread::yield_now();
                        continue;
                    }
                    let (event, more) = f.step();
                    if more {
                        tx.send(()).unwrap();
                    }
                    if let Some(e) = event {
                        ran.push(e);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
                (ran, rx)
            })
        };
        producer.join().unwrap();
        let (ran, rx) = worker.join().unwrap();
        assert_eq!(ran, [0, 1], "one producer's events in its order");
        // A spare token finds nothing.
        while rx.try_recv().is_ok() {
            assert_eq!(f.step(), (None, false));
        }
        assert!(f.lock().queue.is_empty());
    });
}

/// Delete racing an invoke: the event is refused (at the door, or taken back by its producer
/// after the delete's drain missed it), or the delete's drain took it and ended it. Never both,
/// never neither: nothing is left in the inbox or the queue.
#[test]
fn an_invoke_racing_delete_is_refused_or_ended_never_stranded() {
    model(|| {
        let f = Arc::new(Function::new());
        let producer = {
            let f = f.clone();
            thread::spawn(move || f.invoke(7))
        };
        let ended = f.delete();
        let invoked = producer.join().unwrap();
        let accepted = usize::from(invoked.is_some());
        // An event accepted was ended by the delete, or (appended after its drain) by nobody
        // yet: then its producer found it under the lock and... took it back, so it was
        // refused. Accepted therefore means ended by the delete.
        assert_eq!(accepted, ended, "invoke {invoked:?}, delete ended {ended}");
        assert!(f.inbox.is_empty());
        assert!(f.lock().queue.is_empty());
    });
}

/// Delete racing an invoke and a worker: every accepted event is run or ended by the delete,
/// exactly once, and the worker never waits for a token nobody sends.
#[test]
fn an_invoke_racing_delete_and_a_worker_ends_each_event_once() {
    model(|| {
        let f = Arc::new(Function::new());
        let (tx, rx) = mpsc::channel::<()>();
        let producer = {
            let (f, tx) = (f.clone(), tx.clone());
            thread::spawn(move || {
                let invoked = f.invoke(1);
                if invoked == Some(true) {
                    tx.send(()).unwrap();
                }
                invoked.is_some()
            })
        };
        let worker = {
            let f = f.clone();
            thread::spawn(move || {
                let mut ran = 0;
                while rx.try_recv().is_ok() {
                    let (event, more) = f.step();
                    ran += usize::from(event.is_some());
                    if more {
                        tx.send(()).unwrap();
                    }
                }
                (ran, rx)
            })
        };
        let ended = f.delete();
        let accepted = producer.join().unwrap();
        let (ran, rx) = worker.join().unwrap();
        // The worker may have stopped looking before the token came: run what is left.
        let mut late = 0;
        while rx.try_recv().is_ok() {
            late += usize::from(f.step().0.is_some());
        }
        assert_eq!(usize::from(accepted), ended + ran + late);
        assert!(f.lock().queue.is_empty());
    });
}

/// The slot wait: a worker that finds no free slot marks the limiter waited for; the holder
/// gives its permit back, then looks for the mark (as the engine's slots do when dropped).
/// Whatever the interleaving, the waiter either sees the slot free when it marks, or the
/// holder sees the mark: never both miss (a lost wake-up would leave the event queued).
#[test]
fn a_slot_given_back_while_a_worker_marks_the_limiter_is_never_missed() {
    use event_invoke::__loom::{take_waiting, wait_for_slot};
    model(|| {
        let limiter = std::sync::Arc::new(ConcurrencyLimiter::new(1));
        let held = limiter.try_acquire_owned().expect("the only slot");
        let woken = Arc::new(AtomicUsize::new(0));
        let holder = {
            let (limiter, woken) = (limiter.clone(), woken.clone());
            thread::spawn(move || {
                drop(held);
                if take_waiting(&limiter) {
                    woken.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let waiter = {
            let limiter = limiter.clone();
            thread::spawn(move || match limiter.try_acquire() {
                Some(_) => true, // the slot was already back: no wait at all
                None => wait_for_slot(&limiter),
            })
        };
        let got_or_saw_free = waiter.join().unwrap();
        holder.join().unwrap();
        assert!(
            got_or_saw_free || woken.load(Ordering::SeqCst) == 1,
            "the slot came back and nobody heard of it"
        );
        assert_eq!(limiter.in_flight(), 0);
    });
}

/// Two waiters and two holders on one limiter of 2: each slot given back wakes whoever
/// marked before it, and the mark never hides the count (no permit beyond the limit).
#[test]
fn marks_and_permits_share_one_word_without_breaking_the_limit() {
    use event_invoke::__loom::{take_waiting, wait_for_slot};
    model(|| {
        let limiter = std::sync::Arc::new(ConcurrencyLimiter::new(1));
        let held = limiter.try_acquire_owned().expect("the only slot");
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                thread::spawn(move || {
                    if limiter.try_acquire().is_none() {
                        wait_for_slot(&limiter);
                    }
                    assert!(limiter.in_flight() <= 1);
                })
            })
            .collect();
        drop(held);
        let _ = take_waiting(&limiter);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(limiter.in_flight(), 0);
        // Whatever was marked last stays visible to the next holder, and is cleared once.
        let _ = take_waiting(&limiter);
        assert!(!take_waiting(&limiter));
    });
}
