//! The dispatch hot path, each figure beside its raw-channel baseline, measured in the same run:
//! `cargo bench --bench dispatch`. Compare ratios, not absolute times.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use crossbeam_channel::TryRecvError;
use event_invoke::{Clock, Condition, Function, ManualClock, Runtime, SystemClock};
use parking_lot::Mutex;

/// The payload every figure moves: small and `Copy`, so the engine's cost is what is measured.
type Payload = [u64; 2];
const PAYLOAD: Payload = [7, 42];

fn quiet_runtime() -> Runtime<Payload> {
    quiet_runtime_on(ManualClock::new())
}

fn quiet_runtime_on(clock: impl Clock) -> Runtime<Payload> {
    Runtime::builder()
        .clock(clock)
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
    // What `hot_path/invoke_async` is compared with: sends alone into an unbounded channel
    // (which grows in blocks of 31 slots), drained outside the timed part, like the queue the
    // invokes fill.
    g.bench_function("crossbeam_send", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::unbounded::<Payload>();
            let start = Instant::now();
            for _ in 0..iters {
                tx.send(*black_box(&PAYLOAD)).unwrap();
            }
            let elapsed = start.elapsed();
            drop(rx);
            elapsed
        })
    });
    let q = Mutex::new(VecDeque::<Payload>::new());
    g.bench_function("mutex_vecdeque_push_pop", |b| {
        b.iter(|| {
            q.lock().push_back(*black_box(&PAYLOAD));
            black_box(q.lock().pop_front());
        })
    });
    // Not a peer but a floor: one read of the monotonic clock the system-clock figures pay
    // per event (at least once per event on a worker, to time the handler; twice in a single
    // step: the attempt's start and its end).
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    // The coarse clock a runtime on the system clock stamps events from (Linux): one read of
    // `CLOCK_MONOTONIC_COARSE`, as the runtime makes it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    g.bench_function("coarse_clock_now", |b| {
        b.iter(|| {
            black_box(rustix::time::clock_gettime(
                rustix::time::ClockId::MonotonicCoarse,
            ))
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
    // By name: the registry lookup added to the same step.
    g.bench_function("invoke_by_name_and_dispatch", |b| {
        b.iter(|| {
            rt.invoke_async(black_box("noop"), *black_box(&PAYLOAD))
                .unwrap();
            black_box(rt.try_dispatch());
        })
    });
    g.bench_function("invoke_async_by_name", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(
                    rt.invoke_async(black_box("noop"), *black_box(&PAYLOAD))
                        .unwrap(),
                );
            }
            let elapsed = start.elapsed();
            rt.purge("noop").unwrap();
            elapsed
        })
    });
    // The runtime's own reading of the real clock (an `Instant` and its conversion).
    let system = SystemClock::new();
    g.bench_function("system_clock_now", |b| b.iter(|| black_box(system.now())));
    // The same step on the real clock (the default): read twice per event (the attempt's
    // start and end), and its coarse clock once (the event's stamp).
    let rt = quiet_runtime_on(SystemClock::new());
    let h = rt.register(noop()).unwrap();
    g.bench_function("invoke_and_dispatch_system_clock", |b| {
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
    // Two workers, like the baselines' two threads; and one, to show what the second adds.
    for (name, workers) in [("10k_leaves", 2), ("10k_leaves_one_worker", 1)] {
        let workers = rt.spawn_workers(workers).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                root.invoke_async(Task::Root).unwrap();
                rt.wait_idle();
            })
        });
        workers.stop();
    }
    g.finish();

    // The same task tree through one crossbeam channel, on two plain threads. Each thread
    // counts the tasks it ran on its own and adds them to the shared count only when it finds
    // the channel empty (the tree is done only then), so the baseline pays no contended
    // atomic per task.
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
                let mut ran = 0u64;
                loop {
                    let t = match rx.try_recv() {
                        Ok(t) => t,
                        Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => {
                            if ran > 0 {
                                let total = finished.fetch_add(ran, Ordering::AcqRel) + ran;
                                ran = 0;
                                if total == EXECUTIONS {
                                    finished.store(0, Ordering::Release);
                                    done_tx.send(()).unwrap();
                                }
                            }
                            match rx.recv() {
                                Ok(t) => t,
                                Err(_) => return,
                            }
                        }
                    };
                    match t {
                        Task::Root => (0..100).for_each(|_| tx.send(Task::Middle).unwrap()),
                        Task::Middle => (0..100).for_each(|_| tx.send(Task::Leaf).unwrap()),
                        Task::Leaf => {
                            black_box(t);
                        }
                        Task::Stop => return,
                    }
                    ran += 1;
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

    // The peers a user would pick instead, on two threads each: a rayon scope, and tasks on
    // a tokio multi-thread runtime.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    g.bench_function("fanout_rayon", |b| {
        b.iter(|| {
            pool.scope(|s| {
                s.spawn(|s| {
                    black_box(Task::Root);
                    for _ in 0..100 {
                        s.spawn(|s| {
                            black_box(Task::Middle);
                            for _ in 0..100 {
                                s.spawn(|_| {
                                    black_box(Task::Leaf);
                                });
                            }
                        });
                    }
                });
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let finished = Arc::new(AtomicU64::new(0));
    g.bench_function("fanout_tokio", |b| {
        b.iter(|| {
            let (finished, done_tx) = (Arc::clone(&finished), done_tx.clone());
            let handle = tokio.handle().clone();
            tokio.spawn(async move {
                let end = move |finished: &AtomicU64, done_tx: &crossbeam_channel::Sender<()>| {
                    if finished.fetch_add(1, Ordering::AcqRel) + 1 == EXECUTIONS {
                        finished.store(0, Ordering::Release);
                        done_tx.send(()).unwrap();
                    }
                };
                for _ in 0..100 {
                    let (finished, done_tx, inner) =
                        (Arc::clone(&finished), done_tx.clone(), handle.clone());
                    handle.spawn(async move {
                        for _ in 0..100 {
                            let (finished, done_tx) = (Arc::clone(&finished), done_tx.clone());
                            inner.spawn(async move {
                                black_box(Task::Leaf);
                                end(&finished, &done_tx);
                            });
                        }
                        end(&finished, &done_tx);
                    });
                }
                end(&finished, &done_tx);
            });
            done_rx.recv().unwrap();
        })
    });
    g.finish();
}

/// Held events ageing out: a paused function holds `n` events accepted 1 µs apart, so each
/// reaches its maximum age at an instant of its own; one `run_for` ages them all out.
fn held(c: &mut Criterion) {
    const MAX_AGE: Duration = Duration::from_secs(60);
    let mut g = c.benchmark_group("held");
    g.sample_size(10);
    for n in [1_000u64, 100_000] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("age_out", n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let clock = ManualClock::new();
                    let rt = quiet_runtime_on(clock.clone());
                    let h = rt.register(noop().maximum_event_age(MAX_AGE)).unwrap();
                    h.pause().unwrap();
                    for _ in 0..n {
                        h.invoke_async(PAYLOAD).unwrap();
                        clock.advance(Duration::from_micros(1));
                    }
                    (rt, h)
                },
                |(rt, h)| {
                    rt.run_for(MAX_AGE + Duration::from_secs(1));
                    let aged = h.metrics().unwrap().outcome(Condition::EventAgeExceeded);
                    assert_eq!(aged, n);
                    (rt, h)
                },
                BatchSize::PerIteration,
            )
        });
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
    targets = baselines, hot_path, throughput, fanout, queue_depth, held
}
criterion_main!(benches);
