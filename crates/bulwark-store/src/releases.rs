//! Releases and how they reach devices: blobs (the bytes live on disk,
//! named by digest), releases, promotions along the environment ladder,
//! deployments, and devices' update reports.
//!
//! Signing (proposals, signatures, the TUF metadata a signature publishes)
//! is [`crate::TufRepo`]'s.

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{
    PostgresStore, SqliteStore, conflict, from_ms, i64_of, new_id, opt_from_ms, u64_of,
};
use crate::model::{ms, stored_enum};
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

stored_enum! {
    /// The phase of an update a device reported (each phase as it starts,
    /// then the final one): `bulwark_proto::UPDATE_PHASES`, which a report
    /// is validated against.
    UpdatePhase, "update phase" {
        /// Fetching the artifact.
        Downloading = "downloading",
        /// Checking it against both repositories.
        Verifying = "verifying",
        /// Putting it in the inactive slot.
        Staging = "staging",
        /// Making it the live one.
        Switching = "switching",
        /// Running the release's smoke test.
        SmokeTesting = "smoke_testing",
        /// Making the switch permanent.
        Committing = "committing",
        /// Going back to the previous release.
        RollingBack = "rolling_back",
        /// Final: installed.
        Installed = "installed",
        /// Final: rolled back to the previous release.
        RolledBack = "rolled_back",
        /// Final: failed.
        Failed = "failed",
        /// Final: refused (an attack or a bad target detected).
        Refused = "refused",
    }
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

/// A device's update progress as it reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    /// `name@version`.
    pub release: String,
    /// Phase (downloading, verifying, …, installed, rolled_back, refused).
    pub phase: UpdatePhase,
    /// Outcome code when final (e.g. `installed`, `smoke-failed`, `rollback`).
    pub outcome: Option<String>,
    /// Human detail (why it rolled back or was refused).
    pub detail: Option<String>,
    /// When reported.
    pub at: OffsetDateTime,
}

/// Blobs, releases, promotions, deployments and devices' update reports.
#[async_trait]
pub trait ReleaseRepo: Send + Sync + std::fmt::Debug {
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
    /// Like [`ReleaseRepo::create_deployment`]; `remediation` marks a
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

pub(crate) fn release_digest(r: &Release) -> String {
    state_digest(&serde_json::json!({
        "id": r.id, "name": r.name, "version": r.version, "sha256": r.sha256, "length": r.length,
        "installer": r.installer.as_str(), "install_path": r.install_path, "smoke_test": r.smoke_test,
        "smoke_timeout_secs": r.smoke_timeout_secs, "status": r.status.as_str(), "environments": r.environments,
    }))
}

pub(crate) const RELEASE_COLUMNS: &str = "id, name, version, sha256, length, installer, install_path, \
     smoke_test, smoke_timeout_secs, status, created_by, created_at, published_at";

macro_rules! impl_release_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            pub(crate) fn release_rec(row: &$row, environments: Vec<String>) -> Result<Release> {
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

            pub(crate) async fn release_envs<'c, E>(exec: E, id: &str) -> Result<Vec<String>>
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
                    phase: UpdatePhase::read(row.try_get("phase")?)?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                    at: from_ms("update time", row.try_get(at)?)?,
                })
            }
        }

        #[async_trait]
        impl ReleaseRepo for $store {
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
                .bind(st.phase.as_str())
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
                .bind(st.phase.as_str())
                .bind(&st.outcome)
                .bind(&st.detail)
                .bind(ms(st.at))
                .execute(&mut *tx)
                .await?;
                let mut detail = vec![("release", st.release.clone()), ("phase", st.phase.as_str().to_owned())];
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

impl_release_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_release_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);

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
