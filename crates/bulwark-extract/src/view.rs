//! The merged filesystem view: later entries and upper layers replace
//! lower ones, whiteouts delete, and per-path scan results (retained
//! package databases, Go build info) follow the paths they belong to.

use std::collections::BTreeMap;

use bulwark_sbom::Component;

use crate::{
    limits::MAX_WARNINGS,
    model::{FileKind, FileMeta, RemovalReason, Removed, Skipped},
};

/// Warnings, capped at [`MAX_WARNINGS`].
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    list: Vec<String>,
    suppressed: u64,
}

impl Warnings {
    pub(crate) fn push(&mut self, warning: impl Into<String>) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(warning.into());
        } else {
            self.suppressed += 1;
        }
    }

    pub(crate) fn into_vec(mut self) -> Vec<String> {
        if self.suppressed > 0 {
            self.list
                .push(format!("{} more warnings suppressed", self.suppressed));
        }
        self.list
    }
}

/// The state of the final view while layers are applied.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) files: BTreeMap<String, FileMeta>,
    pub(crate) removed: Vec<Removed>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) warnings: Warnings,
    /// Contents of possible package databases and lockfiles, by path.
    pub(crate) retained: BTreeMap<String, Vec<u8>>,
    pub(crate) retained_bytes: u64,
    /// Components from Go binaries' build info, by path.
    pub(crate) go: BTreeMap<String, Vec<Component>>,
}

impl View {
    /// Adds an entry, replacing whatever the view held at `path` (and, if
    /// the new entry is not a directory, everything below it).
    pub(crate) fn insert(&mut self, path: String, meta: FileMeta) {
        let layer = meta.layer;
        if meta.kind != FileKind::Dir {
            self.remove_below(&path, layer, RemovalReason::Replaced, None);
        }
        match self.files.get(&path) {
            Some(old) if old.kind == FileKind::Dir && meta.kind == FileKind::Dir => {}
            Some(_) => self.remove_one(&path, layer, RemovalReason::Replaced),
            None => {}
        }
        self.files.insert(path, meta);
    }

    /// Applies a whiteout for `path` found in `layer`: deletes it and
    /// everything below it from lower layers.
    pub(crate) fn whiteout(&mut self, path: &str, layer: usize) {
        if self.files.get(path).is_some_and(|m| m.layer < layer) {
            self.remove_one(path, layer, RemovalReason::Whiteout);
        }
        self.remove_below(path, layer, RemovalReason::Whiteout, Some(layer));
    }

    /// Applies an opaque-directory marker: deletes everything below `dir`
    /// that comes from lower layers.
    pub(crate) fn opaque(&mut self, dir: &str, layer: usize) {
        self.remove_below(dir, layer, RemovalReason::OpaqueDir, Some(layer));
    }

    /// Removes every path strictly below `dir` (all paths for the root),
    /// only those from layers below `lower_than` when given.
    fn remove_below(
        &mut self,
        dir: &str,
        by_layer: usize,
        reason: RemovalReason,
        lower_than: Option<usize>,
    ) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter(|(_, meta)| lower_than.is_none_or(|l| meta.layer < l))
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            self.remove_one(&path, by_layer, reason);
        }
    }

    fn remove_one(&mut self, path: &str, by_layer: usize, reason: RemovalReason) {
        let Some(meta) = self.files.remove(path) else {
            return;
        };
        if let Some(data) = self.retained.remove(path) {
            self.retained_bytes -= data.len() as u64;
        }
        self.go.remove(path);
        if meta.kind != FileKind::Dir {
            self.removed.push(Removed {
                path: path.to_owned(),
                layer: meta.layer,
                by_layer,
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(layer: usize) -> FileMeta {
        FileMeta {
            kind: FileKind::File,
            size: 1,
            layer,
            mode: 0o644,
            sha256: None,
            link_target: None,
        }
    }

    #[test]
    fn whiteouts_and_opaque_dirs_only_touch_lower_layers() {
        let mut view = View::default();
        view.insert("etc/a".into(), file(0));
        view.insert("etc/b".into(), file(0));
        view.insert("etcetera".into(), file(0));
        view.insert("etc/c".into(), file(1));
        view.opaque("etc", 1);
        view.whiteout("etcetera", 1);
        view.insert("x".into(), file(1));
        view.whiteout("x", 1);
        let paths: Vec<&str> = view.files.keys().map(String::as_str).collect();
        assert_eq!(paths, ["etc/c", "x"]);
        let removed: Vec<(&str, RemovalReason)> = view
            .removed
            .iter()
            .map(|r| (r.path.as_str(), r.reason))
            .collect();
        assert_eq!(
            removed,
            [
                ("etc/a", RemovalReason::OpaqueDir),
                ("etc/b", RemovalReason::OpaqueDir),
                ("etcetera", RemovalReason::Whiteout)
            ]
        );
    }

    #[test]
    fn a_file_replaces_a_directory_tree() {
        let mut view = View::default();
        view.insert("opt/app/bin".into(), file(0));
        view.insert("opt/app".into(), file(1));
        assert_eq!(view.files.keys().collect::<Vec<_>>(), ["opt/app"]);
        assert_eq!(view.removed[0].reason, RemovalReason::Replaced);
    }
}
