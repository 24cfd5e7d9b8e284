//! Integration tests for `bulwark-extract`: one binary, data-driven over
//! `tests/fixtures/rootfs/<case>/` (each packed at test time as tar,
//! tar.gz, tar.zst, OCI archives and an OCI directory), plus OCI-specific,
//! Go build info and hostile cases generated in code.

mod golang;
mod hostile;
mod oci;
mod rootfs;
mod support;
