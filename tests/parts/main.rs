//! The core parts on their own and as the engine uses them: one submodule per part.

#[path = "../common/mod.rs"]
mod common;
mod context;
mod limiter;
mod queue;
mod retry;

/// Shorthands the part tests share.
mod time {
    use std::time::Duration;

    use event_invoke::Timestamp;

    /// `n` seconds.
    pub fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The manual clock's time `n` seconds after its start.
    pub fn at(n: u64) -> Timestamp {
        Timestamp::ZERO + secs(n)
    }
}
