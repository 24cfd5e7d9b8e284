//! Release gates: scans and verdicts, gate policies, waivers and the
//! alerts an advisory import raises.
//!
//! Like the rest of the store, every mutating method takes an [`Audit`]
//! and journals its change in the same transaction. Verdicts are JSON
//! documents of `bulwark-gate`; the store keeps them opaque.

use async_trait::async_trait;
use bulwark_proto::{JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore, conflict, from_ms, new_id, opt_from_ms};
use crate::model::{ms, stored_enum};
use crate::{Audit, Result};

stored_enum! {
    /// A release's gate verdict.
    GateStatus, "gate status" {
        /// Nothing blocks it.
        Pass = "pass",
        /// Something blocks it (the verdict says what).
        Block = "block",
    }
}

stored_enum! {
    /// Where a scan's SBOM came from (none when nothing could be taken
    /// from an unreadable artifact: stored as empty text).
    SbomSource, "SBOM source" {
        /// From the artifact's bytes.
        Extracted = "extracted",
        /// Uploaded with the release.
        Uploaded = "uploaded",
        /// Both, merged.
        UploadedExtracted = "uploaded+extracted",
    }
}

stored_enum! {
    /// What an alert reports.
    AlertKind, "alert kind" {
        /// A new advisory affects a release or a device.
        Vulnerability = "vulnerability",
    }
}

/// A release's scan and its latest verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseScan {
    /// The release.
    pub release_id: String,
    /// Where the SBOM came from; `None` when there is none.
    pub sbom_source: Option<SbomSource>,
    /// The SBOM (JSON of `bulwark_sbom::Sbom`).
    pub sbom: String,
    /// Malware and secret findings plus extraction warnings (JSON).
    pub findings: String,
    /// The latest verdict's status.
    pub status: GateStatus,
    /// The latest verdict (JSON of `bulwark_gate::Verdict`).
    pub verdict: String,
    /// When scanned.
    pub scanned_at: OffsetDateTime,
    /// When the verdict was computed.
    pub evaluated_at: OffsetDateTime,
}

/// A release's new verdict after a re-evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictChange {
    /// The release.
    pub release_id: String,
    /// Its status.
    pub status: GateStatus,
    /// The verdict JSON.
    pub verdict: String,
}

/// A stored waiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverRow {
    /// Id.
    pub id: String,
    /// Advisory id, `malware:…` or `secret:…`.
    pub finding: String,
    /// `name@version` or `name@*`.
    pub release: String,
    /// Why.
    pub reason: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
    /// When revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// What it reports.
    pub kind: AlertKind,
    /// The advisory's primary id.
    pub advisory: String,
    /// `release:name@version` or `device:<uuid>`.
    pub subject: String,
    /// What happened.
    pub message: String,
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Id.
    pub id: String,
    /// What it reports.
    pub kind: AlertKind,
    /// Advisory id.
    pub advisory: String,
    /// What it concerns.
    pub subject: String,
    /// What happened.
    pub message: String,
    /// When raised.
    pub created_at: OffsetDateTime,
}

/// Release scans and verdicts, the gate policy, waivers and alerts.
#[async_trait]
pub trait GateRepo: Send + Sync + std::fmt::Debug {
    /// Stores (or replaces) a release's scan and verdict; journals
    /// `release.scan` with the status.
    async fn put_release_scan(&self, scan: &ReleaseScan, audit: &Audit) -> Result<()>;
    /// A release's scan.
    async fn release_scan(&self, release_id: &str) -> Result<Option<ReleaseScan>>;
    /// Every scan (for re-evaluation).
    async fn release_scans(&self) -> Result<Vec<ReleaseScan>>;
    /// One re-evaluation: new verdicts and new alerts (an alert already
    /// raised for the same kind, advisory and subject is not raised again)
    /// with one journal entry `action` on `target`. Returns the alerts
    /// actually raised.
    async fn record_evaluation(
        &self,
        action: JournalAction,
        target: &str,
        detail: &[(&str, String)],
        verdicts: &[VerdictChange],
        alerts: &[NewAlert],
        audit: &Audit,
    ) -> Result<Vec<Alert>>;

    /// Stores a new policy version (one more than the latest); journals
    /// `gate.policy`.
    async fn put_policy(&self, body: &str, audit: &Audit) -> Result<u64>;
    /// The latest policy: version and JSON body.
    async fn policy(&self) -> Result<Option<(u64, String)>>;

    /// Adds a waiver; journals `waiver.add`.
    async fn add_waiver(&self, waiver: &WaiverRow, audit: &Audit) -> Result<()>;
    /// Waivers not revoked (expired ones included), newest first.
    async fn waivers(&self) -> Result<Vec<WaiverRow>>;
    /// Revokes a waiver; false when unknown or already revoked. Journals
    /// `waiver.revoke`.
    async fn revoke_waiver(&self, id: &str, audit: &Audit) -> Result<bool>;

