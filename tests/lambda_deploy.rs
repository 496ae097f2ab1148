//! Feature `lambda`: `run_on_lambda` serves this crate's `Function` through
//! `lambda_runtime::run` against a Lambda Runtime API that the test serves on 127.0.0.1 (an
//! ephemeral port, plain HTTP/1.1 on `std::net`): the events go out on
//! `GET /2018-06-01/runtime/invocation/next` with Lambda's headers, the responses and error
//! payloads come back on `POST .../{id}/response` and `POST .../{id}/error`.
//!
//! `lambda_runtime` reads its endpoint and the function's settings from environment variables
//! only (`AWS_LAMBDA_RUNTIME_API`, ...), so this file is a test binary of its own and its tests
//! take turns on one lock. Each run is bounded by a watchdog.
#![cfg(feature = "lambda")]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use event_invoke::{
    lambda_request_id, run_on_lambda, Function, FunctionError, InvokeError, LambdaRunError,
    Timestamp,
};
use serde_json::{json, Value};

/// The name of the thread whose current-thread tokio runtime runs `run_on_lambda`.
const REACTOR: &str = "runtime-api-reactor";

/// How long a whole deploy run may take before the test fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(60);

/// The tests of this file set process-wide environment variables: one at a time.
static ENV: Mutex<()> = Mutex::new(());

/// One event the Runtime API hands out.
struct Event {
    request_id: &'static str,
    deadline_ms: u64,
    arn: String,
    body: Value,
}

/// One request the runtime client made.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal Lambda Runtime API on 127.0.0.1: hands out `events` in order, records every
/// request, and closes the connection on a `next` once the events are gone (which stops the
/// runtime client).
struct RuntimeApi {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RuntimeApi {
    fn serve(events: Vec<Event>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let events = Arc::new(Mutex::new(VecDeque::from(events)));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (events, log) = (Arc::clone(&events), Arc::clone(&log));
                thread::spawn(move || connection(stream, &events, &log));
            }
        });
        RuntimeApi { address, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves the requests of one keep-alive connection.
fn connection(stream: TcpStream, events: &Mutex<VecDeque<Event>>, log: &Mutex<Vec<Seen>>) {
    stream.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        log.lock().unwrap().push(request.clone());
        let next = request.method == "GET" && request.path == "/2018-06-01/runtime/invocation/next";
        if next {
            let Some(event) = events.lock().unwrap().pop_front() else {
                return; // no more events: close, and the client stops
            };
            let body = event.body.to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {}\r\nLambda-Runtime-Invoked-Function-Arn: {}\r\nContent-Length: {}\r\n\r\n{}",
                event.request_id,
                event.deadline_ms,
                event.arn,
                body.len(),
                body
            );
            writer.write_all(response.as_bytes()).unwrap();
        } else if request.method == "POST"
            && request.path.starts_with("/2018-06-01/runtime/invocation/")
        {
            writer
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        } else {
            writer
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        }
        writer.flush().unwrap();
    }
}

