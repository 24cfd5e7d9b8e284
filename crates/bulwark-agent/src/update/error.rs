//! The update engine's error type and the artifact source's error type.

use std::path::PathBuf;

use super::Step;

/// Everything that can go wrong while installing an update.
///
/// [`UpdateError::kind`] gives a stable, machine-readable code for each
/// variant; it is what goes into [`super::UpdateReport::code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// A filesystem operation failed.
    #[error("{step}: {action} {path}: {source}")]
    Io {
        /// The step that was running.
        step: Step,
        /// What was being done ("writing", "renaming", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The artifact source failed; the download resumes where it stopped.
    #[error("download: fetching artifact {sha256} from byte {offset}: {source}")]
    Source {
        /// The artifact asked for.
        sha256: String,
        /// The byte offset asked for.
        offset: u64,
        /// Why it failed.
        source: SourceError,
    },
    /// The source finished before sending `expected` bytes.
    #[error("download: the source stopped after {got} of {expected} bytes of {sha256}")]
    Truncated {
        /// The artifact.
        sha256: String,
        /// Bytes held now.
        got: u64,
        /// Bytes the plan promises.
        expected: u64,
    },
    /// The source sent more bytes than the plan's length.
    #[error("download: the source sent more than the {limit} bytes of {sha256}; refused")]
    TooLong {
        /// The artifact.
        sha256: String,
        /// The plan's length.
        limit: u64,
    },
    /// The downloaded or staged bytes have the wrong length.
    #[error("{step}: {path} holds {actual} bytes, the plan says {expected}")]
    LengthMismatch {
        /// Where the mismatch was found.
        step: Step,
        /// The file.
        path: PathBuf,
        /// The plan's length.
        expected: u64,
        /// The length found.
        actual: u64,
    },
    /// The downloaded or staged bytes have the wrong SHA-256.
    #[error("{step}: {path} has sha256 {actual}, the plan says {expected}")]
    HashMismatch {
        /// Where the mismatch was found.
        step: Step,
        /// The file.
        path: PathBuf,
        /// The plan's digest.
        expected: String,
        /// The digest found.
        actual: String,
    },
    /// The plan itself is unusable.
    #[error("invalid update plan: {reason}")]
    BadPlan {
        /// What is wrong.
        reason: String,
    },
    /// A hook the script installer needs is missing or not executable.
    #[error("{step}: hook {path} is missing or not executable")]
    MissingHook {
        /// The step that needed it.
        step: Step,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A hook exited unsuccessfully.
    #[error("{step}: hook {path} {detail}")]
    HookFailed {
        /// The step that ran it.
        step: Step,
        /// The hook.
        path: PathBuf,
        /// Exit status or timeout, and a tail of its stderr.
        detail: String,
    },
    /// The smoke test exited unsuccessfully (or could not be started).
    #[error("smoke test {detail}")]
    SmokeFailed {
        /// Exit status and a tail of its stderr.
        detail: String,
    },
    /// The smoke test did not finish in time and was killed.
    #[error("smoke test timed out after {secs}s{tail}")]
    SmokeTimeout {
        /// The timeout.
        secs: u64,
        /// `": <stderr tail>"`, or empty.
        tail: String,
    },
    /// The smoke phase was started more often than allowed without a commit.
    #[error("smoke: {attempts} boot attempts without a commit exceed the limit of {max}")]
    BootAttemptsExhausted {
        /// Attempts counted.
        attempts: u32,
        /// The limit.
        max: u32,
    },
    /// The state file is not a usable update state.
    #[error("update state {path} is not usable: {reason}")]
    BadState {
        /// The state file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another update is in progress past the point where it can be replaced.
    #[error("update {pending} is in progress; call resume first")]
    Busy {
        /// The release in progress.
        pending: String,
    },
    /// A newer plan replaced this one before anything was changed.
    #[error("superseded by {by} before it was installed")]
    Superseded {
        /// The release that replaced it.
        by: String,
    },
    /// Another engine holds the state directory.
    #[error("update state {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A test fail point fired (in-process variant of a crash).
    #[error("fail point at step {0} fired")]
    FailPoint(Step),
}

impl UpdateError {
    /// A stable code for this error, for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Source { .. } | Self::Truncated { .. } => "source",
            Self::TooLong { .. } => "endless-data",
            Self::LengthMismatch { .. } | Self::HashMismatch { .. } => "arbitrary-software",
            Self::BadPlan { .. } => "bad-plan",
            Self::MissingHook { .. } => "missing-hook",
            Self::HookFailed { .. } => "hook-failed",
            Self::SmokeFailed { .. } => "smoke-failed",
            Self::SmokeTimeout { .. } => "smoke-timeout",
            Self::BootAttemptsExhausted { .. } => "boot-attempts-exhausted",
            Self::BadState { .. } => "bad-state",
            Self::Busy { .. } => "busy",
            Self::Superseded { .. } => "superseded",
            Self::Locked { .. } => "locked",
            Self::FailPoint(_) => "fail-point",
        }
    }
}

/// Why an [`super::ArtifactSource`] could not deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The [`super::ChunkSink`] refused a chunk; stop and return this. The
    /// engine knows the real reason (too many bytes, a write error, …).
    #[error("the sink refused the data")]
    SinkRefused,
    /// The source does not have the artifact.
    #[error("artifact not found")]
    NotFound,
    /// Transport failure (connection, TLS, HTTP status, …); retried later.
    #[error("{0}")]
    Transport(String),
}

pub(super) fn io(
    step: Step,
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> UpdateError {
    let path = path.into();
    move |source| UpdateError::Io {
        step,
        action,
        path,
        source,
    }
}
