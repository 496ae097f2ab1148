//! Model checks with loom: every interleaving (up to a preemption bound) of the limiter and of
//! the run-queue hand-off. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.
#![cfg(loom)]

use event_invoke::__loom::RunToken;
use event_invoke::{ConcurrencyLimiter, InvocationQueue, QueuedEvent, RequestId, Timestamp};
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

/// The function-side hand-off: producers push under the function's lock and send its token
/// only when it was not out; workers take the token, pop one event, and send it again while
/// events remain. No event may be stranded with no token out.
#[test]
fn the_run_token_hand_off_never_strands_a_ready_event() {
    model(|| {
        struct State {
            queue: InvocationQueue<u32>,
            token: RunToken,
        }
        let state = Arc::new(Mutex::new(State {
            queue: InvocationQueue::new(8).unwrap(),
            token: RunToken::new(),
        }));
        let (tx, rx) = mpsc::channel::<()>();
        let done = Arc::new(AtomicUsize::new(0));

        let producer = {
            let (state, tx) = (state.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..2u64 {
                    let send = {
                        let mut st = state.lock().unwrap();
                        let ev =
                            QueuedEvent::new(RequestId::from_u64(i), i as u32, Timestamp::ZERO);
                        st.queue.push(ev).unwrap();
                        st.token.claim(true)
                    };
                    if send {
                        tx.send(()).unwrap();
                    }
                }
            })
        };
        // One worker takes tokens until both events ran; a token lost would leave it spinning,
        // which loom reports.
        let worker = {
            let (state, done) = (state.clone(), done.clone());
            thread::spawn(move || {
                while done.load(Ordering::SeqCst) < 2 {
                    if rx.try_recv().is_err() {
                        thread::yield_now();
                        continue;
                    }
                    let (event, more) = {
                        let mut st = state.lock().unwrap();
                        let event = st.queue.pop_due(Timestamp::ZERO);
                        let runnable = st.queue.ready_len() > 0;
                        (event, st.token.keep(runnable))
                    };
                    if more {
                        tx.send(()).unwrap();
                    }
                    if event.is_some() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        producer.join().unwrap();
        worker.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert!(state.lock().unwrap().queue.is_empty());
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
