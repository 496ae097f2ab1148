//! The error enums. Normal flow (a throttle, a retry, a dropped event) is never an error: it is an
//! outcome, recorded in an [`InvocationRecord`](crate::InvocationRecord). Errors are for calls
//! the runtime refused, and each message says what to change.
//!
//! All three enums are `#[non_exhaustive]`: new reasons to refuse a call come with new
//! features, so a `match` on them needs a `_` arm.

use std::fmt;
use std::io;
use std::sync::Arc;

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
    /// Cargo feature `lambda`: a handler served on AWS Lambda by
    /// [`run_on_lambda`](crate::run_on_lambda) called
    /// [`Context::invoke_async`](crate::Context::invoke_async), which has no runtime to go to
    /// there. Invoke the function through the AWS SDK's Lambda `Invoke` with
    /// `InvocationType=Event` instead; [`into_inner`](Self::into_inner) hands the payload
    /// back for it.
    #[error("function `{function}` cannot be invoked through Context::invoke_async on AWS Lambda, where no runtime of this crate runs (the handler is served by run_on_lambda): invoke it with Lambda's Invoke API (InvocationType=Event) through the AWS SDK; InvokeError::into_inner hands the payload back")]
    UnavailableOnLambda {
        /// The function the handler invoked.
        function: String,
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
    /// Whether no function answers to the call (Lambda's 404 `ResourceNotFoundException`):
    /// none was registered under the name ([`UnknownFunction`](Self::UnknownFunction)), or it
    /// was deleted ([`FunctionDeleted`](Self::FunctionDeleted)). Match this rather than one of
    /// the two variants, which misses the other.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// assert!(rt.invoke_async("never-registered", 1).unwrap_err().is_not_found());
    ///
    /// let f = rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
    /// rt.delete("f").unwrap();
    /// let err = f.invoke_async(2).unwrap_err(); // the handle's function is gone
    /// assert!(err.is_not_found());
    /// assert!(!err.is_full());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            InvokeError::UnknownFunction { .. } | InvokeError::FunctionDeleted { .. }
        )
    }

    /// Whether the function's invocation queue is at its capacity
    /// ([`QueueFull`](Self::QueueFull)): the call may succeed later, once workers have taken
    /// events.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).queue_capacity(1)).unwrap();
    /// rt.invoke_async("f", 1).unwrap();
    /// let err = rt.invoke_async("f", 2).unwrap_err();
    /// assert!(err.is_full());
    /// assert!(!err.is_not_found());
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, InvokeError::QueueFull { .. })
    }

    /// Model mode only (cargo feature `model`): whether the calling execution passed its
    /// timeout before the invoke call could return
    /// ([`CallerTimedOut`](Self::CallerTimedOut)).
    #[cfg(feature = "model")]
    pub fn is_caller_timed_out(&self) -> bool {
        matches!(self, InvokeError::CallerTimedOut { .. })
    }

    /// The payload that was not accepted.
    pub fn into_inner(self) -> P {
        match self {
            InvokeError::UnknownFunction { payload, .. }
            | InvokeError::FunctionDeleted { payload, .. }
            | InvokeError::QueueFull { payload, .. }
            | InvokeError::UnavailableOnLambda { payload, .. } => payload,
            #[cfg(feature = "model")]
            InvokeError::CallerTimedOut { payload, .. } => payload,
        }
    }

    /// The payload that was not accepted, by reference.
    pub fn payload(&self) -> &P {
        match self {
            InvokeError::UnknownFunction { payload, .. }
            | InvokeError::FunctionDeleted { payload, .. }
            | InvokeError::QueueFull { payload, .. }
            | InvokeError::UnavailableOnLambda { payload, .. } => payload,
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
            InvokeError::UnavailableOnLambda { .. } => "UnavailableOnLambda",
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

impl InvokeSyncError {
    /// Whether no function answers to the call (Lambda's 404 `ResourceNotFoundException`):
    /// none was registered under the name ([`UnknownFunction`](Self::UnknownFunction)), or it
    /// was deleted ([`FunctionDeleted`](Self::FunctionDeleted)). Match this rather than one of
    /// the two variants, which misses the other.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// assert!(rt.invoke("never-registered", &1).unwrap_err().is_not_found());
    ///
    /// let f = rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
    /// rt.delete("f").unwrap();
    /// let err = f.invoke(&2).unwrap_err(); // the handle's function is gone
    /// assert!(err.is_not_found());
    /// assert!(!err.is_function_error());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            InvokeSyncError::UnknownFunction(_) | InvokeSyncError::FunctionDeleted(_)
        )
    }

    /// Whether no execution slot was free ([`Throttled`](Self::Throttled), Lambda's 429): the
    /// call was not run, and may succeed later.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |_: &u32, _ctx| Ok(())).reserved_concurrency(0)).unwrap();
    /// let err = f.invoke(&1).unwrap_err(); // reserved concurrency 0: never a free slot
    /// assert!(err.is_throttled());
    /// assert!(!err.is_not_found());
    /// ```
    pub fn is_throttled(&self) -> bool {
        matches!(self, InvokeSyncError::Throttled(_))
    }

    /// Whether the function is paused ([`Paused`](Self::Paused)): the call was not run, and
    /// may succeed once the function is resumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// let f = rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
    /// f.pause().unwrap();
    /// assert!(f.invoke(&1).unwrap_err().is_paused());
    /// f.resume().unwrap();
    /// assert!(f.invoke(&1).is_ok());
    /// ```
    pub fn is_paused(&self) -> bool {
        matches!(self, InvokeSyncError::Paused(_))
    }

    /// Whether the handler ran and failed ([`Function`](Self::Function)): it returned an
    /// error, panicked or timed out. Every other error means the handler did not run.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, FunctionError, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// let f = rt
    ///     .register(Function::new("f", |_: &u32, _ctx| Err(FunctionError::new("Boom", "no"))))
    ///     .unwrap();
    /// let err = f.invoke(&1).unwrap_err();
    /// assert!(err.is_function_error());
    /// assert!(!err.is_throttled());
    /// ```
    pub fn is_function_error(&self) -> bool {
        matches!(self, InvokeSyncError::Function(_))
    }

    /// Model mode only (cargo feature `model`): whether the call was refused because a model
    /// runs asynchronous invocations only ([`ModelMode`](Self::ModelMode)).
    #[cfg(feature = "model")]
    pub fn is_model_mode(&self) -> bool {
        matches!(self, InvokeSyncError::ModelMode(_))
    }
}

