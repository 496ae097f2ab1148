//! Memory per queued event, payload excluded, measured with a counting allocator.
//!
//! The allocator counts the bytes each thread has live, not the whole process: the runtime
//! starts no threads, so everything `invoke_async` allocates is allocated on the thread that
//! calls it. A count of the whole process is not exact: libtest's main thread, which waits for
//! the test's result on a channel, allocates some 900 bytes (its blocking context) the first
//! time it parks, at a moment that depends on scheduling. Landing inside the measured window,
//! at a ring-buffer doubling where the queue's own cost was then 63.998 bytes per event, those
//! bytes made the old whole-process count read "64.0 bytes each" and fail in about 1 run in 3.
//! Since each test counts on its own thread, the tests may run side by side.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use event_invoke::{
    Function, InvocationQueue, ManualClock, QueuedEvent, RecursionGuard, RequestId, Runtime,
    Timestamp,
};

/// Counts the bytes live on the heap, per thread.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread. A `const` thread local without a
    /// destructor: reading it never allocates, so the allocator may use it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Allocations (and reallocations) made by this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // `try_with` cannot fail for a `const` thread local without a destructor; if it ever
    // could, a thread being torn down would simply go uncounted.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// The allocations this thread made so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// The bytes this thread has live.
fn live() -> isize {
    LIVE.with(Cell::get)
}

fn size(layout: Layout) -> isize {
    isize::try_from(layout.size()).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counter only observes sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(size(layout));
        count_allocation();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-size(layout));
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(isize::try_from(new_size).unwrap_or(isize::MAX) - size(layout));
        count_allocation();
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What the issue asks of a queued event beside its payload, at any depth.
const TARGET: f64 = 40.0;

/// Bytes a full segment of the ready line holds (a page).
const SEGMENT_BYTES: usize = 4096;

/// The depths measured: 1k, just past three doublings of a ring buffer (where a doubling
/// buffer held 64 bytes per event), a round number between, and just past 4M (about 140 MB;
/// a few seconds in a debug build).
const DEPTHS: [usize; 6] = [1_000, 65_537, 100_000, 262_145, 1_048_577, 4_194_305];

/// The bytes `events` queued events take beside the first (which allocates what every queue
/// has), per event, with payloads of type `P`.
fn bytes_per_queued_event<P: Default + Clone + Send + Sync + 'static>(events: usize) -> f64 {
    let rt: Runtime<P> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let f = rt
        .register(Function::new("f", |_: &P, _ctx| Ok(())).queue_capacity(usize::MAX))
        .unwrap();
    f.invoke_async(P::default()).unwrap();
    let before = live();
    for _ in 1..events {
        f.invoke_async(P::default()).unwrap();
    }
    let bytes = live() - before;
    assert_eq!(rt.run_until_idle(), events as u64);
    bytes as f64 / (events - 1) as f64
}

#[test]
fn a_queued_event_costs_at_most_40_bytes_beside_its_payload_at_any_depth() {
    // The event's own fields: id, enqueue time, the history (behind a pointer) that only
    // retried, throttled, duplicated or chained events have, code version, attempts, chain
    // depth.
    let entry = std::mem::size_of::<QueuedEvent<()>>();
    assert_eq!(entry, 32);

    // Just past a doubling of a ring buffer, half of it was slack (64 bytes per event). The
    // ready line grows a segment at a time: beyond the entries, at most a partly filled
    // segment at each end and a pointer-sized header per segment. The count is exact.
    for events in DEPTHS {
        let per_event = bytes_per_queued_event::<()>(events);
        println!("{events} events: {per_event:.4} bytes per queued event");
        assert!(
            per_event <= TARGET,
            "{events} events: {per_event:.4} bytes each, over {TARGET}"
        );
        let overhead = (per_event - entry as f64) * (events - 1) as f64;
        assert!(
            overhead <= (2 * SEGMENT_BYTES + events) as f64,
            "{events} events: {overhead} bytes beyond the entries"
        );
    }
}

#[test]
fn a_queued_event_with_a_u64_payload_costs_at_most_40_bytes_beside_it() {
    let payload = std::mem::size_of::<u64>() as f64;
    for events in [1_000, 65_537, 100_000, 262_145] {
        let beside = bytes_per_queued_event::<u64>(events) - payload;
        println!("{events} events of a u64: {beside:.4} bytes beside each payload");
        assert!(beside <= TARGET, "{events} events: {beside:.4} bytes each");
    }
}

#[test]
fn a_steady_backlog_allocates_nothing_once_warm() {
    // A backlog that neither grows nor shrinks, at depths on and around segment boundaries:
    // the back starts a segment every 128 events as the front drains one. The drained one is
    // kept as the spare and reused, so nothing is allocated or freed after the first crossing.
    for depth in [1usize, 127, 128, 129, 1_000, 1_024, 1_025, 100_000] {
        let mut q = InvocationQueue::new(usize::MAX).unwrap();
        let mut next = 0u64;
        let mut push = |q: &mut InvocationQueue<()>| {
            next += 1;
            q.push(QueuedEvent::new(
                RequestId::from_u64(next),
                (),
                Timestamp::ZERO,
            ))
            .unwrap();
        };
        for _ in 0..depth {
            push(&mut q);
        }
        let step = |q: &mut InvocationQueue<()>, push: &mut dyn FnMut(&mut InvocationQueue<()>)| {
            push(q);
            assert!(q.pop_due(Timestamp::ZERO).is_some());
        };
        for _ in 0..1_000 {
            step(&mut q, &mut push);
        }
        let (before, live_before) = (allocations(), live());
        for _ in 0..10_000 {
            step(&mut q, &mut push);
        }
        assert_eq!(q.len(), depth);
        assert_eq!(allocations() - before, 0, "depth {depth}: allocations");
        assert_eq!(live() - live_before, 0, "depth {depth}: bytes");
    }
}

/// The children of a fan-out cost what plain events cost, under every recursion guard. The
/// loop guard keeps each event's chain (the functions it reached), but the children one
/// execution invokes in the same function share theirs: no allocation per child.
#[test]
fn children_of_a_fan_out_cost_what_plain_events_cost() {
    const CHILDREN: u32 = 100_000;
    for guard in [
        RecursionGuard::Loops(16),
        RecursionGuard::Hops(16),
        RecursionGuard::Off,
    ] {
        let rt: Runtime<u32> = Runtime::builder()
            .clock(ManualClock::new())
            .recursion_guard(guard)
            .build()
            .unwrap();
        rt.register(Function::new("leaf", |_: &u32, _ctx| Ok(())))
            .unwrap();
        rt.register(Function::new("fan", |n: &u32, ctx| {
            for i in 0..*n {
                ctx.invoke_async("leaf", i)?;
            }
            Ok(())
        }))
        .unwrap();
        // Warm up: the first child allocates what every queue has.
        rt.invoke_async("fan", 1).unwrap();
        assert_eq!(rt.run_until_idle(), 2);
        rt.invoke_async("fan", CHILDREN).unwrap();
        let before = live();
        rt.try_dispatch().unwrap();
        let after = live();
        let beside =
            (after - before) as f64 / f64::from(CHILDREN) - std::mem::size_of::<u32>() as f64;
        println!("{guard:?}: {beside:.1} bytes per queued child beside its u32");
        assert!(beside <= TARGET, "{guard:?}: {beside:.1} bytes each");
        assert_eq!(rt.run_until_idle(), u64::from(CHILDREN));
    }
}
