//! [`FunctionHandle`]: a pre-resolved function.

use std::fmt;
use std::sync::Arc;

use crate::parts::clock::Timestamp;
use crate::parts::error::{InvokeError, InvokeSyncError};
use crate::parts::record::RequestId;

use super::{FunctionShared, Runtime};

/// A pre-resolved function: invoking through it skips the name lookup (no hashing, no
/// registry lock). Cheap to clone.
///
/// A handle keeps its runtime alive. A handler that captures a handle (for fan-out) therefore
/// makes a reference cycle through the runtime; [`Runtime::delete`] breaks it by dropping the
/// deleted function's handler, so delete such functions when you are done with a runtime that
/// should be freed before the process ends.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, ManualClock, Runtime};
///
/// let rt: Runtime<u64> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// let handle = rt.register(Function::new("f", |_: &u64, _ctx| Ok(()))).unwrap();
/// for i in 0..10 {
///     handle.invoke_async(i).unwrap();
/// }
/// assert_eq!(rt.run_until_idle(), 10);
/// ```
pub struct FunctionHandle<P, R> {
    pub(crate) runtime: Runtime<P, R>,
    pub(crate) shared: Arc<FunctionShared<P, R>>,
}

impl<P, R> Clone for FunctionHandle<P, R> {
    fn clone(&self) -> Self {
        FunctionHandle {
            runtime: self.runtime.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P, R> fmt::Debug for FunctionHandle<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionHandle({})", self.shared.name)
    }
}

impl<P: Send + 'static, R: Send + 'static> FunctionHandle<P, R> {
    /// The function's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Invokes the function asynchronously: the event is queued and its id returned at once.
    #[inline]
    pub fn invoke_async(&self, payload: P) -> Result<RequestId, InvokeError<P>> {
        let at = self.runtime.inner.executor.client_call(self.runtime.now());
        self.enqueue_at_depth(payload, 1, at)
    }

    /// Invokes the function synchronously on this thread (see [`Runtime::invoke`]).
    pub fn invoke(&self, payload: &P) -> Result<R, InvokeSyncError> {
        self.runtime.invoke_shared(&self.shared, payload)
    }

    pub(crate) fn enqueue_at_depth(
        &self,
        payload: P,
        depth: u32,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        self.runtime.enqueue_at(&self.shared, payload, depth, at)
    }
}
