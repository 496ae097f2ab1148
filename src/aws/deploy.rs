//! [`run_on_lambda`]: this crate's [`Function`] served on AWS Lambda through
//! `lambda_runtime::run`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::{ExecutionLine, Function, Handler, TestContext};
use crate::parts::clock::Timestamp;
use crate::parts::record::{FunctionError, RequestId};

/// Why [`run_on_lambda`] stopped.
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaRunError {
    /// A variable that Lambda sets in every execution environment is missing or unreadable:
    /// the process does not run inside Lambda (or a Runtime API emulator).
    #[error(
        "{variable} is {problem}: run_on_lambda serves a function inside AWS Lambda, which sets it ({what}); to run the handler here, register the Function with a Runtime instead"
    )]
    Environment {
        /// The environment variable.
        variable: &'static str,
        /// "not set", or what is wrong with its value.
        problem: String,
        /// What Lambda puts in it.
        what: &'static str,
    },
    /// `lambda_runtime` stopped: the Runtime API could not be reached or answered what it
    /// should not.
    #[error("the Lambda Runtime API client stopped: {0}")]
    RuntimeApi(#[source] lambda_runtime::Error),
}

/// The variables `lambda_runtime` reads at start-up (it panics without them; this checks
/// first), and what Lambda puts in each.
const REQUIRED_ENVIRONMENT: [(&str, &str); 4] = [
    (
        "AWS_LAMBDA_RUNTIME_API",
        "the host and port of the Runtime API",
    ),
    ("AWS_LAMBDA_FUNCTION_NAME", "the function's name"),
    (
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "the function's memory size in MB",
    ),
    ("AWS_LAMBDA_FUNCTION_VERSION", "the version being run"),
];

