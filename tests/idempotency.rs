//! `IdempotencyCheck`: the "done when": non-idempotent handlers are caught, idempotent
//! ones pass, under 200 seeds each, reproducibly.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_invoke::{Context, FaultInjection, FunctionError, IdempotencyCheck, RequestId};

type Ctx<'a, P> = Context<'a, P, ()>;
type Outcome = Result<(), FunctionError>;

const EVENTS: [u32; 8] = [3, 1, 4, 1, 5, 9, 2, 6];

fn check() -> IdempotencyCheck<u32> {
    IdempotencyCheck::new(EVENTS)
}

// ----- handlers under test ------------------------------------------------------------------

/// Not idempotent: adds every delivery to a running total.
fn counter() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> u64,
) {
    let total = Arc::new(AtomicU64::new(0));
    let t = Arc::clone(&total);
    let handler = move |n: &u32, _ctx: &Ctx<'_, u32>| {
        t.fetch_add(u64::from(*n), Ordering::SeqCst);
        Ok(())
    };
    (handler, move || total.load(Ordering::SeqCst))
}

/// Not idempotent: appends every delivery to a list, without a dedup key. The effect is the
/// sorted list, so only extra (or missing) entries count, not their order.
fn appender() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> Vec<u32>,
) {
    let rows = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&rows);
    let handler = move |n: &u32, _ctx: &Ctx<'_, u32>| {
        r.lock().unwrap().push(*n);
        Ok(())
    };
    let observe = move || {
        let mut rows = rows.lock().unwrap().clone();
        rows.sort_unstable();
        rows
    };
    (handler, observe)
}

/// Idempotent: the same list, deduplicated by request id.
fn appender_deduped_by_request_id() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> Vec<u32>,
) {
    let state: Arc<Mutex<(HashSet<RequestId>, Vec<u32>)>> = Arc::default();
    let s = Arc::clone(&state);
    let handler = move |n: &u32, ctx: &Ctx<'_, u32>| {
        let mut s = s.lock().unwrap();
        if s.0.insert(ctx.request_id()) {
            s.1.push(*n);
        }
        Ok(())
    };
    let observe = move || {
        let mut rows = state.lock().unwrap().1.clone();
        rows.sort_unstable();
        rows
    };
    (handler, observe)
}

/// Idempotent: the running total, deduplicated by request id.
fn counter_deduped_by_request_id() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> u64,
) {
    let state: Arc<Mutex<(HashSet<RequestId>, u64)>> = Arc::default();
    let s = Arc::clone(&state);
    let handler = move |n: &u32, ctx: &Ctx<'_, u32>| {
        let mut s = s.lock().unwrap();
        if s.0.insert(ctx.request_id()) {
            s.1 += u64::from(*n);
        }
        Ok(())
    };
    (handler, move || state.lock().unwrap().1)
}

/// Not idempotent under reordering: the last write wins.
fn last_write_wins() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> Option<u32>,
) {
    let value = Arc::new(Mutex::new(None));
    let v = Arc::clone(&value);
    let handler = move |n: &u32, _ctx: &Ctx<'_, u32>| {
        *v.lock().unwrap() = Some(*n);
        Ok(())
    };
    (handler, move || *value.lock().unwrap())
}

/// Idempotent and order-free: keeps the highest value seen (a version check).
fn highest_write_wins() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> Option<u32>,
) {
    let value = Arc::new(Mutex::new(None));
    let v = Arc::clone(&value);
    let handler = move |n: &u32, _ctx: &Ctx<'_, u32>| {
        let mut v = v.lock().unwrap();
        *v = Some(v.map_or(*n, |old: u32| old.max(*n)));
        Ok(())
    };
    (handler, move || *value.lock().unwrap())
}