/// One HTTP/1.1 request (a body by `Content-Length` or chunked), or `None` at the end of the
/// connection.
fn read_request(reader: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut seen = Seen {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(length) = seen.header("content-length") {
        let mut body = vec![0; length.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
        seen.body = body;
    } else if seen
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(seen)
}

/// Sets the variables Lambda sets in an execution environment.
fn lambda_environment(api: &RuntimeApi) {
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", &api.address);
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "resize-image");
    std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256");
    std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
}

/// Runs `run_on_lambda(function)` on a thread of its own until it stops, within the watchdog.
fn deploy(function: Function<Value, Value>) -> Result<(), LambdaRunError> {
    let (done, stopped) = mpsc::channel();
    // The reactor's thread, by name: the handler must never run on it.
    let reactor = thread::Builder::new().name(REACTOR.to_string());
    reactor
        .spawn(move || {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .unwrap();
            let _ = done.send(tokio.block_on(run_on_lambda(function)));
        })
        .unwrap();
    stopped
        .recv_timeout(WATCHDOG)
        .expect("run_on_lambda did not stop within the watchdog")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The handler deployed: the crate's synchronous closure, as it runs under the engine.
fn resize() -> Function<Value, Value> {
    Function::new("resize", |event: &Value, ctx| {
        if event.get("panic").is_some() {
            panic!("corrupt image {}", event["key"]);
        }
        if let Some(target) = event["invoke"].as_str() {
            ctx.invoke_async(target, event.clone())?;
        }
        // A handler that goes on after a refused invoke (as one falling back to the AWS SDK).
        let fallback = event["try_invoke"].as_str().map(|target| {
            match ctx.invoke_async(target, json!({ "key": "z.png" })) {
                Err(InvokeError::UnavailableOnLambda { function, payload }) => {
                    json!({ "refused": function, "payload": payload })
                }
                other => json!(format!("{other:?}")),
            }
        });
        let key = event["key"]
            .as_str()
            .ok_or_else(|| FunctionError::new("NoKey", "the event has no key"))?;
        let clock_at_zero = [ctx.now(), ctx.enqueued_at(), ctx.started_at()]
            .iter()
            .all(|t| *t == Timestamp::ZERO);
        Ok(json!({
            "resized": key,
            "request_id": ctx.request_id().to_string(),
            "function": ctx.function_name(),
            "attempt": ctx.approximate_invoke_count(),
            "chain_depth": ctx.chain_depth(),
            "remaining_ms": ctx.remaining_time().as_millis() as u64,
            "thread": std::thread::current().name(),
            "fallback": fallback,
            "clock": clock_at_zero,
        }))
    })
}

#[test]
fn a_function_served_on_the_runtime_api_posts_its_responses_and_errors() {
    let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
    event_invoke::quiet_handler_panics();
    let arn = "arn:aws:lambda:eu-west-1:111122223333:function:resize-image".to_string();
    // Far enough out that a context falling back to a default 3 s timeout is caught.
    let deadline_ms = now_ms() + 20_000;
    let event = |request_id, body| Event {
        request_id,
        deadline_ms,
        arn: arn.clone(),
        body,
    };
    let aws_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
    let ours = "00000001-0000-4000-8000-00000000002a";
    let api = RuntimeApi::serve(vec![
        event(aws_id, json!({ "key": "cat.png" })),
        event(ours, json!({ "key": "dog.png" })),
        event("req-no-key", json!({})),
        event("req-panic", json!({ "key": "x.png", "panic": true })),
        event(
            "req-invoke",
            json!({ "key": "y.png", "invoke": "thumbnail" }),
        ),
        event(
            "req-fallback",
            json!({ "key": "w.png", "try_invoke": "thumbnail" }),
        ),
    ]);
    lambda_environment(&api);

    let stopped = deploy(resize());
    assert!(
        matches!(stopped, Err(LambdaRunError::RuntimeApi(_))),
        "the client stops when the Runtime API closes: {stopped:?}"
    );

    let seen = api.seen();
    let nexts = seen
        .iter()
        .filter(|s| s.path == "/2018-06-01/runtime/invocation/next")
        .inspect(|s| assert_eq!(s.method, "GET"))
        .count();
    assert_eq!(nexts, 7, "six events, then the closed seventh");
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    let paths: Vec<&str> = posts.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("/2018-06-01/runtime/invocation/{aws_id}/response"),
            format!("/2018-06-01/runtime/invocation/{ours}/response"),
            "/2018-06-01/runtime/invocation/req-no-key/error".to_string(),
            "/2018-06-01/runtime/invocation/req-panic/error".to_string(),
            "/2018-06-01/runtime/invocation/req-invoke/error".to_string(),
            "/2018-06-01/runtime/invocation/req-fallback/response".to_string(),
        ]
    );

    // Responses: Lambda's request id as this crate's RequestId, the deadline as the remaining
    // time, Lambda's function name; what Lambda does not tell a function is 1.
    let cat = posts[0].json();
    assert_eq!(cat["resized"], "cat.png");
    assert_eq!(cat["request_id"], lambda_request_id(aws_id).to_string());
    assert_eq!(cat["function"], "resize-image");
    assert_eq!(
        (cat["attempt"].as_u64(), cat["chain_depth"].as_u64()),
        (Some(1), Some(1))
    );
    let remaining = cat["remaining_ms"].as_u64().unwrap();
    assert!(
        remaining > 10_000 && remaining <= 20_000,
        "the remaining time is read from Lambda-Runtime-Deadline-Ms (20 s out): {remaining}"
    );
    // The synchronous handler ran off the reactor's thread (on tokio's blocking pool).
    for response in &posts[..2] {
        assert_ne!(response.json()["thread"], REACTOR, "{:?}", response.json());
    }
    assert_eq!(
        cat["clock"], true,
        "no runtime clock on Lambda: Timestamp::ZERO"
    );
    let dog = posts[1].json();
    assert_eq!(
        dog["request_id"], ours,
        "this crate's own ids come back exactly"
    );

    // Errors: Lambda's {errorType, errorMessage}.
    assert_eq!(
        posts[2].json(),
        json!({ "errorType": "NoKey", "errorMessage": "the event has no key" })
    );
    assert_eq!(
        posts[3].json(),
        json!({ "errorType": FunctionError::PANIC, "errorMessage": "corrupt image \"x.png\"" })
    );
    // `ctx.invoke_async(..)?` on Lambda: refused at the call, so the invocation fails with the
    // refusal, whose message says what to do instead.
    let invoke = posts[4].json();
    assert_eq!(invoke["errorType"], "InvokeError");
    let message = invoke["errorMessage"].as_str().unwrap();
    assert!(message.contains("`thumbnail`"), "{message}");
    assert!(message.contains("AWS SDK"), "{message}");
    // A handler that handles the refusal has its own result posted, the payload handed back.
    let fallback = posts[5].json();
    assert_eq!(
        fallback["fallback"],
        json!({ "refused": "thumbnail", "payload": { "key": "z.png" } })
    );
    assert_eq!(fallback["resized"], "w.png");
    for error in &posts[2..5] {
        assert!(error.header("lambda-runtime-function-error-type").is_some());
    }
}

