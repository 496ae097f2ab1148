//! `InvocationQueue` and `QueuedEvent` as a caller's own retry loop uses them: the attempt and
//! throttle counts, the age, the chain depth and the last error, fed to a `RetryPolicy`.

use std::time::Duration;

use crate::time::{at, secs};
use event_invoke::{
    Condition, EventState, FunctionError, InvocationQueue, QueuedEvent, RequestId, RetryPolicy,
    Timestamp,
};

/// How one event of a caller's loop ended.
#[derive(Debug)]
struct Ended {
    condition: Condition,
    attempts: u32,
    last_error: Option<FunctionError>,
    at: Timestamp,
}

/// A caller's own loop over one queue, on virtual time starting at `start`: runs each due event
/// through `handler` (given the attempt number), retries function errors as `policy` says and
/// ends events past the event age. Returns every attempt's start and how each event ended.
fn run_loop(
    queue: &mut InvocationQueue<&'static str>,
    policy: &RetryPolicy,
    start: Timestamp,
    mut handler: impl FnMut(&str, u32) -> Result<(), FunctionError>,
) -> (Vec<(RequestId, Timestamp)>, Vec<Ended>) {
    let mut now = start;
    let mut starts = Vec::new();
    let mut ended = Vec::new();
    loop {
        let Some(mut event) = queue.pop_due(now) else {
            match queue.next_due() {
                Some(due) => {
                    now = due;
                    continue;
                }
                None => break,
            }
        };
        if policy.is_expired(event.enqueued_at(), now) {
            ended.push(Ended {
                condition: Condition::EventAgeExceeded,
                attempts: event.attempts(),
                last_error: event.last_error().cloned(),
                at: now,
            });
            continue;
        }
        let attempt = event.record_attempt();
        starts.push((event.request_id(), now));
        let error = match handler(event.payload(), attempt) {
            Ok(()) => {
                ended.push(Ended {
                    condition: Condition::Success,
                    attempts: attempt,
                    last_error: None,
                    at: now,
                });
                continue;
            }
            Err(error) => error,
        };
        let wait = policy.retry_delay_after(attempt, &error);
        let condition = match wait {
            None => Condition::RetriesExhausted,
            Some(wait) if policy.is_expired(event.enqueued_at(), now + wait) => {
                Condition::EventAgeExceeded
            }
            Some(wait) => {
                event.set_last_error(error);
                queue.push_delayed(event, now + wait);
                continue;
            }
        };
        ended.push(Ended {
            condition,
            attempts: attempt,
            last_error: Some(error),
            at: now,
        });
    }
    (starts, ended)
}

#[test]
fn a_callers_loop_with_record_attempt_and_the_lambda_policy_retries_at_0_60_and_180_seconds() {
    let policy = RetryPolicy::lambda_default();
    let mut queue = InvocationQueue::new(10).unwrap();
    let id = RequestId::from_u64(1);
    queue
        .push(QueuedEvent::new(id, "order", Timestamp::ZERO))
        .unwrap();

    let (starts, ended) = run_loop(&mut queue, &policy, Timestamp::ZERO, |_, attempt| {
        Err(FunctionError::new("Boom", format!("attempt {attempt}")))
    });

    assert_eq!(starts, vec![(id, at(0)), (id, at(60)), (id, at(180))]);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].condition, Condition::RetriesExhausted);
    assert_eq!(ended[0].attempts, 3);
    assert_eq!(ended[0].at, at(180));
    assert_eq!(ended[0].last_error.as_ref().unwrap().message(), "attempt 3");
    assert!(queue.is_empty());
}

#[test]
fn a_callers_loop_interleaves_two_events_retries_by_due_time() {
    let policy = RetryPolicy::lambda_default();
    let mut queue = InvocationQueue::new(10).unwrap();
    let (a, b) = (RequestId::from_u64(1), RequestId::from_u64(2));
    queue.push(QueuedEvent::new(a, "a", at(0))).unwrap();
    queue.push(QueuedEvent::new(b, "b", at(0))).unwrap();

    // "b" succeeds on its second attempt; "a" never does.
    let (starts, ended) = run_loop(&mut queue, &policy, at(0), |payload, attempt| {
        if payload == "b" && attempt == 2 {
            Ok(())
        } else {
            Err(FunctionError::new("Boom", payload.to_string()))
        }
    });

    assert_eq!(
        starts,
        vec![
            (a, at(0)),
            (b, at(0)),
            (a, at(60)),
            (b, at(60)),
            (a, at(180))
        ]
    );
    let conditions: Vec<(Condition, u32)> =
        ended.iter().map(|e| (e.condition, e.attempts)).collect();
    assert_eq!(
        conditions,
        vec![(Condition::Success, 2), (Condition::RetriesExhausted, 3)]
    );
}