/// Idempotent, with real failures: payloads divisible by 3 fail on their first attempt (the
/// work is only done by an attempt that succeeds), the others do the work and succeed.
fn flaky_but_deduped() -> (
    impl Fn(&u32, &Ctx<'_, u32>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> u64,
) {
    let state: Arc<Mutex<(HashSet<RequestId>, u64)>> = Arc::default();
    let s = Arc::clone(&state);
    let handler = move |n: &u32, ctx: &Ctx<'_, u32>| {
        if n % 3 == 0 && ctx.approximate_invoke_count() == 1 {
            return Err(FunctionError::new("Upstream.Unavailable", "try later"));
        }
        let mut s = s.lock().unwrap();
        if s.0.insert(ctx.request_id()) {
            s.1 += u64::from(*n);
        }
        Ok(())
    };
    (handler, move || state.lock().unwrap().1)
}

#[derive(Debug, Clone, PartialEq)]
struct Order {
    order_id: u32,
    amount_cents: u64,
}

fn orders() -> Vec<Order> {
    // Order 2 comes twice, as two events with two request ids (a client that resent it).
    [(1, 500), (2, 1250), (3, 99), (2, 1250), (4, 10_000), (5, 1)]
        .into_iter()
        .map(|(order_id, amount_cents)| Order {
            order_id,
            amount_cents,
        })
        .collect()
}

type Ledger = (BTreeMap<u32, u64>, u64);

/// Idempotent: charges each order once, keyed by the order id carried in the payload.
fn charge_once_per_order() -> (
    impl Fn(&Order, &Ctx<'_, Order>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> Ledger,
) {
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let l = Arc::clone(&ledger);
    let handler = move |o: &Order, _ctx: &Ctx<'_, Order>| {
        let mut l = l.lock().unwrap();
        if l.0.insert(o.order_id, o.amount_cents).is_none() {
            l.1 += o.amount_cents;
        }
        Ok(())
    };
    (handler, move || ledger.lock().unwrap().clone())
}

/// Not idempotent: charges every delivery.
fn charge_every_delivery() -> (
    impl Fn(&Order, &Ctx<'_, Order>) -> Outcome + Send + Sync + 'static,
    impl FnOnce() -> u64,
) {
    let charged = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&charged);
    let handler = move |o: &Order, _ctx: &Ctx<'_, Order>| {
        c.fetch_add(o.amount_cents, Ordering::SeqCst);
        Ok(())
    };
    (handler, move || charged.load(Ordering::SeqCst))
}

// ----- caught ---------------------------------------------------------------------------------

#[test]
fn a_counter_incremented_per_delivery_is_caught() {
    let violation = check().run(counter).unwrap_err();
    let clean: u64 = EVENTS.iter().map(|n| u64::from(*n)).sum();
    assert_eq!(violation.expected, clean);
    assert!(violation.actual > clean, "{violation}");
    assert!(violation.seed < 200);
    assert!(
        violation
            .deliveries
            .iter()
            .any(|d| d.duplicate || d.attempt > 1),
        "some event was delivered more than once: {violation}"
    );
}

#[test]
fn an_append_without_a_dedup_key_is_caught() {
    let violation = check().run(appender).unwrap_err();
    let mut clean = EVENTS.to_vec();
    clean.sort_unstable();
    assert_eq!(violation.expected, clean);
    assert!(
        violation.actual.len() > clean.len(),
        "rows were appended twice: {violation}"
    );
    assert!(violation.deliveries.len() > EVENTS.len());
}

#[test]
fn charging_every_delivery_of_an_order_is_caught() {
    let violation = IdempotencyCheck::new(orders())
        .run(charge_every_delivery)
        .unwrap_err();
    assert_eq!(violation.expected, 500 + 1250 + 99 + 1250 + 10_000 + 1);
    assert!(violation.actual > violation.expected, "{violation}");
}

