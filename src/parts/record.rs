//! Outcomes: request ids, function errors, invocation records and destinations.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use crossbeam_channel::Sender;

use crate::parts::clock::Timestamp;

/// The id of one accepted event, shared by every attempt of it (Lambda's `requestId`).
///
/// Ids are unique within one [`Runtime`](crate::Runtime). They display in the UUID layout Lambda
/// uses, and are deterministic: the same run makes the same ids, which keeps tests reproducible.
///
/// # Examples
///
/// ```
/// use event_invoke::RequestId;
///
/// let id = RequestId::from_u64(0x0000_0001_0000_002a);
/// assert_eq!(id.to_string(), "00000001-0000-4000-8000-00000000002a");
/// assert_eq!(id.as_u64(), 0x0000_0001_0000_002a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// An id from its numeric form.
    pub const fn from_u64(id: u64) -> Self {
        RequestId(id)
    }

    /// The numeric form: the function's index in the high 24 bits, a sequence number below.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn new(function_index: u32, seq: u64) -> Self {
        RequestId((u64::from(function_index) << 40) | (seq & ((1 << 40) - 1)))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:08x}-0000-4000-8000-{:012x}",
            self.0 >> 32,
            self.0 & 0xffff_ffff
        )
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

/// Whether the handler reported the error itself or the runtime saw it fail (Lambda's
/// `functionError`: `Handled` / `Unhandled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The handler returned the error.
    Handled,
    /// The handler panicked or ran past its timeout.
    Unhandled,
}

/// An error from a handler, shaped like Lambda's `{errorType, errorMessage}`.
///
/// Handlers return it; the engine also makes one when a handler panics (`errorType`
/// [`FunctionError::PANIC`]) or overruns its timeout ([`FunctionError::TIMEOUT`]). Any
/// `std::error::Error` converts into it with `?`, its type name becoming the `errorType`. (That
/// blanket conversion is why `FunctionError` itself is not a `std::error::Error`: it is the
/// record of a failure, not an error of this library's calls.)
///
/// # Examples
///
/// ```
/// use event_invoke::{ErrorKind, FunctionError};
///
/// let e = FunctionError::new("ValidationError", "order id is missing");
/// assert_eq!(e.error_type(), "ValidationError");
/// assert_eq!(e.message(), "order id is missing");
/// assert_eq!(e.kind(), ErrorKind::Handled);
///
/// fn parse(s: &str) -> Result<u32, FunctionError> {
///     Ok(s.parse::<u32>()?)
/// }
/// assert_eq!(parse("x").unwrap_err().error_type(), "ParseIntError");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionError(Box<ErrorParts>);

/// What a [`FunctionError`] holds, boxed: a handler's `Result<R, FunctionError>` stays one word
/// beside `R` (a success moves no error-sized value through the engine), and errors are rare.
#[derive(Clone, PartialEq, Eq)]
struct ErrorParts {
    error_type: String,
    message: String,
    kind: ErrorKind,
    late: Late,
}

/// A panic caught while the engine dropped a value of the user's that an error took the place
/// of (a response that came past the timeout or that fault injection lost, a panic's payload:
/// their `Drop` is the user's code). It rides with the error to its event's end, where the
/// engine takes it ([`FunctionError::take_late`]) and lets it go on once the event has ended.
/// Not part of the error's value: a clone has none, and comparisons ignore it.
#[derive(Default)]
struct Late(Option<LatePanic>);

/// A panic that rode with an error ([`FunctionError::replacing`]). Behind a mutex, so that
/// the error stays `Sync` (a panic's payload is only `Send`).
pub(crate) type LatePanic = Box<Mutex<Box<dyn Any + Send>>>;

/// Lets a panic that rode with an error go on, if there is one: the engine calls it once the
/// error's event has ended (or gone back to its queue).
#[inline]
pub(crate) fn resume_late(late: Option<LatePanic>) {
    #[cold]
    #[inline(never)]
    fn resume(late: Mutex<Box<dyn Any + Send>>) -> ! {
        let panic = late.into_inner().unwrap_or_else(PoisonError::into_inner);
        std::panic::resume_unwind(panic)
    }
    if let Some(late) = late {
        resume(*late);
    }
}

