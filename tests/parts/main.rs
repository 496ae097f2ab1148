//! The core parts, each on its own.

mod limiter;
