//! Counts the wake-up work behind the engine, for `strace -f -c -e trace=futex`:
//!
//! * `cargo run --release --example wakeups -- idle`: 100,000 events driven by one thread with
//!   no worker parked: the engine should make no futex call at all.
//! * `cargo run --release --example wakeups -- worker`: 100,000 events from one producer to one
//!   worker thread: at most one wake-up per event (far fewer while the worker is busy).

use event_invoke::{Function, Runtime};

const EVENTS: u64 = 100_000;

fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "idle".to_string());
    let rt: Runtime<u64> = Runtime::builder()
        .keep_dead_letters(false)
        .build()
        .expect("default settings");
    let f = rt
        .register(Function::new("noop", |n: &u64, _ctx| {
            std::hint::black_box(n);
            Ok(())
        }))
        .expect("register");
    match mode.as_str() {
        "worker" => {
            let workers = rt.spawn_workers(1).expect("start a worker");
            for i in 0..EVENTS {
                f.invoke_async(i).expect("invoke");
            }
            rt.wait_idle();
            workers.stop();
        }
        _ => {
            for i in 0..EVENTS {
                f.invoke_async(i).expect("invoke");
            }
            rt.run_until_idle();
        }
    }
    let m = rt.function_metrics("noop").expect("metrics");
    assert_eq!(m.invocations, EVENTS);
    println!("{mode}: {} events", m.invocations);
}
