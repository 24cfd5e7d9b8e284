//! Signed updates on the server: the blob store, the TUF image repository
//! and the Uptane-style director.
//!
//! - **Image repository** ([`Repository::Image`]): root and targets are signed
//!   offline by release managers (the CLI holds their keys); the server
//!   only checks those signatures and signs snapshot and timestamp with its
//!   online key. A release is published when its signing proposal (the
//!   published targets plus the release) gathers the targets threshold.
//! - **Director** ([`Repository::Director`]): one root for all devices, signed by
//!   the server's director root key; per-device targets, snapshot and
//!   timestamp signed online, listing exactly what the device's newest
//!   deployment assigns. Recomputed lazily when a device asks.
//!
//! A device installs a target only when both agree, so neither a
//! compromised server (which cannot forge the offline targets signatures)
//! nor a stolen release key alone (which cannot assign) suffices.

pub mod blobs;

pub use blobs::{BlobRead, BlobStore};

use std::sync::Arc;

use bulwark_proto::DeviceId;
use bulwark_store::{
    Audit, DirectorState, Proposal, Publication, Release, ReleaseStatus, Repository, Store,
    TufRole, TufRow,
};
use bulwark_tuf::{
    MetaFile, Metadata, PublicKey, Role as _, RoleKeys, Root, SigningKey, Snapshot, TargetFile,
    Targets, Timestamp,
};
use time::{Duration, OffsetDateTime};

/// The image repository.
const IMAGE: Repository = Repository::Image;
/// The director.
const DIRECTOR: Repository = Repository::Director;

/// How long online-signed metadata lives, and when it is re-signed.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Timestamp lifetime (re-signed when less than half is left).
    pub timestamp: Duration,
    /// Snapshot lifetime (image and director), and director targets.
    pub snapshot: Duration,
    /// Proposed targets expiry (offline-signed).
    pub targets: Duration,
    /// Director root lifetime.
    pub director_root: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            timestamp: Duration::days(1),
            snapshot: Duration::days(7),
            targets: Duration::days(365),
            director_root: Duration::days(3650),
        }
    }
}

/// The update service's keys and settings.
pub struct Updates {
    /// Blob store.
    pub blobs: BlobStore,
    image_online: SigningKey,
    director_root: SigningKey,
    director_online: SigningKey,
    /// Promotion ladder, e.g. dev → staging → production.
    pub environments: Vec<String>,
    /// Metadata lifetimes.
    pub lifetimes: Lifetimes,
    /// The release gate.
    pub gate: Arc<crate::gate::Gate>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates")
            .field("blobs", &self.blobs)
            .field("image_online", &self.image_online.key_id())
            .field("director_online", &self.director_online.key_id())
            .field("environments", &self.environments)
            .finish_non_exhaustive()
    }
}

/// Why the update service refused or failed; the HTTP layer maps each
/// kind to a status in one place (`crate::error`).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// What was handed in is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// An upload over the size limit.
    #[error("the artifact is larger than the server accepts")]
    TooLarge,
    /// No such release, blob or metadata.
    #[error("{0} not found")]
    NotFound(String),
    /// It collides with what exists (a version taken, a release already
    /// published).
    #[error("{0}")]
    Conflict(String),
    /// Not allowed in this state (a key that may not sign).
    #[error("{0}")]
    Forbidden(String),
    /// Too much at once (signing proposals); retry later.
    #[error("busy, retry later")]
    Overloaded,
    /// The release gate refused.
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
    /// Something else failed.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl UpdateError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        UpdateError::Internal(e.into())
    }
}

fn bad(msg: impl Into<String>) -> UpdateError {
    UpdateError::Invalid(msg.into())
}

fn tuf_internal(e: impl std::fmt::Display) -> UpdateError {
    UpdateError::internal(anyhow::anyhow!("tuf: {e}"))
}

