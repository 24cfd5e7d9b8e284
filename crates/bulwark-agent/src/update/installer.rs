//! The side effects of each installer, each one idempotent.
//!
//! Blocking filesystem work; the engine runs the heavy parts on the
//! blocking thread pool.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::error::io;
use super::fsutil::{atomic_write, check_digest, copy_hashed, hash_file, parent, sync_dir};
use super::{Step, UpdateError, UpdatePlan};

/// `path` with `suffix` appended to its file name.
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(step: Step, path: &Path) -> Result<(), UpdateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(step, "removing", path)(e)),
    }
}

/// Does the file at `path` hold exactly the plan's bytes?
pub(super) fn holds(step: Step, path: &Path, plan: &UpdatePlan) -> Result<bool, UpdateError> {
    if !path.is_file() {
        return Ok(false);
    }
    let got = hash_file(step, path)?.finish();
    Ok(got.0 == plan.length && got.1 == plan.sha256)
}

// ---------------------------------------------------------------- file ---

/// Stage: copy the verified artifact to `<path>.bulwark-new`, checked.
pub(super) fn file_stage(
    verified: &Path,
    path: &Path,
    plan: &UpdatePlan,
    midway: &dyn Fn() -> Result<(), UpdateError>,
) -> Result<(), UpdateError> {
    let step = Step::Stage;
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(io(step, "creating", dir))?;
    let new = with_suffix(path, ".bulwark-new");
    let copied = copy_hashed(step, verified, &new, midway)?;
    if let Err(e) = check_digest(step, &new, copied, plan.length, &plan.sha256) {
        let _ = fs::remove_file(&new);
        return Err(e);
    }
    sync_dir(step, dir)
}

/// What a switch found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Switched {
    /// The new bytes are live.
    Done,
    /// The staged file is gone and the live file is not the new release:
    /// stage again.
    Restage,
}

/// Switch: keep the live file as `<path>.bulwark-prev`, rename the staged
/// one over it. Idempotent: a missing staged file whose bytes are already
/// live means the rename happened.
pub(super) fn file_switch(
    path: &Path,
    plan: &UpdatePlan,
    had_previous: bool,
) -> Result<Switched, UpdateError> {
    let step = Step::Switch;
    let dir = parent(path);
    let new = with_suffix(path, ".bulwark-new");
    let prev = with_suffix(path, ".bulwark-prev");
    if !new.is_file() {
        return Ok(if holds(step, path, plan)? {
            Switched::Done
        } else {
            Switched::Restage
        });
    }
    if had_previous && path.is_file() {
        // A hard link keeps the live file in place the whole time; copy
        // where links are not supported.
        let tmp = with_suffix(path, ".bulwark-prev.tmp");
        remove_if_exists(step, &tmp)?;
        if fs::hard_link(path, &tmp).is_err() {
            copy_hashed(step, path, &tmp, &|| Ok(()))?;
        }
        fs::rename(&tmp, &prev).map_err(io(step, "renaming", &prev))?;
    } else if !had_previous {
        // A leftover from an older install is not "the previous version".
        remove_if_exists(step, &prev)?;
    }
    fs::rename(&new, path).map_err(io(step, "renaming into place", path))?;
    sync_dir(step, dir)?;
    Ok(Switched::Done)
}

/// Rollback: put `<path>.bulwark-prev` back over `path` (or remove `path`
/// when there was none before). The previous file is kept.
pub(super) fn file_rollback(path: &Path, had_previous: bool) -> Result<(), UpdateError> {
    let step = Step::Rollback;
    let dir = parent(path);
    remove_if_exists(step, &with_suffix(path, ".bulwark-new"))?;
    if had_previous {
        let prev = with_suffix(path, ".bulwark-prev");
        if !prev.is_file() {
            return Err(UpdateError::BadState {
                path: prev,
                reason: "the previous version to roll back to is missing".into(),
            });
        }
        let tmp = with_suffix(path, ".bulwark-rb");
        copy_hashed(step, &prev, &tmp, &|| Ok(()))?;
        fs::rename(&tmp, path).map_err(io(step, "renaming into place", path))?;
    } else {
        remove_if_exists(step, path)?;
    }
    sync_dir(step, dir)
}

