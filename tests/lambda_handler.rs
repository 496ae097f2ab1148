//! Feature `lambda`: a handler written for `lambda_runtime` (an async fn over `LambdaEvent<T>`
//! in a `service_fn`) runs under the engine, with Lambda's `Context` filled for each attempt,
//! its errors mapped through `Diagnostic`, its panics contained, and its future driven on the
//! worker thread (also from inside a tokio runtime).
#![cfg(feature = "lambda")]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use event_invoke::{
    Condition, Function, FunctionError, LambdaHandler, LambdaHandlerError, LambdaJson, ManualClock,
    Runtime,
};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

fn manual() -> Runtime<Value, Value> {
    Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// What a handler saw of Lambda's context, one entry per attempt.
type Seen = Arc<Mutex<Vec<lambda_runtime::Context>>>;

#[test]
fn each_attempt_gets_lambdas_context_with_the_events_request_id_on_every_retry() {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(event.context.clone());
            Err::<Value, Error>("not yet".into())
        }
    });
    let rt = manual();
    let lambda = LambdaJson::default()
        .region("eu-west-1")
        .account_id("111122223333");
    rt.register(
        Function::new(
            "orders",
            LambdaHandler::new(handler)
                .arn_from(lambda)
                .memory_size(512)
                .unwrap()
                .into_handler(),
        )
        .timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let before = SystemTime::now();
    let id = rt.invoke_async("orders", json!({ "order": 1 })).unwrap();
    rt.run_until_idle();
    let after = SystemTime::now();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "the first try and Lambda's two retries");
    for ctx in seen.iter() {
        assert_eq!(ctx.request_id, id.to_string());
        assert_eq!(
            ctx.invoked_function_arn,
            "arn:aws:lambda:eu-west-1:111122223333:function:orders"
        );
        assert_eq!(ctx.env_config.function_name, "orders");
        assert_eq!(ctx.env_config.version, "$LATEST");
        assert_eq!(ctx.env_config.memory, 512);
        assert_eq!(ctx.env_config.log_group, "/aws/lambda/orders");
        // The deadline: the wall clock at the attempt's start plus the 30 s timeout.
        let deadline = ctx.deadline();
        assert!(deadline >= before + Duration::from_secs(30) - Duration::from_millis(1));
        assert!(deadline <= after + Duration::from_secs(30));
        assert!(ctx.xray_trace_id.is_none());
    }
}

#[test]
fn the_default_context_is_lambdas_defaults_region_account_and_memory() {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let rt = manual();
    rt.register(Function::lambda(
        "thumbs",
        service_fn(move |event: LambdaEvent<Value>| {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push(event.context);
                Ok::<_, Error>(event.payload)
            }
        }),
    ))
    .unwrap();
    let before = now_ms();
    assert_eq!(rt.invoke("thumbs", &json!([1, 2])).unwrap(), json!([1, 2]));
    let after = now_ms();
    let ctx = seen.lock().unwrap().pop().unwrap();
    assert_eq!(
        ctx.invoked_function_arn,
        "arn:aws:lambda:us-east-1:123456789012:function:thumbs"
    );
    assert_eq!(ctx.env_config.memory, 128);
    // The wall clock at the attempt's start plus Lambda's default 3 s timeout.
    assert!(
        (before + 3_000 - 1..=after + 3_000).contains(&ctx.deadline),
        "{} not 3 s after [{before}, {after}]",
        ctx.deadline
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(Debug)]
struct OutOfStock(u32);

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {} is out of stock", self.0)
    }
}

impl From<OutOfStock> for Diagnostic {
    fn from(e: OutOfStock) -> Diagnostic {
        Diagnostic {
            error_type: "OutOfStock".to_string(),
            error_message: e.to_string(),
        }
    }
}

