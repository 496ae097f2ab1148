//! Memory per queued event, payload excluded, measured with a counting allocator.
//!
//! The allocator counts the bytes each thread has live, not the whole process: the runtime
//! starts no threads, so everything `invoke_async` allocates is allocated on the thread that
//! calls it. A count of the whole process is not exact: libtest's main thread, which waits for
//! the test's result on a channel, allocates some 900 bytes (its blocking context) the first
//! time it parks, at a moment that depends on scheduling. Landing inside the measured window,
//! at a ring-buffer doubling where the queue's own cost is 63.998 bytes per event, those
//! bytes made the old whole-process count read "64.0 bytes each" and fail in about 1 run in 3.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use event_invoke::{Function, ManualClock, QueuedEvent, RecursionGuard, Runtime};

/// Counts the bytes live on the heap, per thread.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread. A `const` thread local without a
    /// destructor: reading it never allocates, so the allocator may use it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // `try_with` cannot fail for a `const` thread local without a destructor; if it ever
    // could, a thread being torn down would simply go uncounted.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
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
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_queued_event_costs_at_most_64_bytes_beside_its_payload_at_any_depth() {
    // The event's own fields: id, enqueue time, the history (behind a pointer) that only
    // retried, throttled, duplicated or chained events have, code version, attempts, chain
    // depth.
    assert_eq!(std::mem::size_of::<QueuedEvent<()>>(), 32);

    // Worst cases included: just past a doubling of the ring buffer, half of it is slack
    // (63.998 bytes per event). The count is exact, so the bound has no margin to give: one
    // more byte per event anywhere on the invoke path fails it.
    for events in [1_000usize, 65_537, 100_000, 262_145] {
        let rt: Runtime<()> = Runtime::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let f = rt
            .register(Function::new("f", |_: &(), _ctx| Ok(())))
            .unwrap();
        f.invoke_async(()).unwrap(); // the first event allocates what every queue has
        let before = live();
        for _ in 1..events {
            f.invoke_async(()).unwrap();
        }
        let after = live();
        let bytes = after - before;
        let per_event = bytes as f64 / (events - 1) as f64;
        println!("{events} events: {bytes} bytes, {per_event:.4} per queued event");
        assert!(
            per_event <= 64.0,
            "{events} events: {bytes} bytes, {per_event:.4} each, over 64"
        );
        assert_eq!(rt.run_until_idle(), events as u64);
    }
    children_of_a_fan_out_cost_what_plain_events_cost();
}

/// The children of a fan-out cost what plain events cost, under every recursion guard. The
/// loop guard keeps each event's chain (the functions it reached), but the children one
/// execution invokes in the same function share theirs: no allocation per child. (Part of the
/// test above: the counter is global, and a test running beside it would move it.)
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
        let per_child = (after - before) as f64 / f64::from(CHILDREN);
        println!("{guard:?}: {per_child:.1} bytes per queued child");
        assert!(per_child <= 64.0, "{guard:?}: {per_child:.1} bytes each");
        assert_eq!(rt.run_until_idle(), u64::from(CHILDREN));
    }
}
