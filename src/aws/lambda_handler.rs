//! [`LambdaHandler`]: a `lambda_runtime` handler (a `service_fn` over an async fn taking
//! `LambdaEvent<T>`) run by the engine, with Lambda's `Context` filled for each attempt.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{Config, Diagnostic, LambdaEvent, Service};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{Context, Function};
use crate::parts::record::FunctionError;

use super::block_on::run_to_completion;
use super::LambdaJson;

/// Why a [`LambdaHandler`] setting was refused.
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaHandlerError {
    /// [`LambdaHandler::tokio_handle`] was given a current-thread runtime's handle, which only
    /// the thread inside its `block_on` drives.
    #[error(
        "the tokio runtime handle given to LambdaHandler::tokio_handle belongs to a current-thread runtime, which only the thread inside its block_on drives (in a #[tokio::test], the thread waiting for the attempt, so the handler could wait forever): give a multi-thread runtime's handle (#[tokio::test(flavor = \"multi_thread\")], Builder::new_multi_thread), or none for a runtime per worker thread"
    )]
    CurrentThreadRuntime,
    /// [`LambdaHandler::memory_size`] was given a size Lambda does not offer.
    #[error(
        "memory size {megabytes} MB is outside Lambda's {min}..={max} MB: give a size in that range (LambdaHandler::MIN_MEMORY_SIZE_MB..=LambdaHandler::MAX_MEMORY_SIZE_MB)",
        min = LambdaHandler::MIN_MEMORY_SIZE_MB,
        max = LambdaHandler::MAX_MEMORY_SIZE_MB
    )]
    MemorySize {
        /// The size given, in MB.
        megabytes: u32,
    },
}

