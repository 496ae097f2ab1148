//! Testing handlers for idempotency: Lambda delivers async events at least once, so a handler
//! may run twice for one event. This example checks four payment handlers under 200 seeds of
//! duplicate deliveries, lost responses, late retries and reordering.
//!
//! Run with `cargo run --release --example idempotency`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use event_invoke::{Context, FunctionError, IdempotencyCheck};

/// A payment to apply to an account.
#[derive(Debug, Clone)]
struct Payment {
    /// The business key: the same payment may be sent twice by its producer too.
    payment_id: String,
    account: &'static str,
    cents: i64,
}

type Ledger = HashMap<&'static str, i64>;

fn payments() -> Vec<Payment> {
    (0..8)
        .map(|i| Payment {
            payment_id: format!("pay-{i}"),
            account: if i % 2 == 0 { "alice" } else { "bob" },
            cents: 100 * (i + 1),
        })
        .collect()
}

fn main() {
    let check = IdempotencyCheck::new(payments());

    // 1. Not idempotent: adds to the balance on every delivery.
    let naive = check.run(|| {
        let ledger = Arc::new(Mutex::new(Ledger::new()));
        let l = ledger.clone();
        let handler = move |p: &Payment, _ctx: &Context<'_, Payment, ()>| {
            *l.lock().unwrap().entry(p.account).or_default() += p.cents;
            Ok::<(), FunctionError>(())
        };
        (handler, move || ledger.lock().unwrap().clone())
    });
    report("adds on every delivery", naive);

    // 2. Not idempotent: appends to a statement without a dedup key.
    let append = check.run(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let handler = move |p: &Payment, _ctx: &Context<'_, Payment, ()>| {
            l.lock().unwrap().push(p.payment_id.clone());
            Ok::<(), FunctionError>(())
        };
        (handler, move || {
            let mut lines = lines.lock().unwrap().clone();
            lines.sort(); // order aside: only duplicates should fail this one
            lines
        })
    });
    report("appends without a dedup key", append);

    // 3. Idempotent: remembers the request ids it applied.
    let by_request = check.run(|| {
        let state = Arc::new(Mutex::new((HashSet::new(), Ledger::new())));
        let s = state.clone();
        let handler = move |p: &Payment, ctx: &Context<'_, Payment, ()>| {
            let mut s = s.lock().unwrap();
            if s.0.insert(ctx.request_id()) {
                *s.1.entry(p.account).or_default() += p.cents;
            }
            Ok::<(), FunctionError>(())
        };
        (handler, move || state.lock().unwrap().1.clone())
    });
    report("dedups by request id", by_request);

    // 4. Idempotent: dedups by the business key, which also survives a producer that sends
    //    the same payment twice (two request ids).
    let by_key = check.run(|| {
        let state = Arc::new(Mutex::new((HashSet::new(), Ledger::new())));
        let s = state.clone();
        let handler = move |p: &Payment, _ctx: &Context<'_, Payment, ()>| {
            let mut s = s.lock().unwrap();
            if s.0.insert(p.payment_id.clone()) {
                *s.1.entry(p.account).or_default() += p.cents;
            }
            Ok::<(), FunctionError>(())
        };
        (handler, move || state.lock().unwrap().1.clone())
    });
    report("dedups by payment id", by_key);
}

fn report<S: std::fmt::Debug>(
    name: &str,
    result: Result<event_invoke::IdempotencyReport, event_invoke::IdempotencyViolation<S>>,
) {
    match result {
        Ok(r) => println!(
            "PASS  {name}: {} seeds, {} deliveries, {} duplicates, {} injected errors",
            r.seeds, r.deliveries, r.duplicates, r.injected_errors
        ),
        Err(v) => {
            println!("FAIL  {name}: first broken by seed {}", v.seed);
            for line in v.to_string().lines().take(6) {
                println!("      {line}");
            }
        }
    }
}
