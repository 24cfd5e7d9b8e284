//! How the `bulwark-agent` and `bulwark` binaries log (the CLI already
//! depends on this library for [`crate::shutdown_signal`]): to standard
//! error, filtered by `BULWARK_LOG`, either as text, coloured only on a
//! terminal and never under `NO_COLOR`, or as one JSON object per line for
//! log collectors (`--log-format json`, or `BULWARK_LOG_FORMAT=json`).

use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// The shape of the log lines written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; ANSI colour only when standard error is a
    /// terminal and `NO_COLOR` is unset or empty.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with
    /// `message`), `target` and the enclosing spans.
    Json,
}

/// The global `--log-format` flag, flattened into each binary's top-level
/// arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log lines on standard error: `text`, or `json` (one object per line,
    /// for log collectors). `BULWARK_LOG` sets the level filter, e.g.
    /// `debug` or `info,bulwark_server=debug`.
    #[arg(
        long,
        global = true,
        env = "BULWARK_LOG_FORMAT",
        value_enum,
        default_value_t,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Installs the process's log subscriber: `format` on standard error, the
/// filter from `BULWARK_LOG` or else `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULWARK_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Reports the error a binary exits with: `PROGRAM: error: …` on standard
/// error as text, or in `json` an ERROR event, so that a collector reading
/// only JSON lines sees why the process stopped.
pub fn exit_error(program: &str, format: LogFormat, error: &dyn std::fmt::Display) {
    match format {
        LogFormat::Text => eprintln!("{program}: error: {error:#}"),
        LogFormat::Json => {
            tracing::error!(program, error = %format_args!("{error:#}"), "exiting on an error");
        }
    }
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` is set
/// to anything but the empty string (<https://no-color.org>). A file, a
/// pipe or the journal gets plain text.
pub fn colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }
}
