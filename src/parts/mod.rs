//! The card's core parts: the pieces an event engine is made of, each usable on its own.
//!
//! * [`InvocationQueue`](crate::InvocationQueue): one function's waiting events, ready and
//!   delayed;
//! * [`ConcurrencyLimiter`](crate::ConcurrencyLimiter) and its permits,
//!   [`Permit`](crate::Permit) (borrowed) and [`OwnedPermit`](crate::OwnedPermit): execution
//!   slots;
//! * [`RetryPolicy`](crate::RetryPolicy): retries after function errors, throttle backoff and
//!   the maximum event age;
//! * [`Clock`](crate::Clock)s, records and conditions, errors.
//!
//! Nothing here knows of the engine: the engine is built from these parts, and a caller can
//! build a loop of their own from them (see the crate docs, "Build your own loop").

pub(crate) mod clock;
#[cfg(feature = "model")]
pub(crate) mod cost;
pub(crate) mod error;
pub(crate) mod limiter;
pub(crate) mod queue;
pub(crate) mod record;
pub(crate) mod retry;
pub(crate) mod rng;
pub(crate) mod run_queue;
pub(crate) mod scaling;
pub(crate) mod segments;
pub(crate) mod sync;
