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

/// The account's word: two executions of unreserved functions and one of a reserved function
/// race for an account of 2 whose unreserved pool is 1. Never more than either limit is in,
/// whatever the interleaving, and everything given back leaves the word empty.
#[test]
fn the_account_word_never_lets_more_than_either_limit_in() {
    use event_invoke::__loom::{AccountLevels, AccountLimiter};
    model(|| {
        let limiter = Arc::new(AccountLimiter::new(2));
        limiter.set_unreserved_limit(1);
        let account = Arc::new(AtomicUsize::new(0));
        let pool = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = [true, true, false]
            .into_iter()
            .map(|unreserved| {
                let (limiter, account, pool) = (limiter.clone(), account.clone(), pool.clone());
                thread::spawn(move || {
                    let levels = AccountLevels::of(unreserved);
                    if limiter.take(levels).is_some() {
                        assert!(account.fetch_add(1, Ordering::SeqCst) < 2);
                        if unreserved {
                            assert_eq!(pool.fetch_add(1, Ordering::SeqCst), 0);
                            pool.fetch_sub(1, Ordering::SeqCst);
                        }
                        account.fetch_sub(1, Ordering::SeqCst);
                        assert!(!limiter.give_back(levels), "nobody waits");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            (limiter.in_flight(), limiter.unreserved_in_flight()),
            (0, 0)
        );
    });
}

/// The account's word with a lowered limit: an account of 2 with one slot taken is lowered to
/// 1 while another execution tries to take a slot. Either it came first, or it is refused;
/// once the limit is 1, nothing more is let in until both are back.
#[test]
fn a_lowered_account_limit_admits_none_until_below() {
    use event_invoke::__loom::{AccountLevels, AccountLimiter};
    model(|| {
        let limiter = Arc::new(AccountLimiter::new(2));
        let levels = AccountLevels::ACCOUNT_AND_POOL;
        assert!(limiter.take(levels).is_some());
        let l = limiter.clone();
        let lower = thread::spawn(move || {
            l.set_limit(1);
            l.set_unreserved_limit(1);
        });
        let l = limiter.clone();
        let other = thread::spawn(move || l.take(levels).is_some());
        lower.join().unwrap();
        let second = other.join().unwrap();
        assert_eq!(limiter.in_flight(), 1 + usize::from(second));
        assert!(limiter.take(levels).is_none());
        assert!(limiter.take(AccountLevels::ACCOUNT).is_none());
        let _ = limiter.give_back(levels);
        if second {
            assert!(limiter.take(levels).is_none(), "one out, limit 1");
            let _ = limiter.give_back(levels);
        }
        assert!(limiter.take(levels).is_some());
    });
}

/// The slot wait on the account's word: the holder of the only pool slot gives it back while
/// a worker, refused, marks the full levels. Either the worker's mark sees the slot free, or
/// the holder's release sees the mark: never both miss. Run for a holder of the pool (the
/// waiter waits on the pool) and of the account alone (the waiter waits on the account).
#[test]
fn a_slot_of_the_account_word_given_back_while_a_worker_marks_it_is_never_missed() {
    use event_invoke::__loom::{AccountLevels, AccountLimiter};
    for (holder_levels, account_limit) in [
        (AccountLevels::ACCOUNT_AND_POOL, 2),
        (AccountLevels::ACCOUNT, 1),
    ] {
        model(move || {
            let limiter = Arc::new(AccountLimiter::new(account_limit));
            limiter.set_unreserved_limit(1);
            assert!(limiter.take(holder_levels).is_some());
            let woken = Arc::new(AtomicUsize::new(0));
            let holder = {
                let (limiter, woken) = (limiter.clone(), woken.clone());
                thread::spawn(move || {
                    if limiter.give_back(holder_levels) {
                        woken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            let waiter = {
                let limiter = limiter.clone();
                thread::spawn(move || {
                    let levels = AccountLevels::ACCOUNT_AND_POOL;
                    match limiter.take(levels) {
                        Some(_) => {
                            let _ = limiter.give_back(levels);
                            true // the slot was already back: no wait at all
                        }
                        None => {
                            let (account, pool) = limiter.full(levels);
                            // Found full a moment ago and free now: as good as a mark that
                            // sees the slot free.
                            !(account || pool) || limiter.wait_for_slot(account, pool)
                        }
                    }
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
}

/// What the engine's run queue carries in these models: a function with ready events, or (for
/// the last model) the word to return.
#[derive(Debug, PartialEq)]
enum Item {
    Run,
    Stop,
}

/// The run token and the engine's run queue together, with a worker that parks when the queue
/// is empty: every event pushed runs (none stranded, and the worker is never left parked while
/// one waits: loom reports a thread parked for good as a deadlock), and the function is never
/// in the queue twice.
#[test]
fn the_run_queue_strands_no_ready_function_and_holds_none_twice() {
    use event_invoke::__loom::{RunQueue, Sleeper};
    model(|| {
        struct State {
            queue: InvocationQueue<u32>,
            token: RunToken,
        }
        let state = Arc::new(Mutex::new(State {
            queue: InvocationQueue::new(8).unwrap(),
            token: RunToken::new(),
        }));
        let run_queue = Arc::new(RunQueue::new());
        // Times the function is in the run queue (or on its way in): never above 1.
        let scheduled = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (state, run_queue, scheduled) =
                (state.clone(), run_queue.clone(), scheduled.clone());
            thread::spawn(move || {
                let me = Sleeper::current();
                let mut done = 0;
                while done < 2 {
                    let Some(item) = run_queue.pop_or_park(&me) else {
                        me.park();
                        run_queue.unparked(&me);
                        continue;
                    };
                    assert_eq!(item, Item::Run);
                    scheduled.fetch_sub(1, Ordering::SeqCst);
                    let (event, more) = {
                        let mut st = state.lock().unwrap();
                        let event = st.queue.pop_due(Timestamp::ZERO);
                        let runnable = st.queue.ready_len() > 0;
                        let more = st.token.keep(runnable);
                        if more {
                            assert_eq!(scheduled.fetch_add(1, Ordering::SeqCst), 0);
                        }
                        (event, more)
                    };
                    if more {
                        run_queue.push(Item::Run);
                    }
                    done += usize::from(event.is_some());
                }
            })
        };
        for i in 0..2u64 {
            let send = {
                let mut st = state.lock().unwrap();
                let ev = QueuedEvent::new(RequestId::from_u64(i), i as u32, Timestamp::ZERO);
                st.queue.push(ev).unwrap();
                let send = st.token.claim(true);
                if send {
                    assert_eq!(scheduled.fetch_add(1, Ordering::SeqCst), 0, "queued twice");
                }
                send
            };
            if send {
                run_queue.push(Item::Run);
            }
        }
        worker.join().unwrap();
        assert!(state.lock().unwrap().queue.is_empty());
        assert_eq!(scheduled.load(Ordering::SeqCst), 0);
        assert_eq!(run_queue.len(), 0);
    });
}

/// A worker parks on the run queue; work pushed and a timer armed (a flag set, then
/// `wake_one`, as `arm_timer` does) both reach it. A wake-up lost would leave it parked for
/// good, which loom reports as a deadlock (it returns only once it saw both).
#[test]
fn a_parked_worker_always_hears_of_work_and_of_an_earlier_timer() {
    use event_invoke::__loom::{RunQueue, Sleeper};
    use loom::sync::atomic::AtomicBool;
    model(|| {
        let run_queue = Arc::new(RunQueue::new());
        let timer_due = Arc::new(AtomicBool::new(false));
        let worker = {
            let (run_queue, timer_due) = (run_queue.clone(), timer_due.clone());
            thread::spawn(move || {
                let me = Sleeper::current();
                let (mut ran, mut fired) = (false, false);
                while !(ran && fired) {
                    // A worker looks at its timers before it looks at the queue...
                    fired |= timer_due.load(Ordering::SeqCst);
                    match run_queue.pop_or_park(&me) {
                        Some(item) => {
                            assert_eq!(item, Item::Run);
                            ran = true;
                        }
                        None => {
                            // ... and again once it counts as parked.
                            if !timer_due.load(Ordering::SeqCst) {
                                me.park();
                            }
                            run_queue.unparked(&me);
                        }
                    }
                }
            })
        };
        run_queue.push(Item::Run);
        timer_due.store(true, Ordering::SeqCst);
        run_queue.wake_one();
        worker.join().unwrap();
        assert_eq!(run_queue.parked(), 0);
    });
}

/// Two workers park on the run queue; one item of work and then one word to return for each
/// (pushed together, as `wake_slot_waiters` pushes the functions it wakes) reach them all: the
/// work is done once, and no worker is left parked (loom reports that as a deadlock).
#[test]
fn items_pushed_together_wake_as_many_parked_workers() {
    use event_invoke::__loom::{RunQueue, Sleeper};
    model(|| {
        let run_queue = Arc::new(RunQueue::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (run_queue, ran) = (run_queue.clone(), ran.clone());
                thread::spawn(move || {
                    let me = Sleeper::current();
                    loop {
                        match run_queue.pop_or_park(&me) {
                            Some(Item::Run) => {
                                ran.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(Item::Stop) => return,
                            None => {
                                me.park();
                                run_queue.unparked(&me);
                            }
                        }
                    }
                })
            })
            .collect();
        run_queue.push(Item::Run);
        run_queue.push_all([Item::Stop, Item::Stop]);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(run_queue.parked(), 0);
        assert_eq!(run_queue.len(), 0);
    });
}

/// A worker counts itself parked, then runs code that parks the thread on its own (a clock of
/// the caller's that blocks inside `now`): that park returns on the push meant to wake the
/// worker, and uses up the thread's park token. The worker's own park must still return (the
/// sleeper's flag says it was woken), or loom reports the worker parked for good.
#[test]
fn a_wake_up_whose_park_token_other_code_used_up_still_reaches_the_worker() {
    use event_invoke::__loom::{RunQueue, Sleeper};
    model(|| {
        let run_queue = Arc::new(RunQueue::new());
        let worker = {
            let run_queue = run_queue.clone();
            thread::spawn(move || {
                let me = Sleeper::current();
                loop {
                    match run_queue.pop_or_park(&me) {
                        Some(item) => return item,
                        None => {
                            // Other code on this thread: only the push unparks it.
                            thread::park();
                            me.park();
                            run_queue.unparked(&me);
                        }
                    }
                }
            })
        };
        run_queue.push(Item::Run);
        assert_eq!(worker.join().unwrap(), Item::Run);
        assert_eq!(run_queue.parked(), 0);
    });
}
