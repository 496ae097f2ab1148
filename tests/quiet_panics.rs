//! `quiet_handler_panics`: the panics the engine catches around handlers print nothing, and
//! every other panic still reaches the hook installed before. The panic hook is one per
//! process, so this file is one test, in steps, with a capturing hook of its own.

use std::panic::{catch_unwind, AssertUnwindSafe, PanicHookInfo};
use std::sync::{Arc, Mutex};

use event_invoke::{
    Condition, Destination, Function, FunctionError, InvokeSyncError, ManualClock, Runtime,
    TestContext,
};

/// What the capturing hook (the "previous" hook) was given: each panic's message.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(not a string)".to_string(),
    };
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push(message);
}

/// The messages the capturing hook saw since the last call.
fn seen() -> Vec<String> {
    std::mem::take(&mut *SEEN.lock().unwrap_or_else(|e| e.into_inner()))
}

fn runtime<R: Send + 'static>() -> Runtime<u32, R> {
    Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// A runtime whose function "boom" panics with "boom <n>" once (no retries).
fn boom() -> Runtime<u32> {
    let rt = runtime();
    rt.register(
        Function::new("boom", |n: &u32, _ctx| -> Result<(), FunctionError> {
            panic!("boom {n}")
        })
        .maximum_retry_attempts(0),
    )
    .unwrap();
    rt
}

/// The messages of the dead letters' errors, sorted.
fn errors(rt: &Runtime<u32>) -> Vec<String> {
    let mut messages: Vec<_> = rt
        .drain_dead_letters()
        .iter()
        .map(|r| {
            assert_eq!(r.condition, Condition::RetriesExhausted);
            assert_eq!(r.error().unwrap().error_type(), FunctionError::PANIC);
            r.error().unwrap().message().to_string()
        })
        .collect();
    messages.sort();
    messages
}

#[test]
fn handler_panics_print_nothing_once_asked_and_every_other_panic_reaches_the_previous_hook() {
    std::panic::set_hook(Box::new(capture));

    // Not asked yet: a handler's panic reaches the hook like any other.
    let rt = boom();
    rt.invoke_async("boom", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(seen(), ["boom 1"]);
    assert_eq!(errors(&rt), ["boom 1"]);

    event_invoke::quiet_handler_panics();
    event_invoke::quiet_handler_panics(); // once is enough; again does nothing

    // A handler's panic on this thread: caught, recorded with its message, not printed.
    rt.invoke_async("boom", 2).unwrap();
    rt.run_until_idle();
    assert_eq!(seen(), Vec::<String>::new());
    assert_eq!(errors(&rt), ["boom 2"]);

    // The mark ends with the handler: a panic after it, on the same thread, is reported.
    let _ = catch_unwind(|| panic!("after the handler"));
    assert_eq!(seen(), ["after the handler"]);

    // On worker threads too.
    let workers = rt.spawn_workers(2).unwrap();
    for n in 10..20 {
        rt.invoke_async("boom", n).unwrap();
    }
    rt.wait_idle();
    workers.stop();
    assert_eq!(seen(), Vec::<String>::new());
    assert_eq!(errors(&rt).len(), 10);

    // A handler inside a handler (a synchronous invoke): when the inner one returns, the outer
    // one is still a handler, and a panic it catches itself is quiet too.
    let rt: Runtime<u32, u32> = runtime();
    rt.register(Function::new("inner", |_: &u32, _ctx| -> Result<u32, _> {
        panic!("inner")
    }))
    .unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&outcomes);
    rt.register(
        Function::new("outer", move |_: &u32, ctx| -> Result<u32, _> {
            let inner = ctx.runtime().unwrap().invoke("inner", &0);
            noted.lock().unwrap().push(matches!(
                inner,
                Err(InvokeSyncError::Function(ref e)) if e.message() == "inner"
            ));
            let own = catch_unwind(|| panic!("caught by the handler"));
            noted.lock().unwrap().push(own.is_err());
            panic!("outer")
        })
        .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.invoke_async("outer", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(seen(), Vec::<String>::new());
    assert_eq!(*outcomes.lock().unwrap(), [true, true]);
    let record = rt.drain_dead_letters().pop().unwrap();
    assert_eq!(record.error().unwrap().message(), "outer");

    // Not a handler: a panicking destination is reported (and the record kept).
    let rt: Runtime<u32> = runtime();
    rt.register(
        Function::new("fails", |_: &u32, _ctx| {
            Err(FunctionError::new("Declined", "declined"))
        })
        .maximum_retry_attempts(0)
        .on_failure(Destination::closure(|_| panic!("destination"))),
    )
    .unwrap();
    rt.invoke_async("fails", 1).unwrap();
    rt.run_until_idle();
    assert_eq!(seen(), ["destination"]);
    assert_eq!(rt.drain_dead_letters().len(), 1);

    // Not run by the runtime: `Function::call` does not catch, and its panic is reported.
    let f = Function::new("direct", |_: &u32, _ctx| -> Result<(), FunctionError> {
        panic!("called directly")
    });
    let ctx = TestContext::new("direct");
    assert!(catch_unwind(AssertUnwindSafe(|| f.call(&1, &ctx.context()))).is_err());
    assert_eq!(seen(), ["called directly"]);

    // Model mode runs handlers on this thread, in virtual time: quiet as well.
    #[cfg(feature = "model")]
    {
        let rt: Runtime<u32> = Runtime::builder()
            .model(event_invoke::ModelOptions::new())
            .build()
            .unwrap();
        rt.register(
            Function::new("modelled", |n: &u32, _ctx| -> Result<(), FunctionError> {
                panic!("modelled {n}")
            })
            .maximum_retry_attempts(0),
        )
        .unwrap();
        rt.invoke_async("modelled", 1).unwrap();
        rt.run_until_idle();
        assert_eq!(seen(), Vec::<String>::new());
        assert_eq!(errors(&rt), ["modelled 1"]);
    }
}
