//! The error enums. Normal flow (a throttle, a retry, a dropped event) is never an error: it is an
//! outcome, recorded in an [`InvocationRecord`](crate::InvocationRecord). Errors are for calls
//! the runtime refused, and each message says what to change.
//!
//! All three enums are `#[non_exhaustive]`: new reasons to refuse a call come with new
//! features, so a `match` on them needs a `_` arm.

use std::fmt;

use crate::parts::record::FunctionError;

/// Why [`Runtime::invoke_async`](crate::Runtime::invoke_async) refused an event.
///
/// Like crossbeam's `SendError`, it hands the payload back: nothing the caller passed in is
/// silently dropped.
///
/// # Examples
///
/// ```
/// use event_invoke::{InvokeError, Runtime};
///
/// let rt: Runtime<String> = Runtime::new();
/// let err = rt.invoke_async("missing", "hello".to_string()).unwrap_err();
/// assert!(matches!(err, InvokeError::UnknownFunction { .. }));
/// assert!(err.to_string().contains("missing"));
/// assert_eq!(err.into_inner(), "hello");
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError<P> {
    /// No function of that name is registered (Lambda's 404 `ResourceNotFoundException`).
    #[error("function `{name}` is not registered: register it with Runtime::register before invoking it")]
    UnknownFunction {
        /// The name that was invoked.
        name: String,
        /// The payload, handed back.
        payload: P,
    },
    /// The function was deleted: its handles never accept events again; its name does once a
    /// new function is registered under it.
    #[error("function `{name}` was deleted: register it again, or invoke another function")]
    FunctionDeleted {
        /// The deleted function.
        name: String,
        /// The payload, handed back.
        payload: P,
    },
    /// The function's invocation queue is at its capacity.
    #[error("the invocation queue of `{function}` is full ({capacity} events): raise Function::queue_capacity, add workers, or invoke later")]
    QueueFull {
        /// The function whose queue is full.
        function: String,
        /// The queue's capacity.
        capacity: usize,
        /// The payload, handed back.
        payload: P,
    },
    /// Model mode only (cargo feature `model`): the calling execution would have passed its
    /// timeout before this invoke call returned, so the call never happened.
    #[cfg(feature = "model")]
    #[error("the calling execution of `{caller}` passed its {timeout:?} timeout before this invoke of `{function}` could return (model mode): raise the caller's timeout, make fewer calls per execution, or lower the invoke latency")]
    CallerTimedOut {
        /// The function whose handler made the call.
        caller: String,
        /// The function it invoked.
        function: String,
        /// The caller's timeout.
        timeout: std::time::Duration,
        /// The payload, handed back.
        payload: P,
    },
}

impl<P> InvokeError<P> {
    /// The payload that was not accepted.
    pub fn into_inner(self) -> P {
        match self {
            InvokeError::UnknownFunction { payload, .. }
            | InvokeError::FunctionDeleted { payload, .. }
            | InvokeError::QueueFull { payload, .. } => payload,
            #[cfg(feature = "model")]
            InvokeError::CallerTimedOut { payload, .. } => payload,
        }
    }

    /// The payload that was not accepted, by reference.
    pub fn payload(&self) -> &P {
        match self {
            InvokeError::UnknownFunction { payload, .. }
            | InvokeError::FunctionDeleted { payload, .. }
            | InvokeError::QueueFull { payload, .. } => payload,
            #[cfg(feature = "model")]
            InvokeError::CallerTimedOut { payload, .. } => payload,
        }
    }
}

impl<P> fmt::Debug for InvokeError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload is the user's type and need not be Debug: name the variant, then the
        // message, which says the rest.
        let variant = match self {
            InvokeError::UnknownFunction { .. } => "UnknownFunction",
            InvokeError::FunctionDeleted { .. } => "FunctionDeleted",
            InvokeError::QueueFull { .. } => "QueueFull",
            #[cfg(feature = "model")]
            InvokeError::CallerTimedOut { .. } => "CallerTimedOut",
        };
        write!(f, "InvokeError::{variant}({self})")
    }
}

/// Why a synchronous [`Runtime::invoke`](crate::Runtime::invoke) (Lambda's `RequestResponse`)
/// returned no response.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, FunctionError, InvokeSyncError, Runtime};
///
/// let rt: Runtime<u32, u32> = Runtime::builder().build().unwrap();
/// rt.register(Function::new("half", |n: &u32, _ctx| {
///     if n % 2 == 1 {
///         return Err(FunctionError::new("OddNumber", "cannot halve an odd number"));
///     }
///     Ok(n / 2)
/// }))
/// .unwrap();
/// assert_eq!(rt.invoke("half", &8).unwrap(), 4);
/// let err = rt.invoke("half", &3).unwrap_err();
/// assert!(matches!(err, InvokeSyncError::Function(e) if e.error_type() == "OddNumber"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeSyncError {
    /// No function of that name is registered.
    #[error(
        "function `{0}` is not registered: register it with Runtime::register before invoking it"
    )]
    UnknownFunction(String),
    /// The function was deleted.
    #[error("function `{0}` was deleted: register it again, or invoke another function")]
    FunctionDeleted(String),
    /// No execution slot was free (Lambda's 429 `TooManyRequestsException`). A synchronous
    /// invoke is never queued or retried: retry it yourself, or raise the concurrency limits.
    #[error("function `{0}` is throttled: its concurrency limit is reached; retry later or raise its reserved concurrency or the account limit")]
    Throttled(String),
    /// The function is paused; synchronous invokes are refused until it is resumed.
    #[error("function `{0}` is paused: resume it before invoking it synchronously")]
    Paused(String),
    /// Model mode only (cargo feature `model`): a model runs asynchronous invocations only.
    #[cfg(feature = "model")]
    #[error("function `{0}` cannot be invoked synchronously in model mode: the model plays out asynchronous invocations in virtual time; use invoke_async")]
    ModelMode(String),
    /// The handler ran and failed (returned an error, panicked or timed out).
    #[error("function error: {0}")]
    Function(FunctionError),
}

