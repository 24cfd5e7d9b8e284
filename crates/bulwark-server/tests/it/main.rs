//! All integration tests of this crate in one binary: one link instead of
//! one per file keeps the test build small (CI disk) and fast.

mod api;
mod auth_first;
mod blobs;
mod common;
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