#[test]
fn a_last_write_wins_handler_is_caught_by_reordering_alone() {
    let check = check().faults(FaultInjection::new(0).reorder(0.5)).unwrap();
    let violation = check.run(last_write_wins).unwrap_err();
    assert_eq!(violation.expected, Some(*EVENTS.last().unwrap()));
    assert_ne!(violation.actual, violation.expected);
    // No duplicate, no failure: every event ran once, in another order.
    assert_eq!(violation.deliveries.len(), EVENTS.len());
    assert!(violation
        .deliveries
        .iter()
        .all(|d| !d.duplicate && d.attempt == 1));
    let mut events: Vec<_> = violation.deliveries.iter().map(|d| d.event).collect();
    let last = *events.last().unwrap();
    assert_eq!(violation.actual, Some(EVENTS[last]), "{violation}");
    events.sort_unstable();
    assert_eq!(events, (0..EVENTS.len()).collect::<Vec<_>>());
}

#[test]
fn a_last_write_wins_handler_is_caught_by_the_default_faults() {
    let violation = check().run(last_write_wins).unwrap_err();
    assert_ne!(violation.actual, violation.expected);
}

#[test]
fn the_violation_reports_the_first_failing_seed_and_a_replay_reproduces_it() {
    // Rare duplicates, so that some seeds pass before one fails (whichever rarity does that
    // first for this RNG).
    let (check, violation) = [0.05, 0.03, 0.02, 0.01, 0.005]
        .into_iter()
        .map(|p| {
            let check = check()
                .faults(FaultInjection::new(0).duplicates(p))
                .unwrap();
            let violation = check.run(counter).unwrap_err();
            (check, violation)
        })
        .find(|(_, v)| v.seed > 0)
        .expect("with rare enough duplicates, seed 0 passes");

    // Every seed below the reported one passes...
    let below = check.clone().seeds(0..violation.seed).run(counter).unwrap();
    assert_eq!(below.seeds, violation.seed);
    for seed in 0..violation.seed {
        let (effect, _, _) = check.replay(Some(seed), counter);
        assert_eq!(effect, violation.expected, "seed {seed} passes");
    }
    // ...and the reported one alone fails again, the same way.
    let again = check
        .clone()
        .seeds(violation.seed..violation.seed + 1)
        .run(counter)
        .unwrap_err();
    assert_eq!(again.seed, violation.seed);
    assert_eq!(again.actual, violation.actual);
    assert_eq!(again.deliveries, violation.deliveries);

    let (effect, deliveries, timeline) = check.replay(Some(violation.seed), counter);
    assert_eq!(effect, violation.actual);
    assert_eq!(deliveries, violation.deliveries);
    assert_eq!(timeline, violation.timeline);
    assert!(deliveries.iter().any(|d| d.duplicate));
    assert!(
        timeline.contains("duplicate delivery injected"),
        "{timeline}"
    );

    // A clean replay: every event once, in order, no duplicate.
    let (clean, clean_deliveries, _) = check.replay(None, counter);
    assert_eq!(clean, violation.expected);
    let order: Vec<_> = clean_deliveries
        .iter()
        .map(|d| (d.event, d.attempt, d.duplicate))
        .collect();
    let expected: Vec<_> = (0..EVENTS.len()).map(|i| (i, 1, false)).collect();
    assert_eq!(order, expected);
}

#[test]
fn the_violation_display_names_the_seed_and_the_deliveries() {
    let violation = check().run(counter).unwrap_err();
    let text = violation.to_string();
    assert!(
        text.contains(&format!("with fault seed {} ", violation.seed)),
        "{text}"
    );
    assert!(text.contains("IdempotencyCheck::replay("), "{text}");
    assert!(
        text.contains(&format!("clean run:  {}", violation.expected)),
        "{text}"
    );
    assert!(
        text.contains(&format!("seed {}: {}", violation.seed, violation.actual)),
        "{text}"
    );
    for d in &violation.deliveries {
        let line = format!(
            "event {} ({}) attempt {}{}",
            d.event,
            d.request_id,
            d.attempt,
            if d.duplicate { " duplicate" } else { "" }
        );
        assert!(text.contains(&line), "`{line}` missing from:\n{text}");
    }
    assert_eq!(format!("{violation:?}"), text, "Debug reads like Display");
    let as_error: Box<dyn std::error::Error> = Box::new(violation);
    assert_eq!(as_error.to_string(), text);
}

