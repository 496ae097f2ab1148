//! Worker threads: that more of them never slow a run, and that two of them run CPU-bound
//! handlers twice as fast as one. `cargo bench --bench workers`. Compare ratios within one
//! run, not absolute times: the figures are real elapsed time on a shared machine.
//!
//! * `worker_scaling`: 1,500 events of about 1 ms (a sleep), reserved concurrency 4, on 4, 8
//!   and 16 workers. Target: 8 and 16 workers within 1.1x of 4 (the slots, not the threads,
//!   bound the run).
//! * `parallelism`: 2,000 CPU-bound events of about 20 µs each, unreserved, on 1 and 2
//!   workers, beside the same work split over 1 and 2 plain threads fed by a crossbeam
//!   channel. Target: about 2x from 1 to 2 workers on 2 cores.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use event_invoke::{Function, Runtime};

/// The worker-scaling case: events, reserved concurrency, and each handler's sleep.
const SCALING_EVENTS: u32 = 1_500;
const RESERVED: u32 = 4;
const HANDLER_SLEEP: Duration = Duration::from_millis(1);

/// The parallelism case: events and the work each one does (about 20 µs of arithmetic).
const CPU_EVENTS: u32 = 2_000;
const WORK_ROUNDS: u64 = 12_000;

/// About 20 µs of arithmetic that the compiler cannot skip.
fn cpu_work(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..WORK_ROUNDS {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn worker_scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker_scaling");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(u64::from(SCALING_EVENTS)));
    for workers in [4usize, 8, 16] {
        let rt: Runtime<u32> = Runtime::new();
        let h = rt
            .register(
                Function::new("sleepy", |_: &u32, _ctx| {
                    std::thread::sleep(HANDLER_SLEEP);
                    Ok(())
                })
                .reserved_concurrency(RESERVED),
            )
            .unwrap();
        let pool = rt.spawn_workers(workers).unwrap();
        g.bench_with_input(
            BenchmarkId::new("reserved_4_1500x1ms", workers),
            &workers,
            |b, _| {
                b.iter(|| {
                    for i in 0..SCALING_EVENTS {
                        h.invoke_async(i).unwrap();
                    }
                    rt.wait_idle();
                })
            },
        );
        drop(pool);
        // A run that throttled would have been slowed by backoff, not by the threads: say so.
        let m = rt.function_metrics("sleepy").unwrap();
        assert_eq!(m.throttles, 0, "{workers} workers throttled: {m:?}");
    }
    g.finish();
}

fn parallelism(c: &mut Criterion) {
    let mut g = c.benchmark_group("parallelism");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(u64::from(CPU_EVENTS)));
    for workers in [1usize, 2] {
        let rt: Runtime<u64> = Runtime::new();
        let h = rt
            .register(Function::new("cpu", |seed: &u64, _ctx| {
                cpu_work(*seed);
                Ok(())
            }))
            .unwrap();
        let pool = rt.spawn_workers(workers).unwrap();
        g.bench_with_input(BenchmarkId::new("cpu_20us", workers), &workers, |b, _| {
            b.iter(|| {
                for i in 0..u64::from(CPU_EVENTS) {
                    h.invoke_async(i).unwrap();
                }
                rt.wait_idle();
            })
        });
        drop(pool);
    }
    // The same work on plain threads fed by a channel: what 2 cores give at best.
    for threads in [1usize, 2] {
        let (tx, rx) = crossbeam_channel::unbounded::<Option<u64>>();
        let (done_tx, done) = crossbeam_channel::unbounded::<()>();
        let pool: Vec<_> = (0..threads)
            .map(|_| {
                let (rx, done_tx) = (rx.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    while let Ok(Some(seed)) = rx.recv() {
                        cpu_work(seed);
                        done_tx.send(()).unwrap();
                    }
                })
            })
            .collect();
        g.bench_with_input(
            BenchmarkId::new("baseline_threads_cpu_20us", threads),
            &threads,
            |b, _| {
                b.iter(|| {
                    for i in 0..u64::from(CPU_EVENTS) {
                        tx.send(Some(i)).unwrap();
                    }
                    for _ in 0..CPU_EVENTS {
                        done.recv().unwrap();
                    }
                })
            },
        );
        for _ in 0..threads {
            tx.send(None).unwrap();
        }
        for t in pool {
            t.join().unwrap();
        }
    }
    g.finish();
}

criterion_group!(benches, worker_scaling, parallelism);
criterion_main!(benches);