/// Why a registration, configuration or operator call was refused, or why
/// [`Runtime::spawn_workers`](crate::Runtime::spawn_workers) started no workers. The runtime is
/// left unchanged.
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
    /// Model mode only (cargo feature `model`): the call needs real time or threads, and a
    /// model runs on the calling thread in virtual time.
    #[cfg(feature = "model")]
    #[error("{call} is refused in model mode: a model runs on the calling thread in virtual time; drive it with run_until_idle, run_until or run_for instead")]
    ModelMode {
        /// The refused call, by its method name (e.g. `spawn_workers`).
        call: &'static str,
    },
    /// The operating system refused to start a thread
    /// ([`Runtime::spawn_workers`](crate::Runtime::spawn_workers)). The threads started
    /// before it were stopped and joined; the OS's error is the
    /// [`source`](std::error::Error::source).
    #[error("the operating system refused to start worker thread {index} (of {requested}): {source}; start fewer workers, or raise the process's thread or memory limits")]
    ThreadSpawn {
        /// Which thread was refused, counting from 0.
        index: usize,
        /// How many threads were asked for.
        requested: usize,
        /// The operating system's error.
        #[source]
        source: OsError,
    },
}

impl Error {
    /// Whether no function answers to the call (Lambda's 404 `ResourceNotFoundException`):
    /// none is registered under the name ([`UnknownFunction`](Self::UnknownFunction)), or
    /// the handle's function was deleted ([`FunctionDeleted`](Self::FunctionDeleted)).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    ///
    /// let rt: Runtime<u32> = Runtime::new();
    /// assert!(rt.pause("never-registered").unwrap_err().is_not_found());
    /// let f = rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
    /// f.delete().unwrap();
    /// assert!(f.pause().unwrap_err().is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::UnknownFunction(_) | Error::FunctionDeleted(_))
    }
}

/// An operating-system error inside an [`Error`] ([`Error::ThreadSpawn`]), shared so that
/// `Error` stays `Clone`. It displays as the [`io::Error`] it holds; two are equal when they
/// have the same [`kind`](Self::kind) and the same text.
///
/// # Examples
///
/// ```
/// use event_invoke::OsError;
/// use std::io;
///
/// let e = OsError::from(io::Error::new(io::ErrorKind::WouldBlock, "no more threads"));
/// assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
/// assert_eq!(e.to_string(), "no more threads");
/// assert_eq!(e.clone(), e);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct OsError(Arc<io::Error>);

// An `OsError` is never changed after it is made (no `&mut` to its `io::Error` is ever handed
// out), so seeing one after a caught panic cannot show a broken state: it keeps `Error`
// unwind-safe, as it was before it carried an OS error.
impl std::panic::UnwindSafe for OsError {}
impl std::panic::RefUnwindSafe for OsError {}

impl OsError {
    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    /// The [`io::Error`] itself.
    pub fn get_ref(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for OsError {
    fn from(e: io::Error) -> Self {
        OsError(Arc::new(e))
    }
}

impl PartialEq for OsError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.kind() == other.kind() && self.0.to_string() == other.0.to_string())
    }
}

impl Eq for OsError {}
