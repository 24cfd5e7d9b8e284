//! Signed updates: blobs, TUF metadata, releases, promotions, deployments,
//! the director's per-device state and device update reports.
//!
//! [`UpdateStore`] is a supertrait of [`crate::Store`], so an
//! `Arc<dyn Store>` reaches these methods too. Like the rest of the store,
//! every mutating method takes an [`Audit`] and journals its change in the
//! same transaction. Two writes are derived data and not journaled: the
//! signing proposal of a release (recomputed from published state) and the
//! director's per-device metadata (a function of the journaled deployments).

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{
    PostgresStore, SqliteStore, conflict, device_id, from_ms, new_id, opt_from_ms,
};
use crate::model::ms;
use crate::{Audit, Error, Result};

/// A stored blob (the bytes live on disk, named by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub length: u64,
    /// When first stored.
    pub created_at: OffsetDateTime,
}

/// Defines a stored state: an enum kept as text in the database, read
/// back strictly (an unknown text is [`crate::Error::Corrupt`]).
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored (and shown) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value a text names, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }

            fn read(text: String) -> crate::Result<$name> {
                $name::parse(&text).ok_or(crate::Error::Corrupt { what: $what, detail: format!("{text:?}") })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

stored_enum! {
    /// Where a release stands in signing.
    ReleaseStatus, "release status" {
        /// Its targets signatures have not reached the threshold.
        Unsigned = "unsigned",
        /// Its targets metadata is published.
        Published = "published",
    }
}

stored_enum! {
    /// How devices install a release.
    Installer, "release installer" {
        /// Copy the artifact to `install_path`.
        File = "file",
        /// Write it to the inactive A/B slot.
        Ab = "ab",
        /// Run it as a script.
        Script = "script",
    }
}

/// One stored TUF metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TufRow {
    /// `image` or `director`.
    pub repo: String,
    /// `root`, `targets`, `snapshot` or `timestamp`.
    pub role: String,
    /// Its version.
    pub version: u64,
    /// The signed JSON, byte for byte as served.
    pub body: Vec<u8>,
    /// Its expiry.
    pub expires_at: OffsetDateTime,
}

/// A release to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// Product name, e.g. `gateway-fw`.
    pub name: String,
    /// Version, e.g. `1.4.2`.
    pub version: String,
    /// Digest of a stored blob.
    pub sha256: String,
    /// Its length.
    pub length: u64,
    /// How devices install it.
    pub installer: Installer,
    /// Destination of the `file` installer.
    pub install_path: Option<String>,
    /// Smoke test command line.
    pub smoke_test: Option<String>,
    /// Smoke test timeout.
    pub smoke_timeout_secs: u64,
}

/// A release: one artifact under one name and version, forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Internal id.
    pub id: String,
    /// Product name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Artifact digest.
    pub sha256: String,
    /// Artifact length.
    pub length: u64,
    /// Installer kind.
    pub installer: Installer,
    /// `file` installer destination.
    pub install_path: Option<String>,
    /// Smoke test.
    pub smoke_test: Option<String>,
    /// Smoke test timeout.
    pub smoke_timeout_secs: u64,
    /// `unsigned` until the targets threshold is met, then `published`.
    pub status: ReleaseStatus,
    /// Account that created it.
    pub created_by: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When its targets metadata reached the threshold.
    pub published_at: Option<OffsetDateTime>,
    /// Environments it was promoted to, in promotion order.
    pub environments: Vec<String>,
}

impl Release {
    /// `name@version`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The TUF target path: `name/version`.
    pub fn target_path(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }
}

/// The pending targets metadata a release's signers sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Targets version it was built on.
    pub base_version: u64,
    /// Canonical JSON of the proposed `signed` part.
    pub signed: Vec<u8>,
    /// Signatures collected so far: (keyid, hex signature).
    pub signatures: Vec<(String, String)>,
}

/// What a signature that meets the threshold publishes, in the same
/// transaction: new image repository metadata rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// targets, snapshot and timestamp rows.
    pub metadata: Vec<TufRow>,
    /// The first environment of the promotion ladder.
    pub first_environment: String,
}