/// The panic that rode with an error, to let go on later than [`resume_late`] would (model
/// mode keeps it until its books of the execution are done) or in place of another.
// Boxed as it rides: opened here, so that the cold paths that call it stay small.
#[allow(clippy::boxed_local)]
pub(crate) fn into_panic(late: LatePanic) -> Box<dyn Any + Send> {
    (*late).into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// A panic caught elsewhere, to keep like one that rode with an error (model mode keeps the
/// duplicate seam's until its books of the execution are done).
#[cfg(feature = "model")]
pub(crate) fn late_panic(panic: Box<dyn Any + Send>) -> LatePanic {
    Box::new(Mutex::new(panic))
}

/// Drops a panic that cannot go on because another one does (Rust unwinds one at a time). Its
/// payload's `Drop` is the user's code too: a panic of it is caught, and what that panic
/// carries is leaked rather than dropped, so that nothing unwinds from here.
#[cold]
#[inline(never)]
pub(crate) fn drop_panic(panic: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        std::mem::forget(again);
    }
}

// A panic riding along costs the error none of its auto traits.
const _: fn() = || {
    fn shared<T: Send + Sync + Unpin + std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    shared::<FunctionError>();
};

impl Clone for Late {
    fn clone(&self) -> Self {
        Late(None)
    }
}

impl PartialEq for Late {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Late {}

impl FunctionError {
    /// `errorType` of the error made for a handler that panicked.
    pub const PANIC: &'static str = "Runtime.Panic";
    /// `errorType` of the error made for a handler that ran past its timeout (Lambda's own).
    pub const TIMEOUT: &'static str = "Sandbox.Timedout";
    /// Cargo feature `lambda`: `errorType` of an attempt whose event could not be read as the
    /// `lambda_runtime` handler's payload type (the handler is not called; the attempt fails
    /// and is retried like any function error). Lambda's runtime gives such an event the same.
    #[cfg(feature = "lambda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
    pub const DESERIALIZE_ERROR: &'static str = "Runtime.DeserializeError";
    /// Cargo feature `lambda`: `errorType` of an attempt whose `lambda_runtime` handler's
    /// response could not be written as JSON.
    #[cfg(feature = "lambda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
    pub const SERIALIZE_ERROR: &'static str = "Runtime.SerializeError";
    /// Cargo feature `lambda`: `errorType` of an unhandled error for an attempt of a
    /// `lambda_runtime` handler that no tokio runtime could be built to run (the OS refused a
    /// thread or a file descriptor).
    #[cfg(feature = "lambda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
    pub const TOKIO_UNAVAILABLE: &'static str = "Runtime.TokioUnavailable";

    /// A handled error with Lambda's `errorType` and `errorMessage`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        FunctionError(Box::new(ErrorParts {
            error_type: error_type.into(),
            message: message.into(),
            kind: ErrorKind::Handled,
            late: Late(None),
        }))
    }

    /// The same error marked as unhandled.
    pub fn unhandled(mut self) -> Self {
        self.0.kind = ErrorKind::Unhandled;
        self
    }

    /// Lambda's `errorType`.
    pub fn error_type(&self) -> &str {
        &self.0.error_type
    }

    /// Lambda's `errorMessage`.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Handled or unhandled.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// This error, taking the place of `replaced` (the user's value: a response that came too
    /// late or was lost, a panic's payload), which is dropped now. A panic of its `Drop` rides
    /// along with the error ([`take_late`](Self::take_late)) instead of unwinding from here.
    #[cold]
    #[inline(never)]
    pub(crate) fn replacing<T>(mut self, replaced: T) -> Self {
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(replaced)));
        if let Err(panic) = dropped {
            self.0.late = Late(Some(Box::new(Mutex::new(panic))));
        }
        self
    }

    /// This error, taking the place of an attempt's `result`: a response is dropped as in
    /// [`replacing`](Self::replacing); an error gives up its place but not the panic that
    /// rides with it.
    #[cold]
    #[inline(never)]
    pub(crate) fn replacing_result<R>(mut self, result: Result<R, FunctionError>) -> Self {
        match result {
            Ok(response) => self.replacing(response),
            Err(mut replaced) => {
                self.0.late = Late(replaced.take_late());
                self
            }
        }
    }

    /// Takes the panic that rides with this error, if any (see [`replacing`](Self::replacing)).
    #[inline]
    pub(crate) fn take_late(&mut self) -> Option<LatePanic> {
        self.0.late.0.take()
    }

    /// The error for a handler that panicked, read from the panic's payload. The payload is
    /// only borrowed: its `Drop` is the user's code and may panic, so the caller drops it where
    /// that panic harms nothing (see [`replacing`](Self::replacing)).
    pub(crate) fn from_panic(panic: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = panic.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "handler panicked".to_string()
        };
        FunctionError::new(Self::PANIC, message).unhandled()
    }

    pub(crate) fn timeout(timeout: std::time::Duration) -> Self {
        FunctionError::new(
            Self::TIMEOUT,
            format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        )
        .unhandled()
    }
}

