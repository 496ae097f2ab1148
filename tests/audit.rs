//! `OutcomeAudit`: one ending per request, assertions that print a request's timeline, counts.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use event_invoke::{
    Condition, FaultInjection, Function, FunctionError, ManualClock, OutcomeAudit, RequestId,
    RetryPolicy, Runtime, Timestamp, ZeroConcurrency,
};

fn audited(clock: &ManualClock) -> (Runtime<u32>, OutcomeAudit) {
    let audit = OutcomeAudit::new();
    let rt = Runtime::builder()
        .clock(clock.clone())
        .on_trace(audit.tracer())
        .build()
        .unwrap();
    (rt, audit)
}

/// Payloads 100 and up always fail; the others succeed.
fn register_picky(rt: &Runtime<u32>, retries: u32) {
    rt.register(
        Function::new("f", |n: &u32, _ctx| {
            if *n >= 100 {
                return Err(FunctionError::new("TooBig", format!("{n} is too big")));
            }
            Ok(())
        })
        .maximum_retry_attempts(retries),
    )
    .unwrap();
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        panic!("a panic without a message")
    }
}

/// Asserts that `needles` occur in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut rest = haystack;
    for needle in needles {
        match rest.find(needle) {
            Some(at) => rest = &rest[at + needle.len()..],
            None => panic!("`{needle}` missing (or out of order) in:\n{haystack}"),
        }
    }
}

#[test]
fn assert_each_ended_once_passes_on_a_normal_run() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    let ids: Vec<_> = [1, 2, 100, 3]
        .into_iter()
        .map(|n| rt.invoke_async("f", n).unwrap())
        .collect();
    rt.run_until_idle();
    audit.assert_each_ended_once();
    assert_eq!(audit.accepted(), ids, "accepted ids, in order");
}

#[test]
fn assert_each_ended_once_passes_with_duplicate_deliveries() {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock)
        .on_trace(audit.tracer())
        .fault_injection(FaultInjection::new(1).duplicates(1.0))
        .build()
        .unwrap();
    register_picky(&rt, 2);
    let ids: Vec<_> = (0..5).map(|n| rt.invoke_async("f", n).unwrap()).collect();
    rt.run_until_idle();
    assert_eq!(rt.function_metrics("f").unwrap().duplicates, 5);
    audit.assert_each_ended_once();
    for id in ids {
        assert_eq!(audit.endings(id), vec![(Condition::Success, 1)]);
    }
}

#[test]
fn assert_each_ended_once_panics_with_the_timeline_of_an_event_still_queued() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    let done = rt.invoke_async("f", 1).unwrap();
    let waiting = rt.invoke_async("f", 2).unwrap();
    rt.try_dispatch().unwrap(); // only the first runs

    let message = panic_message(|| audit.assert_each_ended_once());
    assert!(
        message.contains("1 request(s) did not end exactly once"),
        "{message}"
    );
    assert!(
        message.contains(&format!("request {waiting} ended 0 time(s)")),
        "{message}"
    );
    assert!(
        message.contains(&format!("timeline of request {waiting}")),
        "{message}"
    );
    assert!(message.contains("accepted (chain depth 1)"), "{message}");
    assert!(
        !message.contains(&done.to_string()),
        "only the offender is shown: {message}"
    );

    rt.run_until_idle();
    audit.assert_each_ended_once();
}

#[test]
#[should_panic(expected = "did not end exactly once")]
fn assert_each_ended_once_panics_while_a_retry_is_pending() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    rt.invoke_async("f", 100).unwrap();
    rt.try_dispatch().unwrap(); // attempt 1 fails; the retry waits for 60 s
    audit.assert_each_ended_once();
}

#[test]
fn assert_ended_passes_on_the_right_condition_and_count() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 1);
    let good = rt.invoke_async("f", 1).unwrap();
    let bad = rt.invoke_async("f", 100).unwrap();
    rt.run_until_idle();
    audit.assert_ended(good, Condition::Success, 1);
    audit.assert_ended(bad, Condition::RetriesExhausted, 2);
}

#[test]
fn assert_ended_panics_with_the_timeline_on_a_wrong_condition() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 1);
    let bad = rt.invoke_async("f", 100).unwrap();
    rt.run_until_idle();

    let message = panic_message(|| audit.assert_ended(bad, Condition::Success, 2));
    assert!(
        message.contains(&format!(
            "request {bad}: expected to end once as Success after 2 execution(s)"
        )),
        "{message}"
    );
    assert!(message.contains("RetriesExhausted"), "{message}");
    assert!(
        message.contains(&format!("timeline of request {bad}")),
        "{message}"
    );
    assert_in_order(
        &message,
        &[
            "accepted",
            "attempt 1 failed",
            "retry scheduled for 60s",
            "attempt 2 failed",
            "ended RetriesExhausted after 2 execution(s)",
        ],
    );
}

#[test]
fn assert_ended_panics_with_the_timeline_on_a_wrong_count() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    let good = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    let message = panic_message(|| audit.assert_ended(good, Condition::Success, 2));
    assert!(message.contains("after 2 execution(s)"), "{message}");
    assert!(message.contains("[(Success, 1)]"), "{message}");
    assert!(
        message.contains("ended Success after 1 execution(s)"),
        "{message}"
    );
}