/// A deployment: a release assigned to a group in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Global order; the newest deployment for a group and environment wins.
    pub seq: u64,
    /// Public id.
    pub id: String,
    /// The release.
    pub release_id: String,
    /// `name@version` of the release.
    pub release: String,
    /// Device group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Account that deployed.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
    /// A remediation: it reaches quarantined devices too.
    pub remediation: bool,
}

/// The director's current signed metadata for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorState {
    /// Which device.
    pub device_id: DeviceId,
    /// The deployment the targets reflect (`None`: nothing assigned).
    pub deployment_seq: Option<u64>,
    /// Version of targets and snapshot.
    pub targets_version: u64,
    /// Version of timestamp.
    pub timestamp_version: u64,
    /// Signed targets JSON.
    pub targets: Vec<u8>,
    /// Signed snapshot JSON.
    pub snapshot: Vec<u8>,
    /// Signed timestamp JSON.
    pub timestamp: Vec<u8>,
    /// Snapshot expiry.
    pub snapshot_expires: OffsetDateTime,
    /// Timestamp expiry.
    pub timestamp_expires: OffsetDateTime,
}

/// A device's update progress as it reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    /// `name@version`.
    pub release: String,
    /// Phase (downloading, verifying, …, installed, rolled_back, refused).
    pub phase: String,
    /// Outcome code when final (e.g. `installed`, `smoke-failed`, `rollback`).
    pub outcome: Option<String>,
    /// Human detail (why it rolled back or was refused).
    pub detail: Option<String>,
    /// When reported.
    pub at: OffsetDateTime,
}

/// The update-related half of the store.
#[async_trait]
pub trait UpdateStore: Send + Sync {
    /// Records a blob whose file is in place. Journals `blob.put` (also
    /// when the bytes were already stored: the upload happened).
    async fn put_blob(&self, sha256: &str, length: u64, audit: &Audit) -> Result<BlobRecord>;
    /// One blob.
    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>>;
    /// Forgets blobs that no release references and that were stored before
    /// `older_than`; returns their digests (the caller deletes the files).
    async fn gc_blobs(&self, older_than: OffsetDateTime, audit: &Audit) -> Result<Vec<String>>;

    /// Creates a release; [`Error::Conflict`] when the name and version exist.
    async fn create_release(&self, new: NewRelease, audit: &Audit) -> Result<Release>;
    /// A release by name and version.
    async fn release(&self, name: &str, version: &str) -> Result<Option<Release>>;
    /// A release by id.
    async fn release_by_id(&self, id: &str) -> Result<Option<Release>>;
    /// All releases, newest first.
    async fn list_releases(&self) -> Result<Vec<Release>>;

    /// The newest version of a role's metadata.
    async fn tuf_latest(&self, repo: &str, role: &str) -> Result<Option<TufRow>>;
    /// One version of a role's metadata.
    async fn tuf_version(&self, repo: &str, role: &str, version: u64) -> Result<Option<TufRow>>;
    /// Stores metadata rows ([`Error::Conflict`] if a version exists) with
    /// one journal entry `action` on `target`.
    async fn put_tuf(
        &self,
        rows: &[TufRow],
        action: JournalAction,
        target: &str,
        audit: &Audit,
    ) -> Result<()>;

    /// Replaces a release's signing proposal (dropping its signatures).
    async fn put_proposal(
        &self,
        release_id: &str,
        base_version: u64,
        signed: &[u8],
        now: OffsetDateTime,
    ) -> Result<()>;
    /// A release's signing proposal and its signatures.
    async fn proposal(&self, release_id: &str) -> Result<Option<Proposal>>;
    /// Adds a signature to the proposal; with `publish`, also stores the new
    /// metadata, marks the release published and puts it in the first
    /// environment — one transaction, one journal entry.
    async fn add_signature(
        &self,
        release_id: &str,
        keyid: &str,
        sig: &str,
        publish: Option<Publication>,
        audit: &Audit,
    ) -> Result<()>;
    /// Adds an environment to a release; false when already there.
    async fn promote_release(
        &self,
        release_id: &str,
        environment: &str,
        audit: &Audit,
    ) -> Result<bool>;

