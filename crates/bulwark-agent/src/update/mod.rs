//! The update engine: download, verify, stage, switch, smoke-test, then
//! commit or roll back an already-verified update plan, surviving a crash
//! (SIGKILL, power cut) at any point.
//!
//! # State machine
//!
//! ```text
//!  run(plan)
//!     │
//!     ▼
//!  download ──▶ verify ──▶ stage ──▶ switch ──▶ smoke ──▶ commit ──▶ Installed
//!     │            │          │         │          │         │
//!     └── hash/length/endless-│data,    │          │         │
//!         missing hook ───────┴──▶ Failed (nothing changed) │
//!                                       │          │         │
//!                                       └──────────┴─────────┴──▶ rollback ──▶ RolledBack
//! ```
//!
//! Every arrow is persisted in `update-state.json` (temp file, fsync,
//! rename, fsync directory) **before** the step it leads to starts, and
//! every step is idempotent, so after a restart [`UpdateEngine::resume`]
//! simply runs the persisted step again:
//!
//! - **download** appends to `download/<sha256>.part`, re-hashing what is
//!   there and asking the source for the rest (a byte range); bytes past the
//!   plan's length are refused.
//! - **verify** checks length and SHA-256, then renames the file to
//!   `download/<sha256>.verified`; a mismatch deletes it and fails.
//! - **stage** copies the verified bytes to where the installer needs them
//!   (`<path>.bulwark-new`, or the inactive A/B slot's `image`) and checks
//!   the copy's digest again.
//! - **switch** makes the new bytes live with one `rename`: the file over
//!   `<path>` (the old one kept as `<path>.bulwark-prev`), or the `current`
//!   symlink to the new slot; the script installer runs its `install` hook.
//! - **smoke** counts an attempt (persisted) and runs the smoke test with a
//!   timeout; more than `max_boot_attempts` starts without a commit roll
//!   back without running it again.
//! - **commit** records the release as installed; **rollback** puts the
//!   previous file or slot back (or runs the `rollback` hook).
//!
//! # Crash-safety invariant
//!
//! At every instant, the live file or the slot `current` points at holds
//! complete bytes whose SHA-256 was verified: either the release committed
//! before, or the new one. Partial bytes only ever live in files nobody
//! runs (`.part`, `.bulwark-new`, `image.tmp`, the inactive slot). The
//! final outcome (Installed, RolledBack or Failed) is written to the state
//! file together with the transition that produces it, and stays queued
//! there until the [`Reporter`] accepts it.
//!
//! # Testing
//!
//! [`FAILPOINT_ENV`] makes the engine SIGKILL itself at a chosen step;
//! [`UpdateEngine::with_failpoint`] does the in-process equivalent.

mod engine;
mod error;
mod failpoint;
mod fsutil;
mod installer;
mod process;
mod state;

use std::future::Future;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use engine::{ChunkSink, UpdateEngine};
pub use error::{SourceError, UpdateError};
pub use failpoint::FAILPOINT_ENV;
pub(crate) use fsutil::write_atomic;
pub use state::STATE_FILE;

/// Default smoke-test timeout.
pub const DEFAULT_SMOKE_TIMEOUT_SECS: u64 = 60;
/// Default limit of smoke-phase starts without a commit.
pub const DEFAULT_MAX_BOOT_ATTEMPTS: u32 = 3;
/// Default timeout for each script-installer hook.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 1800;

fn default_smoke_timeout() -> u64 {
    DEFAULT_SMOKE_TIMEOUT_SECS
}

/// What to install, already verified by TUF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    /// Release name, e.g. `gateway-fw@1.4.2`.
    pub release: String,
    /// TUF target path, e.g. `gateway-fw/1.4.2`.
    pub target: String,
    /// SHA-256 of the artifact, lowercase hex.
    pub sha256: String,
    /// Exact length of the artifact in bytes.
    pub length: u64,
    /// How to install it.
    pub installer: InstallerKind,
    /// Shell command line run with `/bin/sh -c` after the switch.
    #[serde(default)]
    pub smoke_test: Option<String>,
    /// Smoke-test timeout in seconds.
    #[serde(default = "default_smoke_timeout")]
    pub smoke_timeout_secs: u64,
}

impl UpdatePlan {
    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), UpdateError> {
        let bad = |reason: String| Err(UpdateError::BadPlan { reason });
        if self.release.is_empty() || self.release.len() > 256 {
            return bad("release must be 1 to 256 bytes".into());
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return bad(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                self.sha256
            ));
        }
        if self.smoke_timeout_secs == 0 {
            return bad("smoke_timeout_secs must be at least 1".into());
        }
        if let InstallerKind::File { path } = &self.installer
            && (!path.is_absolute() || path.file_name().is_none())
        {
            return bad(format!(
                "file installer path {} must be an absolute file path",
                path.display()
            ));
        }
        Ok(())
    }
}

/// How an artifact is installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum InstallerKind {
    /// Atomically replace one file (the previous one kept as
    /// `<path>.bulwark-prev`).
    File {
        /// The file to replace.
        path: PathBuf,
    },
    /// Write the inactive slot under `install_root/ab/` and flip `current`.
    Ab,
    /// Drive an external tool through the hooks in `hooks_dir`.
    Script,
}

