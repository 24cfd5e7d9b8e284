//! The persisted state: `update-state.json` in the state directory.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::io;
use super::fsutil::atomic_write;
use super::{InstalledInfo, Step, UpdateError, UpdatePlan, UpdateReport};

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "update-state.json";
const VERSION: u32 = 1;

/// Everything the engine remembers across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Persisted {
    pub(super) version: u32,
    /// What is committed now.
    pub(super) installed: Option<InstalledInfo>,
    /// What was committed before `installed`.
    pub(super) previous: Option<InstalledInfo>,
    /// The update in progress.
    pub(super) pending: Option<Pending>,
    /// Final reports not yet acknowledged by the server, oldest first.
    #[serde(default)]
    pub(super) unreported: Vec<UpdateReport>,
    /// The last release that went live, failed and was rolled back: the
    /// same bytes are not tried again (a device would otherwise flap
    /// between releases every cycle), until something else is installed.
    #[serde(default)]
    pub(super) rolled_back: Option<InstalledInfo>,
}

/// An update in progress and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Pending {
    pub(super) plan: UpdatePlan,
    /// The step to run (or re-run) next.
    pub(super) step: Step,
    /// Times the smoke phase was started for this switch.
    #[serde(default)]
    pub(super) attempts: u32,
    /// A/B: the slot being installed (`slot-a` or `slot-b`).
    #[serde(default)]
    pub(super) slot: Option<String>,
    /// A/B: the slot `current` pointed at before, if any.
    #[serde(default)]
    pub(super) previous_slot: Option<String>,
    /// File installer: whether the target path existed before.
    #[serde(default)]
    pub(super) had_previous: Option<bool>,
    /// Why we are rolling back (set with `step = Rollback`).
    #[serde(default)]
    pub(super) failure: Option<Failure>,
}

/// A failure reason as persisted: the stable code and the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Failure {
    pub(super) code: String,
    pub(super) detail: String,
}

impl From<&UpdateError> for Failure {
    fn from(e: &UpdateError) -> Self {
        Self {
            code: e.kind().to_owned(),
            detail: e.to_string(),
        }
    }
}

impl Pending {
    pub(super) fn new(plan: UpdatePlan) -> Self {
        Self {
            plan,
            step: Step::Download,
            attempts: 0,
            slot: None,
            previous_slot: None,
            had_previous: None,
            failure: None,
        }
    }
}

pub(super) fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub(super) fn load(dir: &Path) -> Result<Persisted, UpdateError> {
    let path = state_path(dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Persisted {
                version: VERSION,
                ..Persisted::default()
            });
        }
        Err(e) => return Err(io(Step::Download, "reading", &path)(e)),
    };
    let state: Persisted = serde_json::from_slice(&bytes).map_err(|e| UpdateError::BadState {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if state.version != VERSION {
        return Err(UpdateError::BadState {
            path,
            reason: format!("version {} is not {VERSION}", state.version),
        });
    }
    Ok(state)
}

pub(super) fn save(dir: &Path, state: &Persisted, step: Step) -> Result<(), UpdateError> {
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| UpdateError::BadState {
        path: state_path(dir),
        reason: e.to_string(),
    })?;
    atomic_write(step, &state_path(dir), &bytes)
}