#[test]
fn an_err_becomes_the_function_error_that_lambda_runtimes_diagnostic_gives_it() {
    let rt = manual();
    rt.register(
        Function::lambda(
            "boxed",
            service_fn(|_: LambdaEvent<Value>| async {
                Err::<Value, Error>("card declined".into())
            }),
        )
        .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.register(
        Function::lambda(
            "typed",
            service_fn(|_: LambdaEvent<Value>| async { Err::<Value, OutOfStock>(OutOfStock(7)) }),
        )
        .maximum_retry_attempts(0),
    )
    .unwrap();
    rt.invoke_async("boxed", json!(1)).unwrap();
    rt.invoke_async("typed", json!(2)).unwrap();
    rt.run_until_idle();
    let records = rt.drain_dead_letters();
    assert_eq!(records.len(), 2);

    let expected: Diagnostic = Error::from("card declined").into();
    let boxed = records.iter().find(|r| &*r.function == "boxed").unwrap();
    let error = boxed.error().unwrap();
    assert_eq!(error.error_type(), expected.error_type);
    assert_eq!(error.message(), "card declined");
    assert_eq!(error.kind(), event_invoke::ErrorKind::Handled);

    let typed = records.iter().find(|r| &*r.function == "typed").unwrap();
    assert_eq!(typed.error().unwrap().error_type(), "OutOfStock");
    assert_eq!(typed.error().unwrap().message(), "item 7 is out of stock");
}

#[derive(Debug, Deserialize)]
struct Order {
    id: u32,
}

#[test]
fn a_payload_that_is_not_the_handlers_type_fails_the_attempt_without_calling_it() {
    let calls = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&calls);
    let rt = manual();
    rt.register(
        Function::lambda(
            "orders",
            service_fn(move |event: LambdaEvent<Order>| {
                *seen.lock().unwrap() += 1;
                async move { Ok::<_, Error>(json!({ "id": event.payload.id })) }
            }),
        )
        .maximum_retry_attempts(1),
    )
    .unwrap();
    assert_eq!(
        rt.invoke("orders", &json!({ "id": 4 })).unwrap(),
        json!({ "id": 4 })
    );
    rt.invoke_async("orders", json!({ "id": "four" })).unwrap();
    rt.run_until_idle();
    let record = rt.drain_dead_letters().pop().unwrap();
    assert_eq!(record.condition, Condition::RetriesExhausted);
    assert_eq!(record.approximate_invoke_count, 2);
    assert_eq!(
        record.error().unwrap().error_type(),
        FunctionError::DESERIALIZE_ERROR
    );
    assert_eq!(
        *calls.lock().unwrap(),
        1,
        "only the good event reached the handler"
    );
}

#[test]
fn a_panic_inside_the_future_is_runtime_panic_retried_and_the_thread_goes_on() {
    event_invoke::quiet_handler_panics();
    let rt = manual();
    rt.register(Function::lambda(
        "flaky",
        service_fn(|event: LambdaEvent<Value>| async move {
            tokio::task::yield_now().await; // the panic comes from a later poll
            if event.payload == json!("panic") {
                panic!("bad order {}", event.payload);
            }
            Ok::<_, Error>(json!("done"))
        }),
    ))
    .unwrap();
    let id = rt.invoke_async("flaky", json!("panic")).unwrap();
    rt.invoke_async("flaky", json!("fine")).unwrap();
    rt.run_until_idle();
    let record = rt.drain_dead_letters().pop().unwrap();
    assert_eq!(record.request_id, id);
    assert_eq!(record.approximate_invoke_count, 3);
    let error = record.error().unwrap();
    assert_eq!(error.error_type(), FunctionError::PANIC);
    assert_eq!(error.message(), "bad order \"panic\"");
    // The same thread's runtime still runs futures after the panics.
    assert_eq!(rt.invoke("flaky", &json!("again")).unwrap(), json!("done"));
    let m = rt.function_metrics("flaky").unwrap();
    assert_eq!((m.events_received, m.finished(), m.errors), (2, 2, 3));
    assert_eq!(m.concurrent_executions, 0);
}

#[test]
fn handlers_find_a_tokio_reactor_with_timers_and_spawned_tasks() {
    let rt = manual();
    rt.register(Function::lambda(
        "sdk-like",
        service_fn(|event: LambdaEvent<Value>| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let doubled = tokio::spawn(async move { event.payload.as_u64().unwrap() * 2 });
            Ok::<_, Error>(json!(doubled.await?))
        }),
    ))
    .unwrap();
    assert_eq!(rt.invoke("sdk-like", &json!(21)).unwrap(), json!(42));
}

#[test]
fn driven_from_inside_a_tokio_runtime_the_handler_still_runs_instead_of_panicking() {
    let rt = manual();
    rt.register(Function::lambda(
        "echo",
        service_fn(|event: LambdaEvent<Value>| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, Error>(event.payload)
        }),
    ))
    .unwrap();
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sync, async_) = outer.block_on(async {
        let sync = rt.invoke("echo", &json!("sync")).unwrap();
        rt.invoke_async("echo", json!("async")).unwrap();
        (sync, rt.run_until_idle())
    });
    assert_eq!(sync, json!("sync"));
    assert_eq!(async_, 1);
    let m = rt.function_metrics("echo").unwrap();
    assert_eq!((m.invocations, m.errors), (2, 0));
}

