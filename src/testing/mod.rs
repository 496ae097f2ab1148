//! Testing aids: fault injection, the outcome audit and the idempotency check. They reach the
//! engine through its fault seam and its public API.

mod audit;
mod fault;
mod idempotency;

pub use audit::OutcomeAudit;
pub use fault::FaultInjection;
pub use idempotency::{Delivery, IdempotencyCheck, IdempotencyReport, IdempotencyViolation};
