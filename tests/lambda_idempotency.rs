//! Feature `lambda`: handlers written in `lambda_runtime`'s own style (an async fn over
//! `LambdaEvent<serde_json::Value>` that keys on `event.context.request_id`) tested against
//! Lambda's at-least-once delivery: retries, injected duplicates and `IdempotencyCheck`. The
//! naive handler is caught; the deduplicating one passes.
#![cfg(feature = "lambda")]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use event_invoke::{
    FaultInjection, Function, IdempotencyCheck, LambdaHandler, ManualClock, Runtime,
};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// The ledger both handlers write: account -> balance in cents.
type Ledger = Arc<Mutex<BTreeMap<String, i64>>>;

/// Not idempotent: every delivery credits the account.
async fn credit_naive(ledger: Ledger, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let account = event.payload["account"].as_str().ok_or("no account")?;
    let cents = event.payload["cents"].as_i64().ok_or("no cents")?;
    tokio::task::yield_now().await; // a call to a store would be here
    *ledger
        .lock()
        .unwrap()
        .entry(account.to_string())
        .or_default() += cents;
    Ok(json!({ "credited": cents }))
}

/// Idempotent: a request id already applied is skipped (Lambda's request id is the same on
/// every retry and duplicate delivery of one event).
async fn credit_once(
    ledger: Ledger,
    applied: Arc<Mutex<HashSet<String>>>,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let account = event.payload["account"].as_str().ok_or("no account")?;
    let cents = event.payload["cents"].as_i64().ok_or("no cents")?;
    tokio::task::yield_now().await;
    if applied
        .lock()
        .unwrap()
        .insert(event.context.request_id.clone())
    {
        *ledger
            .lock()
            .unwrap()
            .entry(account.to_string())
            .or_default() += cents;
    }
    Ok(json!({ "credited": cents }))
}

fn deposits() -> Vec<Value> {
    (1..=6)
        .map(|i| json!({ "account": format!("acct-{}", i % 3), "cents": 100 * i }))
        .collect()
}

#[test]
fn idempotency_check_catches_the_naive_lambda_handler() {
    let check = IdempotencyCheck::new(deposits()).seeds(0..100);
    let result = check.run(|| {
        let ledger: Ledger = Arc::default();
        let state = Arc::clone(&ledger);
        let handler = LambdaHandler::new(service_fn(move |event| {
            credit_naive(Arc::clone(&state), event)
        }))
        .into_handler();
        (handler, move || ledger.lock().unwrap().clone())
    });
    let violation = result.unwrap_err();
    let total = |ledger: &BTreeMap<String, i64>| ledger.values().sum::<i64>();
    assert_eq!(total(&violation.expected), 2_100);
    assert!(total(&violation.actual) > 2_100, "{violation}");
    assert!(
        violation
            .deliveries
            .iter()
            .any(|d| d.duplicate || d.attempt > 1),
        "the violation shows the repeated delivery: {violation}"
    );
}

#[test]
fn idempotency_check_passes_the_lambda_handler_that_dedups_by_request_id() {
    let check = IdempotencyCheck::new(deposits()).seeds(0..100);
    let report = check
        .run(|| {
            let ledger: Ledger = Arc::default();
            let applied: Arc<Mutex<HashSet<String>>> = Arc::default();
            let (state, seen) = (Arc::clone(&ledger), applied);
            let handler = LambdaHandler::new(service_fn(move |event| {
                credit_once(Arc::clone(&state), Arc::clone(&seen), event)
            }))
            .into_handler();
            (handler, move || ledger.lock().unwrap().clone())
        })
        .unwrap();
    assert_eq!(report.seeds, 100);
    assert!(
        report.duplicates > 0 && report.injected_errors > 0,
        "{report:?}"
    );
}

/// One runtime with a function registered from a `lambda_runtime` service, its ledger, and
/// every request id the handler saw, in order.
fn ledger_runtime(
    faults: Option<FaultInjection>,
    dedup: bool,
) -> (Runtime<Value, Value>, Ledger, Arc<Mutex<Vec<String>>>) {
    let mut builder = Runtime::builder().clock(ManualClock::new());
    if let Some(faults) = faults {
        builder = builder.fault_injection(faults);
    }
    let rt = builder.build().unwrap();
    let ledger: Ledger = Arc::default();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let applied: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (state, log) = (Arc::clone(&ledger), Arc::clone(&seen));
    rt.register(Function::lambda(
        "credit",
        service_fn(move |event: LambdaEvent<Value>| {
            log.lock().unwrap().push(event.context.request_id.clone());
            let (state, applied) = (Arc::clone(&state), Arc::clone(&applied));
            async move {
                if dedup {
                    credit_once(state, applied, event).await
                } else {
                    credit_naive(state, event).await
                }
            }
        }),
    ))
    .unwrap();
    (rt, ledger, seen)
}

#[test]
fn an_injected_duplicate_reaches_the_handler_with_the_same_request_id() {
    for dedup in [false, true] {
        let faults = FaultInjection::new(1).duplicates(1.0);
        let (rt, ledger, seen) = ledger_runtime(Some(faults), dedup);
        let id = rt
            .invoke_async("credit", json!({ "account": "a", "cents": 250 }))
            .unwrap();
        rt.run_until_idle();
        assert_eq!(*seen.lock().unwrap(), vec![id.to_string(), id.to_string()]);
        let balance = ledger.lock().unwrap()["a"];
        assert_eq!(balance, if dedup { 250 } else { 500 }, "dedup: {dedup}");
        let m = rt.function_metrics("credit").unwrap();
        assert_eq!((m.finished(), m.duplicates), (1, 1));
    }
}

#[test]
fn a_lost_response_is_retried_with_the_same_request_id_and_only_the_naive_handler_pays_twice() {
    for dedup in [false, true] {
        // Every success is reported failed once the work is done (a lost response), so each
        // event runs its first try and both retries.
        let faults = FaultInjection::new(3).function_errors(1.0);
        let (rt, ledger, seen) = ledger_runtime(Some(faults), dedup);
        let id = rt
            .invoke_async("credit", json!({ "account": "b", "cents": 100 }))
            .unwrap();
        rt.run_until_idle();
        assert_eq!(*seen.lock().unwrap(), vec![id.to_string(); 3]);
        let balance = ledger.lock().unwrap()["b"];
        assert_eq!(balance, if dedup { 100 } else { 300 }, "dedup: {dedup}");
    }
}