#[test]
fn a_lambda_handler_invoking_another_synchronously_runs_both() {
    let rt: Arc<Runtime<Value, Value>> = Arc::new(manual());
    rt.register(Function::lambda(
        "inner",
        service_fn(|event: LambdaEvent<Value>| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, Error>(json!({ "inner": event.payload }))
        }),
    ))
    .unwrap();
    let weak = Arc::downgrade(&rt);
    rt.register(Function::lambda(
        "outer",
        service_fn(move |event: LambdaEvent<Value>| {
            let rt = weak.upgrade().unwrap();
            async move {
                // A synchronous invoke from inside this future's runtime.
                let inner = rt.invoke("inner", &event.payload)?;
                Ok::<_, Error>(json!({ "outer": inner }))
            }
        }),
    ))
    .unwrap();
    assert_eq!(
        rt.invoke("outer", &json!(1)).unwrap(),
        json!({ "outer": { "inner": 1 } })
    );
}

#[test]
fn on_worker_threads_every_event_ends_once_and_no_slot_is_leaked() {
    event_invoke::quiet_handler_panics();
    let boxed_error_type = Diagnostic::from(Error::from("failed")).error_type;
    for round in 0..3 {
        let (done, records) = event_invoke::crossbeam_channel::unbounded();
        let rt: Runtime<Value, Value> = Runtime::builder().build().unwrap();
        rt.register(
            Function::lambda(
                "mixed",
                service_fn(|event: LambdaEvent<Value>| async move {
                    tokio::task::yield_now().await;
                    match event.payload.as_u64().unwrap() % 5 {
                        0 => panic!("boom"),
                        1 => Err::<Value, Error>("failed".into()),
                        _ => Ok(event.payload),
                    }
                }),
            )
            .maximum_retry_attempts(0)
            .reserved_concurrency(3)
            .on_success(event_invoke::Destination::channel(done.clone()))
            .on_failure(event_invoke::Destination::channel(done)),
        )
        .unwrap();
        let workers = rt.spawn_workers(4).unwrap();
        let mut ids = HashSet::new();
        for n in 0..2_000u64 {
            ids.insert(rt.invoke_async("mixed", json!(n)).unwrap());
        }
        assert!(
            rt.wait_idle_timeout(Duration::from_secs(120)),
            "round {round}"
        );
        workers.stop();
        let m = rt.function_metrics("mixed").unwrap();
        assert_eq!(m.events_received, 2_000);
        assert_eq!(
            m.finished() + m.queue_ready + m.queue_delayed + m.in_flight_events,
            m.events_received
        );
        assert_eq!(m.finished(), 2_000);
        assert_eq!(m.concurrent_executions, 0, "a slot was leaked");
        assert!(m.peak_concurrent_executions <= 3);
        assert_eq!(m.errors, 800, "400 panics and 400 errors");
        let mut ended = 0;
        while let Ok(record) = records.try_recv() {
            assert!(ids.remove(&record.request_id), "two records for one event");
            let expected = match record.request_payload.as_u64().unwrap() % 5 {
                0 => Some(FunctionError::PANIC),
                1 => Some(boxed_error_type.as_str()),
                _ => None,
            };
            assert_eq!(record.error().map(|e| e.error_type()), expected);
            ended += 1;
        }
        assert_eq!(ended, 2_000);
        assert!(ids.is_empty());
    }
}

/// A handler that spawns a task it does not await; the task raises `flag` a little later. On
/// the `shared` runtime when given.
fn spawn_and_return(
    flag: Arc<std::sync::atomic::AtomicBool>,
    shared: Option<tokio::runtime::Handle>,
) -> Function<Value, Value> {
    let mut handler = LambdaHandler::new(service_fn(move |_: LambdaEvent<Value>| {
        let flag = Arc::clone(&flag);
        async move {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            Ok::<_, Error>(Value::Null)
        }
    }));
    if let Some(handle) = shared {
        handler = handler.tokio_handle(handle).unwrap();
    }
    Function::new("background", handler.into_handler())
}