/// Serves `function` on AWS Lambda: the `main` of a function deployed with this crate's
/// handler. It runs `lambda_runtime::run`, which asks Lambda's Runtime API for each event
/// (`GET /2018-06-01/runtime/invocation/next`), and posts the handler's response
/// (`POST .../invocation/{id}/response`) or its error as `{errorType, errorMessage}`
/// (`POST .../invocation/{id}/error`). It returns only when the Runtime API client stops.
///
/// The handler is synchronous: each event runs on tokio's blocking pool
/// (`tokio::task::spawn_blocking`), off the reactor's threads, so a handler that blocks does
/// not stall the Runtime API client. Call it from a tokio runtime with IO and timers (a
/// `#[tokio::main]`, or a runtime you build).
///
/// The handler's [`Context`](crate::Context) is built from what Lambda tells a function:
///
/// | [`Context`](crate::Context) | on Lambda |
/// |---|---|
/// | [`request_id`](crate::Context::request_id) | Lambda's request id (`Lambda-Runtime-Aws-Request-Id`), by [`lambda_request_id`]: the same on every retry, so it stays a dedup key |
/// | [`remaining_time`](crate::Context::remaining_time) | the time left before Lambda's deadline (`Lambda-Runtime-Deadline-Ms`), read at each call |
/// | [`function_name`](crate::Context::function_name) | Lambda's function name (`AWS_LAMBDA_FUNCTION_NAME`), not the [`Function`]'s |
/// | [`approximate_invoke_count`](crate::Context::approximate_invoke_count) | **1 always**: Lambda does not tell a function which attempt it runs (only destination records carry `approximateInvokeCount`) |
/// | [`chain_depth`](crate::Context::chain_depth) | **1 always**: Lambda does not tell a function how deep in a chain it is (its loop detection keeps that in the trace header) |
/// | [`event_age`](crate::Context::event_age) | zero: Lambda does not tell (it reports `AsyncEventAge` as a metric) |
/// | [`is_duplicate`](crate::Context::is_duplicate), [`is_cold_start`](crate::Context::is_cold_start) | `false` |
/// | [`now`](crate::Context::now), [`enqueued_at`](crate::Context::enqueued_at), [`started_at`](crate::Context::started_at) | [`Timestamp::ZERO`](crate::Timestamp::ZERO): there is no runtime clock on Lambda (read the wall clock, or [`remaining_time`](crate::Context::remaining_time)) |
/// | [`spend`](crate::Context::spend) | does nothing (it charges model mode's virtual time) |
/// | [`code_version`](crate::Context::code_version) | 1 |
/// | [`runtime`](crate::Context::runtime) | `None` |
///
/// So a handler that needs to stay idempotent deduplicates by its request id or a business
/// key, not by the attempt number.
///
/// [`Context::invoke_async`](crate::Context::invoke_async) (and `invoke_async_handle`) has no
/// runtime to go to on Lambda: the call fails at once with
/// [`InvokeError::UnavailableOnLambda`](crate::InvokeError::UnavailableOnLambda), whose message
/// says to invoke through the AWS SDK's `Invoke` (`InvocationType=Event`) instead, and which
/// hands the payload back. With `?` the invocation then fails (errorType `InvokeError`), and
/// Lambda retries it and, in the end, sends it to its failure destination: never a silent
/// drop. A handler that matches the error and goes on (say, to invoke through the AWS SDK
/// with [`InvokeError::into_inner`](crate::InvokeError::into_inner)'s payload) has its own
/// result posted, as under the engine when a child invoke is refused.
///
/// The [`Function`]'s settings (timeout, retries, event age, destinations, reserved
/// concurrency) do not travel with it: they are Lambda's function configuration, which
/// [`LambdaJson::export_config`](crate::LambdaJson::export_config) writes. A handler's panic is
/// caught and posted as [`FunctionError::PANIC`] with its message.
///
/// # Errors
///
/// [`LambdaRunError::Environment`] before anything starts when a variable Lambda sets is
/// missing (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`) or unusable
/// (`AWS_LAMBDA_RUNTIME_API` not a `host:port`, the memory size not a whole number);
/// [`LambdaRunError::RuntimeApi`] when the Runtime API client stops.
///
/// # Examples
///
/// ```no_run
/// use event_invoke::{Function, FunctionError};
/// use serde_json::{json, Value};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let resize = Function::new("resize", |event: &Value, ctx| {
///         let key = event["key"].as_str().ok_or_else(|| FunctionError::new("NoKey", "no key"))?;
///         Ok(json!({ "resized": key, "request": ctx.request_id().to_string() }))
///     });
///     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
///     tokio.block_on(event_invoke::run_on_lambda(resize))?;
///     Ok(())
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub async fn run_on_lambda<P, R>(function: Function<P, R>) -> Result<(), LambdaRunError>
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    check_environment()?;
    let handler: Arc<dyn Handler<P, R>> = function.handler;
    let service = service_fn(move |event: LambdaEvent<P>| {
        let handler = Arc::clone(&handler);
        async move {
            match tokio::task::spawn_blocking(move || serve(&*handler, event)).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(diagnostic(&error)),
                Err(stopped) => Err(Diagnostic {
                    error_type: "Runtime.Cancelled".to_string(),
                    error_message: format!("the handler's blocking task did not finish: {stopped}"),
                }),
            }
        }
    });
    lambda_runtime::run(service)
        .await
        .map_err(LambdaRunError::RuntimeApi)
}

/// Checks the variables `lambda_runtime` would otherwise panic without.
fn check_environment() -> Result<(), LambdaRunError> {
    for (variable, what) in REQUIRED_ENVIRONMENT {
        let problem = match std::env::var(variable) {
            Ok(value) if variable == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => value
                .parse::<i32>()
                .err()
                .map(|_| format!("{value:?}, not a whole number")),
            Ok(value) if variable == "AWS_LAMBDA_RUNTIME_API" => runtime_api_problem(&value),
            Ok(_) => None,
            Err(std::env::VarError::NotPresent) => Some("not set".to_string()),
            Err(std::env::VarError::NotUnicode(_)) => Some("not valid UTF-8".to_string()),
        };
        if let Some(problem) = problem {
            return Err(LambdaRunError::Environment {
                variable,
                problem,
                what,
            });
        }
    }
    Ok(())
}