#[test]
#[should_panic(expected = "timeline of request")]
fn assert_ended_panics_for_an_event_that_has_not_ended() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    let id = rt.invoke_async("f", 1).unwrap();
    audit.assert_ended(id, Condition::Success, 1);
}

#[test]
fn the_timeline_shows_accepted_attempts_retries_throttles_duplicates_and_the_ending_in_order() {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock.clone())
        .on_trace(audit.tracer())
        .zero_concurrency(ZeroConcurrency::Throttle)
        .fault_injection(FaultInjection::new(1).duplicates(1.0))
        .build()
        .unwrap();
    rt.register(
        Function::new("f", |_: &u32, ctx| {
            if ctx.approximate_invoke_count() < 3 {
                return Err(FunctionError::new("NotYet", "try again"));
            }
            Ok(())
        })
        .retry_policy(RetryPolicy::builder().throttle_jitter(0.0).build().unwrap()),
    )
    .unwrap();
    let id = rt.invoke_async("f", 1).unwrap();

    rt.run_until(Timestamp::from_secs(170)); // attempt 1 at 0 s, attempt 2 at 60 s
    rt.set_reserved_concurrency("f", Some(0)).unwrap();
    rt.run_until(Timestamp::from_secs(180)); // the retry at 180 s is throttled
    rt.set_reserved_concurrency("f", None).unwrap();
    rt.run_until_idle(); // attempt 3 at 181 s succeeds, then its duplicate runs

    let timeline = audit.timeline(id);
    println!("{timeline}");
    assert!(
        timeline.starts_with(&format!("timeline of request {id}:\n")),
        "{timeline}"
    );
    assert_in_order(
        &timeline,
        &[
            "0ns  f  accepted (chain depth 1)",
            "0ns  f  attempt 1 started on code version 1",
            "0ns  f  attempt 1 failed: NotYet: try again",
            "0ns  f  retry scheduled for 60s",
            "60s  f  attempt 2 started",
            "60s  f  attempt 2 failed",
            "60s  f  retry scheduled for 180s",
            "180s  f  throttled, back off until 181s",
            "181s  f  attempt 3 started",
            "181s  f  attempt 3 succeeded",
            "181s  f  duplicate delivery injected",
            "181s  f  ended Success after 3 execution(s)",
            "181s  f  attempt 3 started on code version 1 (duplicate delivery)",
            "181s  f  attempt 3 succeeded (duplicate delivery)",
        ],
    );
    let lines = timeline.lines().count();
    assert_eq!(lines, 1 + 14, "a header and one line per step:\n{timeline}");
    audit.assert_ended(id, Condition::Success, 3);
}

#[test]
fn the_timeline_of_an_unknown_request_says_nothing_was_recorded() {
    let audit = OutcomeAudit::new();
    let timeline = audit.timeline(RequestId::from_u64(42));
    assert!(timeline.contains("(no step recorded)"), "{timeline}");
}

#[test]
fn count_tallies_the_endings_by_condition() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 0);
    for n in [1, 2, 3, 100, 200] {
        rt.invoke_async("f", n).unwrap();
    }
    rt.run_until_idle();
    rt.pause("f").unwrap();
    rt.invoke_async("f", 4).unwrap();
    rt.purge("f").unwrap();

    assert_eq!(audit.count(Condition::Success), 3);
    assert_eq!(audit.count(Condition::RetriesExhausted), 2);
    assert_eq!(audit.count(Condition::Purged), 1);
    assert_eq!(audit.count(Condition::EventAgeExceeded), 0);
    let total: usize = Condition::ALL.iter().map(|c| audit.count(*c)).sum();
    assert_eq!(total, 6);
    audit.assert_each_ended_once();
}

#[test]
fn endings_lists_how_a_request_ended() {
    let clock = ManualClock::new();
    let (rt, audit) = audited(&clock);
    register_picky(&rt, 2);
    let good = rt.invoke_async("f", 1).unwrap();
    let bad = rt.invoke_async("f", 100).unwrap();
    let aged = rt.invoke_async("f", 2).unwrap();
    rt.try_dispatch().unwrap();
    rt.try_dispatch().unwrap();
    assert_eq!(audit.endings(good), vec![(Condition::Success, 1)]);
    assert!(audit.endings(bad).is_empty(), "a retry is pending");
    assert!(audit.endings(aged).is_empty(), "still queued");
    assert!(audit.endings(RequestId::from_u64(999)).is_empty());

    rt.pause("f").unwrap();
    rt.run_for(Duration::from_secs(7 * 3600));
    assert_eq!(audit.endings(bad), vec![(Condition::EventAgeExceeded, 1)]);
    assert_eq!(audit.endings(aged), vec![(Condition::EventAgeExceeded, 0)]);
    audit.assert_each_ended_once();
}

#[test]
fn clones_of_an_audit_share_one_log() {
    let clock = ManualClock::new();
    let audit = OutcomeAudit::new();
    let copy = audit.clone();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock)
        .on_trace(copy.tracer())
        .build()
        .unwrap();
    register_picky(&rt, 2);
    let id = rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    audit.assert_ended(id, Condition::Success, 1);
    assert_eq!(copy.accepted(), audit.accepted());
    assert!(format!("{audit:?}").contains("accepted: 1"));
}