/// A step of the state machine; also the fail-point names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Fetching bytes into `download/<sha256>.part`.
    Download,
    /// Checking length and SHA-256.
    Verify,
    /// Copying the verified bytes where the installer needs them.
    Stage,
    /// Making the new bytes live.
    Switch,
    /// Running the smoke test.
    Smoke,
    /// Recording the new release as installed.
    Commit,
    /// Putting the previous release back.
    Rollback,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::Download,
        Step::Verify,
        Step::Stage,
        Step::Switch,
        Step::Smoke,
        Step::Commit,
        Step::Rollback,
    ];

    /// The lowercase name (`download`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Download => "download",
            Step::Verify => "verify",
            Step::Stage => "stage",
            Step::Switch => "switch",
            Step::Smoke => "smoke",
            Step::Commit => "commit",
            Step::Rollback => "rollback",
        }
    }

    /// True before anything on the device was changed.
    pub fn before_switch(self) -> bool {
        matches!(self, Step::Download | Step::Verify | Step::Stage)
    }

    fn phase(self) -> Phase {
        match self {
            Step::Download => Phase::Downloading,
            Step::Verify => Phase::Verifying,
            Step::Stage => Phase::Staging,
            Step::Switch => Phase::Switching,
            Step::Smoke => Phase::SmokeTesting,
            Step::Commit => Phase::Committing,
            Step::Rollback => Phase::RollingBack,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Step {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Step::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// Where an update is, as reported to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Download started.
    Downloading,
    /// Verification started.
    Verifying,
    /// Staging started.
    Staging,
    /// Switch started.
    Switching,
    /// Smoke test started.
    SmokeTesting,
    /// Commit started.
    Committing,
    /// Rollback started.
    RollingBack,
    /// Final: the new release is committed.
    Installed,
    /// Final: the previous release is back.
    RolledBack,
    /// Final: nothing was changed on the device.
    Failed,
}

impl Phase {
    /// True for Installed, RolledBack and Failed.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Installed | Phase::RolledBack | Phase::Failed)
    }
}

/// The result carried by a final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The release is installed.
    Success,
    /// The release is not installed (rolled back or failed).
    Failure,
}

/// One report to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateReport {
    /// The release concerned.
    pub release: String,
    /// Where it is.
    pub phase: Phase,
    /// Set on final reports.
    pub outcome: Option<Outcome>,
    /// Stable error code ([`UpdateError::kind`]) on failures.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable reason on failures.
    pub detail: Option<String>,
    /// When the device produced the report (reports may be sent late).
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

impl UpdateReport {
    #[expect(
        clippy::disallowed_methods,
        reason = "the agent is an edge: a report is stamped with the device's wall-clock time"
    )]
    fn new(release: &str, phase: Phase) -> Self {
        Self {
            release: release.to_owned(),
            phase,
            outcome: None,
            code: None,
            detail: None,
            at: time::OffsetDateTime::now_utc(),
        }
    }
}

/// What is committed now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledInfo {
    /// Release name.
    pub release: String,
    /// SHA-256 of the artifact.
    pub sha256: String,
    /// A/B: the slot holding it (`slot-a` or `slot-b`).
    #[serde(default)]
    pub slot: Option<String>,
}

/// How [`UpdateEngine::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalState {
    /// The new release is live and committed.
    Installed(InstalledInfo),
    /// The new release went live, failed, and the previous one is back.
    RolledBack {
        /// The release that was rolled back.
        release: String,
        /// Stable code ([`UpdateError::kind`]).
        code: String,
        /// Why.
        reason: String,
    },
    /// The update stopped before anything on the device changed.
    Failed {
        /// The release that failed.
        release: String,
        /// Stable code, e.g. `arbitrary-software` for a digest mismatch.
        code: String,
        /// Why.
        reason: String,
    },
}

/// Where the engine keeps its state and installs to.
#[derive(Debug, Clone)]
pub struct InstallConfig {
    /// Holds `update-state.json`, `update.lock` and `download/`.
    pub state_dir: PathBuf,
    /// A/B slots live in `install_root/ab/{slot-a,slot-b}` with the
    /// `install_root/ab/current` symlink.
    pub install_root: PathBuf,
    /// Script installer hooks: `install`, `smoke`, `commit`, `rollback`.
    pub hooks_dir: PathBuf,
    /// Smoke-phase starts allowed without a commit.
    pub max_boot_attempts: u32,
    /// Timeout for each script hook.
    pub hook_timeout_secs: u64,
}

impl InstallConfig {
    /// A configuration with the default limits.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        install_root: impl Into<PathBuf>,
        hooks_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            state_dir: state_dir.into(),
            install_root: install_root.into(),
            hooks_dir: hooks_dir.into(),
            max_boot_attempts: DEFAULT_MAX_BOOT_ATTEMPTS,
            hook_timeout_secs: DEFAULT_HOOK_TIMEOUT_SECS,
        }
    }
}

/// Where artifacts come from (mTLS HTTP with `Range` in the agent).
///
/// Implementations may be written with `async fn`.
pub trait ArtifactSource {
    /// Streams the artifact `sha256` from byte `offset` to its end into
    /// `sink`, one chunk at a time, without buffering the whole artifact.
    /// The first byte given to the sink must be byte `offset`. When
    /// [`ChunkSink::write`] returns an error, stop and return it.
    fn fetch(
        &self,
        sha256: &str,
        offset: u64,
        sink: &mut ChunkSink,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// Where reports go (the server). Failures are retried later; final
/// reports are kept in the state file until accepted.
///
/// Implementations may be written with `async fn`.
pub trait Reporter {
    /// Sends one report.
    fn report(&self, report: &UpdateReport) -> impl Future<Output = Result<(), String>> + Send;
}
