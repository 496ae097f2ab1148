//! Lambda's JSON: the destination record of a failing handler, and a function's settings
//! exported to AWS JSON, imported back, and the settings AWS has no place for.
//!
//! Run with `cargo run --example lambda_json --features serde`.

use std::time::Duration;

use event_invoke::{
    AwsFunctionSettings, Destination, Function, FunctionConfig, FunctionError, InvocationRecord,
    LambdaJson, ManualClock, Runtime,
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
struct Order {
    order_id: String,
    amount_cents: u64,
}

type Record = InvocationRecord<Order, ()>;

fn forward(r: &Record) -> Order {
    r.request_payload.clone()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A handler that always fails: two retries under virtual time, then RetriesExhausted.
    let clock = ManualClock::new();
    let rt: Runtime<Order> = Runtime::builder().clock(clock).build()?;
    let (tx, failed) = crossbeam_channel::unbounded();
    rt.register(
        Function::new("charge-card", |order: &Order, _ctx| {
            Err(FunctionError::new(
                "CardDeclined",
                format!("card declined for order {}", order.order_id),
            ))
        })
        .on_failure(Destination::channel(tx)),
    )?;
    // Map the runtime's clock (virtual time zero, right now) to the wall clock.
    let lambda = LambdaJson::for_runtime(&rt)
        .region("eu-west-1")
        .account_id("111122223333");
    rt.invoke_async(
        "charge-card",
        Order {
            order_id: "o-1042".into(),
            amount_cents: 12_999,
        },
    )?;
    rt.run_until_idle();
    let record = failed.try_recv()?;
    println!("== the on-failure destination record, as Lambda would send it");
    println!("{}", serde_json::to_string_pretty(&lambda.record(&record))?);

    // 2. A config within Lambda's ranges: export, import, apply, export again.
    let f: Function<Order, ()> = Function::new("ship", |_: &Order, _ctx| Ok(()))
        .maximum_retry_attempts(1)
        .maximum_event_age(Duration::from_secs(3600))
        .reserved_concurrency(20)
        .on_failure(Destination::function("ship-failures", forward));
    let export = lambda.export_config(f.name(), f.config());
    println!("\n== aws lambda put-function-event-invoke-config --cli-input-json");
    println!(
        "{}",
        serde_json::to_string_pretty(&export.event_invoke_config)?
    );
    if let Some(concurrency) = &export.function_concurrency {
        println!("== aws lambda put-function-concurrency --cli-input-json");
        println!("{}", serde_json::to_string_pretty(concurrency)?);
    }

    let settings = AwsFunctionSettings::import_values(
        &export.event_invoke_config,
        export.function_concurrency.as_ref(),
    )?;
    let mut back: FunctionConfig<Order, ()> = FunctionConfig::default();
    settings.apply_with_destinations(&mut back, |arn| {
        arn.function_name()
            .map(|name| Destination::function(name, forward))
    })?;
    let again = lambda.export_config("ship", &back);
    println!(
        "\n== imported and exported again: {}",
        if again == export {
            "the same JSON"
        } else {
            "DIFFERENT JSON"
        }
    );

    // 3. Settings AWS cannot express are reported, one warning each.
    let wide: Function<Order, ()> = Function::new("wide", |_: &Order, _ctx| Ok(()))
        .maximum_retry_attempts(5)
        .maximum_event_age(Duration::from_secs(30))
        .timeout(Duration::from_secs(1800))
        .queue_capacity(100)
        .on_success(Destination::closure(|_| {}));
    let export = lambda.export_config(wide.name(), wide.config());
    println!("\n== exporting `wide`: {} warnings", export.warnings.len());
    for warning in &export.warnings {
        println!("  - {warning}");
    }
    match export.strict() {
        Ok(_) => println!("strict export: ok"),
        Err(e) => println!("strict export refused: {e}"),
    }

    // 4. Import checks Lambda's ranges and names the field.
    let err = AwsFunctionSettings::import(r#"{"MaximumEventAgeInSeconds": 30}"#, None)
        .expect_err("30 s is below Lambda's minimum");
    println!("\n== importing MaximumEventAgeInSeconds 30\n{err}");

    Ok(())
}
