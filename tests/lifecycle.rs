//! What a runtime keeps alive, and what deleting a function releases.

use std::sync::Arc;

use event_invoke::{Function, ManualClock, Runtime};

#[test]
fn dropping_the_runtime_drops_the_handlers() {
    let token = Arc::new(());
    let held = Arc::clone(&token);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    rt.register(Function::new("f", move |_: &u32, _ctx| {
        let _ = &held;
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("f", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(Arc::strong_count(&token), 2);
    drop(rt);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn deleting_a_function_breaks_the_cycle_of_a_handler_that_holds_a_handle() {
    let token = Arc::new(());
    let held = Arc::clone(&token);
    let rt: Runtime<u32> = Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let leaf = rt
        .register(Function::new("leaf", |_: &u32, _ctx| Ok(())))
        .unwrap();
    rt.register(Function::new("parent", move |n: &u32, ctx| {
        let _ = &held;
        ctx.invoke_async_handle(&leaf, *n).unwrap();
        Ok(())
    }))
    .unwrap();
    rt.invoke_async("parent", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 2);
    rt.delete("parent").unwrap();
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the deleted handler is dropped"
    );
}