    /// Deploys a release to a group in an environment.
    async fn create_deployment(
        &self,
        release_id: &str,
        group: &str,
        environment: &str,
        audit: &Audit,
    ) -> Result<Deployment> {
        self.create_deployment_marked(release_id, group, environment, false, audit)
            .await
    }
    /// Like [`UpdateStore::create_deployment`]; `remediation` marks a
    /// deployment that quarantined devices receive too.
    async fn create_deployment_marked(
        &self,
        release_id: &str,
        group: &str,
        environment: &str,
        remediation: bool,
        audit: &Audit,
    ) -> Result<Deployment>;
    /// The newest remediation deployment for a group and environment.
    async fn current_remediation(
        &self,
        group: &str,
        environment: &str,
    ) -> Result<Option<Deployment>>;
    /// All deployments, newest first.
    async fn list_deployments(&self) -> Result<Vec<Deployment>>;
    /// The newest deployment for a group and environment.
    async fn current_deployment(
        &self,
        group: &str,
        environment: &str,
    ) -> Result<Option<Deployment>>;

    /// The director's state for a device.
    async fn director_state(&self, device: DeviceId) -> Result<Option<DirectorState>>;
    /// Stores the director's state for a device if its timestamp version is
    /// still `expected_timestamp_version` (optimistic; false when another
    /// request won).
    async fn put_director_state(
        &self,
        state: &DirectorState,
        expected_timestamp_version: Option<u64>,
    ) -> Result<bool>;

    /// Records a device's update report (journaled, actor = the device).
    async fn record_update(
        &self,
        device: DeviceId,
        status: &UpdateStatus,
        audit: &Audit,
    ) -> Result<()>;
    /// A device's latest update status.
    async fn device_update(&self, device: DeviceId) -> Result<Option<UpdateStatus>>;
    /// A device's update history, newest first.
    async fn update_events(&self, device: DeviceId, limit: u32) -> Result<Vec<UpdateStatus>>;
}

