//! The seed's scenario: function_1 invokes function_2 100 times; each function_2 invokes
//! function_3 100 times: 10,000 leaf executions, fanned out over worker threads.
//!
//! Run with `cargo run --release --example fanout [workers]`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use event_invoke::{Condition, Function, Runtime};

const FAN: u32 = 100;

#[derive(Clone, Copy)]
enum Event {
    Root,
    Middle,
    Leaf,
}

fn main() {
    let workers = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

    let leaves = Arc::new(AtomicU64::new(0));
    let rt: Runtime<Event> = Runtime::new();
    let counted = Arc::clone(&leaves);
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
    rt.register(Function::new("function_1", move |_: &Event, ctx| {
        for _ in 0..FAN {
            ctx.invoke_async_handle(&middle, Event::Middle)?;
        }
        Ok(())
    }))
    .expect("register function_1");

    // Fanned out: one invoke from outside, the rest from handlers on the workers.
    let pool = rt.spawn_workers(workers).expect("start worker threads");
    let start = Instant::now();
    rt.invoke_async("function_1", Event::Root).expect("invoke");
    rt.wait_idle();
    let fanned = start.elapsed();
    let fan_leaves = leaves.swap(0, Ordering::Relaxed);

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

    println!("event-invoke fan-out on {workers} worker thread(s)");
    println!("  function_1 -> 100 x function_2 -> 100 x function_3");
    println!("  function_3 ran {fan_leaves} times (10,101 executions in all)");
    println!();
    println!("{:<38} {:>12} {:>16}", "", "in-process", "Lambda @ 10 ms");
    println!(
        "{:<38} {:>12} {:>16}",
        "10,000 invokes from one caller",
        format!("{:.2?}", sequential),
        "100 s"
    );
    println!(
        "{:<38} {:>12} {:>16}",
        "fanned out 1 -> 100 -> 100",
        format!("{:.2?}", fanned),
        "2.01 s"
    );
    println!();
    println!(
        "{executions} executions in all; peak concurrency {}; {:.0} executions/s fanned out",
        m.total.peak_concurrent_executions,
        10_101.0 / fanned.as_secs_f64()
    );
}