    /// Alerts, newest first.
    async fn alerts(&self, limit: u32) -> Result<Vec<Alert>>;
}

fn waiver_digest(w: &WaiverRow) -> String {
    state_digest(&serde_json::json!({
        "id": w.id, "finding": w.finding, "release": w.release, "reason": w.reason,
        "expires_at": ms(w.expires_at), "revoked_at": w.revoked_at.map(ms),
    }))
}

const SCAN_COLUMNS: &str =
    "release_id, sbom_source, sbom, findings, status, verdict, scanned_at, evaluated_at";
const WAIVER_COLUMNS: &str =
    "id, finding, release, reason, expires_at, created_by, created_at, revoked_at";

/// The stored text of a scan's SBOM source (empty for none).
fn sbom_source_text(s: Option<SbomSource>) -> &'static str {
    s.map_or("", SbomSource::as_str)
}

macro_rules! impl_gate_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn scan_rec(row: &$row) -> Result<ReleaseScan> {
                let source: String = row.try_get("sbom_source")?;
                Ok(ReleaseScan {
                    release_id: row.try_get("release_id")?,
                    sbom_source: if source.is_empty() { None } else { Some(SbomSource::read(source)?) },
                    sbom: row.try_get("sbom")?,
                    findings: row.try_get("findings")?,
                    status: GateStatus::read(row.try_get("status")?)?,
                    verdict: row.try_get("verdict")?,
                    scanned_at: from_ms("scan time", row.try_get("scanned_at")?)?,
                    evaluated_at: from_ms("verdict time", row.try_get("evaluated_at")?)?,
                })
            }

            fn waiver_rec(row: &$row) -> Result<WaiverRow> {
                Ok(WaiverRow {
                    id: row.try_get("id")?,
                    finding: row.try_get("finding")?,
                    release: row.try_get("release")?,
                    reason: row.try_get("reason")?,
                    expires_at: from_ms("waiver expires_at", row.try_get("expires_at")?)?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("waiver created_at", row.try_get("created_at")?)?,
                    revoked_at: opt_from_ms("waiver revoked_at", row.try_get("revoked_at")?)?,
                })
            }

            fn alert_rec(row: &$row) -> Result<Alert> {
                Ok(Alert {
                    id: row.try_get("id")?,
                    kind: AlertKind::read(row.try_get("kind")?)?,
                    advisory: row.try_get("advisory")?,
                    subject: row.try_get("subject")?,
                    message: row.try_get("message")?,
                    created_at: from_ms("alert created_at", row.try_get("created_at")?)?,
                })
            }
        }

        #[async_trait]
        impl GateRepo for $store {
            async fn put_release_scan(&self, scan: &ReleaseScan, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let before: Option<String> = sqlx::query::<$db>("SELECT verdict FROM release_scans WHERE release_id = $1")
                    .bind(&scan.release_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get::<String, _>("verdict"))
                    .transpose()?;
                let reference: String = sqlx::query::<$db>("SELECT name, version FROM releases WHERE id = $1")
                    .bind(&scan.release_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| Ok::<_, crate::Error>(format!("{}@{}", r.try_get::<String, _>("name")?, r.try_get::<String, _>("version")?)))
                    .transpose()?
                    .ok_or_else(|| crate::Error::Corrupt { what: "release scan", detail: format!("no release {}", scan.release_id) })?;
                sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO release_scans ({SCAN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (release_id) DO UPDATE SET sbom_source = excluded.sbom_source, sbom = excluded.sbom, \
                     findings = excluded.findings, status = excluded.status, verdict = excluded.verdict, \
                     scanned_at = excluded.scanned_at, evaluated_at = excluded.evaluated_at"
                )))
                .bind(&scan.release_id)
                .bind(sbom_source_text(scan.sbom_source))
                .bind(&scan.sbom)
                .bind(&scan.findings)
                .bind(scan.status.as_str())
                .bind(&scan.verdict)
                .bind(ms(scan.scanned_at))
                .bind(ms(scan.evaluated_at))
                .execute(&mut *tx)
                .await?;
                let entry = audit.entry(JournalAction::ReleaseScan, format!("release:{reference}"),
                    before.map(|b| state_digest(&b)), Some(state_digest(&scan.verdict)),
                    &[("status", scan.status.as_str().to_owned()), ("sbom_source", sbom_source_text(scan.sbom_source).to_owned()),
                      ("findings_digest", state_digest(&scan.findings))]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn release_scan(&self, release_id: &str) -> Result<Option<ReleaseScan>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {SCAN_COLUMNS} FROM release_scans WHERE release_id = $1"
                )))
                .bind(release_id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::scan_rec).transpose()
            }

            async fn release_scans(&self) -> Result<Vec<ReleaseScan>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {SCAN_COLUMNS} FROM release_scans ORDER BY scanned_at, release_id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::scan_rec).collect()
            }

            async fn record_evaluation(
                &self,
                action: JournalAction,
                target: &str,
                detail: &[(&str, String)],
                verdicts: &[VerdictChange],
                alerts: &[NewAlert],
                audit: &Audit,
            ) -> Result<Vec<Alert>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                for v in verdicts {
                    sqlx::query::<$db>(
                        "UPDATE release_scans SET status = $1, verdict = $2, evaluated_at = $3 WHERE release_id = $4",
                    )
                    .bind(v.status.as_str())
                    .bind(&v.verdict)
                    .bind(ms(audit.time))
                    .bind(&v.release_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let mut raised = Vec::new();
                for a in alerts {
                    let alert = Alert {
                        id: new_id(),
                        kind: a.kind,
                        advisory: a.advisory.clone(),
                        subject: a.subject.clone(),
                        message: a.message.clone(),
                        created_at: audit.time,
                    };
                    let n = sqlx::query::<$db>(
                        "INSERT INTO alerts (id, kind, advisory, subject, message, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (kind, advisory, subject) DO NOTHING",
                    )
                    .bind(&alert.id)
                    .bind(alert.kind.as_str())
                    .bind(&alert.advisory)
                    .bind(&alert.subject)
                    .bind(&alert.message)
                    .bind(ms(alert.created_at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 1 {
                        raised.push(alert);
                    }
                }
                let mut detail: Vec<(&str, String)> = detail.to_vec();
                let changed: Vec<String> = verdicts.iter().map(|v| format!("{}={}", v.release_id, v.status)).collect();
                detail.push(("verdicts", changed.join(",")));
                let ids: Vec<&str> = raised.iter().map(|a| a.id.as_str()).collect();
                detail.push(("alerts", ids.join(",")));
                let entry = audit.entry(action, target.to_owned(), None, None, &detail);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(raised)
            }

            async fn put_policy(&self, body: &str, audit: &Audit) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let latest: Option<(i64, String)> = sqlx::query::<$db>(
                    "SELECT version, body FROM gate_policies ORDER BY version DESC LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get("version")?, r.try_get("body")?)))
                .transpose()?;
                let version = latest.as_ref().map_or(1, |(v, _)| v + 1);
                sqlx::query::<$db>(
                    "INSERT INTO gate_policies (version, body, created_by, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(version)
                .bind(body)
                .bind(&audit.actor.id)
                .bind(ms(audit.time))
                .execute(&mut *tx)
                .await
                .map_err(conflict(&format!("gate policy version {version}")))?;
                let entry = audit.entry(JournalAction::GatePolicy, "gate:policy".into(),
                    latest.map(|(_, b)| state_digest(&b)), Some(state_digest(&body)),
                    &[("version", version.to_string()), ("policy", body.to_owned())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(u64::try_from(version).unwrap_or(0))
            }

            async fn policy(&self) -> Result<Option<(u64, String)>> {
                let row = sqlx::query::<$db>("SELECT version, body FROM gate_policies ORDER BY version DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    let v: i64 = r.try_get("version")?;
                    Ok((u64::try_from(v).unwrap_or(0), r.try_get("body")?))
                })
                .transpose()
            }

            async fn add_waiver(&self, w: &WaiverRow, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO waivers ({WAIVER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"
                )))
                .bind(&w.id)
                .bind(&w.finding)
                .bind(&w.release)
                .bind(&w.reason)
                .bind(ms(w.expires_at))
                .bind(&w.created_by)
                .bind(ms(w.created_at))
                .execute(&mut *tx)
                .await
                .map_err(conflict(&format!("waiver {}", w.id)))?;
                let entry = audit.entry(JournalAction::WaiverAdd, format!("waiver:{}", w.id), None, Some(waiver_digest(w)),
                    &[("finding", w.finding.clone()), ("release", w.release.clone()), ("reason", w.reason.clone()),
                      ("expires_at", ms(w.expires_at).to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn waivers(&self) -> Result<Vec<WaiverRow>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {WAIVER_COLUMNS} FROM waivers WHERE revoked_at IS NULL ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::waiver_rec).collect()
            }

            async fn revoke_waiver(&self, id: &str, audit: &Audit) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {WAIVER_COLUMNS} FROM waivers WHERE id = $1 AND revoked_at IS NULL"
                )))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(false) };
                let mut w = Self::waiver_rec(&row)?;
                sqlx::query::<$db>("UPDATE waivers SET revoked_at = $1 WHERE id = $2")
                    .bind(ms(audit.time))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let before = waiver_digest(&w);
                w.revoked_at = Some(audit.time);
                let entry = audit.entry(JournalAction::WaiverRevoke, format!("waiver:{id}"), Some(before), Some(waiver_digest(&w)),
                    &[("finding", w.finding.clone()), ("release", w.release.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn alerts(&self, limit: u32) -> Result<Vec<Alert>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, kind, advisory, subject, message, created_at FROM alerts ORDER BY created_at DESC, id LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::alert_rec).collect()
            }
        }
    };
}

impl_gate_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_gate_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