/// A handler written for AWS Lambda's Rust runtime (`lambda_runtime`), made into a handler of
/// this crate, so that the code you deploy is the code you test here against Lambda's
/// asynchronous semantics: retries, duplicate deliveries, event age, throttles,
/// [`IdempotencyCheck`](crate::IdempotencyCheck).
///
/// It takes what `lambda_runtime::run` takes: a [`Service`] over `LambdaEvent<T>` (usually
/// `lambda_runtime::service_fn(my_async_fn)`) whose payload `T` is read from JSON and whose
/// response is written as JSON; the function's payloads and responses here are
/// [`serde_json::Value`]s. The service is cloned for each attempt (as `tower` services are), so
/// it must be `Clone + Send + Sync`: a `service_fn` over an `async fn`, or over a closure that
/// captures `Arc`s, is.
///
/// For each attempt it fills `lambda_runtime::Context` as Lambda does:
///
/// | field | value |
/// |---|---|
/// | `request_id` | the event's [`RequestId`](crate::RequestId) in its UUID layout: the same on every retry and duplicate |
/// | `deadline` | wall-clock now plus [`Context::remaining_time`] (the function's timeout at the attempt's start), in ms since the Unix epoch |
/// | `invoked_function_arn` | `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, by [`LambdaJson::function_arn`] (default `us-east-1`, `123456789012`; see [`arn_from`](Self::arn_from)) |
/// | `env_config` | `function_name` the function's name, `version` `$LATEST`, `memory` [`memory_size`](Self::memory_size) (default 128), `log_group` `/aws/lambda/NAME` |
/// | `xray_trace_id`, `client_context`, `identity`, `tenant_id` | `None` |
///
/// and turns the result into this crate's:
///
/// * `Ok(response)`: the response's JSON;
/// * `Err(e)`: a [`FunctionError`] with the `errorType` and `errorMessage` of the
///   `lambda_runtime::Diagnostic` that `e` converts into, exactly what `lambda_runtime` posts
///   to Lambda (for a `lambda_runtime::Error`, a boxed error, `lambda_runtime` 1.5 gives the
///   `errorType` `&alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>`;
///   implement `From<YourError> for Diagnostic` to choose it). It is a handled error: the
///   handler returned it;
/// * a panic, while the service is called or its future polled: an unhandled error of type
///   [`FunctionError::PANIC`] with the panic's message. The worker, its slot and the event
///   go on, as with any handler's panic;
/// * a payload that is not a `T`: the handler is not called, and the attempt fails with
///   [`FunctionError::DESERIALIZE_ERROR`] (Lambda's runtime fails such an event too).
/// * a response that cannot be written as JSON: [`FunctionError::SERIALIZE_ERROR`]; no tokio
///   runtime could be built for the thread (the OS refused a thread or a file descriptor): an
///   unhandled [`FunctionError::TOKIO_UNAVAILABLE`] error.
///
/// The future runs to completion on the worker thread that runs the attempt, on a
/// current-thread tokio runtime of that thread's own (IO and timers enabled, for the AWS SDK),
/// built on the thread's first async attempt and kept. Tasks a handler spawns and does not
/// await run only while that thread runs an attempt, as Lambda freezes an execution
/// environment between invocations; for a client shared by all workers (an AWS SDK client
/// built once), give a shared runtime with [`tokio_handle`](Self::tokio_handle). A tokio
/// runtime cannot block inside another: when the attempt runs inside one already (the engine
/// driven from a `#[tokio::test]`), the future runs on a helper thread instead of panicking.
///
/// The timeout is checked when the handler returns, as for any handler of this crate: the
/// future is not cancelled at the deadline.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, LambdaHandler, ManualClock, Runtime};
/// use lambda_runtime::{service_fn, Error, LambdaEvent};
/// use serde_json::{json, Value};
///
/// async fn greet(event: LambdaEvent<Value>) -> Result<Value, Error> {
///     let name = event.payload["name"].as_str().ok_or("no name")?;
///     Ok(json!({ "greeting": format!("hello {name}"), "request": event.context.request_id }))
/// }
///
/// let rt: Runtime<Value, Value> = Runtime::builder().clock(ManualClock::new()).build()?;
/// rt.register(Function::lambda("greet", service_fn(greet)))?;
/// let response = rt.invoke("greet", &json!({ "name": "ana" }))?;
/// assert_eq!(response["greeting"], "hello ana");
///
/// // The same handler with another region, account and memory size.
/// let handler = LambdaHandler::new(service_fn(greet))
///     .arn_from(event_invoke::LambdaJson::default().region("eu-west-1"))
///     .memory_size(1024)?;
/// rt.register(Function::new("greet-eu", handler.into_handler()))?;
/// let err = rt.invoke("greet-eu", &json!({})).unwrap_err();
/// assert!(err.to_string().contains("no name"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
#[derive(Debug, Clone)]
pub struct LambdaHandler<S> {
    service: S,
    lambda: LambdaJson,
    memory_size: u32,
    shared: Option<tokio::runtime::Handle>,
}

/// Lambda's memory sizes, in MB. (On `LambdaHandler<()>` so that
/// `LambdaHandler::DEFAULT_MEMORY_SIZE_MB` names them without a service type.)
impl LambdaHandler<()> {
    /// Lambda's default memory size, in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub const DEFAULT_MEMORY_SIZE_MB: u32 = 128;
    /// Lambda's smallest memory size, in MB.
    pub const MIN_MEMORY_SIZE_MB: u32 = 128;
    /// Lambda's largest memory size, in MB.
    pub const MAX_MEMORY_SIZE_MB: u32 = 10_240;
}

impl<S> LambdaHandler<S> {
    /// The handler `service` (what you would give `lambda_runtime::run`), with the default
    /// region `us-east-1`, account `123456789012` and memory size 128 MB.
    pub fn new(service: S) -> Self {
        LambdaHandler {
            service,
            lambda: LambdaJson::default(),
            memory_size: LambdaHandler::DEFAULT_MEMORY_SIZE_MB,
            shared: None,
        }
    }

    /// Takes the region and account of `invoked_function_arn` from `lambda`: the ones your
    /// [`LambdaJson`] uses for records and settings.
    pub fn arn_from(mut self, lambda: LambdaJson) -> Self {
        self.lambda = lambda;
        self
    }

