//! The limiter's permits: owned ones that move into threads, and borrowed ones turned owned.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use event_invoke::{ConcurrencyLimiter, OwnedPermit};

fn is_send_static<T: Send + Sync + 'static>() {}

#[test]
fn an_owned_permit_is_send_sync_and_static() {
    is_send_static::<OwnedPermit>();
    is_send_static::<Arc<ConcurrencyLimiter>>();
}

#[test]
fn an_owned_permit_moves_into_a_spawned_thread_and_is_released_when_dropped_there() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire_owned().expect("a free slot");
    let (holding_tx, holding_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        holding_tx.send(permit.limiter().in_flight()).unwrap();
        release_rx.recv().unwrap();
        drop(permit);
    });
    // The worker holds the slot: it is still taken here.
    assert_eq!(holding_rx.recv().unwrap(), 1);
    assert_eq!(limiter.in_flight(), 1);
    assert!(limiter.try_acquire_owned().is_none());
    assert!(limiter.try_acquire().is_none());
    release_tx.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.try_acquire_owned().is_some());
    assert_eq!(limiter.peak(), 1);
}

#[test]
fn an_owned_permit_keeps_its_limiter_alive_after_every_other_handle_is_gone() {
    let limiter = Arc::new(ConcurrencyLimiter::new(2));
    let permit = limiter.try_acquire_owned().unwrap();
    let weak = Arc::downgrade(&limiter);
    drop(limiter);
    assert_eq!(permit.limiter().in_flight(), 1);
    drop(permit);
    assert!(weak.upgrade().is_none(), "the permit held the last handle");
}

#[test]
fn an_owned_permit_is_released_when_the_thread_holding_it_panics() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire_owned().unwrap();
    let worker = thread::spawn(move || {
        let _permit = permit;
        panic!("handler blew up");
    });
    assert!(worker.join().is_err(), "the thread panicked");
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.try_acquire_owned().is_some());
}

#[test]
fn a_borrowed_permit_turned_owned_is_released_when_the_thread_holding_it_panics() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire().unwrap().into_owned(&limiter).unwrap();
    let worker = thread::spawn(move || {
        let _permit = permit;
        panic!("handler blew up");
    });
    assert!(worker.join().is_err());
    assert_eq!(limiter.in_flight(), 0);
}

#[test]
fn lowering_the_limit_while_owned_permits_are_out_keeps_them_and_refuses_new_ones_until_below() {
    let limiter = Arc::new(ConcurrencyLimiter::new(3));
    let mut permits: Vec<OwnedPermit> = (0..3)
        .map(|_| limiter.try_acquire_owned().unwrap())
        .collect();
    limiter.set_limit(1);
    assert_eq!(limiter.in_flight(), 3, "permits already out stay valid");
    // Released from other threads, one at a time.
    for out in [2, 1] {
        let permit = permits.pop().unwrap();
        thread::spawn(move || drop(permit)).join().unwrap();
        assert_eq!(limiter.in_flight(), out);
        assert!(limiter.try_acquire_owned().is_none(), "{out} out, limit 1");
    }
    drop(permits);
    let again = limiter.try_acquire_owned().expect("below the new limit");
    assert!(limiter.try_acquire_owned().is_none());
    assert_eq!(limiter.peak(), 3);
    drop(again);
    assert_eq!(limiter.in_flight(), 0);
}

#[test]
fn raising_the_limit_while_owned_permits_are_out_admits_more_at_once() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let first = limiter.try_acquire_owned().unwrap();
    assert!(limiter.try_acquire_owned().is_none());
    limiter.set_limit(2);
    let second = limiter
        .try_acquire_owned()
        .expect("the raised limit has room");
    assert!(limiter.try_acquire_owned().is_none());
    drop((first, second));
    assert_eq!(limiter.in_flight(), 0);
}

#[test]
fn into_owned_keeps_the_slot_taken_throughout() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire().unwrap();
    assert!(std::ptr::eq(permit.limiter(), &*limiter));
    // Even with the limit lowered to nothing, the slot passes over: it is never given back.
    limiter.set_limit(0);
    let owned = permit
        .into_owned(&limiter)
        .expect("the permit's own limiter");
    assert_eq!(limiter.in_flight(), 1);
    assert_eq!(limiter.peak(), 1);
    drop(owned);
    assert_eq!(limiter.in_flight(), 0);
}

#[test]
fn into_owned_refuses_the_wrong_limiter_and_hands_the_permit_back() {
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let other = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire().unwrap();
    let permit = permit
        .into_owned(&other)
        .expect_err("a permit of another limiter");
    assert_eq!(
        limiter.in_flight(),
        1,
        "the refused permit still holds its slot"
    );
    assert_eq!(other.in_flight(), 0, "the other limiter was not touched");
    assert!(std::ptr::eq(permit.limiter(), &*limiter));
    drop(permit);
    assert_eq!(limiter.in_flight(), 0);
}

#[test]
fn into_owned_refuses_an_equal_limiter_in_another_arc() {
    // The same limit and count are not the same limiter: identity is what counts.
    let limiter = ConcurrencyLimiter::new(1);
    let lookalike = Arc::new(ConcurrencyLimiter::new(1));
    let permit = limiter.try_acquire().unwrap();
    assert!(permit.into_owned(&lookalike).is_err());
    assert_eq!(limiter.in_flight(), 0, "refused and then dropped");
    assert_eq!(lookalike.in_flight(), 0);
}

#[test]
fn owned_permits_from_many_threads_never_exceed_the_limit() {
    const LIMIT: usize = 4;
    let limiter = Arc::new(ConcurrencyLimiter::new(LIMIT));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || {
                let mut got = 0;
                for _ in 0..2_000 {
                    if let Some(permit) = limiter.try_acquire_owned() {
                        assert!(permit.limiter().in_flight() <= LIMIT);
                        got += 1;
                        // Hand it to another thread to release half of the time.
                        if got % 2 == 0 {
                            thread::spawn(move || drop(permit)).join().unwrap();
                        }
                    }
                }
                got
            })
        })
        .collect();
    let got: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(got > 0);
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.peak() <= LIMIT);
}

#[test]
fn a_permit_and_an_owned_permit_show_their_limiter_in_debug() {
    let limiter = Arc::new(ConcurrencyLimiter::new(2));
    let borrowed = limiter.try_acquire().unwrap();
    let owned = limiter.try_acquire_owned().unwrap();
    assert_eq!(format!("{borrowed:?}"), "Permit { .. }");
    assert_eq!(
        format!("{owned:?}"),
        "OwnedPermit { limiter: ConcurrencyLimiter { limit: 2, in_flight: 2, peak: 2 } }"
    );
}
