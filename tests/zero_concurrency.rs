//! Reserved concurrency 0 (today's discard and 2018's throttle) and reservation accounting.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_invoke::{
    Condition, Error, EventState, Function, ManualClock, Runtime, StepOutcome, Timestamp,
    ZeroConcurrency, DEFAULT_UNRESERVED_FLOOR,
};

mod common;
use common::sink;

fn runtime(mode: ZeroConcurrency) -> (ManualClock, Runtime<u32>) {
    let clock = ManualClock::new();
    let rt = Runtime::builder()
        .clock(clock.clone())
        .zero_concurrency(mode)
        .build()
        .unwrap();
    (clock, rt)
}

/// A function that counts its runs.
fn counting(name: &str) -> (Function<u32, ()>, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let f = Function::new(name, move |_: &u32, _ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    (f, runs)
}

// ----- Discard (today's Lambda) ---------------------------------------------------------------

#[test]
fn zero_reserved_concurrency_accepts_events_then_ends_them_without_running() {
    let (clock, rt) = runtime(ZeroConcurrency::default());
    let (f, runs) = counting("stopped");
    let (on_failure, records) = sink();
    rt.register(f.reserved_concurrency(0).on_failure(on_failure))
        .unwrap();

    let ids: Vec<_> = (0..3)
        .map(|n| {
            rt.invoke_async("stopped", n)
                .expect("accepted: no check at enqueue")
        })
        .collect();
    assert_eq!(rt.function_metrics("stopped").unwrap().queue_ready, 3);

    let step = rt.try_dispatch().unwrap();
    assert_eq!(step.request_id, ids[0]);
    assert_eq!(
        step.outcome,
        StepOutcome::Ended(Condition::ZeroReservedConcurrency)
    );
    assert_eq!(rt.run_until_idle(), 2);

    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(clock.now(), Timestamp::ZERO, "no retry and no backoff");
    let got: Vec<_> = records.try_iter().collect();
    assert_eq!(got.iter().map(|r| r.request_id).collect::<Vec<_>>(), ids);
    for (n, r) in got.iter().enumerate() {
        assert_eq!(r.condition, Condition::ZeroReservedConcurrency);
        assert_eq!(r.approximate_invoke_count, 0);
        assert_eq!(r.request_payload, n as u32);
        assert!(r.response.is_none());
        assert_eq!(r.executed_version, None);
    }

    let m = rt.function_metrics("stopped").unwrap();
    assert_eq!(m.events_received, 3);
    assert_eq!((m.invocations, m.retries, m.throttles), (0, 0, 0));
    assert_eq!(m.outcome(Condition::ZeroReservedConcurrency), 3);
    assert_eq!(m.dropped(), 3);
    assert!(m.is_balanced());
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn zero_reserved_concurrency_without_destination_leaves_dead_letters() {
    let (_clock, rt) = runtime(ZeroConcurrency::Discard);
    let (f, _runs) = counting("stopped");
    rt.register(f.reserved_concurrency(0)).unwrap();
    let id = rt.invoke_async("stopped", 1).unwrap();
    rt.run_until_idle();
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, id);
    assert_eq!(dead[0].condition, Condition::ZeroReservedConcurrency);
}

#[test]
fn setting_reserved_concurrency_to_zero_discards_events_already_queued() {
    let (_clock, rt) = runtime(ZeroConcurrency::Discard);
    let (f, runs) = counting("f");
    rt.register(f).unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.invoke_async("f", 2).unwrap();
    rt.set_reserved_concurrency("f", Some(0)).unwrap();
    assert_eq!(rt.run_until_idle(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let m = rt.function_metrics("f").unwrap();
    assert_eq!(m.outcome(Condition::ZeroReservedConcurrency), 2);

    // Back to a positive reservation: new events run.
    rt.set_reserved_concurrency("f", Some(1)).unwrap();
    rt.invoke_async("f", 3).unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

// ----- Throttle (Lambda in 2018) --------------------------------------------------------------

#[test]
fn throttle_mode_keeps_events_queued_and_counts_growing_throttles() {
    let (clock, rt) = runtime(ZeroConcurrency::Throttle);
    let (f, runs) = counting("stopped");
    rt.register(f.reserved_concurrency(0)).unwrap();
    rt.invoke_async("stopped", 1).unwrap();
    rt.invoke_async("stopped", 2).unwrap();

    assert!(matches!(
        rt.try_dispatch().unwrap().outcome,
        StepOutcome::Throttled { .. }
    ));
    rt.run_for(Duration::from_secs(10));
    let early = rt.function_metrics("stopped").unwrap();
    assert!(
        early.throttles >= 4,
        "throttles so far: {}",
        early.throttles
    );
    rt.run_for(Duration::from_secs(120));
    let later = rt.function_metrics("stopped").unwrap();
    assert!(later.throttles > early.throttles);

    assert_eq!(clock.now().as_duration(), Duration::from_secs(130));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        (later.invocations, later.retries, later.finished()),
        (0, 0, 0)
    );
    assert_eq!(later.queue_depth(), 2);
    let snap = rt.queue_snapshot("stopped").unwrap();
    assert!(snap
        .iter()
        .all(|e| matches!(e.state, EventState::Delayed { .. }) && e.throttles > 0));
    assert!(
        snap.iter().all(|e| e.attempts == 0),
        "throttles use no attempt"
    );
    assert!(rt.drain_dead_letters().is_empty());
}

#[test]
fn raising_reserved_concurrency_releases_throttled_events() {
    let (_clock, rt) = runtime(ZeroConcurrency::Throttle);
    let (f, runs) = counting("stopped");
    let (on_success, records) = sink();
    rt.register(f.reserved_concurrency(0).on_success(on_success))
        .unwrap();
    let ids: Vec<_> = (0..3)
        .map(|n| rt.invoke_async("stopped", n).unwrap())
        .collect();
    rt.run_for(Duration::from_secs(30));
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    rt.set_reserved_concurrency("stopped", Some(5)).unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let mut got: Vec<_> = records.try_iter().collect();
    got.sort_by_key(|r| r.request_id);
    assert_eq!(got.iter().map(|r| r.request_id).collect::<Vec<_>>(), ids);
    for r in &got {
        assert_eq!(r.condition, Condition::Success);
        assert_eq!(r.approximate_invoke_count, 1);
    }
    let m = rt.function_metrics("stopped").unwrap();
    assert_eq!(m.outcome(Condition::Success), 3);
    assert!(m.throttles > 0);
}

#[test]
fn removing_the_reservation_releases_throttled_events() {
    let (_clock, rt) = runtime(ZeroConcurrency::Throttle);
    let (f, runs) = counting("stopped");
    rt.register(f.reserved_concurrency(0)).unwrap();
    rt.invoke_async("stopped", 1).unwrap();
    rt.run_for(Duration::from_secs(5));
    assert!(rt.function_metrics("stopped").unwrap().throttles > 0);

    rt.set_reserved_concurrency("stopped", None).unwrap();
    rt.run_until_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        rt.function_metrics("stopped")
            .unwrap()
            .outcome(Condition::Success),
        1
    );
}

#[test]
fn throttled_events_age_out_when_concurrency_is_never_raised() {
    let (clock, rt) = runtime(ZeroConcurrency::Throttle);
    let (f, runs) = counting("stopped");
    rt.register(
        f.reserved_concurrency(0)
            .maximum_event_age(Duration::from_secs(120)),
    )
    .unwrap();
    rt.invoke_async("stopped", 1).unwrap();
    rt.run_until_idle();
    assert!(clock.now().as_duration() <= Duration::from_secs(120));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let dead = rt.drain_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].condition, Condition::EventAgeExceeded);
    assert_eq!(dead[0].approximate_invoke_count, 0);
}

