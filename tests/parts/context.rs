//! `Function` and `Context` without a runtime: `TestContext` and `Function::call`.

use std::time::Duration;

use event_invoke::{Context, Function, FunctionError, RequestId, TestContext};

type Ctx<'a> = Context<'a, u32, u32>;

#[test]
fn a_handler_runs_without_a_runtime_and_sees_the_attempt_it_was_given() {
    let f = Function::new("echo", |n: &u32, ctx: &Ctx<'_>| {
        assert_eq!(ctx.function_name(), "echo");
        assert_eq!(ctx.request_id(), RequestId::from_u64(7));
        assert_eq!(ctx.chain_depth(), 4);
        assert_eq!(ctx.code_version(), 9);
        assert!(ctx.is_duplicate());
        assert!(ctx.is_cold_start());
        assert!(ctx.runtime().is_none());
        Ok(n + ctx.approximate_invoke_count())
    });
    let test = TestContext::new("echo")
        .request_id(RequestId::from_u64(7))
        .approximate_invoke_count(3)
        .chain_depth(4)
        .code_version(9)
        .duplicate(true)
        .cold_start(true);
    assert_eq!(f.call(&10, &test.context()), Ok(13));
}

#[test]
fn a_test_context_keeps_the_invokes_in_order_and_hands_out_fresh_ids() {
    let f = Function::new("fan-out", |n: &u32, ctx: &Ctx<'_>| {
        let a = ctx.invoke_async("left", *n)?;
        let b = ctx.invoke_async("right", n + 1)?;
        assert_ne!(a, b);
        assert_ne!(a, ctx.request_id());
        Ok(0)
    });
    let test = TestContext::new("fan-out");
    f.call(&5, &test.context()).unwrap();
    assert_eq!(
        test.take_invocations(),
        vec![("left".to_string(), 5), ("right".to_string(), 6)]
    );
    assert!(
        test.take_invocations().is_empty(),
        "taking empties the list"
    );
}

#[test]
fn a_test_context_clock_stands_at_the_attempts_start() {
    let f = Function::new("age", |_: &u32, ctx: &Ctx<'_>| {
        assert_eq!(ctx.event_age(), Duration::from_secs(90));
        assert_eq!(ctx.now(), ctx.started_at());
        assert_eq!(ctx.remaining_time(), Duration::from_secs(5));
        Ok(0)
    });
    let test = TestContext::new("age")
        .event_age(Duration::from_secs(90))
        .timeout(Duration::from_secs(5));
    f.call(&0, &test.context()).unwrap();
}

#[test]
fn a_handler_error_comes_back_from_call_unchanged() {
    let f = Function::new("fails", |_: &u32, _ctx: &Ctx<'_>| {
        Err(FunctionError::new("Boom", "it broke"))
    });
    let err = f
        .call(&0, &TestContext::new("fails").context())
        .unwrap_err();
    assert_eq!((err.error_type(), err.message()), ("Boom", "it broke"));
}

#[test]
fn a_deduplicating_handler_is_unit_tested_across_retries_of_one_request() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    let seen = Mutex::new(HashSet::new());
    let charged = Mutex::new(0u32);
    let f = Function::new("charge", move |amount: &u32, ctx: &Ctx<'_>| {
        if seen.lock().unwrap().insert(ctx.request_id()) {
            *charged.lock().unwrap() += amount;
        }
        Ok(*charged.lock().unwrap())
    });
    for attempt in 1..=3 {
        let test = TestContext::new("charge").approximate_invoke_count(attempt);
        assert_eq!(f.call(&25, &test.context()), Ok(25), "attempt {attempt}");
    }
}

#[test]
fn a_context_is_send_and_sync_so_a_handler_can_fan_out_from_its_own_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Context<'static, u32, ()>>();
    send_sync::<TestContext<u32>>();

    let f = Function::new("scatter", |n: &u32, ctx: &Ctx<'_>| {
        std::thread::scope(|s| {
            for i in 0..*n {
                s.spawn(move || ctx.invoke_async("gather", i).map(|_| ()));
            }
        });
        Ok(0)
    });
    let test = TestContext::new("scatter");
    f.call(&4, &test.context()).unwrap();
    let mut sent: Vec<u32> = test
        .take_invocations()
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, [0, 1, 2, 3]);
}

#[test]
fn a_test_context_can_stand_at_any_time_of_a_callers_own_clock() {
    use event_invoke::Timestamp;
    let f = Function::new("at", |_: &u32, ctx: &Ctx<'_>| {
        assert_eq!(ctx.enqueued_at(), Timestamp::from_secs(100));
        assert_eq!(ctx.started_at(), Timestamp::from_secs(160));
        assert_eq!(ctx.event_age(), Duration::from_secs(60));
        assert_eq!(ctx.now(), Timestamp::from_secs(160));
        Ok(0)
    });
    let test = TestContext::new("at")
        .enqueued_at(Timestamp::from_secs(100))
        .started_at(Timestamp::from_secs(160));
    f.call(&0, &test.context()).unwrap();
}