#[test]
fn a_callers_loop_ends_an_event_whose_retry_would_start_past_the_maximum_event_age() {
    let policy = RetryPolicy::builder()
        .maximum_event_age(secs(120))
        .build()
        .unwrap();
    let mut queue = InvocationQueue::new(10).unwrap();
    queue
        .push(QueuedEvent::new(
            RequestId::from_u64(1),
            "x",
            Timestamp::ZERO,
        ))
        .unwrap();

    let (starts, ended) = run_loop(&mut queue, &policy, Timestamp::ZERO, |_, attempt| {
        Err(FunctionError::new("Boom", format!("attempt {attempt}")))
    });

    // The second retry would start at 180 s, past the 120 s age.
    assert_eq!(
        starts.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![at(0), at(60)]
    );
    assert_eq!(ended[0].condition, Condition::EventAgeExceeded);
    assert_eq!(ended[0].attempts, 2);
    assert_eq!(ended[0].last_error.as_ref().unwrap().message(), "attempt 2");
}

#[test]
fn record_attempt_and_record_throttle_count_separately_and_return_the_new_count() {
    let mut ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    assert_eq!((ev.attempts(), ev.throttles()), (0, 0));
    assert_eq!(ev.record_throttle(), 1);
    assert_eq!(ev.record_throttle(), 2);
    assert_eq!(ev.record_attempt(), 1);
    assert_eq!(ev.record_throttle(), 3);
    assert_eq!(ev.record_attempt(), 2);
    assert_eq!((ev.attempts(), ev.throttles()), (2, 3));
}

#[test]
fn the_attempt_count_stops_at_65535_rather_than_wrapping() {
    let mut ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    for _ in 0..70_000 {
        ev.record_attempt();
    }
    assert_eq!(ev.record_attempt(), 65_535);
}

#[test]
fn a_callers_loop_backs_off_throttles_1_2_4_8_seconds_with_record_throttle_and_draw_0() {
    let policy = RetryPolicy::lambda_default();
    let mut queue = InvocationQueue::new(10).unwrap();
    queue
        .push(QueuedEvent::new(
            RequestId::from_u64(1),
            (),
            Timestamp::ZERO,
        ))
        .unwrap();

    let mut now = Timestamp::ZERO;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let mut event = queue.pop_due(now).unwrap();
        // No slot free: a throttle, which does not use up retry attempts.
        let wait = policy.throttle_delay(event.record_throttle(), 0.0);
        waits.push(wait);
        queue.push_delayed(event, now + wait);
        now = queue.next_due().unwrap();
    }
    assert_eq!(waits, vec![secs(1), secs(2), secs(4), secs(8)]);

    let info = &queue.snapshot()[0];
    assert_eq!((info.attempts, info.throttles), (0, 4));
    assert_eq!(info.state, EventState::Delayed { due: at(15) });
}

#[test]
fn an_events_age_counts_from_its_enqueue_time_and_is_what_is_expired_compares() {
    let policy = RetryPolicy::builder()
        .maximum_event_age(secs(60))
        .build()
        .unwrap();
    let ev = QueuedEvent::new(RequestId::from_u64(1), (), at(100));
    assert_eq!(ev.age(at(100)), Duration::ZERO);
    assert_eq!(ev.age(at(159)), secs(59));
    assert_eq!(
        ev.age(at(50)),
        Duration::ZERO,
        "a time before enqueue is age zero"
    );
    assert!(!policy.is_expired(ev.enqueued_at(), at(159)));
    assert_eq!(ev.age(at(160)), policy.maximum_event_age());
    assert!(policy.is_expired(ev.enqueued_at(), at(160)));
}

#[test]
fn with_chain_depth_sets_the_depth_a_snapshot_reports_past_65535_too() {
    let mut queue = InvocationQueue::new(10).unwrap();
    let ev = QueuedEvent::new(RequestId::from_u64(1), (), Timestamp::ZERO);
    assert_eq!(ev.chain_depth(), 1, "first in its chain by default");
    queue.push(ev.with_chain_depth(4)).unwrap();
    assert_eq!(queue.snapshot()[0].chain_depth, 4);

    // Past what fits beside the event (a u16), the depth moves to its history.
    for (i, depth) in [65_534, 65_535, 65_536, 1 << 20, u32::MAX]
        .into_iter()
        .enumerate()
    {
        let id = RequestId::from_u64(2 + i as u64);
        let deep = QueuedEvent::new(id, (), Timestamp::ZERO).with_chain_depth(depth);
        assert_eq!(deep.chain_depth(), depth);
        queue.push(deep).unwrap();
        assert_eq!(queue.snapshot()[1 + i].chain_depth, depth);
    }
    // And back: a shallow depth set after a deep one.
    let ev = QueuedEvent::new(RequestId::from_u64(9), (), Timestamp::ZERO)
        .with_chain_depth(70_000)
        .with_chain_depth(3);
    assert_eq!(ev.chain_depth(), 3);
}

#[test]
fn the_last_error_is_kept_across_requeues_and_replaced_by_the_next() {
    let mut queue = InvocationQueue::new(10).unwrap();
    let id = RequestId::from_u64(1);
    let mut ev = QueuedEvent::new(id, (), Timestamp::ZERO);
    assert!(ev.last_error().is_none());
    ev.set_last_error(FunctionError::new("Boom", "attempt 1"));
    queue.push_delayed(ev, at(60));

    let mut ev = queue.pop_due(at(60)).unwrap();
    assert_eq!(ev.last_error().unwrap().message(), "attempt 1");
    ev.set_last_error(FunctionError::new("Boom", "attempt 2"));
    assert_eq!(ev.last_error().unwrap().message(), "attempt 2");
    assert_eq!(ev.request_id(), id);
}
