//! [`FunctionHandle`]: a pre-resolved function.

use std::fmt;
use std::sync::Arc;

use crate::parts::clock::Timestamp;
use crate::parts::error::{Error, InvokeError, InvokeSyncError};
use crate::parts::queue::{EventInfo, InvocationQueue, QueuedEvent};
use crate::parts::record::{FunctionError, RequestId};

use super::admission::Invoker;
use super::{Context, FunctionConfig, FunctionMetrics, FunctionShared, Handler, Runtime};

/// A pre-resolved function: invoking through it skips the name lookup (no hashing, no
/// registry lock). Cheap to clone.
///
/// Every per-function call of the [`Runtime`] is here too, without the name:
/// [`pause`](Self::pause), [`resume`](Self::resume), [`update_code`](Self::update_code),
/// [`config`](Self::config), [`update_config`](Self::update_config), [`purge`](Self::purge),
/// the queue views and edits, [`metrics`](Self::metrics) and [`delete`](Self::delete). Each
/// does what the runtime's call of the same name does for [`name`](Self::name)
/// ([`Runtime::function_metrics`] for `metrics`).
///
/// A handle stays with the function it was made for, where a name reaches whichever function
/// has it now. Once that function is deleted, every call through the handle fails
/// ([`Error::FunctionDeleted`], and [`InvokeError::FunctionDeleted`] /
/// [`InvokeSyncError::FunctionDeleted`] for invokes), even after a new function is registered
/// under the same name: a stale handle never acts on another function. Get a handle to the new
/// one from [`Runtime::register`] or [`Runtime::function`]. Like the name lookup of the
/// by-name calls, the check is made as the call starts.
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
        let at = self
            .runtime
            .inner
            .executor
            .client_call(|| self.runtime.now());
        self.enqueue_from(payload, None, at)
    }

    /// Invokes the function synchronously on this thread (see [`Runtime::invoke`]).
    pub fn invoke(&self, payload: &P) -> Result<R, InvokeSyncError> {
        self.runtime.invoke_shared(&self.shared, payload)
    }

    /// The function, if it is still the one registered under its name.
    fn live(&self) -> Result<&Arc<FunctionShared<P, R>>, Error> {
        if self.runtime.inner.registry.read().is_live(&self.shared) {
            Ok(&self.shared)
        } else {
            Err(Error::FunctionDeleted(self.shared.name.to_string()))
        }
    }

    /// Holds the function's events until [`resume`](Self::resume) (see [`Runtime::pause`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// f.pause().unwrap();
    /// f.invoke_async(1).unwrap();
    /// assert_eq!(rt.run_until_idle(), 0); // held
    /// assert!(f.is_paused().unwrap());
    /// f.resume().unwrap();
    /// assert_eq!(rt.run_until_idle(), 1);
    /// ```
    pub fn pause(&self) -> Result<(), Error> {
        self.runtime.pause_shared(self.live()?);
        Ok(())
    }

    /// Lets the paused function's events run again (see [`Runtime::resume`]).
    pub fn resume(&self) -> Result<(), Error> {
        self.runtime.resume_shared(self.live()?);
        Ok(())
    }

    /// Whether the function is paused (see [`Runtime::is_paused`]).
    pub fn is_paused(&self) -> Result<bool, Error> {
        Ok(self.runtime.is_paused_shared(self.live()?))
    }

    /// Replaces the function's code and returns the new code version (see
    /// [`Runtime::update_code`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8, u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |n: &u8, _ctx| Ok(*n))).unwrap();
    /// assert_eq!(f.update_code(|n: &u8, _ctx| Ok(n + 1)).unwrap(), 2);
    /// assert_eq!(f.invoke(&1).unwrap(), 2);
    /// ```
    pub fn update_code<F>(&self, handler: F) -> Result<u64, Error>
    where
        F: Fn(&P, &Context<'_, P, R>) -> Result<R, FunctionError> + Send + Sync + 'static,
    {
        self.update_handler(handler)
    }

    /// [`update_code`](Self::update_code) with a [`Handler`] value.
    pub fn update_handler(&self, handler: impl Handler<P, R>) -> Result<u64, Error> {
        Ok(self
            .runtime
            .update_handler_shared(self.live()?, Arc::new(handler)))
    }

    /// A copy of the function's settings (see [`Runtime::config`]).
    pub fn config(&self) -> Result<FunctionConfig<P, R>, Error> {
        Ok(self.runtime.config_shared(self.live()?))
    }

    /// Changes the function's settings, checked like a registration and applied whole or not
    /// at all (see [`Runtime::update_config`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Function, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt: Runtime<()> = Runtime::new();
    /// let f = rt.register(Function::new("f", |_: &(), _ctx| Ok(()))).unwrap();
    /// f.update_config(|c| c.timeout = Duration::from_secs(30)).unwrap();
    /// assert!(f.update_config(|c| c.reserved_concurrency = Some(5000)).is_err());
    /// assert_eq!(f.config().unwrap().timeout, Duration::from_secs(30));
    /// assert_eq!(f.config().unwrap().reserved_concurrency, None);
    /// ```
    pub fn update_config(&self, edit: impl FnOnce(&mut FunctionConfig<P, R>)) -> Result<(), Error> {
        self.runtime.update_config_shared(self.live()?, edit)
    }

    /// Sets the function's reserved concurrency (see [`Runtime::set_reserved_concurrency`]).
    pub fn set_reserved_concurrency(&self, n: Option<u32>) -> Result<(), Error> {
        self.update_config(|c| c.reserved_concurrency = n)
    }

    /// Removes every waiting event; each ends as `Purged`. Returns how many (see
    /// [`Runtime::purge`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// f.invoke_async(1).unwrap();
    /// f.invoke_async(2).unwrap();
    /// assert_eq!(f.purge().unwrap(), 2);
    /// assert_eq!(f.metrics().unwrap().outcome(Condition::Purged), 2);
    /// ```
    pub fn purge(&self) -> Result<usize, Error> {
        self.remove_queued_where(|_| true)
    }

    /// Removes waiting event `request_id`; it ends as `Purged`. Returns whether it was
    /// waiting (see [`Runtime::remove_queued`]).
    pub fn remove_queued(&self, request_id: RequestId) -> Result<bool, Error> {
        Ok(self.runtime.remove_queued_shared(self.live()?, request_id))
    }

    /// Removes the waiting events for which `pred` is true; each ends as `Purged`. `pred`
    /// runs under the function's lock: it must not call the runtime (see
    /// [`Runtime::remove_queued_where`]).
    pub fn remove_queued_where(
        &self,
        pred: impl FnMut(&QueuedEvent<P>) -> bool,
    ) -> Result<usize, Error> {
        Ok(self.runtime.purge_where(self.live()?, pred).1)
    }

    /// Edits the payload of waiting event `request_id`; returns whether it was waiting.
    /// `edit` runs under the function's lock: it must not call the runtime (see
    /// [`Runtime::edit_queued`]).
    pub fn edit_queued(
        &self,
        request_id: RequestId,
        edit: impl FnOnce(&mut P),
    ) -> Result<bool, Error> {
        Ok(self
            .runtime
            .edit_queued_shared(self.live()?, request_id, edit))
    }

    /// A view of the waiting events (see [`Runtime::queue_snapshot`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{EventState, Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// let id = f.invoke_async(1).unwrap();
    /// let waiting = f.queue_snapshot().unwrap();
    /// assert_eq!(waiting.len(), 1);
    /// assert_eq!((waiting[0].request_id, waiting[0].state), (id, EventState::Ready));
    /// ```
    pub fn queue_snapshot(&self) -> Result<Vec<EventInfo>, Error> {
        Ok(self.runtime.queue_snapshot_shared(self.live()?))
    }

    /// Reads the queue, payloads included, under the function's lock: keep `read` short and
    /// do not call the runtime from it (see [`Runtime::inspect_queue`]).
    pub fn inspect_queue<T>(
        &self,
        read: impl FnOnce(&InvocationQueue<P>) -> T,
    ) -> Result<T, Error> {
        Ok(self.runtime.inspect_queue_shared(self.live()?, read))
    }

    /// A snapshot of the function's metrics, the same as [`Runtime::function_metrics`] by
    /// name.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Condition, Function, ManualClock, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
    /// let f = rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// f.invoke_async(1).unwrap();
    /// rt.run_until_idle();
    /// let m = f.metrics().unwrap();
    /// assert_eq!(m.outcome(Condition::Success), 1);
    /// assert_eq!(m, rt.function_metrics("f").unwrap());
    /// ```
    pub fn metrics(&self) -> Result<FunctionMetrics, Error> {
        Ok(self.runtime.snapshot_function(self.live()?))
    }

    /// Deletes the function: its waiting events end as `FunctionDeleted`, and every later call
    /// through this handle (or its clones) fails. Returns how many waiting events were
    /// discarded (see [`Runtime::delete`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Error, Function, Runtime};
    ///
    /// let rt: Runtime<u8> = Runtime::new();
    /// let f = rt.register(Function::new("f", |_: &u8, _ctx| Ok(()))).unwrap();
    /// assert_eq!(f.delete().unwrap(), 0);
    /// assert_eq!(f.pause(), Err(Error::FunctionDeleted("f".into())));
    /// ```
    pub fn delete(&self) -> Result<usize, Error> {
        self.runtime.delete_shared(self.live()?)
    }

    #[inline]
    pub(crate) fn enqueue_from(
        &self,
        payload: P,
        from: Option<Invoker<'_>>,
        at: Option<Timestamp>,
    ) -> Result<RequestId, InvokeError<P>> {
        self.runtime.enqueue_at(&self.shared, payload, from, at)
    }
}