    /// The memory size the handler sees in `env_config.memory`, in MB (default
    /// [`DEFAULT_MEMORY_SIZE_MB`](LambdaHandler::DEFAULT_MEMORY_SIZE_MB), 128). This crate
    /// does not limit memory.
    ///
    /// # Errors
    ///
    /// [`LambdaHandlerError::MemorySize`] for a size outside Lambda's 128..=10240 MB
    /// ([`MIN_MEMORY_SIZE_MB`](LambdaHandler::MIN_MEMORY_SIZE_MB)..=[`MAX_MEMORY_SIZE_MB`](LambdaHandler::MAX_MEMORY_SIZE_MB)),
    /// which a handler could never see on Lambda.
    pub fn memory_size(mut self, megabytes: u32) -> Result<Self, LambdaHandlerError> {
        let lambda = LambdaHandler::MIN_MEMORY_SIZE_MB..=LambdaHandler::MAX_MEMORY_SIZE_MB;
        if !lambda.contains(&megabytes) {
            return Err(LambdaHandlerError::MemorySize { megabytes });
        }
        self.memory_size = megabytes;
        Ok(self)
    }

    /// Runs the handler's futures on a runtime you share with the rest of your program
    /// instead of one per worker thread: each future is still polled on the worker thread
    /// that runs the attempt (`Handle::block_on`), but the tasks it spawns, its IO and its
    /// timers are driven by that runtime's threads, also between attempts. Give one when a
    /// client whose connections run as background tasks (an AWS SDK client over hyper's
    /// connection pool) is built once and used by every worker: on per-thread runtimes, a
    /// connection opened by one worker only makes progress while that worker runs an
    /// attempt.
    ///
    /// # Errors
    ///
    /// [`LambdaHandlerError::CurrentThreadRuntime`] when `handle` belongs to a current-thread
    /// runtime: only the thread inside that runtime's `block_on` drives its IO, timers and
    /// tasks. Given `Handle::current()` in a `#[tokio::test]` (a current-thread runtime by
    /// default), that thread is the one waiting in [`Runtime::invoke`](crate::Runtime::invoke)
    /// or [`run_until_idle`](crate::Runtime::run_until_idle) for the attempt, so a handler
    /// awaiting a timer, IO or a spawned task would wait forever. Give a multi-thread
    /// runtime's handle (`#[tokio::test(flavor = "multi_thread")]`,
    /// `tokio::runtime::Builder::new_multi_thread`; one worker thread is enough), or none.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, LambdaHandler, LambdaHandlerError, ManualClock, Runtime};
    /// use lambda_runtime::{service_fn, Error, LambdaEvent};
    /// use serde_json::Value;
    ///
    /// async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    ///     Ok(event.payload)
    /// }
    ///
    /// let current = tokio::runtime::Builder::new_current_thread().build()?;
    /// let err = LambdaHandler::new(service_fn(echo))
    ///     .tokio_handle(current.handle().clone())
    ///     .unwrap_err();
    /// assert!(matches!(err, LambdaHandlerError::CurrentThreadRuntime));
    /// assert!(err.to_string().contains("multi_thread"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tokio_handle(
        mut self,
        handle: tokio::runtime::Handle,
    ) -> Result<Self, LambdaHandlerError> {
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(LambdaHandlerError::CurrentThreadRuntime);
        }
        self.shared = Some(handle);
        Ok(self)
    }

    /// The handler, as a closure that [`Function::new`] and
    /// [`IdempotencyCheck::run`](crate::IdempotencyCheck::run) take.
    pub fn into_handler<T, R>(
        self,
    ) -> impl Fn(&Value, &Context<'_, Value, Value>) -> Result<Value, FunctionError>
           + Send
           + Sync
           + 'static
    where
        S: Service<LambdaEvent<T>, Response = R> + Clone + Send + Sync + 'static,
        S::Error: Into<Diagnostic>,
        T: DeserializeOwned,
        R: Serialize,
    {
        let handler = Arc::new(self);
        move |payload: &Value, ctx: &Context<'_, Value, Value>| handler.attempt(payload, ctx)
    }

    /// Runs one attempt: Lambda's context, the service's future to its end, the result back.
    fn attempt<T, R>(
        &self,
        payload: &Value,
        ctx: &Context<'_, Value, Value>,
    ) -> Result<Value, FunctionError>
    where
        S: Service<LambdaEvent<T>, Response = R> + Clone + Send,
        S::Error: Into<Diagnostic>,
        T: DeserializeOwned,
        R: Serialize,
    {
        let context = self.lambda_context(ctx);
        let mut service = self.service.clone();
        // Made on the thread that polls it: neither the payload nor the future need be `Send`.
        let outcome = run_to_completion(self.shared.as_ref(), move || {
            let payload = T::deserialize(payload).map_err(deserialize_error);
            async move {
                let event = LambdaEvent::new(payload?, context);
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(diagnostic_error)?;
                let response = service.call(event).await.map_err(diagnostic_error)?;
                serde_json::to_value(response)
                    .map_err(|e| FunctionError::new(FunctionError::SERIALIZE_ERROR, e.to_string()))
            }
        });
        outcome.unwrap_or_else(|stopped| Err(stopped.into_function_error()))
    }

    /// `lambda_runtime::Context` for the attempt `ctx` describes.
    fn lambda_context(&self, ctx: &Context<'_, Value, Value>) -> lambda_runtime::Context {
        let name = ctx.function_name();
        let deadline = SystemTime::now() + ctx.remaining_time();
        let mut lambda = lambda_runtime::Context::default();
        lambda.request_id = ctx.request_id().to_string();
        lambda.deadline = deadline
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        lambda.invoked_function_arn = self.lambda.function_arn(name);
        lambda.env_config = Arc::new(Config {
            function_name: name.to_string(),
            memory: i32::try_from(self.memory_size).unwrap_or(i32::MAX),
            version: "$LATEST".to_string(),
            log_stream: String::new(),
            log_group: format!("/aws/lambda/{name}"),
        });
        lambda
    }
}

