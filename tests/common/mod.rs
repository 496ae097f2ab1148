//! Helpers shared by the test files (each file uses some of them).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use event_invoke::{
    Destination, Dispatched, Function, InvocationRecord, ManualClock, Runtime, Timestamp,
};

/// A runtime on a fresh manual clock, and the clock.
pub fn manual_runtime<P: Send + 'static, R: Send + 'static>() -> (ManualClock, Runtime<P, R>) {
    let clock = ManualClock::new();
    let rt = Runtime::builder().clock(clock.clone()).build().unwrap();
    (clock, rt)
}

/// A channel destination and the receiver of its records.
pub fn sink<P, R>() -> (Destination<P, R>, Receiver<InvocationRecord<P, R>>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Destination::channel(tx), rx)
}

/// Asserts that every accepted request has exactly one record among `records` (request id as
/// text, condition), and that nothing else was recorded; returns how many ended as `condition`.
pub fn one_record_each(
    records: &[(String, event_invoke::Condition)],
    accepted: &[event_invoke::RequestId],
    condition: event_invoke::Condition,
) -> usize {
    assert_eq!(records.len(), accepted.len(), "{records:?}");
    for id in accepted {
        let id = id.to_string();
        let mine: Vec<_> = records.iter().filter(|(r, _)| *r == id).collect();
        assert_eq!(mine.len(), 1, "{id}: {mine:?}");
    }
    records.iter().filter(|(_, c)| *c == condition).count()
}

/// Registers "f" on `rt` with reserved concurrency 1 (and what `configure` adds). Event 1,
/// while it holds the only slot, tries the next event with `try_dispatch` and sends what that
/// step did; every execution sends its payload and start time.
pub fn one_slot_function_that_steps_inside(
    rt: &Runtime<u32>,
    configure: impl FnOnce(Function<u32, ()>) -> Function<u32, ()>,
) -> (Receiver<Option<Dispatched>>, Receiver<(u32, Timestamp)>) {
    let (inner_tx, inner_steps) = crossbeam_channel::unbounded();
    let (tx, starts) = crossbeam_channel::unbounded();
    let f = Function::new("f", move |n: &u32, ctx| {
        tx.send((*n, ctx.started_at())).unwrap();
        if *n == 1 {
            // While this execution holds the only slot, try the next event.
            inner_tx
                .send(ctx.runtime().unwrap().try_dispatch())
                .unwrap();
        }
        Ok(())
    })
    .reserved_concurrency(1);
    rt.register(configure(f)).unwrap();
    (inner_steps, starts)
}

/// Registers function `name`, whose handler counts its runs in the returned counter.
pub fn counting(rt: &Runtime<u32>, name: &str) -> Arc<AtomicU32> {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&runs);
    rt.register(Function::new(name, move |_: &u32, _ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();
    runs
}
