//! All integration tests of this crate in one binary: one link instead of
//! one per file keeps the test build small (CI disk) and fast.

mod attacks;
mod fixtures;
mod proposals;
mod root_chain;
