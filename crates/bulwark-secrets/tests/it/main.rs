//! Integration tests for `bulwark-secrets`: every folder under
//! `tests/fixtures/` is a small rootfs whose findings must equal its
//! `expected.json`, plus properties that must hold for every finding.

mod fixtures;
mod properties;
