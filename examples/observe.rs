//! Observing the engine: a failing handler's `tracing` spans and events, then Lambda's metrics
//! as a `metrics` recorder received them.
//!
//! Run with `cargo run --example observe --features tracing,metrics`.
//!
//! Any `tracing` subscriber and any `metrics` recorder work (a Prometheus exporter, for
//! instance); this example prints with `tracing_subscriber::fmt` and reads the metrics back
//! from `metrics_util`'s debugging recorder.

use std::time::Duration;

use event_invoke::{Destination, Function, FunctionError, ManualClock, Runtime};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spans and events from DEBUG up, without wall-clock times: the `at` field of each step is
    // the runtime's (virtual) clock.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .without_time()
        .init();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;
    event_invoke::describe_metrics();

    let clock = ManualClock::new();
    let rt: Runtime<u64> = Runtime::builder().clock(clock.clone()).build()?;
    rt.register(Function::new("notify-support", |amount: &u64, _ctx| {
        tracing::info!(amount, "paging support about a declined card");
        Ok(())
    }))?;
    let handler_clock = clock.clone();
    rt.register(
        Function::new("charge-card", move |amount: &u64, ctx| {
            handler_clock.advance(Duration::from_millis(120)); // each attempt takes 120 ms
                                                               // Inside the handler, the user's own events nest under the attempt's span.
            tracing::info!(amount, attempt = ctx.approximate_invoke_count(), "charging");
            if *amount > 100 {
                return Err(FunctionError::new("CardDeclined", "amount over the limit"));
            }
            Ok(())
        })
        .on_failure(Destination::function("notify-support", |r| {
            r.request_payload
        })),
    )?;

    rt.invoke_async("charge-card", 40)?;
    rt.invoke_async("charge-card", 500)?; // fails, retried after 1 and 2 minutes, then dropped
    rt.run_until_idle();

    println!("\nmetrics (Duration and AsyncEventAge in milliseconds):");
    let mut lines: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.to_string(),
                DebugValue::Histogram(xs) => format!("{xs:?}"),
            };
            format!("  {:<28} {:<46} {value}", key.name(), labels.join(", "))
        })
        .collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