impl<E: std::error::Error> From<E> for FunctionError {
    fn from(e: E) -> Self {
        let full = std::any::type_name::<E>();
        let short = full
            .split('<')
            .next()
            .unwrap_or(full)
            .rsplit("::")
            .next()
            .unwrap_or(full);
        FunctionError::new(short, e.to_string())
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.error_type, self.0.message)
    }
}

impl fmt::Debug for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionError")
            .field("error_type", &self.0.error_type)
            .field("message", &self.0.message)
            .field("kind", &self.0.kind)
            .finish()
    }
}

/// How an event ended: the `condition` of Lambda's invocation record, plus this crate's own
/// operator actions.
///
/// Every accepted event ends in exactly one condition. New conditions may be added in minor
/// releases (two of the seven are this crate's own), so a `match` needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Condition {
    /// The handler returned a response.
    Success,
    /// The handler failed on its first attempt and on every retry.
    RetriesExhausted,
    /// The event grew older than the maximum event age before it could (re)run.
    EventAgeExceeded,
    /// The function's reserved concurrency is 0 and the runtime follows today's Lambda
    /// ([`ZeroConcurrency::Discard`](crate::ZeroConcurrency::Discard)).
    ZeroReservedConcurrency,
    /// The recursion guard stopped the event: its invocation chain had already reached its
    /// function as many times as allowed (or, with
    /// [`RecursionGuard::Hops`](crate::RecursionGuard::Hops), was as long as allowed).
    RecursionLimit,
    /// An operator removed the event from the queue (purge, or a queue edit). Not in Lambda.
    Purged,
    /// The function was deleted while the event waited. Not in Lambda's records.
    FunctionDeleted,
}

