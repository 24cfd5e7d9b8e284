//! How the subcommands print: timestamps and JSON.
//!
//! A leaf: it imports no other module of the CLI.

use anyhow::Result;
use time::OffsetDateTime;

/// An RFC 3339 timestamp, or `-` for none.
pub(crate) fn ts(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}

/// `v` pretty-printed on standard output (what `--json` prints).
pub(crate) fn print_json(v: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
