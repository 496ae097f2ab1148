//! Your Lambda handler, tested here, deployed there: one handler written for AWS Lambda's Rust
//! runtime (`lambda_runtime`), run here under Lambda's asynchronous semantics (a failure, then
//! Lambda's retries a minute and two minutes later, in virtual time), and the `main` that
//! deploys the same handler to Lambda.
//!
//! Run here with `cargo run --example lambda_handler --features lambda`. Inside Lambda (where
//! `AWS_LAMBDA_RUNTIME_API` is set) the same binary serves the handler instead.

use std::sync::atomic::{AtomicU32, Ordering};

use event_invoke::{Function, ManualClock, Runtime, TraceKind};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Calls to the payment provider so far; it is down for the first two.
static PROVIDER_CALLS: AtomicU32 = AtomicU32::new(0);

/// The handler, exactly as it is deployed: an async fn over `LambdaEvent<Value>`.
async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let order = event.payload["order"]
        .as_u64()
        .ok_or("the event has no order")?;
    // The payment provider (a stub here): unavailable on the first two calls.
    if PROVIDER_CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(format!("payment provider unavailable for order {order}").into());
    }
    // The request id is the same on every retry: the provider's idempotency key.
    Ok(json!({ "order": order, "charged": true, "idempotency_key": event.context.request_id }))
}

fn main() -> Result<(), Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return deploy();
    }

    // Here: the handler under Lambda's asynchronous invocation semantics, in virtual time.
    let clock = ManualClock::new();
    let steps = clock.clone();
    let rt: Runtime<Value, Value> = Runtime::builder()
        .clock(clock.clone())
        .on_trace(move |event| {
            let at = steps.now().as_duration().as_secs();
            match &event.kind {
                TraceKind::Failed { attempt, error, .. } => {
                    println!("{at:>4} s  attempt {attempt}: {}", error.message())
                }
                TraceKind::Succeeded { attempt, .. } => {
                    println!("{at:>4} s  attempt {attempt}: success")
                }
                TraceKind::Ended { condition, .. } => println!("{at:>4} s  ended: {condition}"),
                _ => {}
            }
        })
        .build()?;
    rt.register(Function::lambda("charge", service_fn(charge)))?;
    let id = rt.invoke_async("charge", json!({ "order": 7 }))?; // Lambda's 202: returns at once
    rt.run_until_idle(); // the first try, then the retries at 60 s and 180 s
    let m = rt.function_metrics("charge")?;
    println!(
        "request {id}: {} invocations, {} errors, {} s of virtual time",
        m.invocations,
        m.errors,
        clock.now().as_duration().as_secs()
    );
    Ok(())
}

/// There: the same handler served on AWS Lambda. This is the `main` a function of its own
/// would have (with `#[tokio::main]`); the runtime is built by hand here only so that the
/// example needs no tokio macros.
fn deploy() -> Result<(), Error> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(lambda_runtime::run(service_fn(charge)))
}
