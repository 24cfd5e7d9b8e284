//! TUF metadata of the image repository and the director, the director's
//! per-device state, and release signing (proposals and signatures).
//!
//! Two writes are derived data and not journaled: a release's signing
//! proposal (recomputed from published state) and the director's
//! per-device metadata (a function of the journaled deployments). A
//! signature that meets the threshold publishes in the same transaction:
//! metadata rows, the release's status, its first environment, one entry.

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore, conflict, device_id, from_ms, i64_of, u64_of};
use crate::model::{ms, stored_enum};
use crate::releases::{RELEASE_COLUMNS, release_digest};
use crate::{Audit, Error, ReleaseStatus, Result};

stored_enum! {
    /// A TUF repository the server keeps.
    Repository, "TUF repository" {
        /// The image repository: root and targets signed offline by
        /// release managers, snapshot and timestamp online.
        Image = "image",
        /// The director: one root, per-device metadata signed online.
        Director = "director",
    }
}

stored_enum! {
    /// A TUF top-level role.
    TufRole, "TUF role" {
        /// Keys and thresholds of every role.
        Root = "root",
        /// What may be installed.
        Targets = "targets",
        /// The versions of targets metadata.
        Snapshot = "snapshot",
        /// The freshness of snapshot.
        Timestamp = "timestamp",
    }
}

/// One stored TUF metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TufRow {
    /// Which repository.
    pub repo: Repository,
    /// Which role.
    pub role: TufRole,
    /// Its version.
    pub version: u64,
    /// The signed JSON, byte for byte as served.
    pub body: Vec<u8>,
    /// Its expiry.
    pub expires_at: OffsetDateTime,
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

/// TUF metadata, the director's per-device state, and signing: a
/// release's proposal, its signatures, and the publication a signature
/// that meets the threshold makes.
#[async_trait]
pub trait TufRepo: Send + Sync + std::fmt::Debug {
    /// The newest version of a role's metadata.
    async fn tuf_latest(&self, repo: Repository, role: TufRole) -> Result<Option<TufRow>>;
    /// One version of a role's metadata.
    async fn tuf_version(
        &self,
        repo: Repository,
        role: TufRole,
        version: u64,
    ) -> Result<Option<TufRow>>;
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
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

macro_rules! impl_tuf_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn tuf_rec(row: &$row) -> Result<TufRow> {
                Ok(TufRow {
                    repo: Repository::read(row.try_get("repo")?)?,
                    role: TufRole::read(row.try_get("role")?)?,
                    version: u64_of("tuf version", row.try_get("version")?)?,
                    body: row.try_get("body")?,
                    expires_at: from_ms("tuf expires_at", row.try_get("expires_at")?)?,
                })
            }

            async fn insert_tuf(tx: &mut sqlx::Transaction<'static, $db>, rows: &[TufRow], now: OffsetDateTime) -> Result<()> {
                for r in rows {
                    sqlx::query::<$db>(
                        "INSERT INTO tuf_metadata (repo, role, version, body, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(r.repo.as_str())
                    .bind(r.role.as_str())
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
        impl TufRepo for $store {
            async fn tuf_latest(&self, repo: Repository, role: TufRole) -> Result<Option<TufRow>> {
                let row = sqlx::query::<$db>(
                    "SELECT repo, role, version, body, expires_at FROM tuf_metadata WHERE repo = $1 AND role = $2 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(repo.as_str())
                .bind(role.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::tuf_rec).transpose()
            }

            async fn tuf_version(&self, repo: Repository, role: TufRole, version: u64) -> Result<Option<TufRow>> {
                let row = sqlx::query::<$db>(
                    "SELECT repo, role, version, body, expires_at FROM tuf_metadata WHERE repo = $1 AND role = $2 AND version = $3",
                )
                .bind(repo.as_str())
                .bind(role.as_str())
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
        }
    };
}

impl_tuf_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_tuf_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
