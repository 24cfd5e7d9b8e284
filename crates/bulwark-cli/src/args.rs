//! Argument types and parsers that several subcommands share: the
//! connection flags ([`Conn`]) and durations (`30m`, `1h`, `7d`).
//!
//! A leaf: it imports no other module of the CLI, so every subcommand can
//! use it without reaching back into the dispatcher (`commands`).

use anyhow::{Context as _, Result};
use clap::Args;

/// Where the API is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// API URL (default: $BULWARK_SERVER). Given without a value, it means
    /// $BULWARK_SERVER (e.g. `advisories import … --server`).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "")]
    pub(crate) server: Option<String>,
    /// API token (default: $BULWARK_TOKEN).
    #[arg(long, global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// Parses `30s`, `15m`, `1h`, `7d` (and bare seconds).
pub(crate) fn parse_duration(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 30m, 1h or 7d"))?;
    n.checked_mul(mult).context("duration too large")
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
