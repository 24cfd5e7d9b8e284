//! The client workflow of TUF specification section 5, with I/O injected.
//!
//! [`Updater`] fetches through a [`Fetch`] and keeps trusted metadata in a
//! [`LocalMetadata`]. It follows the behaviour of python-tuf's `ngclient`
//! closely, because that is what the conformance suite measures:
//!
//! - Local metadata is loaded first and, if it verifies, used for rollback
//!   protection *even when it has expired*. Local metadata that does not
//!   verify (for instance after a key rotation) is ignored, which is how a
//!   client recovers from a fast-forward attack.
//! - A role's bytes are stored exactly as received, and only after they
//!   passed every check.
//! - A delegated role already loaded is re-verified against the delegator
//!   through which it is reached again: trust never carries over from an
//!   earlier search path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use time::OffsetDateTime;

use crate::{
    Error, MetaFile, Metadata, Role, Root, Snapshot, TargetFile, Targets, Timestamp, UpdateError,
};

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The file does not exist (HTTP 403 or 404).
    #[error("not found")]
    NotFound,
    /// The file is larger than `limit`; the fetcher stopped reading.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit that was passed in.
        limit: u64,
    },
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

/// Fetches repository files.
pub trait Fetch {
    /// Fetches `path`, relative to the metadata base (e.g. `2.root.json`,
    /// `timestamp.json`, `3.snapshot.json`). Implementations must stop
    /// reading once more than `max_len` bytes arrived and return
    /// [`FetchError::TooLarge`].
    fn fetch(
        &mut self,
        path: &str,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// Storage for trusted metadata, under non-versioned role names.
pub trait LocalMetadata {
    /// The stored bytes of `role` (`root`, `timestamp`, `snapshot`,
    /// `targets`, or a delegated role name), if any.
    fn load(&self, role: &str) -> Option<Vec<u8>>;
    /// Stores `bytes` as the trusted metadata of `role`.
    ///
    /// # Errors
    ///
    /// A message if storing failed.
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Size and count limits, defaulting to python-tuf's `UpdaterConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest root metadata accepted.
    pub root_max: u64,
    /// Largest timestamp metadata accepted.
    pub timestamp_max: u64,
    /// Largest snapshot metadata accepted when timestamp lists no length.
    pub snapshot_max: u64,
    /// Largest targets metadata accepted when snapshot lists no length.
    pub targets_max: u64,
    /// Most root versions fetched in one refresh.
    pub max_root_rotations: u32,
    /// Most targets roles visited in one target search.
    pub max_delegations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root_max: 512_000,
            timestamp_max: 16_384,
            snapshot_max: 2_000_000,
            targets_max: 5_000_000,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// Percent-encodes a role name for use in a file name or URL path, as
/// Python's `urllib.parse.quote(name, "")` does: everything but ASCII
/// letters, digits and `_.-~` is escaped, `/` included.
pub fn quote_role_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A TUF client: refreshes top-level metadata and resolves targets.
pub struct Updater<F: Fetch, L: LocalMetadata> {
    fetch: F,
    local: L,
    limits: Limits,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    targets: BTreeMap<String, Metadata<Targets>>,
    refreshed: bool,
}

impl<F: Fetch, L: LocalMetadata> fmt::Debug for Updater<F, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Updater")
            .field("limits", &self.limits)
            .field("root_version", &self.root.signed().version)
            .field(
                "timestamp_version",
                &self.timestamp.as_ref().map(|m| m.signed().version),
            )
            .field(
                "snapshot_version",
                &self.snapshot.as_ref().map(|m| m.signed().version),
            )
            .field("targets_roles", &self.targets.keys().collect::<Vec<_>>())
            .field("refreshed", &self.refreshed)
            .finish_non_exhaustive()
    }
}

fn malformed(role: &str) -> impl FnOnce(Error) -> UpdateError + '_ {
    move |source| UpdateError::Malformed {
        role: role.to_owned(),
        source,
    }
}

fn threshold<T: Role>(role: &str, md: &Metadata<T>) -> impl FnOnce(Error) -> UpdateError {
    let role = role.to_owned();
    let version = md.signed().version();
    move |source| UpdateError::Threshold {
        role,
        version,
        source,
    }
}

