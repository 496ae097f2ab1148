//! Memory per queued event, payload excluded, measured with a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use event_invoke::{Function, ManualClock, QueuedEvent, Runtime};

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counter only observes sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::SeqCst);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_queued_event_costs_at_most_64_bytes_beside_its_payload_at_any_depth() {
    // The event's own fields: id, enqueue time, the boxed history that only retried,
    // throttled or duplicated events allocate, code version, attempts, chain depth.
    assert_eq!(std::mem::size_of::<QueuedEvent<()>>(), 32);

    // Worst cases included: just past a doubling of the ring buffer, half of it is slack.
    for events in [1_000usize, 65_537, 100_000, 262_145] {
        let rt: Runtime<()> = Runtime::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let f = rt
            .register(Function::new("f", |_: &(), _ctx| Ok(())))
            .unwrap();
        f.invoke_async(()).unwrap(); // the first event allocates what every queue has
        let before = LIVE.load(Ordering::SeqCst);
        for _ in 1..events {
            f.invoke_async(()).unwrap();
        }
        let after = LIVE.load(Ordering::SeqCst);
        let per_event = (after - before) as f64 / (events - 1) as f64;
        println!("{events} events: {per_event:.1} bytes per queued event");
        assert!(
            per_event <= 64.0,
            "{events} events: {per_event:.1} bytes each"
        );
        assert_eq!(rt.run_until_idle(), events as u64);
    }
}
