//! Test fail points: "crash here" at a chosen step.
//!
//! The environment variable [`FAILPOINT_ENV`] set to a step name
//! (`download`, `verify`, `stage`, `switch`, `smoke`, `commit`, `rollback`)
//! makes the engine SIGKILL its own process at that point, which is how the
//! real-process crash tests work. [`super::UpdateEngine::with_failpoint`] is
//! the in-process variant: the engine returns [`UpdateError::FailPoint`]
//! instead, with the state on disk exactly as a crash would leave it.

use super::{Step, UpdateError};

/// The environment variable that arms a crash fail point.
pub const FAILPOINT_ENV: &str = "BULWARK_AGENT_FAILPOINT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// SIGKILL the process.
    Kill,
    /// Return `UpdateError::FailPoint`.
    Error,
}

/// An armed fail point.
#[derive(Debug, Clone, Copy)]
pub(super) struct FailPoint {
    step: Step,
    mode: Mode,
}

impl FailPoint {
    pub(super) fn in_process(step: Step) -> Self {
        Self {
            step,
            mode: Mode::Error,
        }
    }

    /// The fail point armed by the environment, if any.
    pub(super) fn from_env() -> Option<Self> {
        let value = std::env::var(FAILPOINT_ENV).ok()?;
        match value.parse::<Step>() {
            Ok(step) => Some(Self {
                step,
                mode: Mode::Kill,
            }),
            Err(()) => {
                tracing::warn!(%value, "ignoring unknown {FAILPOINT_ENV}");
                None
            }
        }
    }

    /// Fires if armed for `step`.
    pub(super) fn check(point: Option<Self>, step: Step) -> Result<(), UpdateError> {
        match point {
            Some(fp) if fp.step == step => match fp.mode {
                Mode::Error => Err(UpdateError::FailPoint(step)),
                Mode::Kill => kill_self(step),
            },
            _ => Ok(()),
        }
    }
}

fn kill_self(step: Step) -> ! {
    tracing::warn!(%step, "fail point: killing this process");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