// ----- reservation accounting --------------------------------------------------------------

#[test]
fn reserving_more_than_the_account_leaves_is_refused() {
    let (_clock, rt) = runtime(ZeroConcurrency::Discard);
    let (a, _) = counting("a");
    rt.register(a.reserved_concurrency(400)).unwrap();

    let (b, _) = counting("b");
    let err = rt.register(b.reserved_concurrency(501)).unwrap_err();
    assert_eq!(
        err,
        Error::ReservedConcurrencyExceeded {
            function: "b".into(),
            requested: 501,
            available: 500,
            account_limit: 1000,
            reserved_elsewhere: 400,
            unreserved_floor: DEFAULT_UNRESERVED_FLOOR,
        }
    );
    assert!(
        rt.function("b").is_none(),
        "a refused registration changes nothing"
    );

    let (b, _) = counting("b");
    rt.register(b.reserved_concurrency(500)).unwrap();

    // Through update_config too: `a` may keep its 400 but not grow.
    let err = rt.set_reserved_concurrency("a", Some(401)).unwrap_err();
    assert!(matches!(
        err,
        Error::ReservedConcurrencyExceeded {
            requested: 401,
            available: 400,
            reserved_elsewhere: 500,
            ..
        }
    ));
    assert_eq!(rt.config("a").unwrap().reserved_concurrency, Some(400));
    rt.set_reserved_concurrency("a", Some(400)).unwrap();

    // Releasing a reservation makes room again.
    rt.set_reserved_concurrency("b", None).unwrap();
    rt.set_reserved_concurrency("a", Some(900)).unwrap();
}