fn check_expiry<T: Role>(
    role: &str,
    md: &Metadata<T>,
    now: OffsetDateTime,
) -> Result<(), UpdateError> {
    if md.signed().is_expired(now) {
        return Err(UpdateError::Expired {
            role: role.to_owned(),
            version: md.signed().version(),
            expires: md.signed().expires(),
            now,
        });
    }
    Ok(())
}

/// Checks `bytes` against the length and hashes `meta` lists (if any).
fn verify_meta(
    bytes: &[u8],
    meta: &MetaFile,
    role: &str,
    source_of_truth: &'static str,
) -> Result<(), UpdateError> {
    let mismatch = |what: String| UpdateError::MetaMismatch {
        role: role.to_owned(),
        what,
        source_of_truth,
    };
    if let Some(length) = meta.length
        && length != bytes.len() as u64
    {
        return Err(mismatch(format!(
            "length {length} (got {} bytes)",
            bytes.len()
        )));
    }
    for (algorithm, expected) in meta.hashes.iter().flatten() {
        let Some(alg) = crate::hash::algorithm(algorithm) else {
            return Err(mismatch(format!(
                "{algorithm} hash (unsupported algorithm)"
            )));
        };
        let actual = hex::encode(aws_lc_rs::digest::digest(alg, bytes));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(mismatch(format!("{algorithm} hash")));
        }
    }
    Ok(())
}

fn fetch_error(path: &str, limit: u64, e: FetchError) -> UpdateError {
    match e {
        FetchError::TooLarge { .. } => UpdateError::TooLarge {
            what: path.to_owned(),
            limit,
        },
        FetchError::NotFound => UpdateError::Fetch {
            path: path.to_owned(),
            message: "not found".to_owned(),
        },
        FetchError::Other(message) => UpdateError::Fetch {
            path: path.to_owned(),
            message,
        },
    }
}

impl<F: Fetch, L: LocalMetadata> Updater<F, L> {
    /// Creates an updater from the trusted root in `local`.
    ///
    /// # Errors
    ///
    /// [`UpdateError::NoTrustedRoot`] if `local` has no root, `Malformed`
    /// if it does not parse, `Threshold` if it is not signed by its own
    /// threshold of root keys.
    pub fn new(fetch: F, local: L, limits: Limits) -> Result<Self, UpdateError> {
        let bytes = local.load("root").ok_or(UpdateError::NoTrustedRoot)?;
        let root = Metadata::<Root>::from_slice(&bytes).map_err(malformed("trusted root"))?;
        root.signed()
            .verify_role("root", &root)
            .map_err(threshold("trusted root", &root))?;
        Ok(Updater {
            fetch,
            local,
            limits,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            refreshed: false,
        })
    }

    /// The trusted root.
    pub fn trusted_root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The trusted timestamp, once loaded.
    pub fn trusted_timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, once loaded.
    pub fn trusted_snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The trusted top-level targets, once loaded.
    pub fn trusted_targets(&self) -> Option<&Metadata<Targets>> {
        self.targets.get("targets")
    }

    /// Gives back the fetcher and the local store.
    pub fn into_parts(self) -> (F, L) {
        (self.fetch, self.local)
    }

    /// Updates root, timestamp, snapshot and top-level targets (spec 5.3 to
    /// 5.6), with `now` as the reference time for expiry.
    ///
    /// # Errors
    ///
    /// Any [`UpdateError`]; trusted metadata stays as it was for the roles
    /// not yet updated.
    pub async fn refresh(&mut self, now: OffsetDateTime) -> Result<(), UpdateError> {
        self.refreshed = false;
        self.timestamp = None;
        self.snapshot = None;
        self.targets.clear();
        self.load_root().await?;
        self.load_timestamp(now).await?;
        self.load_snapshot(now).await?;
        self.load_targets("targets", "root", now).await?;
        self.refreshed = true;
        Ok(())
    }

    async fn fetch(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, UpdateError> {
        self.fetch
            .fetch(path, limit)
            .await
            .map_err(|e| fetch_error(path, limit, e))
    }

    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
        self.local
            .store(role, bytes)
            .map_err(|message| UpdateError::Storage {
                role: role.to_owned(),
                message,
            })
    }

