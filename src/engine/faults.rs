//! The fault seam: the three places where Lambda's own failures happen, as the engine asks
//! about them. Fault injection (`crate::testing`) implements it; with none set the engine
//! holds `None` and each seam costs one branch.

use std::fmt;
use std::time::Duration;

use crate::parts::error::Error;
use crate::parts::record::RequestId;

/// What the engine asks of injected faults, at the seams where Lambda's own failures happen.
pub(crate) trait FaultSeam<P>: fmt::Debug + Send + Sync + 'static {
    /// Checks the settings when the runtime is built.
    fn validate(&self) -> Result<(), Error>;
    /// Whether any fault can happen at all (batching is off while one can, so that the
    /// draws stay in a replayable order).
    fn active(&self) -> bool;
    /// Before the handler: a system error, handled like a throttle.
    fn system_error(&self) -> bool;
    /// After a success: the response is lost, a function error instead.
    fn function_error(&self) -> bool;
    /// A retry or backoff comes this much later.
    fn extra_delay(&self) -> Duration;
    /// Which of `len` ready events to take (0: the oldest).
    fn pick(&self, len: usize) -> usize;
    /// After a success: a copy of `payload` to deliver once more under the same id, or
    /// `None`.
    fn duplicate(&self, id: RequestId, payload: &P) -> Option<P>;
}