/// Why a registration or configuration call was refused. The runtime is left unchanged.
///
/// # Examples
///
/// ```
/// use event_invoke::{Error, Function, Runtime};
///
/// let rt: Runtime<()> = Runtime::new();
/// let f = Function::new("too-big", |_: &(), _ctx| Ok(())).reserved_concurrency(950);
/// let err = rt.register(f).unwrap_err();
/// assert!(matches!(err, Error::ReservedConcurrencyExceeded { .. }));
/// println!("{err}"); // says how much is left and what to change
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is outside the range the crate accepts.
    #[error("invalid {field}: {value} is out of range; accepted: {accepted}")]
    InvalidConfig {
        /// The setting, by its builder method name (e.g. `maximum_event_age`).
        field: &'static str,
        /// The rejected value, as text.
        value: String,
        /// The accepted range, as text.
        accepted: &'static str,
    },
    /// Reserving this much would leave less than the unreserved floor for other functions.
    #[error("cannot reserve {requested} concurrent executions for `{function}`: only {available} can be reserved (account limit {account_limit}, minus {reserved_elsewhere} reserved by other functions, minus the unreserved floor of {unreserved_floor}); reserve less or raise the account limit")]
    ReservedConcurrencyExceeded {
        /// The function.
        function: String,
        /// The reservation asked for.
        requested: u32,
        /// The most that can be reserved for it now.
        available: u32,
        /// The account limit.
        account_limit: u32,
        /// Reserved by all other functions.
        reserved_elsewhere: u32,
        /// What must stay unreserved.
        unreserved_floor: u32,
    },
    /// An account limit below what is already reserved plus the unreserved floor.
    #[error("account concurrency {requested} is too low: functions reserve {reserved} and {unreserved_floor} must stay unreserved, so it must be at least {minimum}")]
    AccountConcurrencyTooLow {
        /// The limit asked for.
        requested: u32,
        /// Reserved by all functions.
        reserved: u32,
        /// What must stay unreserved.
        unreserved_floor: u32,
        /// The smallest acceptable limit.
        minimum: u32,
    },
    /// No function of that name is registered.
    #[error("function `{0}` is not registered: check the name, or register it first")]
    UnknownFunction(String),
    /// The call went through a [`FunctionHandle`](crate::FunctionHandle) whose function was
    /// deleted. The handle never reaches a function registered later under the same name.
    #[error("function `{0}` was deleted: this handle refers to the deleted function, not to any function registered under its name since; get a new handle from Runtime::register or Runtime::function")]
    FunctionDeleted(String),
    /// A function of that name is already registered.
    #[error("function `{0}` is already registered: delete it first, or use update_code / the set_* calls to change it")]
    FunctionExists(String),
    /// A destination names a function that is not registered.
    #[error("destination function `{destination}` of `{function}` is not registered: register the destination function first")]
    UnknownDestination {
        /// The function whose destination is wrong.
        function: String,
        /// The missing destination function.
        destination: String,
    },
    /// A setting in AWS JSON (`PutFunctionEventInvokeConfig`, `PutFunctionConcurrency`) is
    /// malformed or outside the range Lambda accepts. Made by the `serde` feature's import
    /// (`AwsFunctionSettings`); the field is named as AWS spells it.
    #[error("invalid AWS setting {field}: {value} is not accepted; set {field} to {accepted}")]
    AwsConfig {
        /// The JSON field, as AWS spells it (e.g. `MaximumEventAgeInSeconds`, or
        /// `DestinationConfig.OnFailure.Destination`).
        field: &'static str,
        /// The rejected value, as JSON text (or why the document could not be read).
        value: String,
        /// What is accepted there (Lambda's range, or what the crate can map).
        accepted: &'static str,
    },
    /// A crate setting has no AWS Lambda equivalent. Made by the `serde` feature's strict
    /// export (`AwsExport::strict`).
    #[error("{setting} = {value} has no AWS Lambda equivalent: {reason}; change {setting}, or use the non-strict export, which writes the nearest AWS value or leaves the setting out")]
    NoAwsEquivalent {
        /// The setting, by its builder method name (e.g. `queue_capacity`).
        setting: &'static str,
        /// Its value, as text.
        value: String,
        /// Why AWS cannot take it: what Lambda has instead.
        reason: String,
    },
}