    /// Spec 5.3: walk root versions one by one.
    async fn load_root(&mut self) -> Result<(), UpdateError> {
        let first = self.root.signed().version + 1;
        let last = first.saturating_add(u64::from(self.limits.max_root_rotations));
        for next in first..last {
            let path = format!("{next}.root.json");
            let bytes = match self.fetch.fetch(&path, self.limits.root_max).await {
                Ok(bytes) => bytes,
                Err(FetchError::NotFound) => break,
                Err(e) => return Err(fetch_error(&path, self.limits.root_max, e)),
            };
            self.update_root(&bytes)?;
            self.store("root", &bytes)?;
        }
        Ok(())
    }

    fn update_root(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        let new = Metadata::<Root>::from_slice(bytes).map_err(malformed("root"))?;
        crate::chain::next_root(&self.root, &new, "the file name")?;
        self.root = new;
        Ok(())
    }

    /// Spec 5.4.
    async fn load_timestamp(&mut self, now: OffsetDateTime) -> Result<(), UpdateError> {
        check_expiry("root", &self.root, now)?;
        if let Some(bytes) = self.local.load("timestamp") {
            // Invalid local metadata is ignored; expired metadata is kept
            // for rollback checks (update_timestamp sets it, then errors).
            let _ = self.update_timestamp(&bytes, now);
        }
        let limit = self.limits.timestamp_max;
        let bytes = self.fetch("timestamp.json", limit).await?;
        if self.update_timestamp(&bytes, now)? {
            self.store("timestamp", &bytes)?;
        }
        Ok(())
    }

    /// Returns `Ok(false)` if `bytes` has the trusted version (nothing changes).
    fn update_timestamp(&mut self, bytes: &[u8], now: OffsetDateTime) -> Result<bool, UpdateError> {
        let new = Metadata::<Timestamp>::from_slice(bytes).map_err(malformed("timestamp"))?;
        self.root
            .signed()
            .verify_role("timestamp", &new)
            .map_err(threshold("timestamp", &new))?;
        if let Some(old) = &self.timestamp {
            let (trusted, got) = (old.signed().version, new.signed().version);
            if got < trusted {
                return Err(UpdateError::Rollback {
                    role: "timestamp".to_owned(),
                    trusted,
                    new: got,
                });
            }
            if got == trusted {
                return Ok(false);
            }
            let old_snap = old.signed().snapshot_meta().map_or(0, |m| m.version);
            let new_snap = new.signed().snapshot_meta().map_or(0, |m| m.version);
            if new_snap < old_snap {
                return Err(UpdateError::Rollback {
                    role: "snapshot (as listed in timestamp)".to_owned(),
                    trusted: old_snap,
                    new: new_snap,
                });
            }
        }
        let new = self.timestamp.insert(new);
        check_expiry("timestamp", new, now)?;
        Ok(true)
    }

    fn trusted_timestamp_checked(
        &self,
        now: OffsetDateTime,
    ) -> Result<&Metadata<Timestamp>, UpdateError> {
        let ts = self.timestamp.as_ref().ok_or_else(|| UpdateError::Fetch {
            path: "timestamp.json".to_owned(),
            message: "no trusted timestamp".to_owned(),
        })?;
        check_expiry("timestamp", ts, now)?;
        Ok(ts)
    }

    fn snapshot_meta(&self, now: OffsetDateTime) -> Result<MetaFile, UpdateError> {
        let ts = self.trusted_timestamp_checked(now)?;
        ts.signed()
            .snapshot_meta()
            .cloned()
            .ok_or_else(|| UpdateError::NotListed {
                role: "snapshot".to_owned(),
                source_of_truth: "timestamp",
            })
    }