/// The role and optional version a metadata file name asks for:
/// `root.json`, `3.root.json`, `timestamp.json`, `5.snapshot.json`, ….
pub fn parse_metadata_name(name: &str) -> Option<(&str, Option<u64>)> {
    let stem = name.strip_suffix(".json")?;
    let (version, role) = match stem.split_once('.') {
        Some((v, r)) => (Some(v.parse::<u64>().ok()?), r),
        None => (None, stem),
    };
    TufRole::parse(role).is_some().then_some((role, version))
}

/// The role and optional version a metadata file name asks for, or
/// not found.
fn metadata_role(name: &str) -> Result<(TufRole, Option<u64>), UpdateError> {
    parse_metadata_name(name)
        .and_then(|(role, version)| Some((TufRole::parse(role)?, version)))
        .ok_or_else(|| UpdateError::NotFound(format!("metadata file {name}")))
}

/// What a release's target entry carries in `custom`, signed offline.
pub fn release_custom(r: &Release) -> serde_json::Value {
    serde_json::json!({
        "bulwark": {
            "name": r.name,
            "version": r.version,
            "installer": r.installer.as_str(),
            "install_path": r.install_path,
            "smoke_test": r.smoke_test,
            "smoke_timeout_secs": r.smoke_timeout_secs,
        }
    })
}

fn target_file(r: &Release, custom: serde_json::Value) -> TargetFile {
    let mut hashes = std::collections::BTreeMap::new();
    hashes.insert("sha256".to_owned(), r.sha256.clone());
    let mut t = TargetFile::from_bytes(&[]);
    t.length = r.length;
    t.hashes = hashes;
    t.custom = Some(custom);
    t
}

fn row<T: bulwark_tuf::Role>(
    repo: Repository,
    role: TufRole,
    md: &Metadata<T>,
) -> Result<TufRow, UpdateError> {
    Ok(TufRow {
        repo,
        role,
        version: md.signed().version(),
        body: md.to_vec().map_err(tuf_internal)?,
        expires_at: md.signed().expires(),
    })
}

/// The signing state of one release, as shown to its signers.
#[derive(Debug, Clone)]
pub struct SigningStatus {
    /// Targets version the proposal builds on.
    pub base_version: u64,
    /// The proposed `signed` part (canonical JSON).
    pub signed: Vec<u8>,
    /// Valid signatures so far.
    pub valid: usize,
    /// Keys the image root allows for targets.
    pub keyids: Vec<String>,
    /// How many are needed.
    pub threshold: u64,
    /// Whether the release is published.
    pub published: bool,
}

impl Updates {
    /// Assembles the service from its keys.
    pub fn new(
        blobs: BlobStore,
        image_online: SigningKey,
        director_root: SigningKey,
        director_online: SigningKey,
        environments: Vec<String>,
        gate: crate::gate::Gate,
    ) -> Self {
        Self {
            blobs,
            image_online,
            director_root,
            director_online,
            environments,
            lifetimes: Lifetimes::default(),
            gate: Arc::new(gate),
        }
    }

    /// The public key the image root must name for snapshot and timestamp.
    pub fn image_online_key(&self) -> &PublicKey {
        self.image_online.public()
    }