// ------------------------------------------------------------------ ab ---

/// The two slot names.
pub(super) const SLOTS: [&str; 2] = ["slot-a", "slot-b"];

pub(super) fn ab_dir(install_root: &Path) -> PathBuf {
    install_root.join("ab")
}

/// The slot `current` points at, if any.
pub(super) fn ab_current(install_root: &Path) -> Result<Option<String>, UpdateError> {
    let link = ab_dir(install_root).join("current");
    match fs::read_link(&link) {
        Ok(target) => match target.to_str() {
            Some(name) if SLOTS.contains(&name) => Ok(Some(name.to_owned())),
            _ => Err(UpdateError::BadState {
                path: link,
                reason: format!("points at {}, not at a slot", target.display()),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(Step::Stage, "reading symlink", link)(e)),
    }
}

/// The slot that is not `current`.
pub(super) fn ab_inactive(current: Option<&str>) -> &'static str {
    if current == Some(SLOTS[0]) {
        SLOTS[1]
    } else {
        SLOTS[0]
    }
}

/// Stage: write the artifact as `slot/image` (checked) and
/// `slot/release.json`.
pub(super) fn ab_stage(
    install_root: &Path,
    slot: &str,
    verified: &Path,
    plan: &UpdatePlan,
    midway: &dyn Fn() -> Result<(), UpdateError>,
) -> Result<(), UpdateError> {
    let step = Step::Stage;
    if ab_current(install_root)?.as_deref() == Some(slot) {
        return Err(UpdateError::BadState {
            path: ab_dir(install_root).join("current"),
            reason: format!("refusing to stage into the active slot {slot}"),
        });
    }
    let dir = ab_dir(install_root).join(slot);
    fs::create_dir_all(&dir).map_err(io(step, "creating", &dir))?;
    // The slot stops describing a release before its image changes.
    remove_if_exists(step, &dir.join("release.json"))?;
    let tmp = dir.join("image.tmp");
    let copied = copy_hashed(step, verified, &tmp, midway)?;
    if let Err(e) = check_digest(step, &tmp, copied, plan.length, &plan.sha256) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let image = dir.join("image");
    fs::rename(&tmp, &image).map_err(io(step, "renaming into place", &image))?;
    let meta = serde_json::json!({ "release": plan.release, "sha256": plan.sha256 });
    atomic_write(step, &dir.join("release.json"), meta.to_string().as_bytes())?;
    sync_dir(step, &dir)?;
    sync_dir(step, &ab_dir(install_root))
}

/// Points `current` at `slot` (or removes it for `None`) with one rename.
/// Idempotent.
pub(super) fn ab_point(
    install_root: &Path,
    slot: Option<&str>,
    step: Step,
) -> Result<(), UpdateError> {
    let dir = ab_dir(install_root);
    let link = dir.join("current");
    if ab_current(install_root)?.as_deref() == slot {
        return Ok(());
    }
    match slot {
        Some(slot) => {
            fs::create_dir_all(&dir).map_err(io(step, "creating", &dir))?;
            let tmp = dir.join("current.tmp");
            remove_if_exists(step, &tmp)?;
            std::os::unix::fs::symlink(slot, &tmp).map_err(io(step, "creating symlink", &tmp))?;
            fs::rename(&tmp, &link).map_err(io(step, "renaming into place", &link))?;
        }
        None => remove_if_exists(step, &link)?,
    }
    sync_dir(step, &dir)
}

// -------------------------------------------------------------- script ---

/// The hooks the script installer cannot do without.
pub(super) const REQUIRED_HOOKS: [&str; 2] = ["install", "rollback"];

/// An executable regular file?
pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
