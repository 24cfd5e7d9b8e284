//! Shell completions and manual pages, generated from the clap definitions
//! (`commands.rs` passes its `Cli`), so they cannot drift from `--help`.
//!
//! `bulwark completions SHELL` prints a completion script; the hidden
//! `bulwark manpages DIR` writes one roff page per command (`bulwark.1`,
//! `bulwark-devices-list.1`, …), which `cargo xtask dist` packages.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Prints the completion script of `cli` for `shell` to standard output.
pub(crate) fn completions(mut cli: clap::Command, shell: clap_complete::Shell) -> Result<()> {
    // Rendered into memory first: `generate` panics on a write error,
    // such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "bulwark", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("writing the completion script")
}

/// Writes the manual pages of `cli` and every visible subcommand into
/// `dir` (created if missing).
pub(crate) fn manpages(cli: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cli, dir)
        .with_context(|| format!("writing manual pages into {}", dir.display()))
}
