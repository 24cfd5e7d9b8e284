//! Fixture tables and differential tests against the reference
//! implementations (dpkg, Python `packaging`, npm `semver`).

mod differential;
mod fixtures;
mod generate;
mod support;