#[test]
fn deleting_a_function_returns_its_reservation_to_the_account() {
    let (_clock, rt) = runtime(ZeroConcurrency::Discard);
    let (a, _) = counting("a");
    rt.register(a.reserved_concurrency(900)).unwrap();
    let (b, _) = counting("b");
    assert!(rt.register(b.reserved_concurrency(1)).is_err());
    rt.delete("a").unwrap();
    let (b, _) = counting("b");
    rt.register(b.reserved_concurrency(900)).unwrap();
}

#[test]
fn account_concurrency_cannot_drop_below_reservations_plus_the_floor() {
    let (_clock, rt) = runtime(ZeroConcurrency::Discard);
    let (a, _) = counting("a");
    rt.register(a.reserved_concurrency(300)).unwrap();

    let err = rt.set_account_concurrency(399).unwrap_err();
    assert_eq!(
        err,
        Error::AccountConcurrencyTooLow {
            requested: 399,
            reserved: 300,
            unreserved_floor: 100,
            minimum: 400,
        }
    );
    assert_eq!(rt.account_concurrency(), 1000);

    rt.set_account_concurrency(400).unwrap();
    assert_eq!(rt.account_concurrency(), 400);
    // Now nothing more can be reserved.
    assert!(matches!(
        rt.set_reserved_concurrency("a", Some(301)),
        Err(Error::ReservedConcurrencyExceeded { available: 300, .. })
    ));
    let (b, _) = counting("b");
    assert!(rt.register(b.reserved_concurrency(1)).is_err());
    let (b, _) = counting("b");
    rt.register(b.reserved_concurrency(0)).unwrap();
}

#[test]
fn custom_account_limit_and_floor_bound_reservations() {
    let clock = ManualClock::new();
    let rt: Runtime<u32> = Runtime::builder()
        .clock(clock)
        .account_concurrency(10)
        .unreserved_floor(2)
        .build()
        .unwrap();
    let (a, _) = counting("a");
    assert!(matches!(
        rt.register(a.reserved_concurrency(9)),
        Err(Error::ReservedConcurrencyExceeded {
            available: 8,
            account_limit: 10,
            unreserved_floor: 2,
            ..
        })
    ));
    let (a, _) = counting("a");
    rt.register(a.reserved_concurrency(8)).unwrap();
    assert!(matches!(
        rt.set_account_concurrency(9),
        Err(Error::AccountConcurrencyTooLow { minimum: 10, .. })
    ));
}
