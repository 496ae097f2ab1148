//! Model mode's speed: modelled invocations per second of real time, beside bare
//! discrete-event loops measured in the same run: `cargo bench --bench model`.
//! The goal (issue #13): `model/fanout_1m` at least 2,000,000 leaves per second, so that a
//! day of ten million events models in seconds.
//!
//! The workload, for the model and both loops: one call invokes 1,000 "mid" functions, 10 ms
//! apart in virtual time; each mid, when it runs, invokes 1,000 leaves, 10 ms apart; each
//! leaf runs 100 ms. A million leaf arrivals and a million leaf ends, each taken in
//! virtual-time order, and one run-queue hand-off (a crossbeam channel send and receive) per
//! leaf execution, as the model's engine makes.
//!
//! - `baseline_event_loop_1m` is the floor: the fastest general discrete-event loop we know
//!   for this workload. Its queue is a calendar of exact virtual times (a hash index from a
//!   time to its bucket, a binary heap of the distinct times pending, each bucket a vector of
//!   the events due then in the order scheduled, emptied buckets reused): taking an event is
//!   a read at the front of the earliest bucket, and a heap step only once per distinct time.
//!   It is general: events may be scheduled at any time, in any order, by the handlers the
//!   loop runs (a mid's handler schedules its leaves when the mid's arrival is taken), and
//!   come out by time, then in the order scheduled, as the model's do. It is the floor because
//!   it does nothing else: a 16-byte event, no function state, no limits, no retries, no
//!   books, no timeline. The model does all of that per event, so it is expected to be many
//!   times slower; the ratio says what the engine and its books cost beyond the event loop.
//! - `baseline_binary_heap_1m` is the same loop on a textbook binary heap of (time, order
//!   scheduled), for reference: what a discrete-event model pays per event when every event
//!   takes a heap step over every event pending.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use event_invoke::{CostModel, Function, ModelOptions, Runtime};

const LEAVES: u64 = 1_000_000;
const MS: u64 = 1_000_000;

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

/// What the bare loops schedule: a mid's arrival, a leaf's arrival, a leaf's end.
#[derive(Clone, Copy)]
enum Event {
    Mid(u32),
    Leaf(u32),
    End(u32),
}

/// A queue of events due at virtual times, taken by time, then in the order scheduled.
trait EventQueue {
    fn schedule(&mut self, at: u64, event: Event);
    fn next(&mut self) -> Option<(u64, Event)>;
}

/// The bare loop: schedules the mids, then takes events in order and runs each one's
/// handler, which may schedule more. Returns the leaf executions.
fn event_loop(queue: &mut impl EventQueue) -> u64 {
    let (tx, rx) = crossbeam_channel::unbounded::<u32>();
    for mid in 0..1_000u32 {
        queue.schedule(u64::from(mid + 1) * 10 * MS, Event::Mid(mid));
    }
    let (mut executions, mut ends) = (0, 0);
    while let Some((at, event)) = queue.next() {
        match event {
            Event::Mid(mid) => {
                for leaf in 0..1_000u32 {
                    let call_returns = at + u64::from(leaf + 1) * 10 * MS;
                    queue.schedule(call_returns, Event::Leaf(mid * 1_000 + leaf));
                }
            }
            Event::Leaf(id) => {
                // The run-queue hand-off, then the execution's end 100 ms later.
                tx.send(id).unwrap();
                let id = black_box(rx.recv().unwrap());
                queue.schedule(at + 100 * MS, Event::End(id));
                executions += 1;
            }
            Event::End(id) => {
                black_box(id);
                ends += 1;
            }
        }
    }
    assert_eq!(ends, LEAVES);
    executions
}

/// Hashes a virtual time: one multiplication, the high half folded into the low bits.
#[derive(Default)]
struct TimeHasher(u64);

impl Hasher for TimeHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
}

/// The floor's queue: a calendar of exact virtual times (see the module's docs).
#[derive(Default)]
struct Calendar {
    /// The bucket of every time with events pending.
    index: HashMap<u64, usize, BuildHasherDefault<TimeHasher>>,
    /// Per bucket: its events in the order scheduled, and how many were taken.
    buckets: Vec<(Vec<Event>, usize)>,
    /// The distinct times pending, earliest on top, with their buckets.
    times: BinaryHeap<Reverse<(u64, usize)>>,
    /// Emptied buckets, their vectors' memory kept.
    spare: Vec<usize>,
    /// The time and bucket of the last event scheduled: the next one due then needs no look-up.
    last: Option<(u64, usize)>,
}

impl EventQueue for Calendar {
    fn schedule(&mut self, at: u64, event: Event) {
        let bucket = match self.last {
            Some((t, b)) if t == at => b,
            _ => {
                let b = match self.index.get(&at) {
                    Some(&b) => b,
                    None => {
                        let b = self.spare.pop().unwrap_or_else(|| {
                            self.buckets.push((Vec::new(), 0));
                            self.buckets.len() - 1
                        });
                        self.index.insert(at, b);
                        self.times.push(Reverse((at, b)));
                        b
                    }
                };
                self.last = Some((at, b));
                b
            }
        };
        self.buckets[bucket].0.push(event);
    }

    fn next(&mut self) -> Option<(u64, Event)> {
        let &Reverse((at, b)) = self.times.peek()?;
        let (events, taken) = &mut self.buckets[b];
        let event = events[*taken];
        *taken += 1;
        if *taken == events.len() {
            events.clear();
            *taken = 0;
            self.times.pop();
            self.index.remove(&at);
            self.spare.push(b);
            if self.last.is_some_and(|(_, l)| l == b) {
                self.last = None;
            }
        }
        Some((at, event))
    }
}

/// A textbook queue: one binary heap of every event pending, by (time, order scheduled).
#[derive(Default)]
struct Heap {
    heap: BinaryHeap<Reverse<(u64, u64, u8, u32)>>,
    scheduled: u64,
}

impl EventQueue for Heap {
    fn schedule(&mut self, at: u64, event: Event) {
        self.scheduled += 1;
        let (kind, id) = match event {
            Event::Mid(id) => (0, id),
            Event::Leaf(id) => (1, id),
            Event::End(id) => (2, id),
        };
        self.heap.push(Reverse((at, self.scheduled, kind, id)));
    }

    fn next(&mut self) -> Option<(u64, Event)> {
        let Reverse((at, _, kind, id)) = self.heap.pop()?;
        let event = match kind {
            0 => Event::Mid(id),
            1 => Event::Leaf(id),
            _ => Event::End(id),
        };
        Some((at, event))
    }
}

fn model(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(LEAVES));
    g.bench_function("fanout_1m", |b| b.iter(|| black_box(fanout_1m())));
    g.bench_function("baseline_event_loop_1m", |b| {
        b.iter(|| black_box(event_loop(&mut Calendar::default())))
    });
    g.bench_function("baseline_binary_heap_1m", |b| {
        b.iter(|| black_box(event_loop(&mut Heap::default())))
    });
    g.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
