//! `bulwark detect replay`: a Zeek conn.log through the detection engine,
//! and `bulwark profiles validate`: a profile checked locally.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use bulwark_detect::Profile;
use clap::Subcommand;

/// The profile `detect replay` uses without `--profile`: scanning (many
/// destinations in a short window), new destinations after a warm-up, and
/// bursts of outbound bytes.
const DEFAULT_PROFILE: &str = r#"
group = "replay"
version = "builtin-1"

[[behaviour]]
name = "scan-fanout"
kind = "fanout"
severity = "high"
action = "quarantine"
metric = "remote_destinations"
threshold = 20
window = "10s"

[[behaviour]]
name = "bytes-out-spike"
kind = "zscore"
severity = "medium"
metric = "bytes_out"
alpha = 0.1
threshold = 10
min_samples = 20
"#;

#[derive(Debug, Subcommand)]
pub(crate) enum DetectCmd {
    /// Feed a Zeek conn.log (TSV with a #fields header, or JSON lines)
    /// through the detection engine as one device's traffic; write one CSV
    /// line per record: ts, uid, score, alert (0/1), reason.
    Replay {
        /// The conn.log.
        #[arg(long)]
        conn_log: PathBuf,
        /// Detection profile (TOML) [default: a built-in scan/exfiltration profile].
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Where to write the scores (CSV).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfilesCmd {
    /// Check a detection profile (TOML) and list every problem.
    Validate {
        /// The profile.
        file: PathBuf,
    },
}

fn load_profile(path: Option<&Path>) -> Result<Profile> {
    let (name, text) = match path {
        Some(p) => {
            let len = std::fs::metadata(p)
                .with_context(|| format!("reading {}", p.display()))?
                .len();
            if len > 1 << 20 {
                bail!("{} is {len} bytes; a profile is at most 1 MiB", p.display());
            }
            (
                p.display().to_string(),
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
        }
        None => (
            "the built-in profile".to_owned(),
            DEFAULT_PROFILE.to_owned(),
        ),
    };
    Profile::from_toml(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

pub(crate) fn detect(cmd: DetectCmd) -> Result<()> {
    match cmd {
        DetectCmd::Replay {
            conn_log,
            profile,
            out,
        } => {
            let profile = load_profile(profile.as_deref())?;
            let input = std::fs::File::open(&conn_log)
                .with_context(|| format!("opening {}", conn_log.display()))?;
            let output = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let summary =
                bulwark_detect::replay(BufReader::new(input), profile, BufWriter::new(output))
                    .with_context(|| format!("replaying {}", conn_log.display()))?;
            for p in &summary.problems {
                eprintln!("warning: {}: {p}", conn_log.display());
            }
            eprintln!(
                "{} records, {} with alerts ({} alerts), {} malformed lines skipped, {} rejected → {}",
                summary.records,
                summary.alerted,
                summary.alerts,
                summary.malformed,
                summary.rejected,
                out.display()
            );
        }
    }
    Ok(())
}

pub(crate) fn profiles(cmd: ProfilesCmd) -> Result<()> {
    match cmd {
        ProfilesCmd::Validate { file } => {
            let p = load_profile(Some(&file))?;
            println!(
                "{}: valid ({} behaviours)",
                file.display(),
                p.behaviours.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_profile_is_valid() {
        assert!(super::load_profile(None).is_ok());
    }
}