impl Function<Value, Value> {
    /// A function running a handler written for AWS Lambda's Rust runtime: what
    /// `lambda_runtime::run` takes, usually `lambda_runtime::service_fn(my_async_fn)`. See
    /// [`LambdaHandler`] for Lambda's context it fills, how errors and panics map, and how the
    /// future is driven; use it directly for another region, account or memory size.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, Function, ManualClock, Runtime};
    /// use lambda_runtime::{service_fn, Error, LambdaEvent};
    /// use serde_json::{json, Value};
    ///
    /// async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
    ///     Err(format!("card declined for {}", event.payload["order"]).into())
    /// }
    ///
    /// let rt: Runtime<Value, Value> = Runtime::builder().clock(ManualClock::new()).build()?;
    /// rt.register(Function::lambda("charge", service_fn(charge)))?;
    /// rt.invoke_async("charge", json!({ "order": 7 }))?;
    /// rt.run_until_idle(); // the first try, then Lambda's two retries a minute and two apart
    /// let record = rt.drain_dead_letters().pop().unwrap();
    /// assert_eq!(record.condition, Condition::RetriesExhausted);
    /// assert_eq!(record.approximate_invoke_count, 3);
    /// assert_eq!(record.error().unwrap().message(), "card declined for 7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
    pub fn lambda<S, T, R>(name: impl Into<String>, service: S) -> Self
    where
        S: Service<LambdaEvent<T>, Response = R> + Clone + Send + Sync + 'static,
        S::Error: Into<Diagnostic>,
        T: DeserializeOwned,
        R: Serialize,
    {
        Function::new(name, LambdaHandler::new(service).into_handler())
    }
}

/// The function error for an `Err` of the handler: `lambda_runtime`'s `Diagnostic` of it.
fn diagnostic_error(e: impl Into<Diagnostic>) -> FunctionError {
    let diagnostic: Diagnostic = e.into();
    FunctionError::new(diagnostic.error_type, diagnostic.error_message)
}

/// The function error for a payload that is not the handler's payload type.
fn deserialize_error(e: serde_json::Error) -> FunctionError {
    FunctionError::new(
        FunctionError::DESERIALIZE_ERROR,
        format!("failed to deserialize the event into the handler's payload type: {e}"),
    )
}
