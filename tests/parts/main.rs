//! The core parts on their own and as the engine uses them: one submodule per part.

mod context;
mod limiter;
mod queue;
mod retry;