#[test]
fn without_lambdas_environment_run_on_lambda_says_which_variable_is_missing() {
    let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let saved = std::env::var("AWS_LAMBDA_RUNTIME_API").ok();
    std::env::remove_var("AWS_LAMBDA_RUNTIME_API");
    let stopped = deploy(resize());
    if let Some(saved) = saved {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", saved);
    }
    let error = stopped.unwrap_err();
    assert!(
        matches!(
            error,
            LambdaRunError::Environment {
                variable: "AWS_LAMBDA_RUNTIME_API",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("register the Function with a Runtime"),
        "{error}"
    );
}

#[test]
fn a_runtime_api_address_that_is_not_host_and_port_is_refused_with_what_is_wrong() {
    let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let api = RuntimeApi::serve(Vec::new());
    lambda_environment(&api);
    for (value, problem) in [
        ("", "empty"),
        ("   ", "not host:port"),
        ("localhost", "without a port"),
        ("127.0.0.1:", "port \"\""),
        (":9001", "without a host"),
        ("127.0.0.1:99999", "port \"99999\""),
        ("127.0.0.1:0", "port \"0\""),
        ("127.0.0.1:api", "port \"api\""),
        ("http://", "empty"),
        ("127.0.0.1:9001/2018-06-01", "a path"),
        ("[::1]", "without a port"),
    ] {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", value);
        let error = deploy(resize()).unwrap_err();
        let LambdaRunError::Environment {
            variable,
            problem: said,
            ..
        } = &error
        else {
            panic!("{value:?}: {error}");
        };
        assert_eq!(*variable, "AWS_LAMBDA_RUNTIME_API", "{value:?}");
        assert!(said.contains(problem), "{value:?}: {said}");
        let message = error.to_string();
        assert!(message.contains("AWS_LAMBDA_RUNTIME_API"), "{message}");
        assert!(message.contains("host:port"), "{message}");
    }
    // Lambda's own forms pass the check (and reach the test's Runtime API).
    for value in [api.address.clone(), format!("http://{}", api.address)] {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", &value);
        let stopped = deploy(resize());
        assert!(
            matches!(stopped, Err(LambdaRunError::RuntimeApi(_))),
            "{value}: {stopped:?}"
        );
    }
    assert!(api
        .seen()
        .iter()
        .all(|s| s.path == "/2018-06-01/runtime/invocation/next"));
}