/// What is wrong with `value` as the Runtime API's `host:port` (what Lambda sets; an
/// `http://` in front is taken too), or `None` when nothing is. `lambda_runtime`'s client
/// would panic on an empty or unparsable value, or fail on one without a host.
fn runtime_api_problem(value: &str) -> Option<String> {
    let authority = value.strip_prefix("http://").unwrap_or(value);
    if authority.is_empty() {
        return Some(format!(
            "{value:?}, empty (expected host:port, like 127.0.0.1:9001)"
        ));
    }
    if authority.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Some(format!(
            "{value:?}, not host:port (a path or a space in it; expected like 127.0.0.1:9001)"
        ));
    }
    let Some((host, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    else {
        return Some(format!(
            "{value:?}, without a port (expected host:port, like 127.0.0.1:9001)"
        ));
    };
    if host.is_empty() {
        return Some(format!(
            "{value:?}, without a host (expected host:port, like 127.0.0.1:9001)"
        ));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => None,
        _ => Some(format!(
            "{value:?}: its port {port:?} is not a number from 1 to 65535 (expected host:port, like 127.0.0.1:9001)"
        )),
    }
}

/// Runs one Lambda invocation through the synchronous handler, on the calling (blocking) thread.
fn serve<P: 'static, R: 'static>(
    handler: &dyn Handler<P, R>,
    event: LambdaEvent<P>,
) -> Result<R, FunctionError> {
    let (payload, lambda) = event.into_parts();
    let deadline = Deadline(lambda.deadline());
    let test = TestContext::new(lambda.env_config.function_name.clone())
        .on_lambda()
        .request_id(lambda_request_id(&lambda.request_id))
        .timeout(deadline.remaining().max(Duration::from_millis(1)));
    let ctx = test.context_on(&deadline);
    catch_unwind(AssertUnwindSafe(|| handler.handle(&payload, &ctx)))
        .unwrap_or_else(|panic| Err(FunctionError::from_panic(&*panic)))
}

/// What `lambda_runtime` posts for a function error.
fn diagnostic(error: &FunctionError) -> Diagnostic {
    Diagnostic {
        error_type: error.error_type().to_string(),
        error_message: error.message().to_string(),
    }
}

/// Lambda's deadline, as the time line a deployed handler's context reads its remaining time
/// from.
struct Deadline(SystemTime);

impl ExecutionLine for Deadline {
    fn remaining(&self) -> Duration {
        self.0
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    fn spend(&self, _d: Duration) {}

    fn call(&self) -> Option<Timestamp> {
        // Not reached: a deployed handler's invokes are refused by its context (a
        // TestContext's, on Lambda) before they reach the time line.
        None
    }
}

/// The [`RequestId`] a handler served on Lambda sees for Lambda's request id
/// (`Lambda-Runtime-Aws-Request-Id`), which is a UUID, 128 bits where a [`RequestId`] has 64:
///
/// * an id in this crate's own layout (`RequestId`'s `Display`, as [`LambdaHandler`](crate::LambdaHandler)
///   gives it to a `lambda_runtime` handler) comes back exactly;
/// * any other UUID folds its two 64-bit halves together (exclusive or); Lambda's request ids
///   are random, so two of them meet on one [`RequestId`] with a chance of about n² / 2⁶⁵
///   among n requests;
/// * any other text is hashed (64-bit FNV-1a).
///
/// The same Lambda request id gives the same [`RequestId`] on every retry, so it stays a
/// dedup key.
///
/// # Examples
///
/// ```
/// use event_invoke::{lambda_request_id, RequestId};
///
/// let ours = RequestId::from_u64(0x0000_0001_0000_002a);
/// assert_eq!(lambda_request_id(&ours.to_string()), ours);
///
/// let aws = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
/// assert_eq!(lambda_request_id(aws), lambda_request_id(aws));
/// assert_eq!(lambda_request_id(aws).as_u64(), 0x8476a536e9f411e8 ^ 0x97392dfe598c3fcd);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub fn lambda_request_id(aws_request_id: &str) -> RequestId {
    let Some(uuid) = parse_uuid(aws_request_id) else {
        return RequestId::from_u64(fnv1a(aws_request_id.as_bytes()));
    };
    let high = (uuid >> 64) as u64;
    let low = uuid as u64;
    // This crate's layout: "{high 32 bits:08x}-0000-4000-8000-{low 32 bits:012x}".
    if high & 0xffff_ffff == 0x0000_4000 && low >> 32 == 0x8000_0000 {
        RequestId::from_u64(((high >> 32) << 32) | (low & 0xffff_ffff))
    } else {
        RequestId::from_u64(high ^ low)
    }
}

/// The 128 bits of a UUID in its 8-4-4-4-12 text form.
fn parse_uuid(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = char::from(b).to_digit(16)?;
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