impl Condition {
    /// Every condition, in declaration order (the order of
    /// [`FunctionMetrics::outcomes`](crate::FunctionMetrics::outcomes)). A slice, not an
    /// array: new conditions may be added without changing its type.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::Condition;
    ///
    /// assert_eq!(Condition::ALL[0], Condition::Success);
    /// assert!(Condition::ALL.iter().skip(1).all(|c| c.is_failure()));
    /// ```
    pub const ALL: &'static [Condition] = &[
        Condition::Success,
        Condition::RetriesExhausted,
        Condition::EventAgeExceeded,
        Condition::ZeroReservedConcurrency,
        Condition::RecursionLimit,
        Condition::Purged,
        Condition::FunctionDeleted,
    ];

    /// How many conditions there are: the length of the crate's per-condition counters.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Lambda's spelling of the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
            Condition::ZeroReservedConcurrency => "ZeroReservedConcurrency",
            Condition::RecursionLimit => "RecursionLimit",
            Condition::Purged => "Purged",
            Condition::FunctionDeleted => "FunctionDeleted",
        }
    }

    /// Whether the event counts as a failure (goes to on-failure, counts in
    /// `AsyncEventsDropped`).
    pub fn is_failure(self) -> bool {
        self != Condition::Success
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

// `ALL` lists the conditions in declaration order, so `index` points into it (append a new
// condition to both).
const _: () = {
    let mut i = 0;
    while i < Condition::COUNT {
        assert!(Condition::ALL[i] as usize == i);
        i += 1;
    }
};

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record of one event's outcome, shaped like the record Lambda sends to destinations.
///
/// | Lambda field | here |
/// |---|---|
/// | `requestContext.requestId` | [`request_id`](Self::request_id) |
/// | `requestContext.functionArn` | [`function`](Self::function) |
/// | `requestContext.condition` | [`condition`](Self::condition) |
/// | `requestContext.approximateInvokeCount` | [`approximate_invoke_count`](Self::approximate_invoke_count) |
/// | `requestPayload` | [`request_payload`](Self::request_payload) |
/// | `responsePayload` | [`response`](Self::response) (`Ok` body, or the `Err` with `errorType` / `errorMessage`) |
/// | `responseContext.functionError` | the error's [`kind`](FunctionError::kind) |
/// | `responseContext.executedVersion` | [`executed_version`](Self::executed_version) |
/// | `timestamp` | [`timestamp`](Self::timestamp) |
#[derive(Clone)]
#[non_exhaustive]
pub struct InvocationRecord<P, R> {
    /// The event's id, the same for every attempt.
    pub request_id: RequestId,
    /// The function the event was sent to.
    pub function: Arc<str>,
    /// How the event ended.
    pub condition: Condition,
    /// How many times the handler ran for this event (0 when it never ran).
    pub approximate_invoke_count: u32,
    /// The event's payload.
    pub request_payload: P,
    /// The last attempt's result: `None` when the handler never ran.
    pub response: Option<Result<R, FunctionError>>,
    /// The code version that ran last (see [`Runtime::update_code`](crate::Runtime::update_code)),
    /// `None` when the handler never ran.
    pub executed_version: Option<u64>,
    /// When the event was accepted (on the [`SystemClock`](crate::SystemClock), to the
    /// kernel's tick: see its docs).
    pub enqueued_at: Timestamp,
    /// When the outcome was decided.
    pub timestamp: Timestamp,
    /// The event's position in its invocation chain: 1 for an event invoked from outside a
    /// handler, one more for each hop from handler to handler.
    pub chain_depth: u32,
}

impl<P, R> InvocationRecord<P, R> {
    /// The error of the last attempt, if it failed.
    pub fn error(&self) -> Option<&FunctionError> {
        match &self.response {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// The handler's response, if the event succeeded.
    pub fn response_payload(&self) -> Option<&R> {
        match &self.response {
            Some(Ok(r)) => Some(r),
            _ => None,
        }
    }
}

impl<P: fmt::Debug, R: fmt::Debug> fmt::Debug for InvocationRecord<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationRecord")
            .field("request_id", &self.request_id)
            .field("function", &self.function)
            .field("condition", &self.condition)
            .field("approximate_invoke_count", &self.approximate_invoke_count)
            .field("request_payload", &self.request_payload)
            .field("response", &self.response)
            .field("executed_version", &self.executed_version)
            .field("enqueued_at", &self.enqueued_at)
            .field("timestamp", &self.timestamp)
            .field("chain_depth", &self.chain_depth)
            .finish()
    }
}

type RecordFn<P, R> = dyn Fn(&InvocationRecord<P, R>) + Send + Sync;
type MapFn<P, R> = dyn Fn(&InvocationRecord<P, R>) -> P + Send + Sync;

/// Where a function's [`InvocationRecord`]s go: its on-success or on-failure destination.
///
/// Lambda sends records to a queue, a topic, an event bus or another function. Here a
/// destination is a closure, a channel (crossbeam-channel's, or the standard library's
/// `mpsc`), or another function of the same runtime (which receives a payload you build from
/// the record). A record whose delivery fails (the channel's receiver is gone or a bounded
/// channel is full, the closure panicked, the destination function was deleted or its queue is
/// full) is counted in `destination_delivery_failures` and kept in the runtime's dead-letter
/// list ([`Runtime::drain_dead_letters`](crate::Runtime::drain_dead_letters)), so it does not
/// vanish.
///
/// # Examples
///
/// A crossbeam channel, through the crate's re-export (no dependency of your own to match):
///
/// ```
/// use event_invoke::{crossbeam_channel, Condition, Destination, Function, FunctionError, ManualClock, Runtime};
///
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(
///     Function::new("fails", |_: &u32, _ctx| Err(FunctionError::new("Boom", "always")))
///         .on_failure(Destination::channel(tx)),
/// )
/// .unwrap();
/// rt.invoke_async("fails", 7).unwrap();
/// rt.run_until_idle();
/// let record = rx.try_recv().unwrap();
/// assert_eq!(record.condition, Condition::RetriesExhausted);
/// assert_eq!(record.approximate_invoke_count, 3);
/// assert_eq!(record.request_payload, 7);
/// ```
///
/// The standard library's channel works the same way:
///
/// ```
/// use event_invoke::{Condition, Destination, Function, ManualClock, Runtime};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(Function::new("ok", |_: &u32, _ctx| Ok(())).on_success(Destination::channel(tx)))
///     .unwrap();
/// rt.invoke_async("ok", 7).unwrap();
/// rt.run_until_idle();
/// assert_eq!(rx.try_recv().unwrap().condition, Condition::Success);
/// ```
///
/// More kinds of destination may be added in minor releases: a `match` needs a `_` arm.
#[non_exhaustive]
pub enum Destination<P, R> {
    /// Call a closure with each record (on the worker thread that decided the outcome). A
    /// closure that panics counts as a failed delivery; the record goes to the dead letters.
    Closure(Arc<RecordFn<P, R>>),
    /// Send each record into a crossbeam channel. A worker never blocks on it: a full bounded
    /// channel is a failed delivery, like a disconnected one.
    Channel(Sender<InvocationRecord<P, R>>),
    /// Send each record into a channel of the standard library. A disconnected one is a failed
    /// delivery.
    StdChannel(mpsc::Sender<InvocationRecord<P, R>>),
    /// Invoke another function of the runtime asynchronously with a payload built from the
    /// record. The new event is one hop further down the invocation chain.
    Function {
        /// The destination function's name.
        name: Arc<str>,
        /// Builds the destination's payload from the record.
        map: Arc<MapFn<P, R>>,
    },
}

mod sealed {
    /// What [`RecordSender`](super::RecordSender) adds, where no other crate can implement it.
    pub trait IntoDestination<P, R> {
        fn into_destination(self) -> super::Destination<P, R>;
    }
}

/// The sending half of a channel of [`InvocationRecord`]s, which
/// [`Destination::channel`] accepts: crossbeam-channel's `Sender` (the crate is re-exported
/// as [`event_invoke::crossbeam_channel`](crate::crossbeam_channel), so no version of your own
/// has to match), or the standard library's [`mpsc::Sender`]. Sealed: implemented for those
/// two only.
///
/// A std `sync_channel`'s `SyncSender` is not accepted: for a bounded channel, use
/// `crossbeam_channel::bounded`, which a destination never blocks on (a record that finds it
/// full is a failed delivery).
///
/// ```compile_fail
/// use event_invoke::Destination;
///
/// let (tx, _rx) = std::sync::mpsc::sync_channel(1);
/// let d: Destination<u32, ()> = Destination::channel(tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a channel sender that Destination::channel accepts",
    note = "pass the sending half of `event_invoke::crossbeam_channel::unbounded()` or `bounded(n)`, or of `std::sync::mpsc::channel()`, carrying `InvocationRecord<P, R>` of the runtime's payload and response types"
)]
pub trait RecordSender<P, R>: sealed::IntoDestination<P, R> {}