    /// Creates the director's root on first start.
    pub async fn ensure_director_root(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<(), UpdateError> {
        if store.tuf_latest(DIRECTOR, TufRole::Root).await?.is_some() {
            return Ok(());
        }
        let mut root = Root::new(now + self.lifetimes.director_root);
        root.add_key("root", self.director_root.public().clone());
        for role in ["targets", "snapshot", "timestamp"] {
            root.add_key(role, self.director_online.public().clone());
        }
        let mut md = Metadata::new(root);
        md.sign(&self.director_root).map_err(tuf_internal)?;
        store
            .put_tuf(
                &[row(DIRECTOR, TufRole::Root, &md)?],
                bulwark_proto::JournalAction::DirectorInit,
                "repo:director",
                &Audit::system(now),
            )
            .await?;
        Ok(())
    }

    // ----- image repository -------------------------------------------------

    /// The newest trusted image root.
    pub async fn image_root(
        &self,
        store: &dyn Store,
    ) -> Result<Option<Metadata<Root>>, UpdateError> {
        latest(store, TufRole::Root).await
    }

    /// Accepts root version 1 (initialization) or the next version
    /// (rotation), signed offline. Checks what any TUF client will check,
    /// plus that snapshot and timestamp are delegated to the server's
    /// online key (or the server could not publish anything).
    pub async fn put_root(
        &self,
        store: &dyn Store,
        body: &[u8],
        audit: &Audit,
    ) -> Result<u64, UpdateError> {
        let md =
            Metadata::<Root>::from_slice(body).map_err(|e| bad(format!("root metadata: {e}")))?;
        let new = md.signed();
        let now = audit.time;
        if new.expires() <= now {
            return Err(bad("root metadata: already expired"));
        }
        let online = self.image_online.key_id();
        for role in ["snapshot", "timestamp"] {
            let rk = new
                .roles
                .get(role)
                .ok_or_else(|| bad(format!("root metadata: no {role} role")))?;
            if rk.keyids.len() != 1 || rk.keyids[0] != online || rk.threshold != 1 {
                return Err(bad(format!(
                    "root metadata: the {role} role must be exactly the server's online key {online} with threshold 1"
                )));
            }
        }
        let targets = new
            .roles
            .get("targets")
            .ok_or_else(|| bad("root metadata: no targets role"))?;
        if targets.threshold == 0 || (targets.keyids.len() as u64) < targets.threshold {
            return Err(bad(format!(
                "root metadata: targets threshold {} cannot be met by {} keys",
                targets.threshold,
                targets.keyids.len()
            )));
        }
        if targets.keyids.contains(&online) {
            return Err(bad(
                "root metadata: the server's online key must not sign targets (that is what offline keys are for)",
            ));
        }
        if !new.consistent_snapshot {
            return Err(bad("root metadata: consistent_snapshot must be true"));
        }
        new.verify_role("root", &md).map_err(|e| {
            bad(format!(
                "root metadata is not signed by its own root keys: {e}"
            ))
        })?;
        let action = match self.image_root(store).await? {
            None => {
                if new.version != 1 {
                    return Err(bad(format!(
                        "the repository has no root yet: expected version 1, got {}",
                        new.version
                    )));
                }
                bulwark_proto::JournalAction::RepoInit
            }
            Some(old) => {
                let want = old.signed().version + 1;
                if new.version != want {
                    return Err(UpdateError::Conflict(format!(
                        "root version {} does not follow the current version {}",
                        new.version,
                        old.signed().version
                    )));
                }
                old.signed().verify_role("root", &md).map_err(|e| {
                    bad(format!(
                        "new root is not signed by a threshold of the current root's keys: {e}"
                    ))
                })?;
                bulwark_proto::JournalAction::RepoRotateRoot
            }
        };
        let r = TufRow {
            repo: IMAGE,
            role: TufRole::Root,
            version: new.version,
            body: body.to_vec(),
            expires_at: new.expires(),
        };
        store.put_tuf(&[r], action, "repo:image", audit).await?;
        Ok(new.version)
    }

    async fn image_targets(
        &self,
        store: &dyn Store,
    ) -> Result<Option<Metadata<Targets>>, UpdateError> {
        latest(store, TufRole::Targets).await
    }

    /// The trusted image root and the published targets, which a signing
    /// proposal builds on.
    async fn signing_base(
        &self,
        store: &dyn Store,
    ) -> Result<(Metadata<Root>, Option<Metadata<Targets>>), UpdateError> {
        let root = self.image_root(store).await?.ok_or_else(|| {
            UpdateError::Conflict(
                "the image repository has no root yet: run `bulwark repo init`".into(),
            )
        })?;
        Ok((root, self.image_targets(store).await?))
    }

    /// The proposal signers of `release` must sign, created (or rebuilt on
    /// top of newer published targets) as needed.
    pub async fn signing_status(
        &self,
        store: &dyn Store,
        release: &Release,
        now: OffsetDateTime,
    ) -> Result<SigningStatus, UpdateError> {
        let (root, current) = self.signing_base(store).await?;
        let base = current.as_ref().map_or(0, |t| t.signed().version);
        let proposal = match store.proposal(&release.id).await? {
            Some(p) if p.base_version == base => p,
            _ => {
                if release.status == ReleaseStatus::Published {
                    return Err(UpdateError::Conflict(format!(
                        "{} is already published",
                        release.reference()
                    )));
                }
                let mut targets = match &current {
                    Some(t) => t.signed().clone(),
                    None => Targets::new(now + self.lifetimes.targets),
                };
                targets.version = base + 1;
                targets.expires = now + self.lifetimes.targets;
                targets.targets.insert(
                    release.target_path(),
                    target_file(release, release_custom(release)),
                );
                let signed = Metadata::new(targets)
                    .signed_bytes()
                    .map_err(tuf_internal)?;
                store.put_proposal(&release.id, base, &signed, now).await?;
                Proposal {
                    base_version: base,
                    signed,
                    signatures: Vec::new(),
                }
            }
        };
        let valid = root
            .signed()
            .count_valid("targets", &proposal_metadata(&proposal)?);
        Ok(signing_status(
            &root,
            proposal,
            valid,
            release.status == ReleaseStatus::Published,
        ))
    }

    /// Adds an offline signature over the release's proposal; publishes
    /// when the threshold is met. Returns the new status.
    pub async fn add_signature(
        &self,
        store: &dyn Store,
        release: &Release,
        keyid: &str,
        sig: &str,
        audit: &Audit,
    ) -> Result<SigningStatus, UpdateError> {
        if release.status == ReleaseStatus::Published {
            return Err(UpdateError::Conflict(format!(
                "{} is already published",
                release.reference()
            )));
        }
        let (root, current) = self.signing_base(store).await?;
        let base = current.as_ref().map_or(0, |t| t.signed().version);
        let mut proposal = store.proposal(&release.id).await?.ok_or_else(|| {
            UpdateError::Conflict("nothing to sign yet: fetch the signing proposal first".into())
        })?;
        if proposal.base_version != base {
            return Err(UpdateError::Conflict(format!(
                "the published targets moved from version {} to {base} since this proposal was made: fetch it again and re-sign",
                proposal.base_version
            )));
        }
        if !targets_keys(&root)
            .keyids
            .iter()
            .any(|k| k.as_str() == keyid)
        {
            return Err(UpdateError::Forbidden(format!(
                "key {keyid} is not a targets key of the image root"
            )));
        }
        // This signature alone must verify.
        let single = Proposal {
            signatures: vec![(keyid.to_owned(), sig.to_owned())],
            ..proposal.clone()
        };
        if root
            .signed()
            .count_valid("targets", &proposal_metadata(&single)?)
            != 1
        {
            return Err(bad(format!(
                "signature by {keyid} does not verify over the proposed targets metadata"
            )));
        }
        proposal.signatures.retain(|(k, _)| k != keyid);
        proposal.signatures.push((keyid.to_owned(), sig.to_owned()));
        let md = proposal_metadata(&proposal)?;
        let valid = root.signed().count_valid("targets", &md);
        let publish = if root.signed().verify_role("targets", &md).is_ok() {
            Some(self.publication(store, &md, audit.time).await?)
        } else {
            None
        };
        let published = publish.is_some();
        store
            .add_signature(&release.id, keyid, sig, publish, audit)
            .await?;
        Ok(signing_status(&root, proposal, valid, published))
    }

    /// New targets plus the snapshot and timestamp that cover them.
    async fn publication(
        &self,
        store: &dyn Store,
        targets: &Metadata<Targets>,
        now: OffsetDateTime,
    ) -> Result<Publication, UpdateError> {
        let (snapshot, timestamp) = self
            .sign_snapshot(store, targets.signed().version, now)
            .await?;
        Ok(Publication {
            metadata: vec![
                row(IMAGE, TufRole::Targets, targets)?,
                row(IMAGE, TufRole::Snapshot, &snapshot)?,
                row(IMAGE, TufRole::Timestamp, &timestamp)?,
            ],
            first_environment: self
                .environments
                .first()
                .cloned()
                .unwrap_or_else(|| "dev".into()),
        })
    }

    async fn sign_snapshot(
        &self,
        store: &dyn Store,
        targets_version: u64,
        now: OffsetDateTime,
    ) -> Result<(Metadata<Snapshot>, Metadata<Timestamp>), UpdateError> {
        let version = store
            .tuf_latest(IMAGE, TufRole::Snapshot)
            .await?
            .map_or(0, |r| r.version)
            + 1;
        let snapshot = signed_snapshot(
            version,
            targets_version,
            now + self.lifetimes.snapshot,
            &self.image_online,
        )?;
        let timestamp = self.sign_timestamp(store, &snapshot, now).await?;
        Ok((snapshot, timestamp))
    }

    async fn sign_timestamp(
        &self,
        store: &dyn Store,
        snapshot: &Metadata<Snapshot>,
        now: OffsetDateTime,
    ) -> Result<Metadata<Timestamp>, UpdateError> {
        let version = store
            .tuf_latest(IMAGE, TufRole::Timestamp)
            .await?
            .map_or(0, |r| r.version)
            + 1;
        signed_timestamp(
            version,
            snapshot.signed().version,
            &snapshot.to_vec().map_err(tuf_internal)?,
            now + self.lifetimes.timestamp,
            &self.image_online,
        )
    }

    /// Re-signs the image timestamp (and snapshot) when less than half of
    /// its lifetime is left. Journaled as a system change.
    pub async fn refresh_image(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<bool, UpdateError> {
        let Some(ts) = store.tuf_latest(IMAGE, TufRole::Timestamp).await? else {
            return Ok(false);
        };
        if ts.expires_at - now > self.lifetimes.timestamp / 2 {
            return Ok(false);
        }
        let snap_row = store
            .tuf_latest(IMAGE, TufRole::Snapshot)
            .await?
            .ok_or_else(|| tuf_internal("timestamp without snapshot"))?;
        let rows = if snap_row.expires_at - now <= self.lifetimes.snapshot / 2 {
            let targets_v = store
                .tuf_latest(IMAGE, TufRole::Targets)
                .await?
                .map_or(0, |r| r.version);
            let (snapshot, timestamp) = self.sign_snapshot(store, targets_v, now).await?;
            vec![
                row(IMAGE, TufRole::Snapshot, &snapshot)?,
                row(IMAGE, TufRole::Timestamp, &timestamp)?,
            ]
        } else {
            let snapshot =
                Metadata::<Snapshot>::from_slice(&snap_row.body).map_err(tuf_internal)?;
            let timestamp = self.sign_timestamp(store, &snapshot, now).await?;
            vec![row(IMAGE, TufRole::Timestamp, &timestamp)?]
        };
        self.store_refresh(store, rows, now).await
    }

    async fn store_refresh(
        &self,
        store: &dyn Store,
        rows: Vec<TufRow>,
        now: OffsetDateTime,
    ) -> Result<bool, UpdateError> {
        match store
            .put_tuf(
                &rows,
                bulwark_proto::JournalAction::RepoRefresh,
                "repo:image",
                &Audit::system(now),
            )
            .await
        {
            Ok(()) => Ok(true),
            // Another request refreshed first.
            Err(bulwark_store::Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// One image repository metadata file.
    pub async fn image_file(
        &self,
        store: &dyn Store,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, UpdateError> {
        let (role, version) = metadata_role(name)?;
        if role == TufRole::Timestamp {
            self.refresh_image(store, now).await?;
        }
        let row = match version {
            Some(v) => store.tuf_version(IMAGE, role, v).await?,
            None => store.tuf_latest(IMAGE, role).await?,
        };
        row.map(|r| r.body)
            .ok_or_else(|| UpdateError::NotFound(format!("image repository {name}")))
    }

    // ----- director ---------------------------------------------------------

    /// One director metadata file for `device`, re-signed first when the
    /// device's assignment changed or its metadata is about to expire.
    pub async fn director_file(
        &self,
        store: &dyn Store,
        device: DeviceId,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, UpdateError> {
        let (role, version) = metadata_role(name)?;
        if role == TufRole::Root {
            let row = match version {
                Some(v) => store.tuf_version(DIRECTOR, TufRole::Root, v).await?,
                None => store.tuf_latest(DIRECTOR, TufRole::Root).await?,
            };
            return row
                .map(|r| r.body)
                .ok_or_else(|| UpdateError::NotFound(format!("director {name}")));
        }
        let state = self.director_state(store, device, now).await?;
        let (body, current) = match role {
            TufRole::Timestamp => (state.timestamp, state.timestamp_version),
            TufRole::Snapshot => (state.snapshot, state.targets_version),
            TufRole::Root | TufRole::Targets => (state.targets, state.targets_version),
        };
        match version {
            Some(v) if v != current => Err(UpdateError::NotFound(format!("director {name}"))),
            _ => Ok(body),
        }
    }

    /// The director state for a device, brought up to date.
    pub async fn director_state(
        &self,
        store: &dyn Store,
        device: DeviceId,
        now: OffsetDateTime,
    ) -> Result<DirectorState, UpdateError> {
        for _ in 0..4 {
            let d = store
                .device(device)
                .await?
                .ok_or_else(|| UpdateError::Forbidden("unknown device".into()))?;
            // A quarantined device is assigned only remediation
            // deployments: other updates are withheld until it is released.
            let dep = if d.quarantined_at.is_some() {
                store.current_remediation(&d.group, &d.environment).await?
            } else {
                store.current_deployment(&d.group, &d.environment).await?
            };
            let want = dep.as_ref().map(|x| x.seq);
            let old = store.director_state(device).await?;
            let fresh_targets = match &old {
                None => true,
                Some(s) => {
                    s.deployment_seq != want
                        || s.snapshot_expires - now <= self.lifetimes.snapshot / 2
                }
            };
            let fresh_ts = match &old {
                None => true,
                Some(s) => s.timestamp_expires - now <= self.lifetimes.timestamp / 2,
            };
            if !fresh_targets
                && !fresh_ts
                && let Some(s) = &old
            {
                return Ok(s.clone());
            }
            let mut next = match &old {
                Some(s) => s.clone(),
                None => DirectorState {
                    device_id: device,
                    deployment_seq: None,
                    targets_version: 0,
                    timestamp_version: 0,
                    targets: Vec::new(),
                    snapshot: Vec::new(),
                    timestamp: Vec::new(),
                    snapshot_expires: now,
                    timestamp_expires: now,
                },
            };
            let expires = now + self.lifetimes.snapshot;
            if fresh_targets {
                let mut targets = Targets::new(expires);
                targets.version = next.targets_version + 1;
                if let Some(dep) = &dep {
                    let rel = store
                        .release_by_id(&dep.release_id)
                        .await?
                        .ok_or_else(|| tuf_internal("deployment of a vanished release"))?;
                    targets.targets.insert(
                        rel.target_path(),
                        target_file(
                            &rel,
                            serde_json::json!({"bulwark": {"release": rel.reference(), "deployment": dep.id}}),
                        ),
                    );
                }
                let mut tmd = Metadata::new(targets);
                tmd.sign(&self.director_online).map_err(tuf_internal)?;
                let v = next.targets_version + 1;
                let smd = signed_snapshot(v, v, expires, &self.director_online)?;
                next.targets_version = v;
                next.deployment_seq = want;
                next.targets = tmd.to_vec().map_err(tuf_internal)?;
                next.snapshot = smd.to_vec().map_err(tuf_internal)?;
                next.snapshot_expires = expires;
            }
            let tsmd = signed_timestamp(
                next.timestamp_version + 1,
                next.targets_version,
                &next.snapshot,
                now + self.lifetimes.timestamp,
                &self.director_online,
            )?;
            next.timestamp_version += 1;
            next.timestamp = tsmd.to_vec().map_err(tuf_internal)?;
            next.timestamp_expires = now + self.lifetimes.timestamp;
            let expected = old.as_ref().map(|s| s.timestamp_version);
            if store.put_director_state(&next, expected).await? {
                return Ok(next);
            }
            // Another request for this device won the race: read again.
        }
        Err(UpdateError::Overloaded)
    }
}

/// Snapshot `version` naming targets `targets_version`, signed by `key`.
fn signed_snapshot(
    version: u64,
    targets_version: u64,
    expires: OffsetDateTime,
    key: &SigningKey,
) -> Result<Metadata<Snapshot>, UpdateError> {
    let mut snap = Snapshot::new(expires);
    snap.version = version;
    snap.meta.insert(
        "targets.json".into(),
        MetaFile::version_only(targets_version),
    );
    let mut md = Metadata::new(snap);
    md.sign(key).map_err(tuf_internal)?;
    Ok(md)
}

/// Timestamp `version` describing the snapshot `snapshot_bytes` (its
/// length and hash), signed by `key`.
fn signed_timestamp(
    version: u64,
    snapshot_version: u64,
    snapshot_bytes: &[u8],
    expires: OffsetDateTime,
    key: &SigningKey,
) -> Result<Metadata<Timestamp>, UpdateError> {
    let mut ts = Timestamp::new(expires);
    ts.version = version;
    ts.meta.insert(
        "snapshot.json".into(),
        MetaFile::describing(snapshot_version, snapshot_bytes),
    );
    let mut md = Metadata::new(ts);
    md.sign(key).map_err(tuf_internal)?;
    Ok(md)
}

/// The image root's targets role (empty when a root somehow lacks it, so
/// nothing verifies).
fn targets_keys(root: &Metadata<Root>) -> RoleKeys {
    root.signed()
        .roles
        .get("targets")
        .cloned()
        .unwrap_or_else(no_keys)
}

fn no_keys() -> RoleKeys {
    RoleKeys {
        keyids: Vec::new(),
        threshold: 1,
    }
}

/// The newest stored image repository metadata of one role, parsed.
async fn latest<T: bulwark_tuf::Role>(
    store: &dyn Store,
    role: TufRole,
) -> Result<Option<Metadata<T>>, UpdateError> {
    match store.tuf_latest(IMAGE, role).await? {
        None => Ok(None),
        Some(r) => Metadata::<T>::from_slice(&r.body)
            .map(Some)
            .map_err(tuf_internal),
    }
}

fn signing_status(
    root: &Metadata<Root>,
    proposal: Proposal,
    valid: usize,
    published: bool,
) -> SigningStatus {
    let rk = targets_keys(root);
    SigningStatus {
        base_version: proposal.base_version,
        signed: proposal.signed,
        valid,
        keyids: rk.keyids.iter().map(ToString::to_string).collect(),
        threshold: rk.threshold,
        published,
    }
}

/// The proposal as metadata: its signed part and the signatures so far.
fn proposal_metadata(p: &Proposal) -> Result<Metadata<Targets>, UpdateError> {
    let signed: serde_json::Value = serde_json::from_slice(&p.signed).map_err(tuf_internal)?;
    let envelope = serde_json::json!({
        "signed": signed,
        "signatures": p.signatures.iter().map(|(k, s)| serde_json::json!({"keyid": k, "sig": s})).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&envelope).map_err(tuf_internal)?;
    Metadata::<Targets>::from_slice(&bytes).map_err(tuf_internal)
}

#[cfg(test)]
mod tests {
    use super::parse_metadata_name;

    #[test]
    fn metadata_names() {
        assert_eq!(parse_metadata_name("root.json"), Some(("root", None)));
        assert_eq!(parse_metadata_name("3.root.json"), Some(("root", Some(3))));
        assert_eq!(
            parse_metadata_name("12.targets.json"),
            Some(("targets", Some(12)))
        );
        assert_eq!(
            parse_metadata_name("timestamp.json"),
            Some(("timestamp", None))
        );
        assert_eq!(parse_metadata_name("x.root.json"), None);
        assert_eq!(parse_metadata_name("role1.json"), None);
        assert_eq!(parse_metadata_name("../root.json"), None);
        assert_eq!(parse_metadata_name("root"), None);
    }
}
