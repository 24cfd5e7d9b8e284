//! All integration tests of this crate in one binary: one link instead of
//! one per file keeps the test build small (CI disk) and fast.

#![allow(
    clippy::disallowed_methods,
    reason = "tests run against the real clock and draw real ids"
)]

mod cli;
mod demo;
mod detect;
mod gate;
mod logs_and_settings;
mod monitor;
mod support;
mod tuf_interop;
mod updates;