impl<P, R> sealed::IntoDestination<P, R> for Sender<InvocationRecord<P, R>> {
    fn into_destination(self) -> Destination<P, R> {
        Destination::Channel(self)
    }
}
impl<P, R> RecordSender<P, R> for Sender<InvocationRecord<P, R>> {}

impl<P, R> sealed::IntoDestination<P, R> for mpsc::Sender<InvocationRecord<P, R>> {
    fn into_destination(self) -> Destination<P, R> {
        Destination::StdChannel(self)
    }
}
impl<P, R> RecordSender<P, R> for mpsc::Sender<InvocationRecord<P, R>> {}

impl<P, R> Destination<P, R> {
    /// A destination that calls `f` with each record.
    pub fn closure(f: impl Fn(&InvocationRecord<P, R>) + Send + Sync + 'static) -> Self {
        Destination::Closure(Arc::new(f))
    }

    /// A destination that sends each record into `sender`: a crossbeam-channel `Sender`
    /// ([`Destination::Channel`]) or a standard library `mpsc::Sender`
    /// ([`Destination::StdChannel`]). See [`RecordSender`].
    pub fn channel(sender: impl RecordSender<P, R>) -> Self {
        sealed::IntoDestination::into_destination(sender)
    }

    /// A destination that invokes function `name` with `map(record)` as its payload.
    pub fn function(
        name: impl Into<Arc<str>>,
        map: impl Fn(&InvocationRecord<P, R>) -> P + Send + Sync + 'static,
    ) -> Self {
        Destination::Function {
            name: name.into(),
            map: Arc::new(map),
        }
    }

    pub(crate) fn function_name(&self) -> Option<&str> {
        match self {
            Destination::Function { name, .. } => Some(name),
            _ => None,
        }
    }
}

impl<P, R> Clone for Destination<P, R> {
    fn clone(&self) -> Self {
        match self {
            Destination::Closure(f) => Destination::Closure(Arc::clone(f)),
            Destination::Channel(s) => Destination::Channel(s.clone()),
            Destination::StdChannel(s) => Destination::StdChannel(s.clone()),
            Destination::Function { name, map } => Destination::Function {
                name: Arc::clone(name),
                map: Arc::clone(map),
            },
        }
    }
}

impl<P, R> fmt::Debug for Destination<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Closure(_) => f.write_str("Destination::Closure"),
            Destination::Channel(_) => f.write_str("Destination::Channel"),
            Destination::StdChannel(_) => f.write_str("Destination::StdChannel"),
            Destination::Function { name, .. } => write!(f, "Destination::Function({name})"),
        }
    }
}
