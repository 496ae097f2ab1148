//! Model mode's speed: modelled invocations per second of real time, beside a bare
//! discrete-event loop measured in the same run: `cargo bench --bench model`.
//! The goal (issue #13): `model/fanout_1m` at least 2,000,000 leaves per second, so that a
//! day of ten million events models in seconds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use event_invoke::{CostModel, Function, ModelOptions, Runtime};

const LEAVES: u64 = 1_000_000;

/// 1 -> 1,000 -> 1,000: one million leaf executions of 100 ms each, 10 ms per invoke.
fn fanout_1m() -> u64 {
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(Duration::from_millis(10)))
        .account_concurrency(1_000_000)
        .keep_dead_letters(false)
        .build()
        .unwrap();
    let leaf = Function::new("leaf", |n: &u32, _ctx| {
        black_box(n);
        Ok(())
    })
    .cost(CostModel::fixed(Duration::from_millis(100)));
    rt.register(leaf).unwrap();
    for (name, child) in [("top", "mid"), ("mid", "leaf")] {
        let f = Function::new(name, move |_: &u32, ctx| {
            for i in 0..1_000 {
                ctx.invoke_async(child, i)?;
            }
            Ok(())
        })
        .timeout(Duration::from_secs(900));
        rt.register(f).unwrap();
    }
    rt.invoke_async("top", 0).unwrap();
    rt.run_until_idle();
    let report = rt.model_report().unwrap();
    assert_eq!(report.successes, LEAVES + 1_001);
    report.executions
}

/// The floor any discrete-event model pays: each leaf's arrival and end through a binary
/// heap of virtual times, and one channel hand-off per execution.
fn bare_event_loop() -> u64 {
    let mut heap = BinaryHeap::new();
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    for mid in 0..1_000u64 {
        for leaf in 0..1_000u64 {
            heap.push(Reverse((mid * 10 + leaf * 10, mid * 1_000 + leaf, false)));
        }
    }
    let mut executions = 0;
    while let Some(Reverse((at, id, ended))) = heap.pop() {
        if !ended {
            tx.send(id).unwrap();
            black_box(rx.recv().unwrap());
            heap.push(Reverse((at + 100, id, true)));
            executions += 1;
        }
    }
    executions
}

fn model(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(LEAVES));
    g.bench_function("fanout_1m", |b| b.iter(|| black_box(fanout_1m())));
    g.bench_function("baseline_event_loop_1m", |b| {
        b.iter(|| black_box(bare_event_loop()))
    });
    g.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