fn u64_of(what: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn release_digest(r: &Release) -> String {
    state_digest(&serde_json::json!({
        "id": r.id, "name": r.name, "version": r.version, "sha256": r.sha256, "length": r.length,
        "installer": r.installer.as_str(), "install_path": r.install_path, "smoke_test": r.smoke_test,
        "smoke_timeout_secs": r.smoke_timeout_secs, "status": r.status.as_str(), "environments": r.environments,
    }))
}

const RELEASE_COLUMNS: &str = "id, name, version, sha256, length, installer, install_path, \
     smoke_test, smoke_timeout_secs, status, created_by, created_at, published_at";

macro_rules! impl_update_store {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn release_rec(row: &$row, environments: Vec<String>) -> Result<Release> {
                Ok(Release {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    sha256: row.try_get("sha256")?,
                    length: u64_of("release length", row.try_get("length")?)?,
                    installer: Installer::read(row.try_get("installer")?)?,
                    install_path: row.try_get("install_path")?,
                    smoke_test: row.try_get("smoke_test")?,
                    smoke_timeout_secs: u64_of("release smoke timeout", row.try_get("smoke_timeout_secs")?)?,
                    status: ReleaseStatus::read(row.try_get("status")?)?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("release created_at", row.try_get("created_at")?)?,
                    published_at: opt_from_ms("release published_at", row.try_get("published_at")?)?,
                    environments,
                })
            }

            async fn release_envs<'c, E>(exec: E, id: &str) -> Result<Vec<String>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let rows = sqlx::query::<$db>(
                    "SELECT environment FROM release_environments WHERE release_id = $1 ORDER BY promoted_at, environment",
                )
                .bind(id)
                .fetch_all(exec)
                .await?;
                rows.iter().map(|r| Ok(r.try_get::<String, _>("environment")?)).collect()
            }

            async fn release_where(&self, clause: &str, a: &str, b: Option<&str>) -> Result<Option<Release>> {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE {clause}"));
                let mut q = sqlx::query::<$db>(sql).bind(a);
                if let Some(b) = b {
                    q = q.bind(b);
                }
                let Some(row) = q.fetch_optional(&self.pool).await? else { return Ok(None) };
                let id: String = row.try_get("id")?;
                let envs = Self::release_envs(&self.pool, &id).await?;
                Ok(Some(Self::release_rec(&row, envs)?))
            }

            fn tuf_rec(row: &$row) -> Result<TufRow> {
                Ok(TufRow {
                    repo: row.try_get("repo")?,
                    role: row.try_get("role")?,
                    version: u64_of("tuf version", row.try_get("version")?)?,
                    body: row.try_get("body")?,
                    expires_at: from_ms("tuf expires_at", row.try_get("expires_at")?)?,
                })
            }

            fn deployment_rec(row: &$row) -> Result<Deployment> {
                let name: String = row.try_get("r_name")?;
                let version: String = row.try_get("r_version")?;
                Ok(Deployment {
                    seq: u64_of("deployment seq", row.try_get("seq")?)?,
                    id: row.try_get("id")?,
                    release_id: row.try_get("release_id")?,
                    release: format!("{name}@{version}"),
                    group: row.try_get("device_group")?,
                    environment: row.try_get("environment")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("deployment created_at", row.try_get("created_at")?)?,
                    remediation: row.try_get::<i64, _>("remediation")? != 0,
                })
            }

            fn update_rec(row: &$row, at: &str) -> Result<UpdateStatus> {
                Ok(UpdateStatus {
                    release: row.try_get("release")?,
                    phase: row.try_get("phase")?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                    at: from_ms("update time", row.try_get(at)?)?,
                })
            }

            async fn insert_tuf(tx: &mut sqlx::Transaction<'static, $db>, rows: &[TufRow], now: OffsetDateTime) -> Result<()> {
                for r in rows {
                    sqlx::query::<$db>(
                        "INSERT INTO tuf_metadata (repo, role, version, body, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&r.repo)
                    .bind(&r.role)
                    .bind(i64_of(r.version))
                    .bind(r.body.as_slice())
                    .bind(ms(r.expires_at))
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await
                    .map_err(conflict(&format!("{} {} version {}", r.repo, r.role, r.version)))?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl UpdateStore for $store {
            async fn put_blob(&self, sha256: &str, length: u64, audit: &Audit) -> Result<BlobRecord> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO blobs (sha256, length, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(sha256)
                .bind(i64_of(length))
                .bind(ms(audit.time))
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
                let row = sqlx::query::<$db>("SELECT sha256, length, created_at FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_one(&mut *tx)
                    .await?;
                let rec = BlobRecord {
                    sha256: row.try_get("sha256")?,
                    length: u64_of("blob length", row.try_get("length")?)?,
                    created_at: from_ms("blob created_at", row.try_get("created_at")?)?,
                };
                let entry = audit.entry(JournalAction::BlobPut, format!("blob:{sha256}"), None, None,
                    &[("length", length.to_string()), ("new", inserted.to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(rec)
            }

            async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
                let row = sqlx::query::<$db>("SELECT sha256, length, created_at FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| {
                    Ok(BlobRecord {
                        sha256: row.try_get("sha256")?,
                        length: u64_of("blob length", row.try_get("length")?)?,
                        created_at: from_ms("blob created_at", row.try_get("created_at")?)?,
                    })
                })
                .transpose()
            }

            async fn gc_blobs(&self, older_than: OffsetDateTime, audit: &Audit) -> Result<Vec<String>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let rows = sqlx::query::<$db>(
                    "DELETE FROM blobs WHERE created_at < $1 AND sha256 NOT IN (SELECT sha256 FROM releases) RETURNING sha256",
                )
                .bind(ms(older_than))
                .fetch_all(&mut *tx)
                .await?;
                let mut gone: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>("sha256")).collect::<Result<_, _>>()?;
                gone.sort();
                let entry = audit.entry(JournalAction::BlobGc, "blobs".into(), None, None,
                    &[("deleted", gone.len().to_string()), ("digests", gone.join(","))]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(gone)
            }

            async fn create_release(&self, new: NewRelease, audit: &Audit) -> Result<Release> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO releases (id, name, version, sha256, length, installer, install_path, smoke_test, \
                     smoke_timeout_secs, status, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'unsigned', $10, $11) RETURNING {RELEASE_COLUMNS}"
                )))
                .bind(new_id())
                .bind(&new.name)
                .bind(&new.version)
                .bind(&new.sha256)
                .bind(i64_of(new.length))
                .bind(new.installer.as_str())
                .bind(&new.install_path)
                .bind(&new.smoke_test)
                .bind(i64_of(new.smoke_timeout_secs))
                .bind(&audit.actor.id)
                .bind(ms(audit.time))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict(&format!("release {}@{}", new.name, new.version)))?;
                let rel = Self::release_rec(&row, Vec::new())?;
                let entry = audit.entry(JournalAction::ReleaseCreate, format!("release:{}", rel.reference()), None,
                    Some(release_digest(&rel)), &[("sha256", rel.sha256.clone()), ("length", rel.length.to_string()),
                        ("installer", rel.installer.as_str().to_owned())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(rel)
            }

            async fn release(&self, name: &str, version: &str) -> Result<Option<Release>> {
                self.release_where("name = $1 AND version = $2", name, Some(version)).await
            }

            async fn release_by_id(&self, id: &str) -> Result<Option<Release>> {
                self.release_where("id = $1", id, None).await
            }

            async fn list_releases(&self) -> Result<Vec<Release>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {RELEASE_COLUMNS} FROM releases ORDER BY created_at DESC, name, version"
                )))
                .fetch_all(&self.pool)
                .await?;
                let envs = sqlx::query::<$db>(
                    "SELECT release_id, environment FROM release_environments ORDER BY promoted_at, environment",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut by_release: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
                for e in &envs {
                    by_release.entry(e.try_get("release_id")?).or_default().push(e.try_get("environment")?);
                }
                rows.iter()
                    .map(|r| {
                        let id: String = r.try_get("id")?;
                        Self::release_rec(r, by_release.remove(&id).unwrap_or_default())
                    })
                    .collect()
            }

            async fn tuf_latest(&self, repo: &str, role: &str) -> Result<Option<TufRow>> {
                let row = sqlx::query::<$db>(
                    "SELECT repo, role, version, body, expires_at FROM tuf_metadata WHERE repo = $1 AND role = $2 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(repo)
                .bind(role)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::tuf_rec).transpose()
            }

            async fn tuf_version(&self, repo: &str, role: &str, version: u64) -> Result<Option<TufRow>> {
                let row = sqlx::query::<$db>(
                    "SELECT repo, role, version, body, expires_at FROM tuf_metadata WHERE repo = $1 AND role = $2 AND version = $3",
                )
                .bind(repo)
                .bind(role)
                .bind(i64_of(version))
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::tuf_rec).transpose()
            }

            async fn put_tuf(&self, rows: &[TufRow], action: JournalAction, target: &str, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                Self::insert_tuf(&mut tx, rows, audit.time).await?;
                let detail: Vec<(&str, String)> = rows
                    .iter()
                    .map(|r| (r.role.as_str(), format!("{} sha256:{}", r.version, hex_sha256(&r.body))))
                    .collect();
                let entry = audit.entry(action, target.to_owned(), None, None, &detail);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn put_proposal(&self, release_id: &str, base_version: u64, signed: &[u8], now: OffsetDateTime) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query::<$db>("DELETE FROM release_signatures WHERE release_id = $1")
                    .bind(release_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query::<$db>(
                    "INSERT INTO release_proposals (release_id, base_version, signed, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (release_id) DO UPDATE SET base_version = excluded.base_version, signed = excluded.signed, \
                     created_at = excluded.created_at",
                )
                .bind(release_id)
                .bind(i64_of(base_version))
                .bind(signed)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn proposal(&self, release_id: &str) -> Result<Option<Proposal>> {
                let Some(row) = sqlx::query::<$db>("SELECT base_version, signed FROM release_proposals WHERE release_id = $1")
                    .bind(release_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let sigs = sqlx::query::<$db>("SELECT keyid, sig FROM release_signatures WHERE release_id = $1 ORDER BY keyid")
                    .bind(release_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(Some(Proposal {
                    base_version: u64_of("proposal base version", row.try_get("base_version")?)?,
                    signed: row.try_get("signed")?,
                    signatures: sigs
                        .iter()
                        .map(|s| Ok((s.try_get("keyid")?, s.try_get("sig")?)))
                        .collect::<Result<_>>()?,
                }))
            }

            async fn add_signature(&self, release_id: &str, keyid: &str, sig: &str, publish: Option<Publication>, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1")))
                    .bind(release_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::Corrupt { what: "release", detail: format!("{release_id} vanished") })?;
                let envs = Self::release_envs(&mut *tx, release_id).await?;
                let before = Self::release_rec(&row, envs)?;
                sqlx::query::<$db>(
                    "INSERT INTO release_signatures (release_id, keyid, sig, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (release_id, keyid) DO UPDATE SET sig = excluded.sig, created_at = excluded.created_at",
                )
                .bind(release_id)
                .bind(keyid)
                .bind(sig)
                .bind(ms(audit.time))
                .execute(&mut *tx)
                .await?;
                let mut detail = vec![("keyid", keyid.to_owned())];
                let mut after = before.clone();
                if let Some(p) = &publish {
                    Self::insert_tuf(&mut tx, &p.metadata, audit.time).await?;
                    sqlx::query::<$db>("UPDATE releases SET status = 'published', published_at = $1 WHERE id = $2")
                        .bind(ms(audit.time))
                        .bind(release_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query::<$db>(
                        "INSERT INTO release_environments (release_id, environment, promoted_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (release_id, environment) DO NOTHING",
                    )
                    .bind(release_id)
                    .bind(&p.first_environment)
                    .bind(ms(audit.time))
                    .execute(&mut *tx)
                    .await?;
                    after.status = ReleaseStatus::Published;
                    if !after.environments.contains(&p.first_environment) {
                        after.environments.push(p.first_environment.clone());
                    }
                    detail.push(("published", "true".into()));
                    for m in &p.metadata {
                        detail.push((m.role.as_str(), format!("{} sha256:{}", m.version, hex_sha256(&m.body))));
                    }
                }
                let entry = audit.entry(JournalAction::ReleaseSign, format!("release:{}", before.reference()),
                    Some(release_digest(&before)), Some(release_digest(&after)), &detail);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn promote_release(&self, release_id: &str, environment: &str, audit: &Audit) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1")))
                    .bind(release_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::Corrupt { what: "release", detail: format!("{release_id} vanished") })?;
                let envs = Self::release_envs(&mut *tx, release_id).await?;
                let before = Self::release_rec(&row, envs)?;
                if before.environments.iter().any(|e| e == environment) {
                    return Ok(false);
                }
                sqlx::query::<$db>("INSERT INTO release_environments (release_id, environment, promoted_at) VALUES ($1, $2, $3)")
                    .bind(release_id)
                    .bind(environment)
                    .bind(ms(audit.time))
                    .execute(&mut *tx)
                    .await?;
                let mut after = before.clone();
                after.environments.push(environment.to_owned());
                let entry = audit.entry(JournalAction::ReleasePromote, format!("release:{}", before.reference()),
                    Some(release_digest(&before)), Some(release_digest(&after)),
                    &[("environment", environment.to_owned()), ("sha256", before.sha256.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_deployment_marked(&self, release_id: &str, group: &str, environment: &str, remediation: bool, audit: &Audit) -> Result<Deployment> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                // Writers are serialized by the journal lock, so max + 1 is safe.
                let next: i64 = sqlx::query::<$db>("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM deployments")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("next")?;
                let id = new_id();
                sqlx::query::<$db>(
                    "INSERT INTO deployments (seq, id, release_id, device_group, environment, created_by, created_at, remediation) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(next)
                .bind(&id)
                .bind(release_id)
                .bind(group)
                .bind(environment)
                .bind(&audit.actor.id)
                .bind(ms(audit.time))
                .bind(i64::from(remediation))
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query::<$db>(
                    "SELECT d.seq, d.id, d.release_id, d.device_group, d.environment, d.created_by, d.created_at, d.remediation, \
                     r.name AS r_name, r.version AS r_version FROM deployments d JOIN releases r ON r.id = d.release_id WHERE d.id = $1",
                )
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
                let dep = Self::deployment_rec(&row)?;
                let entry = audit.entry(JournalAction::DeploymentCreate, format!("deployment:{}", dep.id), None,
                    Some(state_digest(&serde_json::json!({"release": dep.release, "group": dep.group, "environment": dep.environment, "seq": dep.seq}))),
                    &[("release", dep.release.clone()), ("group", dep.group.clone()), ("environment", dep.environment.clone()),
                      ("remediation", dep.remediation.to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(dep)
            }

            async fn list_deployments(&self) -> Result<Vec<Deployment>> {
                let rows = sqlx::query::<$db>(
                    "SELECT d.seq, d.id, d.release_id, d.device_group, d.environment, d.created_by, d.created_at, d.remediation, \
                     r.name AS r_name, r.version AS r_version FROM deployments d JOIN releases r ON r.id = d.release_id ORDER BY d.seq DESC",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::deployment_rec).collect()
            }

            async fn current_deployment(&self, group: &str, environment: &str) -> Result<Option<Deployment>> {
                let row = sqlx::query::<$db>(
                    "SELECT d.seq, d.id, d.release_id, d.device_group, d.environment, d.created_by, d.created_at, d.remediation, \
                     r.name AS r_name, r.version AS r_version FROM deployments d JOIN releases r ON r.id = d.release_id \
                     WHERE d.device_group = $1 AND d.environment = $2 ORDER BY d.seq DESC LIMIT 1",
                )
                .bind(group)
                .bind(environment)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::deployment_rec).transpose()
            }

            async fn current_remediation(&self, group: &str, environment: &str) -> Result<Option<Deployment>> {
                let row = sqlx::query::<$db>(
                    "SELECT d.seq, d.id, d.release_id, d.device_group, d.environment, d.created_by, d.created_at, d.remediation, \
                     r.name AS r_name, r.version AS r_version FROM deployments d JOIN releases r ON r.id = d.release_id \
                     WHERE d.device_group = $1 AND d.environment = $2 AND d.remediation <> 0 ORDER BY d.seq DESC LIMIT 1",
                )
                .bind(group)
                .bind(environment)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::deployment_rec).transpose()
            }

            async fn director_state(&self, device: DeviceId) -> Result<Option<DirectorState>> {
                let row = sqlx::query::<$db>(
                    "SELECT device_id, deployment_seq, targets_version, timestamp_version, targets, snapshot, timestamp, \
                     snapshot_expires, timestamp_expires FROM director_state WHERE device_id = $1",
                )
                .bind(device.to_string())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let id: String = row.try_get("device_id")?;
                let seq: Option<i64> = row.try_get("deployment_seq")?;
                Ok(Some(DirectorState {
                    device_id: device_id("director device", &id)?,
                    deployment_seq: seq.map(|s| u64_of("director deployment", s)).transpose()?,
                    targets_version: u64_of("director targets version", row.try_get("targets_version")?)?,
                    timestamp_version: u64_of("director timestamp version", row.try_get("timestamp_version")?)?,
                    targets: row.try_get("targets")?,
                    snapshot: row.try_get("snapshot")?,
                    timestamp: row.try_get("timestamp")?,
                    snapshot_expires: from_ms("director snapshot expiry", row.try_get("snapshot_expires")?)?,
                    timestamp_expires: from_ms("director timestamp expiry", row.try_get("timestamp_expires")?)?,
                }))
            }

            async fn put_director_state(&self, s: &DirectorState, expected: Option<u64>) -> Result<bool> {
                let q = match expected {
                    None => sqlx::query::<$db>(
                        "INSERT INTO director_state (device_id, deployment_seq, targets_version, timestamp_version, targets, \
                         snapshot, timestamp, snapshot_expires, timestamp_expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (device_id) DO NOTHING",
                    ),
                    Some(_) => sqlx::query::<$db>(
                        "UPDATE director_state SET deployment_seq = $2, targets_version = $3, timestamp_version = $4, \
                         targets = $5, snapshot = $6, timestamp = $7, snapshot_expires = $8, timestamp_expires = $9 \
                         WHERE device_id = $1 AND timestamp_version = $10",
                    ),
                };
                let mut q = q
                    .bind(s.device_id.to_string())
                    .bind(s.deployment_seq.map(i64_of))
                    .bind(i64_of(s.targets_version))
                    .bind(i64_of(s.timestamp_version))
                    .bind(s.targets.as_slice())
                    .bind(s.snapshot.as_slice())
                    .bind(s.timestamp.as_slice())
                    .bind(ms(s.snapshot_expires))
                    .bind(ms(s.timestamp_expires));
                if let Some(v) = expected {
                    q = q.bind(i64_of(v));
                }
                Ok(q.execute(&self.pool).await?.rows_affected() == 1)
            }

            async fn record_update(&self, device: DeviceId, st: &UpdateStatus, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let next: i64 = sqlx::query::<$db>("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM update_events")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("next")?;
                sqlx::query::<$db>(
                    "INSERT INTO update_events (seq, device_id, release, phase, outcome, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(next)
                .bind(device.to_string())
                .bind(&st.release)
                .bind(&st.phase)
                .bind(&st.outcome)
                .bind(&st.detail)
                .bind(ms(st.at))
                .execute(&mut *tx)
                .await?;
                sqlx::query::<$db>(
                    "INSERT INTO device_updates (device_id, release, phase, outcome, detail, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (device_id) DO UPDATE SET release = excluded.release, phase = excluded.phase, \
                     outcome = excluded.outcome, detail = excluded.detail, updated_at = excluded.updated_at",
                )
                .bind(device.to_string())
                .bind(&st.release)
                .bind(&st.phase)
                .bind(&st.outcome)
                .bind(&st.detail)
                .bind(ms(st.at))
                .execute(&mut *tx)
                .await?;
                let mut detail = vec![("release", st.release.clone()), ("phase", st.phase.clone())];
                if let Some(o) = &st.outcome {
                    detail.push(("outcome", o.clone()));
                }
                if let Some(d) = &st.detail {
                    detail.push(("detail", d.chars().take(512).collect()));
                }
                let entry = audit.entry(JournalAction::DeviceUpdate, format!("device:{device}"), None, None, &detail);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn device_update(&self, device: DeviceId) -> Result<Option<UpdateStatus>> {
                let row = sqlx::query::<$db>(
                    "SELECT release, phase, outcome, detail, updated_at FROM device_updates WHERE device_id = $1",
                )
                .bind(device.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(|r| Self::update_rec(r, "updated_at")).transpose()
            }

            async fn update_events(&self, device: DeviceId, limit: u32) -> Result<Vec<UpdateStatus>> {
                let rows = sqlx::query::<$db>(
                    "SELECT release, phase, outcome, detail, at FROM update_events WHERE device_id = $1 ORDER BY seq DESC LIMIT $2",
                )
                .bind(device.to_string())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Self::update_rec(r, "at")).collect()
            }
        }
    };
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl_update_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_update_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);

#[cfg(test)]
mod stored_enum_tests {
    use super::*;

    #[test]
    fn stored_states_round_trip_and_unknown_text_is_corrupt() {
        for s in ReleaseStatus::ALL {
            assert_eq!(ReleaseStatus::read(s.as_str().to_owned()).unwrap(), *s);
        }
        for i in Installer::ALL {
            assert_eq!(Installer::read(i.as_str().to_owned()).unwrap(), *i);
        }
        assert!(matches!(
            ReleaseStatus::read("Published".into()),
            Err(crate::Error::Corrupt {
                what: "release status",
                ..
            })
        ));
        assert!(matches!(
            Installer::read("rpm".into()),
            Err(crate::Error::Corrupt {
                what: "release installer",
                ..
            })
        ));
        assert_eq!(ReleaseStatus::Unsigned, "unsigned");
    }
}
