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

/// The queue against a model of plain collections, under random sequences of pushes, pops,
/// delays, views, edits and removals long enough to cross many segments of the ready line.
mod against_a_model {
    use std::collections::VecDeque;
    use std::time::Duration;

    use event_invoke::{EventState, InvocationQueue, QueuedEvent, RequestId, Timestamp};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Push this many new events.
        Push(u16),
        /// Push an event due this many seconds from now.
        PushDelayed(u8),
        /// Take this many events due now.
        Pop(u16),
        /// Move the time on by this many seconds.
        Advance(u8),
        /// Remove the event with the id at this place of the waiting events (modulo).
        Remove(usize),
        /// Remove every event whose id is this modulo 7.
        RemoveWhere(u8),
        /// Edit the payload of the event with the id at this place (modulo).
        Edit(usize),
        /// Take every event.
        Purge,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u16..400).prop_map(Op::Push),
            2 => (0u8..5).prop_map(Op::PushDelayed),
            5 => (1u16..400).prop_map(Op::Pop),
            2 => (0u8..3).prop_map(Op::Advance),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => (0u8..7).prop_map(Op::RemoveWhere),
            1 => any::<usize>().prop_map(Op::Edit),
            1 => Just(Op::Purge),
        ]
    }

    /// The model: ids of ready events in line order, and delayed ones as (due, order, id).
    #[derive(Default)]
    struct Model {
        ready: VecDeque<u64>,
        delayed: Vec<(Timestamp, u64, u64)>,
        order: u64,
    }

    impl Model {
        fn promote(&mut self, now: Timestamp) {
            self.delayed.sort();
            let due = self.delayed.iter().take_while(|d| d.0 <= now).count();
            self.ready.extend(self.delayed.drain(..due).map(|d| d.2));
        }

        fn delayed_by_due(&self) -> Vec<(u64, EventState)> {
            let mut delayed = self.delayed.clone();
            delayed.sort();
            delayed
                .into_iter()
                .map(|(due, _, id)| (id, EventState::Delayed { due }))
                .collect()
        }

        fn ids(&self) -> Vec<u64> {
            let mut ids: Vec<u64> = self.ready.iter().copied().collect();
            ids.extend(self.delayed_by_due().into_iter().map(|d| d.0));
            ids
        }

        /// Removes the events whose id `pred` picks: (ready ones in line order, delayed ones).
        fn remove_where(&mut self, pred: impl Fn(u64) -> bool) -> (Vec<u64>, Vec<u64>) {
            let ready = self.ready.iter().copied().filter(|&id| pred(id)).collect();
            self.ready.retain(|&id| !pred(id));
            let delayed = self
                .delayed
                .iter()
                .map(|d| d.2)
                .filter(|&id| pred(id))
                .collect();
            self.delayed.retain(|d| !pred(d.2));
            (ready, delayed)
        }
    }

    /// The payload of event `id` before edits (each adds a million).
    fn payload(id: u64) -> u64 {
        id * 10
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_queue_keeps_the_order_plain_collections_keep(ops in prop::collection::vec(op(), 1..40)) {
            let mut q = InvocationQueue::new(usize::MAX).unwrap();
            let mut model = Model::default();
            let mut edits = std::collections::HashMap::<u64, u64>::new();
            let mut now = Timestamp::ZERO;
            let mut next = 0u64;
            let mut new_event = |now| {
                next += 1;
                QueuedEvent::new(RequestId::from_u64(next), payload(next), now)
            };
            let id = |e: &QueuedEvent<u64>| e.request_id().as_u64();
            for op in ops {
                match op {
                    Op::Push(n) => {
                        for _ in 0..n {
                            let e = new_event(now);
                            model.ready.push_back(id(&e));
                            q.push(e).unwrap();
                        }
                    }
                    Op::PushDelayed(s) => {
                        let due = now + Duration::from_secs(u64::from(s));
                        let e = new_event(now);
                        model.order += 1;
                        model.delayed.push((due, model.order, id(&e)));
                        q.push_delayed(e, due);
                    }
                    Op::Pop(n) => {
                        for _ in 0..n {
                            model.promote(now);
                            let got = q.pop_due(now).map(|e| id(&e));
                            prop_assert_eq!(got, model.ready.pop_front());
                        }
                    }
                    Op::Advance(s) => now = now + Duration::from_secs(u64::from(s)),
                    Op::Remove(at) => {
                        let ids = model.ids();
                        if !ids.is_empty() {
                            let target = ids[at % ids.len()];
                            model.remove_where(|id| id == target);
                            let got = q.remove(RequestId::from_u64(target)).map(|e| id(&e));
                            prop_assert_eq!(got, Some(target));
                        }
                    }
                    Op::RemoveWhere(r) => {
                        let (ready, mut delayed) = model.remove_where(|id| id % 7 == u64::from(r));
                        let got: Vec<u64> =
                            q.remove_where(|e| id(e) % 7 == u64::from(r)).iter().map(id).collect();
                        // Ready ones first, in line order; then delayed ones, in no set order.
                        prop_assert_eq!(got.len(), ready.len() + delayed.len());
                        prop_assert_eq!(&got[..ready.len()], &ready[..]);
                        let mut got_delayed = got[ready.len()..].to_vec();
                        got_delayed.sort_unstable();
                        delayed.sort_unstable();
                        prop_assert_eq!(got_delayed, delayed);
                    }
                    Op::Edit(at) => {
                        let ids = model.ids();
                        if !ids.is_empty() {
                            let target = ids[at % ids.len()];
                            prop_assert!(q.edit(RequestId::from_u64(target), |p| *p += 1_000_000));
                            *edits.entry(target).or_default() += 1;
                        }
                    }
                    Op::Purge => {
                        let expected = model.ids();
                        model = Model { order: model.order, ..Model::default() };
                        let got: Vec<u64> = q.purge().iter().map(id).collect();
                        prop_assert_eq!(got, expected);
                    }
                }
                // Every view agrees with the model.
                prop_assert_eq!(q.ready_len(), model.ready.len());
                prop_assert_eq!(q.delayed_len(), model.delayed.len());
                prop_assert_eq!(q.len(), model.ready.len() + model.delayed.len());
                let ready: Vec<u64> = q.iter().take(model.ready.len()).map(id).collect();
                prop_assert_eq!(&ready, &Vec::from(model.ready.clone()));
                for e in q.iter() {
                    let bonus = edits.get(&id(e)).map_or(0, |n| n * 1_000_000);
                    prop_assert_eq!(*e.payload(), payload(id(e)) + bonus);
                }
                let snapshot: Vec<(u64, EventState)> =
                    q.snapshot().into_iter().map(|i| (i.request_id.as_u64(), i.state)).collect();
                let mut expected: Vec<(u64, EventState)> =
                    model.ready.iter().map(|&id| (id, EventState::Ready)).collect();
                expected.extend(model.delayed_by_due());
                prop_assert_eq!(snapshot, expected);
            }
        }
    }
}
