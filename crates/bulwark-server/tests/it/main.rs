//! All integration tests of this crate in one binary: one link instead of
//! one per file keeps the test build small (CI disk) and fast.

#![allow(
    clippy::disallowed_methods,
    reason = "tests run against the real clock and draw real ids"
)]

mod api;
mod auth_first;
mod blobs;
mod common;
mod conform;
mod device_listing;
mod device_tls;
mod edges;
mod gate;
mod gateway;
mod journal_routes;
mod journal_tamper;
mod journal_tiles;
mod openapi;
mod replicas;
mod update_attacks;