    /// Spec 5.5.
    async fn load_snapshot(&mut self, now: OffsetDateTime) -> Result<(), UpdateError> {
        if let Some(bytes) = self.local.load("snapshot")
            && self.update_snapshot(&bytes, true, now).is_ok()
        {
            return Ok(());
        }
        let meta = self.snapshot_meta(now)?;
        let limit = meta.length.unwrap_or(self.limits.snapshot_max);
        let path = if self.root.signed().consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_owned()
        };
        let bytes = self.fetch(&path, limit).await?;
        self.update_snapshot(&bytes, false, now)?;
        self.store("snapshot", &bytes)
    }

    /// `trusted` (local bytes) skips the length and hash check.
    fn update_snapshot(
        &mut self,
        bytes: &[u8],
        trusted: bool,
        now: OffsetDateTime,
    ) -> Result<(), UpdateError> {
        let meta = self.snapshot_meta(now)?;
        if !trusted {
            verify_meta(bytes, &meta, "snapshot", "timestamp")?;
        }
        let new = Metadata::<Snapshot>::from_slice(bytes).map_err(malformed("snapshot"))?;
        self.root
            .signed()
            .verify_role("snapshot", &new)
            .map_err(threshold("snapshot", &new))?;
        if let Some(old) = &self.snapshot {
            for (name, old_meta) in &old.signed().meta {
                let Some(new_meta) = new.signed().meta.get(name) else {
                    return Err(UpdateError::RoleRemoved { role: name.clone() });
                };
                if new_meta.version < old_meta.version {
                    return Err(UpdateError::Rollback {
                        role: format!("{name} (as listed in snapshot)"),
                        trusted: old_meta.version,
                        new: new_meta.version,
                    });
                }
            }
        }
        self.snapshot = Some(new);
        self.check_final_snapshot(now)
    }

    fn check_final_snapshot(&self, now: OffsetDateTime) -> Result<(), UpdateError> {
        let meta = self.snapshot_meta(now)?;
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| UpdateError::NotListed {
                role: "snapshot".to_owned(),
                source_of_truth: "local trusted metadata",
            })?;
        check_expiry("snapshot", snapshot, now)?;
        if snapshot.signed().version != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: "snapshot".to_owned(),
                expected: meta.version,
                got: snapshot.signed().version,
                source_of_truth: "timestamp",
            });
        }
        Ok(())
    }

    /// Spec 5.6 (and 5.6 for delegated roles): loads `role`, delegated by
    /// `parent` (`root` for the top-level targets).
    async fn load_targets(
        &mut self,
        role: &str,
        parent: &str,
        now: OffsetDateTime,
    ) -> Result<&Metadata<Targets>, UpdateError> {
        if let Some(cached) = self.targets.get(role) {
            // Re-verify against the delegator of this search path.
            self.verify_targets_signatures(role, parent, cached)?;
        } else {
            let loaded_locally = match self.local.load(role) {
                Some(bytes) => self.update_targets(&bytes, role, parent, now).is_ok(),
                None => false,
            };
            if !loaded_locally {
                self.check_final_snapshot(now)?;
                let meta = self.targets_meta(role)?;
                let limit = meta.length.unwrap_or(self.limits.targets_max);
                let quoted = quote_role_name(role);
                let path = if self.root.signed().consistent_snapshot {
                    format!("{}.{quoted}.json", meta.version)
                } else {
                    format!("{quoted}.json")
                };
                let bytes = self.fetch(&path, limit).await?;
                self.update_targets(&bytes, role, parent, now)?;
                self.store(role, &bytes)?;
            }
        }
        self.targets
            .get(role)
            .ok_or_else(|| UpdateError::NotListed {
                role: role.to_owned(),
                source_of_truth: "local trusted metadata",
            })
    }

    fn targets_meta(&self, role: &str) -> Result<MetaFile, UpdateError> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| UpdateError::NotListed {
                role: "snapshot".to_owned(),
                source_of_truth: "local trusted metadata",
            })?;
        snapshot
            .signed()
            .meta
            .get(&format!("{role}.json"))
            .cloned()
            .ok_or_else(|| UpdateError::NotListed {
                role: role.to_owned(),
                source_of_truth: "snapshot",
            })
    }

    fn verify_targets_signatures(
        &self,
        role: &str,
        parent: &str,
        md: &Metadata<Targets>,
    ) -> Result<(), UpdateError> {
        let result = if parent == "root" {
            self.root.signed().verify_role(role, md)
        } else {
            let delegator = self
                .targets
                .get(parent)
                .ok_or_else(|| UpdateError::NotListed {
                    role: parent.to_owned(),
                    source_of_truth: "local trusted metadata",
                })?;
            delegator.signed().verify_delegate(role, md)
        };
        result.map_err(threshold(role, md))
    }

    fn update_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        parent: &str,
        now: OffsetDateTime,
    ) -> Result<(), UpdateError> {
        self.check_final_snapshot(now)?;
        let meta = self.targets_meta(role)?;
        verify_meta(bytes, &meta, role, "snapshot")?;
        let new = Metadata::<Targets>::from_slice(bytes).map_err(malformed(role))?;
        self.verify_targets_signatures(role, parent, &new)?;
        if new.signed().version != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: role.to_owned(),
                expected: meta.version,
                got: new.signed().version,
                source_of_truth: "snapshot",
            });
        }
        check_expiry(role, &new, now)?;
        self.targets.insert(role.to_owned(), new);
        Ok(())
    }

    /// Finds the metadata of target `path` (spec 5.7): refreshes first if
    /// not yet refreshed, then searches the delegation graph depth first,
    /// in delegation order, honouring `terminating` and at most
    /// `max_delegations` roles. `Ok(None)` if no role lists it.
    ///
    /// # Errors
    ///
    /// Any [`UpdateError`] from refreshing or loading a role on the path.
    pub async fn target_info(
        &mut self,
        path: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TargetFile>, UpdateError> {
        if !self.refreshed {
            self.refresh(now).await?;
        }
        let mut to_visit = vec![("targets".to_owned(), "root".to_owned())];
        let mut visited = BTreeSet::new();
        let mut budget = self.limits.max_delegations;
        while budget > 0 {
            let Some((role, parent)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            let md = self.load_targets(&role, &parent, now).await?;
            if let Some(target) = md.signed().targets.get(path) {
                return Ok(Some(target.clone()));
            }
            let mut children = Vec::new();
            if let Some(delegations) = &md.signed().delegations {
                for (child, terminating) in delegations.roles_for_target(path) {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
            }
            children.reverse();
            to_visit.extend(children);
            visited.insert(role);
            budget -= 1;
        }
        Ok(None)
    }

    /// The path, relative to the targets base, to download `info` (the
    /// metadata of target `path`) from: with consistent snapshots the file
    /// name gets a hash prefix, `dir/<hash>.name`.
    pub fn target_download_path(&self, path: &str, info: &TargetFile) -> String {
        if !self.root.signed().consistent_snapshot {
            return path.to_owned();
        }
        let Some(hash) = info.hashes.values().next() else {
            return path.to_owned();
        };
        match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/{hash}.{name}"),
            None => format!("{hash}.{path}"),
        }
    }
}

/// Streaming verification of a downloaded target: never buffers the file.
pub struct TargetVerifier {
    length: u64,
    received: u64,
    hashers: Vec<(String, aws_lc_rs::digest::Context, String)>,
}

impl fmt::Debug for TargetVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetVerifier")
            .field("length", &self.length)
            .field("received", &self.received)
            .field(
                "algorithms",
                &self
                    .hashers
                    .iter()
                    .map(|h| h.0.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TargetVerifier {
    /// A verifier for a file described by `expected`.
    ///
    /// # Errors
    ///
    /// [`UpdateError::UnsupportedHash`] if `expected` lists none of sha256,
    /// sha384 and sha512. Other algorithms are ignored.
    pub fn new(expected: &TargetFile) -> Result<Self, UpdateError> {
        let hashers: Vec<_> = expected
            .hashes
            .iter()
            .filter_map(|(name, hex)| {
                crate::hash::algorithm(name).map(|alg| {
                    (
                        name.clone(),
                        aws_lc_rs::digest::Context::new(alg),
                        hex.to_ascii_lowercase(),
                    )
                })
            })
            .collect();
        if hashers.is_empty() {
            return Err(UpdateError::UnsupportedHash);
        }
        Ok(TargetVerifier {
            length: expected.length,
            received: 0,
            hashers,
        })
    }

    /// Feeds the next chunk.
    ///
    /// # Errors
    ///
    /// [`UpdateError::TooLarge`] as soon as more bytes than the expected
    /// length arrived.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), UpdateError> {
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.received > self.length {
            return Err(UpdateError::TooLarge {
                what: "target".to_owned(),
                limit: self.length,
            });
        }
        for (_, ctx, _) in &mut self.hashers {
            ctx.update(chunk);
        }
        Ok(())
    }

    /// Checks the length and every supported hash.
    ///
    /// # Errors
    ///
    /// [`UpdateError::TargetMismatch`] naming what differs.
    pub fn finish(self) -> Result<(), UpdateError> {
        if self.received != self.length {
            return Err(UpdateError::TargetMismatch(format!(
                "got {} bytes, metadata says {}",
                self.received, self.length
            )));
        }
        for (name, ctx, expected) in self.hashers {
            let actual = hex::encode(ctx.finish());
            if actual != expected {
                return Err(UpdateError::TargetMismatch(format!(
                    "{name} is {actual}, metadata says {expected}"
                )));
            }
        }
        Ok(())
    }
}
