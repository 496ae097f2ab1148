//! The invocation queue as a data structure: order, capacity, delays, views and edits.

use std::time::Duration;

use event_invoke::{Error, EventState, InvocationQueue, QueuedEvent, RequestId, Timestamp};

fn ev(id: u64, t: Timestamp) -> QueuedEvent<u64> {
    QueuedEvent::new(RequestId::from_u64(id), id * 10, t)
}

fn secs(s: u64) -> Timestamp {
    Timestamp::ZERO + Duration::from_secs(s)
}

#[test]
fn ready_events_come_out_in_fifo_order() {
    let mut q = InvocationQueue::new(10).unwrap();
    for id in 1..=5 {
        q.push(ev(id, secs(0))).unwrap();
    }
    let out: Vec<u64> = std::iter::from_fn(|| q.pop_due(secs(0)))
        .map(|e| e.request_id().as_u64())
        .collect();
    assert_eq!(out, vec![1, 2, 3, 4, 5]);
}

#[test]
fn delayed_events_become_ready_at_their_due_time_earliest_first() {
    let mut q = InvocationQueue::new(10).unwrap();
    q.push_delayed(ev(1, secs(0)), secs(120));
    q.push_delayed(ev(2, secs(0)), secs(60));
    q.push_delayed(ev(3, secs(0)), secs(60));
    assert_eq!(q.next_due(), Some(secs(60)));
    assert!(q.pop_due(secs(59)).is_none());
    assert_eq!(q.pop_due(secs(60)).unwrap().request_id().as_u64(), 2);
    assert_eq!(
        q.pop_due(secs(60)).unwrap().request_id().as_u64(),
        3,
        "ties stay FIFO"
    );
    assert!(q.pop_due(secs(60)).is_none());
    assert_eq!(q.promote_due(secs(500)), 1);
    assert_eq!((q.ready_len(), q.delayed_len()), (1, 0));
}

#[test]
fn a_full_queue_hands_the_event_back() {
    let mut q = InvocationQueue::new(2).unwrap();
    q.push(ev(1, secs(0))).unwrap();
    q.push(ev(2, secs(0))).unwrap();
    let back = q.push(ev(3, secs(0))).unwrap_err();
    assert_eq!(back.request_id().as_u64(), 3);
    assert_eq!(back.into_payload(), 30);
    assert_eq!(q.len(), 2);
}

#[test]
fn retries_are_never_refused_by_a_full_queue() {
    let mut q = InvocationQueue::new(1).unwrap();
    q.push(ev(1, secs(0))).unwrap();
    q.push_delayed(ev(2, secs(0)), secs(60));
    assert_eq!(q.len(), 2);
}

#[test]
fn capacity_zero_is_a_clear_error() {
    let err = InvocationQueue::<u64>::new(0).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "queue_capacity",
            ..
        }
    ));
    assert!(err.to_string().contains("at least 1"));
    let mut q = InvocationQueue::<u64>::new(1).unwrap();
    assert!(q.set_capacity(0).is_err());
    assert_eq!(q.capacity(), 1);
}

#[test]
fn snapshot_lists_ready_then_delayed_by_due_time() {
    let mut q = InvocationQueue::new(10).unwrap();
    q.push(ev(1, secs(5))).unwrap();
    q.push_delayed(ev(2, secs(0)), secs(90));
    q.push_delayed(ev(3, secs(1)), secs(30));
    let snap = q.snapshot();
    let ids: Vec<u64> = snap.iter().map(|e| e.request_id.as_u64()).collect();
    assert_eq!(ids, vec![1, 3, 2]);
    assert_eq!(snap[0].state, EventState::Ready);
    assert_eq!(snap[1].state, EventState::Delayed { due: secs(30) });
    assert_eq!(q.oldest_enqueued_at(), Some(secs(0)));
    assert_eq!(q.oldest_age(secs(100)), Some(Duration::from_secs(100)));
}

#[test]
fn remove_edit_and_purge_work_on_ready_and_delayed_events() {
    let mut q = InvocationQueue::new(10).unwrap();
    for id in 1..=4 {
        q.push(ev(id, secs(0))).unwrap();
    }
    q.push_delayed(ev(5, secs(0)), secs(60));
    q.push_delayed(ev(6, secs(0)), secs(30));
    assert_eq!(q.remove(RequestId::from_u64(2)).unwrap().into_payload(), 20);
    assert!(q.remove(RequestId::from_u64(2)).is_none());
    assert!(q.edit(RequestId::from_u64(5), |p| *p = 555));
    assert!(q.edit(RequestId::from_u64(1), |p| *p = 111));
    assert!(!q.edit(RequestId::from_u64(99), |p| *p = 0));
    let odd = q.remove_where(|e| e.request_id().as_u64() % 2 == 1);
    let mut odd: Vec<u64> = odd.into_iter().map(|e| e.into_payload()).collect();
    odd.sort();
    assert_eq!(odd, vec![30, 111, 555]);
    let rest: Vec<u64> = q.purge().into_iter().map(|e| e.into_payload()).collect();
    assert_eq!(rest, vec![40, 60]);
    assert!(q.is_empty());
}

#[test]
fn a_deep_queue_keeps_fifo_order_to_the_last_event() {
    // Not a timing test: a deep queue keeps its order and its counts exactly.
    let mut q = InvocationQueue::new(200_000).unwrap();
    for id in 0..100_000 {
        q.push(ev(id, secs(0))).unwrap();
    }
    for id in 0..100_000 {
        assert_eq!(q.pop_due(secs(0)).unwrap().request_id().as_u64(), id);
    }
    assert!(q.is_empty());
}
