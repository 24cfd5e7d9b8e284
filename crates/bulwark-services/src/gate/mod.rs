//! The release gate on the server: every published artifact is scanned
//! (in the background), its verdict stored and journaled; signing,
//! promotion and deployment ask for the current verdict and refuse a
//! blocked release with the reasons. Importing advisories re-judges every
//! stored scan and device inventory and raises alerts for new hits.
//!
//! The advisory database is a file in the data directory
//! (`advisories/advisories.jsonl`, written atomically), loaded into memory;
//! imports are serialised and swap in a new copy, so a scan never sees a
//! half-imported database. YARA rules are compiled once at start from the
//! configured rules directory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use bulwark_gate::{
    AdvisoryInput, Findings, Policy, Stage, Status, Subject, Verdict, Waiver, evaluate,
};
use bulwark_osv::AdvisoryDb;
use bulwark_sbom::Sbom;
use bulwark_scan::ArtifactScan;
use bulwark_store::{
    AlertKind, Audit, GateStatus, NewAlert, Release, ReleaseScan, SbomSource, Store, VerdictChange,
    WaiverRow,
};
use bulwark_yara::Rules;
use time::OffsetDateTime;

/// The gate service.
pub struct Gate {
    dir: PathBuf,
    db: RwLock<Arc<AdvisoryDb>>,
    import_lock: tokio::sync::Mutex<()>,
    rules: Option<Arc<Rules>>,
    limits: bulwark_extract::Limits,
    scanning: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("dir", &self.dir)
            .field("advisories", &self.db().len())
            .field("rules", &self.rules.as_ref().map(|r| r.rule_count()))
            .finish_non_exhaustive()
    }
}

/// A release's gate state now.
#[derive(Debug)]
pub struct Judgement {
    /// The stored scan, unless still running.
    pub scan: Option<(ReleaseScan, ArtifactScan)>,
    /// The findings judged (vulnerabilities under today's advisories).
    pub findings: Findings,
    /// RustSec-style informational notices.
    pub notices: Vec<String>,
    /// The verdict now, unless the scan is still running.
    pub verdict: Option<Verdict>,
}

/// Releases and devices an advisory hits.
#[derive(Debug, Default)]
pub struct Affected {
    /// `name@version` with the component purls hit.
    pub releases: BTreeMap<String, Vec<String>>,
    /// Device ids with the package purls hit.
    pub devices: BTreeMap<String, Vec<String>>,
}

/// What an advisory import did.
#[derive(Debug)]
pub struct ImportSummary {
    /// The import report's one-line summary.
    pub report: String,
    /// Advisories added or changed.
    pub changed: usize,
    /// Releases whose verdict changed.
    pub verdicts_changed: usize,
    /// Alerts raised.
    pub alerts: Vec<bulwark_store::Alert>,
    /// Per-file errors (the rest was imported).
    pub errors: Vec<String>,
}

/// Why the gate refused or failed; the HTTP layer maps each kind to a
/// status in one place (`crate::error`).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The release does not pass: every reason, in the message.
    #[error("{0}")]
    Blocked(String),
    /// The release has no verdict yet (its scan is running).
    #[error("{0}")]
    Pending(String),
    /// What was handed in is not acceptable (an archive, a waiver).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
    /// Something else failed (a stored document that does not parse, a
    /// worker that died).
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl GateError {
    fn internal(e: impl Into<anyhow::Error>) -> Self {
        GateError::Internal(e.into())
    }
}

fn blocked(v: &Verdict, what: &str) -> GateError {
    let reasons: Vec<String> = v
        .reasons
        .iter()
        .map(|r| format!("[{}] {}", r.code, r.message))
        .collect();
    GateError::Blocked(format!(
        "the release gate blocks {what}: {}",
        reasons.join("; ")
    ))
}

impl Gate {
    /// Opens the advisory database under `data_dir/advisories` (empty when
    /// new) and compiles the rules in `rules_dir` (none when `None`).
    pub fn open(data_dir: &Path, rules_dir: Option<&Path>) -> anyhow::Result<Gate> {
        let dir = data_dir.join("advisories");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let db = AdvisoryDb::load_or_new(&dir)
            .with_context(|| format!("loading advisories from {}", dir.display()))?;
        let rules = match rules_dir {
            Some(d) => {
                Some(Arc::new(Rules::compile_dir(d).with_context(|| {
                    format!("compiling YARA rules in {}", d.display())
                })?))
            }
            None => None,
        };
        Ok(Gate {
            dir,
            db: RwLock::new(Arc::new(db)),
            import_lock: tokio::sync::Mutex::new(()),
            rules,
            limits: bulwark_extract::Limits::default(),
            scanning: Mutex::new(HashSet::new()),
        })
    }

