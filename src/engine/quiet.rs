//! Quiet handler panics: an opt-in panic hook that says nothing for the panics the engine
//! catches around a handler, and hands every other panic to the hook installed before it.
//!
//! The engine marks the thread while a handler runs under its `catch_unwind`
//! ([`HandlerScope`]); the hook reads that mark. Until [`quiet_handler_panics`] is called the
//! mark is never set, and a handler's panic prints like any other.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Whether the quiet hook is installed; until then the engine does not mark its threads.
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread is running a handler under the engine's `catch_unwind`.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

/// Stops Rust's panic hook from printing the panics of handlers, which the runtime catches
/// anyway (each is a [`FunctionError`](crate::FunctionError) of type
/// [`PANIC`](crate::FunctionError::PANIC) that carries the panic's message, retried and
/// recorded like any function error). Every other panic still reaches the hook that was
/// installed before this call, the default one or your own.
///
/// Opt-in and process-wide, like the panic hook itself: call it once at start-up (further
/// calls do nothing), typically in a test run or a stress run whose handlers are meant to
/// panic. It installs a panic hook that wraps the one in place, so a hook set with
/// [`std::panic::set_hook`] *after* it replaces it (and handler panics print again).
///
/// Quiet means the panics raised on the thread running a handler, while the runtime runs it
/// (workers, [`Runtime::run_until_idle`](crate::Runtime::run_until_idle), a synchronous
/// [`Runtime::invoke`](crate::Runtime::invoke), model mode), including those the handler
/// catches itself. Not quiet: a panic on a thread the handler spawned, in a destination, an
/// observer, a tracer or a retry schedule, and in [`Function::call`](crate::Function::call),
/// which does not catch panics.
///
/// Like [`std::panic::take_hook`], it panics when called from a thread that is panicking.
///
/// # Examples
///
/// ```
/// use event_invoke::{Condition, Function, FunctionError, ManualClock, Runtime};
///
/// event_invoke::quiet_handler_panics();
///
/// let rt: Runtime<u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(
///     Function::new("f", |n: &u32, _ctx| -> Result<(), FunctionError> {
///         panic!("no such order: {n}") // caught, recorded, and not printed
///     })
///     .maximum_retry_attempts(0),
/// )
/// .unwrap();
/// rt.invoke_async("f", 7).unwrap();
/// rt.run_until_idle();
/// let record = rt.drain_dead_letters().pop().unwrap();
/// assert_eq!(record.condition, Condition::RetriesExhausted);
/// assert_eq!(record.error().unwrap().message(), "no such order: 7");
/// ```
pub fn quiet_handler_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !in_handler() {
                previous(info);
            }
        }));
        INSTALLED.store(true, Ordering::SeqCst);
    });
}

/// Whether this thread is running a handler for the engine (false while the thread ends).
fn in_handler() -> bool {
    IN_HANDLER.try_with(Cell::get).unwrap_or(false)
}

/// Marks this thread as running a handler, from [`enter`](Self::enter) until dropped (when the
/// mark goes back to what it was: a handler's synchronous invoke runs a handler inside a
/// handler). Costs one relaxed load when the quiet hook is not installed.
pub(crate) struct HandlerScope {
    was: Option<bool>,
}

impl HandlerScope {
    #[inline]
    pub(crate) fn enter() -> Self {
        let was = INSTALLED
            .load(Ordering::Relaxed)
            .then(|| IN_HANDLER.try_with(|mark| mark.replace(true)).ok())
            .flatten();
        HandlerScope { was }
    }
}

impl Drop for HandlerScope {
    #[inline]
    fn drop(&mut self) {
        if let Some(was) = self.was {
            let _ = IN_HANDLER.try_with(|mark| mark.set(was));
        }
    }
}
