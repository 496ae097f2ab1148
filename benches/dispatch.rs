//! The dispatch hot path, each figure beside its raw-channel baseline, measured in the same run:
//! `cargo bench --bench dispatch`. Compare ratios, not absolute times.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use event_invoke::{Function, ManualClock, Runtime};
use parking_lot::Mutex;

/// The payload every figure moves: small and `Copy`, so the engine's cost is what is measured.
type Payload = [u64; 2];
const PAYLOAD: Payload = [7, 42];

fn quiet_runtime() -> Runtime<Payload> {
    Runtime::builder()
        .clock(ManualClock::new())
        .keep_dead_letters(false)
        .build()
        .unwrap()
}

fn noop() -> Function<Payload, ()> {
    Function::new("noop", |p: &Payload, _ctx| {
        black_box(p);
        Ok(())
    })
    // Criterion may time many millions of invokes in one sample before the queue is drained.
    .queue_capacity(usize::MAX)
}

fn baselines(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    let (tx, rx) = crossbeam_channel::unbounded::<Payload>();
    g.bench_function("crossbeam_send_recv", |b| {
        b.iter(|| {
            tx.send(*black_box(&PAYLOAD)).unwrap();
            black_box(rx.recv().unwrap());
        })
    });
    let q = Mutex::new(VecDeque::<Payload>::new());
    g.bench_function("mutex_vecdeque_push_pop", |b| {
        b.iter(|| {
            q.lock().push_back(*black_box(&PAYLOAD));
            black_box(q.lock().pop_front());
        })
    });
    g.finish();
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_path");
    let rt = quiet_runtime();
    let h = rt.register(noop()).unwrap();
    g.bench_function("invoke_async", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(h.invoke_async(*black_box(&PAYLOAD)).unwrap());
            }
            let elapsed = start.elapsed();
            rt.purge("noop").unwrap(); // drained outside the timed part
            elapsed
        })
    });
    g.bench_function("invoke_and_dispatch", |b| {
        b.iter(|| {
            h.invoke_async(*black_box(&PAYLOAD)).unwrap();
            black_box(rt.try_dispatch());
        })
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    const N: u64 = 10_000;
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    let rt: Runtime<Payload> = Runtime::builder().keep_dead_letters(false).build().unwrap();
    let h = rt.register(noop()).unwrap();
    let workers = rt.spawn_workers(1).unwrap();
    g.bench_function("one_producer_one_worker", |b| {
        b.iter(|| {
            for _ in 0..N {
                h.invoke_async(*black_box(&PAYLOAD)).unwrap();
            }
            rt.wait_idle();
        })
    });
    workers.stop();
    g.finish();

    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    let (tx, rx) = crossbeam_channel::unbounded::<Payload>();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let consumer = std::thread::spawn(move || {
        let mut n = 0u64;
        while let Ok(p) = rx.recv() {
            black_box(p);
            n += 1;
            if n % N == 0 {
                done_tx.send(()).unwrap();
            }
        }
    });
    g.bench_function("crossbeam_one_producer_one_consumer", |b| {
        b.iter(|| {
            for _ in 0..N {
                tx.send(*black_box(&PAYLOAD)).unwrap();
            }
            done_rx.recv().unwrap();
        })
    });
    drop(tx);
    consumer.join().unwrap();
    g.finish();
}

#[derive(Clone, Copy)]
enum Task {
    Root,
    Middle,
    Leaf,
    /// Ends a baseline thread.
    Stop,
}

fn fanout(c: &mut Criterion) {
    const EXECUTIONS: u64 = 1 + 100 + 10_000;
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements(EXECUTIONS));
    g.sample_size(20);
    let rt: Runtime<Task> = Runtime::builder().keep_dead_letters(false).build().unwrap();
    let leaf = rt
        .register(Function::new("function_3", |t: &Task, _ctx| {
            black_box(t);
            Ok(())
        }))
        .unwrap();
    let middle = rt
        .register(Function::new("function_2", move |_: &Task, ctx| {
            for _ in 0..100 {
                // An InvokeError converts into a FunctionError with `?`.
                ctx.invoke_async_handle(&leaf, Task::Leaf)?;
            }
            Ok(())
        }))
        .unwrap();
    let root = rt
        .register(Function::new("function_1", move |_: &Task, ctx| {
            for _ in 0..100 {
                ctx.invoke_async_handle(&middle, Task::Middle)?;
            }
            Ok(())
        }))
        .unwrap();
    let workers = rt.spawn_workers(2).unwrap();
    g.bench_function("10k_leaves", |b| {
        b.iter(|| {
            root.invoke_async(Task::Root).unwrap();
            rt.wait_idle();
        })
    });
    workers.stop();
    g.finish();

    // The same task tree through one crossbeam channel, on two plain threads.
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(EXECUTIONS));
    g.sample_size(20);
    let (tx, rx) = crossbeam_channel::unbounded::<Task>();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let finished = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (tx, rx, done_tx, finished) = (
                tx.clone(),
                rx.clone(),
                done_tx.clone(),
                Arc::clone(&finished),
            );
            std::thread::spawn(move || {
                while let Ok(t) = rx.recv() {
                    match t {
                        Task::Root => (0..100).for_each(|_| tx.send(Task::Middle).unwrap()),
                        Task::Middle => (0..100).for_each(|_| tx.send(Task::Leaf).unwrap()),
                        Task::Leaf => {
                            black_box(t);
                        }
                        Task::Stop => return,
                    }
                    if finished.fetch_add(1, Ordering::AcqRel) + 1 == EXECUTIONS {
                        finished.store(0, Ordering::Release);
                        done_tx.send(()).unwrap();
                    }
                }
            })
        })
        .collect();
    g.bench_function("fanout_crossbeam", |b| {
        b.iter(|| {
            tx.send(Task::Root).unwrap();
            done_rx.recv().unwrap();
        })
    });
    for _ in &threads {
        tx.send(Task::Stop).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    g.finish();
}

fn queue_depth(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    for depth in [1_000usize, 1_000_000] {
        let rt = quiet_runtime();
        let h = rt.register(noop()).unwrap();
        for _ in 0..depth {
            h.invoke_async(PAYLOAD).unwrap();
        }
        g.bench_with_input(BenchmarkId::new("deep", depth), &depth, |b, _| {
            b.iter(|| {
                h.invoke_async(*black_box(&PAYLOAD)).unwrap();
                black_box(rt.try_dispatch());
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = baselines, hot_path, throughput, fanout, queue_depth
}
criterion_main!(benches);