    /// The advisories now.
    pub fn db(&self) -> Arc<AdvisoryDb> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many YARA rules are loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.rule_count())
    }

    /// Whether a release's scan is running.
    pub fn is_scanning(&self, release_id: &str) -> bool {
        self.scanning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(release_id)
    }

    /// The policy in force: version and document (version 0 = defaults).
    pub async fn policy(store: &dyn Store) -> Result<(u64, Policy), GateError> {
        match store.policy().await? {
            Some((v, body)) => Ok((
                v,
                Policy::from_json(body.as_bytes()).map_err(GateError::internal)?,
            )),
            None => Ok((0, Policy::default())),
        }
    }

    async fn waivers(store: &dyn Store) -> Result<Vec<Waiver>, GateError> {
        Ok(store
            .waivers()
            .await?
            .into_iter()
            .map(|w| Waiver {
                id: w.id,
                finding: w.finding,
                release: w.release,
                reason: w.reason,
                expires_at: w.expires_at,
                created_by: w.created_by,
            })
            .collect())
    }

    fn judge_scan(
        db: &AdvisoryDb,
        policy: (u64, &Policy),
        reference: &str,
        scan: &ArtifactScan,
        waivers: &[Waiver],
        stage: Stage,
        now: OffsetDateTime,
    ) -> (Findings, Vec<String>, Verdict) {
        let (findings, notices) = bulwark_scan::findings(scan, db);
        let subject = Subject {
            release: reference,
            components: scan.sbom.components.len() as u64,
            findings: &findings,
            stage,
            unreadable: scan.unreadable.as_deref(),
            advisories: AdvisoryInput {
                count: db.len() as u64,
                updated_at: db.updated_at(),
            },
        };
        let verdict = evaluate(policy.1, policy.0, subject, waivers, now);
        (findings, notices, verdict)
    }

    /// Scans a release's artifact (and its uploaded SBOM) in the
    /// background; the verdict is stored and journaled as `release.scan`
    /// by the server itself.
    pub fn spawn_scan(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        artifact: PathBuf,
        uploaded_sbom: Option<Sbom>,
        release: Release,
        clock: Arc<dyn crate::clock::Clock>,
    ) {
        {
            let mut s = self.scanning.lock().unwrap_or_else(|e| e.into_inner());
            if !s.insert(release.id.clone()) {
                return;
            }
        }
        let gate = self.clone();
        tokio::spawn(async move {
            let id = release.id.clone();
            if let Err(e) = gate
                .scan_now(&*store, &artifact, uploaded_sbom, &release, &*clock)
                .await
            {
                tracing::error!(release = %release.reference(), error = %e, "release scan failed");
            }
            gate.scanning
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }

    async fn scan_now(
        &self,
        store: &dyn Store,
        artifact: &Path,
        uploaded_sbom: Option<Sbom>,
        release: &Release,
        clock: &dyn crate::clock::Clock,
    ) -> anyhow::Result<()> {
        let rules = self.rules.clone();
        let limits = self.limits.clone();
        let path = artifact.to_owned();
        let subject = release.reference();
        let started = clock.now();
        let result = tokio::task::spawn_blocking(move || {
            bulwark_scan::scan_artifact(&path, &subject, rules.as_deref(), &limits)
        })
        .await?;
        let mut scan = result.unwrap_or_else(|e| ArtifactScan::failed(&e));
        scan.sbom.subject = release.name.clone();
        scan.sbom.subject_version = Some(release.version.clone());
        if let Some(up) = uploaded_sbom {
            bulwark_scan::merge_sbom(&mut scan, up);
        }
        let (pv, policy) = Self::policy(store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let waivers = Self::waivers(store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = clock.now();
        let (_, _, verdict) = Self::judge_scan(
            &self.db(),
            (pv, &policy),
            &release.reference(),
            &scan,
            &waivers,
            Stage::Sign,
            now,
        );
        let row = ReleaseScan {
            release_id: release.id.clone(),
            sbom_source: sbom_source(&scan.sbom_source)?,
            sbom: serde_json::to_string(&scan.sbom)?,
            findings: serde_json::to_string(&scan)?,
            status: gate_status(verdict.status),
            verdict: serde_json::to_string(&verdict)?,
            scanned_at: started,
            evaluated_at: now,
        };
        store.put_release_scan(&row, &Audit::system(now)).await?;
        Ok(())
    }

    /// The gate's judgement of a release now, at `stage`.
    pub async fn judge(
        &self,
        store: &dyn Store,
        release: &Release,
        stage: Stage,
        now: OffsetDateTime,
    ) -> Result<Judgement, GateError> {
        let Some(row) = store.release_scan(&release.id).await? else {
            return Ok(Judgement {
                scan: None,
                findings: Findings::default(),
                notices: Vec::new(),
                verdict: None,
            });
        };
        let scan: ArtifactScan =
            serde_json::from_str(&row.findings).map_err(GateError::internal)?;
        let (pv, policy) = Self::policy(store).await?;
        let waivers = Self::waivers(store).await?;
        let (findings, notices, verdict) = Self::judge_scan(
            &self.db(),
            (pv, &policy),
            &release.reference(),
            &scan,
            &waivers,
            stage,
            now,
        );
        Ok(Judgement {
            scan: Some((row, scan)),
            findings,
            notices,
            verdict: Some(verdict),
        })
    }

    /// Refuses with the reasons unless the release passes at `stage`.
    pub async fn require_pass(
        &self,
        store: &dyn Store,
        release: &Release,
        stage: Stage,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<(), GateError> {
        let j = self.judge(store, release, stage, now).await?;
        match j.verdict {
            None => Err(GateError::Pending(format!(
                "{} is still being scanned; {what} waits for the gate's verdict (see `bulwark release gate {}`)",
                release.reference(),
                release.reference()
            ))),
            Some(v) if v.status == Status::Block => Err(blocked(&v, what)),
            Some(_) => Ok(()),
        }
    }

    /// Imports an advisory archive, saves the database, re-judges every
    /// stored scan and device inventory, and raises alerts for new hits —
    /// journaled as one `advisories.import` entry with the verdict changes
    /// and alerts in the same transaction. An OSV import dates the
    /// database (`audit.time`): verdicts state its age from then.
    pub async fn import(
        &self,
        store: &dyn Store,
        archive: Vec<u8>,
        source: &str,
        audit: &Audit,
    ) -> Result<ImportSummary, GateError> {
        let _serial = self.import_lock.lock().await;
        let dir = self.dir.clone();
        let source_name = source.to_owned();
        let time = audit.time;
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&archive));
        let (db, report) = tokio::task::spawn_blocking(move || {
            // The file always equals the database in memory (imports are
            // serialised and save before they swap), so start from it.
            let mut db = AdvisoryDb::load_or_new(&dir)?;
            let report = if bulwark_osv::is_kev_catalog(&archive) {
                let k = db.import_kev(&archive)?;
                Imported {
                    summary: format!(
                        "known-exploited catalog {}: {} CVEs, {} advisories changed",
                        k.catalog_version.as_deref().unwrap_or("(unversioned)"),
                        k.cves,
                        k.changed_ids.len()
                    ),
                    changed_ids: k.changed_ids,
                    errors: Vec::new(),
                }
            } else {
                let r = db.import_archive(std::io::Cursor::new(archive), &source_name)?;
                if r.contains_no_osv() {
                    // Nothing to import is a mistake worth saying (a wrong
                    // file), and nothing is saved.
                    return Ok(Err(format!("{source_name} contains no OSV advisories")));
                }
                // The verdicts' "advisories updated …" is this time; a KEV
                // catalog alone does not refresh the advisories.
                db.set_updated_at(time);
                Imported {
                    summary: r.to_string(),
                    changed_ids: r.changed_ids.clone(),
                    errors: r.errors.iter().map(|e| e.to_string()).collect(),
                }
            };
            db.save(&dir)?;
            Ok::<_, bulwark_osv::Error>(Ok((db, report)))
        })
        .await
        .map_err(GateError::internal)?
        .map_err(|e| GateError::Invalid(format!("archive: {e}")))?
        .map_err(|e| GateError::Invalid(format!("archive: {e}")))?;
        let changed: HashSet<String> = report.changed_ids.iter().cloned().collect();
        let db = Arc::new(db);
        // Re-judge releases.
        let (pv, policy) = Self::policy(store).await?;
        let waivers = Self::waivers(store).await?;
        let mut verdicts = Vec::new();
        let mut alerts = Vec::new();
        for row in store.release_scans().await? {
            let Ok(scan) = serde_json::from_str::<ArtifactScan>(&row.findings) else {
                continue;
            };
            let Some(rel) = store.release_by_id(&row.release_id).await? else {
                continue;
            };
            let reference = rel.reference();
            let (findings, _, verdict) = Self::judge_scan(
                &db,
                (pv, &policy),
                &reference,
                &scan,
                &waivers,
                Stage::Sign,
                audit.time,
            );
            new_hits(
                &findings.vulnerabilities,
                &changed,
                &format!("release:{reference}"),
                &mut alerts,
            );
            let status = gate_status(verdict.status);
            if status != row.status {
                verdicts.push(VerdictChange {
                    release_id: row.release_id.clone(),
                    status,
                    verdict: serde_json::to_string(&verdict).map_err(GateError::internal)?,
                });
            }
        }
        // Devices.
        for (device, inv) in store.inventories().await? {
            let Ok(inv) = serde_json::from_str::<bulwark_proto::Inventory>(&inv) else {
                continue;
            };
            let components = bulwark_scan::inventory_components(&inv);
            let (vulns, _) = bulwark_scan::vulnerabilities(&db, &components);
            new_hits(&vulns, &changed, &format!("device:{device}"), &mut alerts);
        }
        let detail = [
            ("source", source.to_owned()),
            ("archive_sha256", digest),
            ("summary", report.summary.clone()),
            ("changed", changed.len().to_string()),
        ];
        let raised = store
            .record_evaluation(
                bulwark_proto::JournalAction::AdvisoriesImport,
                &format!("advisories:{source}"),
                &detail,
                &verdicts,
                &alerts,
                audit,
            )
            .await?;
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = db;
        Ok(ImportSummary {
            report: report.summary,
            changed: changed.len(),
            verdicts_changed: verdicts.len(),
            alerts: raised,
            errors: report.errors,
        })
    }

    /// The releases and devices an advisory (by id or alias) hits now.
    pub async fn affected(&self, store: &dyn Store, id: &str) -> Result<Affected, GateError> {
        let db = self.db();
        let mut out = Affected::default();
        let named = |v: &bulwark_gate::VulnerabilityFinding| v.is_named(id);
        for row in store.release_scans().await? {
            let Ok(scan) = serde_json::from_str::<ArtifactScan>(&row.findings) else {
                continue;
            };
            let Some(rel) = store.release_by_id(&row.release_id).await? else {
                continue;
            };
            let (vulns, _) = bulwark_scan::vulnerabilities(&db, &scan.sbom.components);
            let purls: Vec<String> = vulns
                .iter()
                .filter(|v| named(v))
                .map(|v| v.purl.clone())
                .collect();
            if !purls.is_empty() {
                out.releases.insert(rel.reference(), purls);
            }
        }
        for (device, inv) in store.inventories().await? {
            let Ok(inv) = serde_json::from_str::<bulwark_proto::Inventory>(&inv) else {
                continue;
            };
            let (vulns, _) =
                bulwark_scan::vulnerabilities(&db, &bulwark_scan::inventory_components(&inv));
            let purls: Vec<String> = vulns
                .iter()
                .filter(|v| named(v))
                .map(|v| v.purl.clone())
                .collect();
            if !purls.is_empty() {
                out.devices.insert(device, purls);
            }
        }
        Ok(out)
    }

    /// Stores a waiver after checking it.
    pub async fn add_waiver(
        store: &dyn Store,
        w: Waiver,
        audit: &Audit,
    ) -> Result<WaiverRow, GateError> {
        w.validate(audit.time)
            .map_err(|e| GateError::Invalid(e.to_string()))?;
        let row = WaiverRow {
            id: w.id,
            finding: w.finding,
            release: w.release,
            reason: w.reason,
            expires_at: w.expires_at,
            created_by: audit.actor.id.clone(),
            created_at: audit.time,
            revoked_at: None,
        };
        store.add_waiver(&row, audit).await?;
        Ok(row)
    }
}

/// Alerts for the vulnerabilities of `subject` (`release:…`, `device:…`)
/// that an import added or changed.
fn new_hits(
    vulns: &[bulwark_gate::VulnerabilityFinding],
    changed: &HashSet<String>,
    subject: &str,
    alerts: &mut Vec<NewAlert>,
) {
    for v in vulns {
        if changed.contains(&v.id) || v.aliases.iter().any(|a| changed.contains(a)) {
            alerts.push(NewAlert {
                kind: AlertKind::Vulnerability,
                advisory: v.id.clone(),
                subject: subject.to_owned(),
                message: format!("{} ({}) affects {} in {subject}", v.id, v.severity, v.purl),
            });
        }
    }
}

/// What one import changed, for advisories or a KEV catalog alike.
struct Imported {
    summary: String,
    changed_ids: Vec<String>,
    errors: Vec<String>,
}

/// `pass` or `block`.
pub fn status_str(s: Status) -> &'static str {
    gate_status(s).as_str()
}

/// A verdict's status as the store keeps it.
pub fn gate_status(s: Status) -> GateStatus {
    match s {
        Status::Pass => GateStatus::Pass,
        Status::Block => GateStatus::Block,
    }
}

/// A scan's SBOM source as the store keeps it (`bulwark-scan` writes one
/// of the store's words, or nothing when the artifact was unreadable).
fn sbom_source(text: &str) -> anyhow::Result<Option<SbomSource>> {
    match text {
        "" => Ok(None),
        s => SbomSource::parse(s)
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("the scan named an unknown SBOM source {s:?}")),
    }
}
