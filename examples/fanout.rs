//! The seed's scenario: function_1 invokes function_2 100 times; each function_2 invokes
//! function_3 100 times: 10,000 leaf executions. The same three functions run twice: here, on
//! worker threads, and modelled on Lambda (model mode: the same engine in virtual time, where
//! each invoke costs its caller 10 ms), which gives the "Lambda" column.
//!
//! Run with `cargo run --release --example fanout [workers]`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_invoke::{Condition, Function, FunctionHandle, ModelOptions, ModelReport, Runtime};

const FAN: u32 = 100;
/// What an async invoke costs its caller on Lambda (10 to 25 ms; the seed's figure).
const LATENCY: Duration = Duration::from_millis(10);

#[derive(Clone, Copy)]
enum Event {
    Root,
    Middle,
    Leaf,
}

/// Registers function_1 -> 100 x function_2 -> 100 x function_3 on `rt`, each leaf run counted
/// in `leaves`; returns the handles of function_1 and function_3.
fn register(
    rt: &Runtime<Event>,
    leaves: &Arc<AtomicU64>,
) -> (FunctionHandle<Event, ()>, FunctionHandle<Event, ()>) {
    let counted = Arc::clone(leaves);
    let leaf = rt
        .register(Function::new("function_3", move |e: &Event, _ctx| {
            if let Event::Leaf = e {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }))
        .expect("register function_3");
    let to_leaf = leaf.clone();
    let middle = rt
        .register(Function::new("function_2", move |_: &Event, ctx| {
            for _ in 0..FAN {
                ctx.invoke_async_handle(&to_leaf, Event::Leaf)?;
            }
            Ok(())
        }))
        .expect("register function_2");
    let root = rt
        .register(Function::new("function_1", move |_: &Event, ctx| {
            for _ in 0..FAN {
                ctx.invoke_async_handle(&middle, Event::Middle)?;
            }
            Ok(())
        }))
        .expect("register function_1");
    (root, leaf)
}

/// The same run modelled on Lambda: one invoke of function_1 (`fanned_out`), or 10,000 leaf
/// invokes one after the other from the client, each invoke costing its caller 10 ms.
fn on_lambda(fanned_out: bool) -> ModelReport {
    let rt: Runtime<Event> = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(LATENCY))
        .build()
        .expect("model mode");
    let leaves = Arc::new(AtomicU64::new(0));
    let (root, leaf) = register(&rt, &leaves);
    if fanned_out {
        root.invoke_async(Event::Root).expect("invoke");
    } else {
        for _ in 0..FAN * FAN {
            leaf.invoke_async(Event::Leaf).expect("invoke");
        }
    }
    rt.run_until_idle();
    assert_eq!(leaves.load(Ordering::Relaxed), 10_000);
    rt.model_report().expect("model mode")
}

fn main() {
    let workers = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

    let leaves = Arc::new(AtomicU64::new(0));
    let rt: Runtime<Event> = Runtime::new();
    let (root, leaf) = register(&rt, &leaves);

    // Fanned out: one invoke from outside, the rest from handlers on the workers.
    let pool = rt.spawn_workers(workers).expect("start worker threads");
    let start = Instant::now();
    root.invoke_async(Event::Root).expect("invoke");
    rt.wait_idle();
    let fanned = start.elapsed();
    let fan_leaves = leaves.swap(0, Ordering::Relaxed);
    let fan_peak = rt.metrics().total.peak_concurrent_executions;

    // One by one: a single caller issues all 10,000 leaf invokes itself.
    let start = Instant::now();
    for _ in 0..FAN * FAN {
        leaf.invoke_async(Event::Leaf).expect("invoke");
    }
    rt.wait_idle();
    let sequential = start.elapsed();
    let seq_leaves = leaves.load(Ordering::Relaxed);
    pool.stop();

    let m = rt.metrics();
    let executions = m.total.invocations;
    assert_eq!(
        fan_leaves, 10_000,
        "function_3 must run exactly 10,000 times"
    );
    assert_eq!(seq_leaves, 10_000);
    assert_eq!(
        m.total.outcome(Condition::Success),
        1 + 100 + 10_000 + 10_000
    );
    assert!(m.total.is_balanced());

    // The Lambda column: the same functions and invokes, in model mode.
    let modelling = Instant::now();
    let lambda_sequential = on_lambda(false);
    let lambda_fanned = on_lambda(true);
    let modelled_in = modelling.elapsed();

    println!("event-invoke fan-out on {workers} worker thread(s)");
    println!("  function_1 -> 100 x function_2 -> 100 x function_3");
    println!("  function_3 ran {fan_leaves} times (10,101 executions in all)");
    println!();
    println!("{:<38} {:>12} {:>16}", "", "in-process", "Lambda @ 10 ms");
    println!(
        "{:<38} {:>12} {:>16}",
        "10,000 invokes from one caller",
        format!("{sequential:.2?}"),
        format!("{:.2?}", lambda_sequential.makespan)
    );
    println!(
        "{:<38} {:>12} {:>16}",
        "fanned out 1 -> 100 -> 100",
        format!("{fanned:.2?}"),
        format!("{:.2?}", lambda_fanned.makespan)
    );
    println!(
        "{:<38} {:>12} {:>16}",
        "peak concurrency, fanned out", fan_peak, lambda_fanned.peak_concurrency
    );
    println!();
    println!(
        "Lambda @ 10 ms: model mode, the same three functions on the same engine in virtual\n\
         time, each invoke costing its caller 10 ms (modelled in {modelled_in:.0?} of real time)."
    );
    println!(
        "Peak concurrency: executions holding a slot at once. Here each handler returns within\n\
         microseconds, and a worker runs a fast function's ready events in batches (up to 16\n\
         under one slot), so the workers seldom overlap; on Lambda each function_2 holds its\n\
         slot for the 1 s its 100 invokes take."
    );
    println!(
        "{executions} executions in all here; {:.0} executions/s fanned out.",
        10_101.0 / fanned.as_secs_f64()
    );
}
