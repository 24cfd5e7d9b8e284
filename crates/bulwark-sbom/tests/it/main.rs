//! Integration tests for `bulwark-sbom`, data-driven over `tests/fixtures`:
//! purl cases, SBOM documents that must read (`valid/`, `laxer/`) and must
//! not (`invalid/`), hostile inputs generated in the test, writer round
//! trips, and the reference validators (`cyclonedx-python-lib`,
//! `spdx-tools`) run over both fixtures and writer output.
//!
//! Refresh the `.expected` files with `UPDATE_EXPECT=1`.

mod hostile;
mod purl;
mod read;
mod reference;
mod support;
mod write;