/// Whether `flag` is raised within `wait`.
fn raised_within(flag: &std::sync::atomic::AtomicBool, wait: Duration) -> bool {
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn on_its_own_runtime_a_spawned_task_waits_for_the_threads_next_attempt() {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = manual();
    rt.register(spawn_and_return(Arc::clone(&flag), None))
        .unwrap();
    rt.invoke("background", &Value::Null).unwrap();
    // Nothing drives this thread's runtime between attempts (Lambda's frozen environment).
    assert!(!raised_within(&flag, Duration::from_millis(50)));
    // The next attempt on this thread runs it while it waits (bounded) for the flag.
    let seen = Arc::clone(&flag);
    rt.register(Function::lambda(
        "wait",
        service_fn(move |_: LambdaEvent<Value>| {
            let seen = Arc::clone(&seen);
            async move {
                for _ in 0..10_000 {
                    if seen.load(std::sync::atomic::Ordering::SeqCst) {
                        return Ok::<_, Error>(json!(true));
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(json!(false))
            }
        }),
    ))
    .unwrap();
    assert_eq!(rt.invoke("wait", &Value::Null).unwrap(), json!(true));
}

#[test]
fn on_a_shared_runtime_a_spawned_task_runs_on_between_attempts() {
    let shared = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = manual();
    rt.register(spawn_and_return(
        Arc::clone(&flag),
        Some(shared.handle().clone()),
    ))
    .unwrap();
    rt.invoke("background", &Value::Null).unwrap();
    // The shared runtime's own thread runs the task: no attempt needs to run.
    assert!(raised_within(&flag, Duration::from_secs(10)));
}

/// Runs `test` on a thread of its own and fails if it has not returned within 60 s, so that a
/// hang fails the test instead of stalling the suite.
fn within_a_minute<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(test()).unwrap());
    result
        .recv_timeout(Duration::from_secs(60))
        .expect("the test hung (watchdog: 60 s)")
}

#[test]
fn a_current_thread_runtimes_handle_is_refused_instead_of_hanging_the_attempt() {
    let refused = within_a_minute(|| {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // What a `#[tokio::test]` does: the test's own runtime given as the shared one.
        outer.block_on(async {
            let handler = LambdaHandler::new(service_fn(|event: LambdaEvent<Value>| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, Error>(event.payload)
            }));
            match handler.tokio_handle(tokio::runtime::Handle::current()) {
                Err(e) => e,
                Ok(handler) => {
                    // Without the check: this thread waits for an attempt whose timer only
                    // this thread could fire (the watchdog fails the test).
                    let rt = manual();
                    rt.register(Function::new("sleepy", handler.into_handler()))
                        .unwrap();
                    let _ = rt.invoke("sleepy", &json!(1));
                    panic!("the current-thread handle was accepted");
                }
            }
        })
    });
    assert_eq!(refused, LambdaHandlerError::CurrentThreadRuntime);
    let message = refused.to_string();
    assert!(message.contains("multi_thread"), "{message}");
    assert!(message.contains("current-thread"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn from_a_multi_thread_tokio_test_its_own_handle_drives_the_handlers_timers() {
    let rt = manual();
    let handler = LambdaHandler::new(service_fn(|event: LambdaEvent<Value>| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, Error>(event.payload)
    }))
    .tokio_handle(tokio::runtime::Handle::current())
    .unwrap();
    rt.register(Function::new("sleepy", handler.into_handler()))
        .unwrap();
    assert_eq!(rt.invoke("sleepy", &json!(7)).unwrap(), json!(7));
    rt.invoke_async("sleepy", json!(8)).unwrap();
    assert_eq!(rt.run_until_idle(), 1);
}

#[test]
fn a_memory_size_lambda_does_not_offer_is_refused_at_the_builder() {
    let echo =
        || service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) });
    for megabytes in [0, 64, 127, 10_241, u32::MAX] {
        let err = LambdaHandler::new(echo())
            .memory_size(megabytes)
            .unwrap_err();
        assert_eq!(err, LambdaHandlerError::MemorySize { megabytes });
        let message = err.to_string();
        assert!(message.contains(&format!("{megabytes} MB")), "{message}");
        assert!(message.contains("128..=10240"), "{message}");
    }
    for megabytes in [
        LambdaHandler::MIN_MEMORY_SIZE_MB,
        LambdaHandler::DEFAULT_MEMORY_SIZE_MB,
        1_769,
        LambdaHandler::MAX_MEMORY_SIZE_MB,
    ] {
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        let handler = LambdaHandler::new(service_fn(move |event: LambdaEvent<Value>| {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push(event.context);
                Ok::<_, Error>(event.payload)
            }
        }))
        .memory_size(megabytes)
        .unwrap();
        let rt = manual();
        rt.register(Function::new("sized", handler.into_handler()))
            .unwrap();
        rt.invoke("sized", &json!(1)).unwrap();
        let memory = seen.lock().unwrap()[0].env_config.memory;
        assert_eq!(memory, i32::try_from(megabytes).unwrap());
    }
}
