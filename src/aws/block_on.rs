//! Driving a handler's future to its end on the thread that runs the attempt.
//!
//! The engine's handlers are synchronous: a worker thread calls one and waits for its result.
//! An async handler's future therefore runs to completion right there, polled on the worker
//! itself as the engine's synchronous handlers run on it, on one of two kinds of tokio runtime:
//!
//! * **by default, one current-thread runtime per thread**, built on the thread's first async
//!   attempt and kept for the thread's life, with IO and timers enabled, so that handlers
//!   calling the AWS SDK (hyper, tokio timers) find the reactor they expect. No thread is
//!   started and no attempt waits for another thread. Tasks a handler spawns and does not
//!   await, and the IO it registered, make progress only while that thread runs an async
//!   attempt, much as Lambda freezes an execution environment between invocations. So a
//!   client whose connections run as background tasks (hyper's pool, under the AWS SDK) is
//!   best made per thread, or given a shared runtime:
//! * **a shared runtime's [`Handle`]**, when the handler is given one: the future is still
//!   polled on the worker thread (`Handle::block_on`), but spawned tasks, IO and timers are
//!   driven by that runtime's own threads, so one SDK client can serve every worker. It is a
//!   multi-thread runtime: `LambdaHandler::tokio_handle` refuses a current-thread one, which
//!   only the thread inside its `block_on` drives; in a `#[tokio::test]` that is the very
//!   thread waiting for the attempt, and a handler awaiting a timer would wait forever.
//!
//! Inside a tokio runtime already (a test that calls `run_until_idle` or a synchronous
//! `invoke` from a `#[tokio::test]`, or a handler invoking another synchronously), blocking on
//! a runtime is not allowed (tokio would panic with "Cannot start a runtime from within a
//! runtime"). The attempt then runs on a short-lived helper thread (with a runtime of its own,
//! or on the shared multi-thread runtime, whose own threads drive it while this one waits), and
//! the calling thread waits for it: correct, at the cost of a thread per attempt.
//!
//! A panic while the future is polled is caught around each poll, so the thread's runtime stays
//! usable, and comes back to the caller as the panic's payload.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

use crate::parts::record::FunctionError;

thread_local! {
    /// This thread's runtime for async handlers, built on first use.
    static THREAD_RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Why a future did not give its output.
pub(crate) enum Stopped {
    /// It panicked while polled; the panic's payload.
    Panicked(Box<dyn Any + Send>),
    /// No runtime could be built to run it (the OS refused a resource).
    NoRuntime(std::io::Error),
}

impl Stopped {
    /// The function error an attempt ends with.
    pub(crate) fn into_function_error(self) -> FunctionError {
        match self {
            Stopped::Panicked(panic) => FunctionError::from_panic(&*panic),
            Stopped::NoRuntime(e) => FunctionError::new(
                FunctionError::TOKIO_UNAVAILABLE,
                format!("could not build a tokio runtime to run the async handler: {e}"),
            )
            .unhandled(),
        }
    }
}

/// Runs the future `make` makes to completion on this thread: on the `shared` runtime when
/// given, else on this thread's own runtime; on a helper thread when this thread is inside a
/// tokio runtime already (see the module docs). `make` runs on the thread that polls the
/// future, so the future itself need not be `Send`.
pub(crate) fn run_to_completion<T, F>(
    shared: Option<&Handle>,
    make: impl FnOnce() -> F + Send,
) -> Result<T, Stopped>
where
    T: Send,
    F: Future<Output = T>,
{
    if Handle::try_current().is_ok() {
        return std::thread::scope(|scope| {
            let helper = scope.spawn(|| match shared {
                Some(handle) => handle.block_on(CatchUnwind::new(make())),
                None => {
                    let runtime = new_runtime().map_err(Stopped::NoRuntime)?;
                    runtime.block_on(CatchUnwind::new(make()))
                }
            });
            helper
                .join()
                .unwrap_or_else(|panic| Err(Stopped::Panicked(panic)))
        });
    }
    if let Some(handle) = shared {
        return handle.block_on(CatchUnwind::new(make()));
    }
    THREAD_RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let runtime = match &mut *slot {
            Some(runtime) => runtime,
            empty => empty.insert(new_runtime().map_err(Stopped::NoRuntime)?),
        };
        runtime.block_on(CatchUnwind::new(make()))
    })
}

/// A current-thread runtime with IO and timers.
fn new_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

/// A future whose panics are caught at each poll and returned as its output, so that no panic
/// unwinds through the runtime's `block_on`.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchUnwind<F> {
    fn new(future: F) -> Self {
        CatchUnwind {
            inner: Box::pin(future),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Stopped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(Stopped::Panicked(panic))),
        }
    }
}
