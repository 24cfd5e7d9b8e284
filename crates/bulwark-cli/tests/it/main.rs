//! All integration tests of this crate in one binary: one link instead of
//! one per file keeps the test build small (CI disk) and fast.

mod cli;
mod demo;
mod detect;
mod gate;
mod monitor;
mod support;
mod tuf_interop;
mod updates;