#[test]
fn the_violation_display_suggests_a_replay_call_that_compiles() {
    let violation = check().run(counter).unwrap_err();
    // `replay` takes `Option<u64>` (`None` is the clean run), so the call to copy is
    // `replay(Some(seed), ..)`; `replay(seed, ..)` does not type-check.
    let (effect, _, _) = check().replay(Some(violation.seed), counter);
    assert_eq!(effect, violation.actual);
    let text = violation.to_string();
    assert!(
        text.contains(&format!(
            "IdempotencyCheck::replay(Some({}), ..)",
            violation.seed
        )),
        "{text}"
    );
}

// ----- passed ---------------------------------------------------------------------------------

#[test]
fn an_append_deduplicated_by_request_id_passes_200_seeds() {
    let report = check().run(appender_deduped_by_request_id).unwrap();
    assert_eq!(report.seeds, 200);
    assert!(report.duplicates > 0, "{report:?}");
    assert!(report.injected_errors > 0, "{report:?}");
    assert!(
        report.deliveries > 200 * EVENTS.len() as u64,
        "more runs than events: {report:?}"
    );
}

#[test]
fn a_counter_deduplicated_by_request_id_passes_200_seeds() {
    let report = check().run(counter_deduped_by_request_id).unwrap();
    assert_eq!(report.seeds, 200);
    assert!(report.duplicates > 0 && report.injected_errors > 0);
}

#[test]
fn charging_once_per_order_id_passes_200_seeds() {
    let report = IdempotencyCheck::new(orders())
        .run(charge_once_per_order)
        .unwrap();
    assert_eq!(report.seeds, 200);
    assert!(report.duplicates > 0 && report.injected_errors > 0);
    // The business key also absorbs the client's resend, which a request id cannot.
    let (ledger, _, _) = IdempotencyCheck::new(orders()).replay(None, charge_once_per_order);
    assert_eq!(ledger.1, 500 + 1250 + 99 + 10_000 + 1);
    assert_eq!(ledger.0.len(), 5);
}

#[test]
fn an_order_free_highest_write_wins_handler_passes_200_seeds() {
    let report = check().run(highest_write_wins).unwrap();
    assert_eq!(report.seeds, 200);
}

#[test]
fn an_idempotent_handler_with_real_failures_passes_200_seeds() {
    let report = check().run(flaky_but_deduped).unwrap();
    assert_eq!(report.seeds, 200);
    // The real failures show in the clean run as retries of the same request.
    let (_, clean, _) = check().replay(None, flaky_but_deduped);
    let retried: HashSet<_> = clean
        .iter()
        .filter(|d| d.attempt == 2)
        .map(|d| d.event)
        .collect();
    let expected: HashSet<_> = EVENTS
        .iter()
        .enumerate()
        .filter(|(_, n)| *n % 3 == 0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(retried, expected);
}

#[test]
fn the_default_check_runs_200_seeds_and_a_custom_range_runs_that_many() {
    assert_eq!(
        check().run(counter_deduped_by_request_id).unwrap().seeds,
        200
    );
    let report = check()
        .seeds(1000..1010)
        .run(counter_deduped_by_request_id)
        .unwrap();
    assert_eq!(report.seeds, 10);
    let violation = check().seeds(1000..1200).run(counter).unwrap_err();
    assert!((1000..1200).contains(&violation.seed));
}

#[test]
fn faults_out_of_range_are_refused_when_given_to_the_check() {
    let err = event_invoke::IdempotencyCheck::new(vec![1u32])
        .faults(FaultInjection::new(0).duplicates(2.0))
        .unwrap_err();
    assert!(err.to_string().contains("duplicates"), "{err}");
}
