//! `bulwark-tuf-client`: the tuf-conformance CLIENT-CLI over `bulwark-tuf`.
//!
//! The binary of that name is built from the `bulwark-cli` package (so
//! `cargo build --release` produces `target/release/bulwark-tuf-client`
//! while `cargo run` still runs `bulwark`); it calls [`main`].
//!
//! ```text
//! bulwark-tuf-client --metadata-dir DIR init TRUSTED_ROOT
//! bulwark-tuf-client --metadata-dir DIR --metadata-url URL refresh
//! bulwark-tuf-client --metadata-dir DIR --metadata-url URL \
//!     --target-name PATH [--target-name PATH ...] \
//!     --target-base-url URL --target-dir DIR download
//! ```
//!
//! Exit code 0 on success, 1 on any failure (the reason goes to stderr).
//! Trusted metadata is kept in `--metadata-dir` as `<quoted role>.json`;
//! targets are stored in `--target-dir` as `<quoted target path>`, and a
//! target already there with matching length and hashes is not downloaded
//! again.

mod fs_store;
mod http;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bulwark_tuf::{Limits, TargetVerifier, Updater, quote_role_name};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use crate::fs_store::FsStore;
use crate::http::HttpFetch;

#[derive(Debug, Parser)]
#[command(version, about = "TUF client (tuf-conformance CLIENT-CLI)")]
struct Args {
    /// Directory holding the trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target path to download; repeat to download several, in order.
    #[arg(long)]
    target_name: Vec<String>,
    /// Base URL of the repository targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory to store downloaded targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// More output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install TRUSTED_ROOT as the trusted root (no network access).
    Init {
        /// The initial root.json.
        trusted_root: PathBuf,
    },
    /// Update the top-level metadata.
    Refresh,
    /// Refresh, then download each --target-name.
    Download,
}

/// Parses the command line and runs the client; the binary's whole body.
pub fn main() -> ExitCode {
    // The only rustls crypto provider in this binary; installing can only
    // fail if one is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark-tuf-client: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if let Command::Init { trusted_root } = &args.command {
        let bytes = std::fs::read(trusted_root)
            .with_context(|| format!("reading {}", trusted_root.display()))?;
        let mut store = FsStore::new(&args.metadata_dir);
        bulwark_tuf::LocalMetadata::store(&mut store, "root", &bytes)
            .map_err(anyhow::Error::msg)?;
        if args.verbose > 0 {
            eprintln!("initialized {}", args.metadata_dir.display());
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &Args) -> anyhow::Result<()> {
    let metadata_url = args
        .metadata_url
        .as_deref()
        .context("--metadata-url is required")?;
    let fetch = HttpFetch::new(metadata_url)?;
    let client = fetch.client().clone();
    let store = FsStore::new(&args.metadata_dir);
    let mut updater = Updater::new(fetch, store, Limits::default()).map_err(tuf_error)?;
    #[expect(
        clippy::disallowed_methods,
        reason = "the conformance client is an edge: it passes the time to the TUF updater's expiry checks"
    )]
    let now = OffsetDateTime::now_utc();
    match args.command {
        Command::Init { .. } => unreachable_init(),
        Command::Refresh => {
            updater.refresh(now).await.map_err(tuf_error)?;
            if args.verbose > 0 {
                eprintln!("refreshed metadata in {}", args.metadata_dir.display());
            }
            Ok(())
        }
        Command::Download => {
            let target_dir = args
                .target_dir
                .as_deref()
                .context("--target-dir is required")?;
            let base = args
                .target_base_url
                .as_deref()
                .context("--target-base-url is required")?;
            if args.target_name.is_empty() {
                bail!("--target-name is required");
            }
            for name in &args.target_name {
                download(&mut updater, &client, base, target_dir, name, now)
                    .await
                    .with_context(|| format!("target {name:?}"))?;
            }
            Ok(())
        }
    }
}

fn unreachable_init() -> anyhow::Result<()> {
    bail!("init is handled before the runtime starts")
}

fn tuf_error(e: bulwark_tuf::UpdateError) -> anyhow::Error {
    anyhow::anyhow!("[{}] {e}", e.kind())
}

async fn download(
    updater: &mut Updater<HttpFetch, FsStore>,
    client: &reqwest::Client,
    base: &str,
    target_dir: &Path,
    name: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let info = updater
        .target_info(name, now)
        .await
        .map_err(tuf_error)?
        .context("no targets role lists this target")?;
    // The quoted path has no '/', so it stays inside target_dir unless it is
    // "." or ".." (or empty).
    let file_name = quote_role_name(name);
    if matches!(file_name.as_str(), "" | "." | "..") {
        bail!("refusing to store a target named {name:?}");
    }
    let dest = target_dir.join(file_name);
    if is_cached(&dest, &info).await {
        return Ok(());
    }
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        updater.target_download_path(name, &info)
    );
    http::download_verified(client, &url, &info, &dest).await
}

async fn is_cached(dest: &Path, info: &bulwark_tuf::TargetFile) -> bool {
    use tokio::io::AsyncReadExt as _;
    let Ok(mut verifier) = TargetVerifier::new(info) else {
        return false;
    };
    let Ok(mut file) = tokio::fs::File::open(dest).await else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if verifier.update(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    verifier.finish().is_ok()
}
