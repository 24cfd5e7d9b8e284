//! One update cycle: verify the director and the image repository (TUF,
//! both fully), require that they agree, then hand the plan to the
//! crash-safe [`UpdateEngine`].
//!
//! Trusted metadata lives in `STATE/tuf/image/` and `STATE/tuf/director/`.
//! The image root is pinned at enrollment (`--image-root`) or, failing
//! that, trusted on first use over the mTLS channel (the server is
//! authenticated by the enrollment CA); from then on only roots signed by
//! the previous root are accepted. Refusals are reported to the server
//! with the attack they detected.

use std::path::{Path, PathBuf};

use bulwark_proto::UpdateReport as WireReport;
use bulwark_tuf::{Fetch, FetchError, Limits, LocalMetadata, TargetFile, Updater};
use time::OffsetDateTime;

use crate::update::{
    ArtifactSource, ChunkSink, FinalState, InstallConfig, InstallerKind, Phase, Reporter,
    SourceError, UpdateEngine, UpdatePlan, UpdateReport,
};
use crate::{Error, Result, base};

/// Trusted metadata of one repository, as files (atomic replace, 0644).
#[derive(Debug)]
pub struct DirMetadata {
    dir: PathBuf,
}

impl DirMetadata {
    /// Metadata kept in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, role: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", bulwark_tuf::quote_role_name(role)))
    }
}

impl LocalMetadata for DirMetadata {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(role)).ok()
    }

    fn store(&mut self, role: &str, bytes: &[u8]) -> std::result::Result<(), String> {
        let path = self.path(role);
        crate::update::write_atomic(&path, bytes, 0o644)
            .map_err(|e| format!("storing {}: {e}", path.display()))
    }
}

/// Fetches metadata of one repository over the device listener.
#[derive(Debug, Clone)]
struct HttpFetch {
    client: reqwest::Client,
    base: String,
}

impl Fetch for HttpFetch {
    async fn fetch(
        &mut self,
        path: &str,
        max_len: u64,
    ) -> std::result::Result<Vec<u8>, FetchError> {
        let url = format!("{}/{path}", self.base);
        let mut resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Other(format!("{url}: {e}")))?;
        match resp.status().as_u16() {
            200 => {}
            403 | 404 => return Err(FetchError::NotFound),
            s => return Err(FetchError::Other(format!("{url}: HTTP {s}"))),
        }
        if resp.content_length().is_some_and(|l| l > max_len) {
            return Err(FetchError::TooLarge { limit: max_len });
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Other(format!("{url}: {e}")))?
        {
            if (out.len() + chunk.len()) as u64 > max_len {
                return Err(FetchError::TooLarge { limit: max_len });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// Artifacts by digest, resumable with `Range`.
#[derive(Debug, Clone)]
pub(crate) struct HttpArtifacts {
    pub(crate) client: reqwest::Client,
    pub(crate) server: String,
}

impl ArtifactSource for HttpArtifacts {
    async fn fetch(
        &self,
        sha256: &str,
        offset: u64,
        sink: &mut ChunkSink,
    ) -> std::result::Result<(), SourceError> {
        let url = format!("{}/api/v1/device/blobs/{sha256}", base(&self.server));
        let mut req = self
            .client
            .get(&url)
            .timeout(std::time::Duration::from_secs(3600));
        if offset > 0 {
            req = req.header("range", format!("bytes={offset}-"));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| SourceError::Transport(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        match (offset, status) {
            (0, 200) | (_, 206) => {}
            (_, 416) => return Ok(()), // nothing past the end: the sink's length check decides
            (_, s) => return Err(SourceError::Transport(format!("{url}: HTTP {s}"))),
        }
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SourceError::Transport(format!("{url}: {e}")))?
        {
            sink.write(&chunk)?;
        }
        Ok(())
    }
}

/// Sends engine reports to the server.
#[derive(Debug, Clone)]
pub(crate) struct HttpReporter {
    pub(crate) client: reqwest::Client,
    pub(crate) server: String,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Downloading => "downloading",
        Phase::Verifying => "verifying",
        Phase::Staging => "staging",
        Phase::Switching => "switching",
        Phase::SmokeTesting => "smoke_testing",
        Phase::Committing => "committing",
        Phase::RollingBack => "rolling_back",
        Phase::Installed => "installed",
        Phase::RolledBack => "rolled_back",
        Phase::Failed => "failed",
    }
}

impl HttpReporter {
    async fn send(&self, report: &WireReport) -> std::result::Result<(), String> {
        let url = format!("{}/api/v1/device/update-report", base(&self.server));
        let resp = self
            .client
            .post(&url)
            .json(report)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url}: HTTP {}", resp.status().as_u16()))
        }
    }
}

impl Reporter for HttpReporter {
    async fn report(&self, r: &UpdateReport) -> std::result::Result<(), String> {
        let outcome = match r.phase {
            Phase::Installed => Some("installed".to_owned()),
            _ => r.code.clone(),
        };
        let mut detail = r.detail.clone();
        if let Some(d) = &mut detail {
            d.truncate(bulwark_proto::MAX_DETAIL_LEN.min(d.len()));
            while !d.is_char_boundary(d.len()) {
                d.pop();
            }
        }
        self.send(&WireReport {
            release: r.release.clone(),
            phase: phase_name(r.phase).to_owned(),
            outcome,
            detail,
        })
        .await
    }
}

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// The director assigns nothing.
    NothingAssigned,
    /// The assigned release is already installed.
    UpToDate(String),
    /// The assigned release was rolled back on this device before; it is
    /// not tried again until another release is assigned.
    KeptBack(String),
    /// The engine reached a final state.
    Finished(FinalState),
    /// Verification refused the update (the attack code and why); reported.
    Refused {
        /// Stable code, e.g. `rollback`, `unlisted-target`.
        code: String,
        /// Why.
        reason: String,
    },
}

/// The update client of one enrolled device.
#[derive(Debug)]
pub struct UpdateClient {
    client: reqwest::Client,
    server: String,
    tuf_dir: PathBuf,
    engine: UpdateEngine,
}

impl UpdateClient {
    pub(crate) fn new(
        client: reqwest::Client,
        server: String,
        state_dir: &Path,
        install: InstallConfig,
    ) -> Result<Self> {
        let engine = UpdateEngine::open(install)
            .map_err(|e| Error::Protocol(format!("opening the update state: {e}")))?;
        Ok(Self {
            client,
            server,
            tuf_dir: state_dir.join("tuf"),
            engine,
        })
    }

    /// The update engine (its committed release, pending update).
    pub fn engine(&self) -> &UpdateEngine {
        &self.engine
    }

    fn fetcher(&self, repo: &str) -> HttpFetch {
        HttpFetch {
            client: self.client.clone(),
            base: format!("{}/api/v1/device/tuf/{repo}", base(&self.server)),
        }
    }

    fn artifacts(&self) -> HttpArtifacts {
        HttpArtifacts {
            client: self.client.clone(),
            server: self.server.clone(),
        }
    }

    fn reporter(&self) -> HttpReporter {
        HttpReporter {
            client: self.client.clone(),
            server: self.server.clone(),
        }
    }

    /// Opens a repository's trusted metadata, fetching root version 1 on
    /// first use when none was pinned.
    async fn updater(
        &self,
        repo: &str,
    ) -> std::result::Result<Updater<HttpFetch, DirMetadata>, (String, String)> {
        let mut local = DirMetadata::open(self.tuf_dir.join(repo))
            .map_err(|e| ("io".to_owned(), format!("{repo} metadata directory: {e}")))?;
        let mut fetch = self.fetcher(repo);
        if local.load("root").is_none() {
            let root = fetch
                .fetch("1.root.json", Limits::default().root_max)
                .await
                .map_err(|e| match e {
                    FetchError::NotFound => (
                        "no-repository".to_owned(),
                        format!("the {repo} repository has no root yet"),
                    ),
                    other => ("fetch".to_owned(), format!("{repo} 1.root.json: {other}")),
                })?;
            tracing::warn!(
                repo,
                "no pinned root: trusting root version 1 from the server on first use"
            );
            local
                .store("root", &root)
                .map_err(|e| ("io".to_owned(), e))?;
        }
        Updater::new(fetch, local, Limits::default())
            .map_err(|e| (e.kind().to_owned(), format!("{repo}: {e}")))
    }

    async fn refuse(&self, release: &str, code: &str, reason: &str) -> CycleOutcome {
        tracing::warn!(release, code, reason, "update refused");
        let report = WireReport {
            release: release
                .chars()
                .take(bulwark_proto::MAX_STRING_LEN)
                .collect(),
            phase: "refused".into(),
            outcome: Some(code.to_owned()),
            detail: Some(reason.chars().take(1024).collect()),
        };
        if let Err(e) = self.reporter().send(&report).await {
            tracing::warn!(error = %e, "could not report the refusal");
        }
        CycleOutcome::Refused {
            code: code.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// Finishes an interrupted update, then checks for and installs the
    /// assigned release.
    pub async fn cycle(&mut self, now: OffsetDateTime) -> Result<CycleOutcome> {
        let (src, rep) = (self.artifacts(), self.reporter());
        if let Some(done) = self
            .engine
            .resume(&src, &rep)
            .await
            .map_err(|e| Error::Protocol(format!("resuming the interrupted update: {e}")))?
        {
            tracing::info!(?done, "interrupted update finished");
        }
        // 1. The director: what this device must run.
        let mut director = match self.updater("director").await {
            Ok(u) => u,
            Err((code, reason)) if code == "no-repository" => {
                return Err(Error::Protocol(reason));
            }
            Err((code, reason)) => return Ok(self.refuse("director", &code, &reason).await),
        };
        if let Err(e) = director.refresh(now).await {
            return Ok(self
                .refuse("director", e.kind(), &format!("director metadata: {e}"))
                .await);
        }
        let assigned: Vec<(String, TargetFile)> = director
            .trusted_targets()
            .map(|t| t.signed().targets.clone().into_iter().collect())
            .unwrap_or_default();
        let Some((path, wanted)) = assigned.into_iter().next() else {
            return Ok(CycleOutcome::NothingAssigned);
        };
        let release_name = wanted
            .custom
            .as_ref()
            .and_then(|c| c.pointer("/bulwark/release"))
            .and_then(|v| v.as_str())
            .map_or_else(|| path.clone(), str::to_owned);
        if let Some(i) = self.engine.installed()
            && Some(i.sha256.as_str()) == wanted.sha256()
            && self.engine.pending().is_none()
        {
            return Ok(CycleOutcome::UpToDate(i.release.clone()));
        }
        if let Some(rb) = self.engine.rolled_back()
            && Some(rb.sha256.as_str()) == wanted.sha256()
            && self.engine.pending().is_none()
        {
            return Ok(CycleOutcome::KeptBack(rb.release.clone()));
        }
        // 2. The image repository: what release managers signed.
        let mut image = match self.updater("image").await {
            Ok(u) => u,
            Err((code, reason)) => {
                let code = if code == "no-repository" {
                    "unlisted-target".to_owned()
                } else {
                    code
                };
                return Ok(self.refuse(&release_name, &code, &reason).await);
            }
        };
        let listed = match image.target_info(&path, now).await {
            Ok(t) => t,
            Err(e) => {
                return Ok(self
                    .refuse(&release_name, e.kind(), &format!("image repository: {e}"))
                    .await);
            }
        };
        let Some(signed) = listed else {
            return Ok(self
                .refuse(
                    &release_name,
                    "unlisted-target",
                    &format!(
                        "the director assigns {path}, which the image repository does not list"
                    ),
                )
                .await);
        };
        // 3. Both must describe the same bytes.
        let same_hashes = !signed.hashes.is_empty()
            && signed
                .hashes
                .iter()
                .all(|(alg, h)| wanted.hashes.get(alg).is_none_or(|w| w == h))
            && signed.sha256().is_some()
            && signed.sha256() == wanted.sha256();
        if signed.length != wanted.length || !same_hashes {
            return Ok(self
                .refuse(
                    &release_name,
                    "arbitrary-software",
                    &format!(
                        "director and image repository disagree on {path}: length {} vs {}, sha256 {:?} vs {:?}",
                        wanted.length,
                        signed.length,
                        wanted.sha256(),
                        signed.sha256()
                    ),
                )
                .await);
        }
        let plan = match plan_from(&release_name, &path, &signed) {
            Ok(p) => p,
            Err(reason) => return Ok(self.refuse(&release_name, "malformed", &reason).await),
        };
        let done =
            self.engine.run(plan, &src, &rep).await.map_err(|e| {
                Error::Protocol(format!("update of {release_name} interrupted: {e}"))
            })?;
        Ok(CycleOutcome::Finished(done))
    }
}

/// The install plan from the image repository's (offline-signed) entry.
fn plan_from(release: &str, path: &str, t: &TargetFile) -> std::result::Result<UpdatePlan, String> {
    let b = t
        .custom
        .as_ref()
        .and_then(|c| c.get("bulwark"))
        .ok_or_else(|| format!("{path}: no bulwark install instructions in the signed metadata"))?;
    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let installer = match s("installer").as_deref() {
        Some("ab") => InstallerKind::Ab,
        Some("script") => InstallerKind::Script,
        Some("file") => InstallerKind::File {
            path: s("install_path")
                .map(PathBuf::from)
                .ok_or_else(|| format!("{path}: file installer without install_path"))?,
        },
        other => return Err(format!("{path}: unknown installer {other:?}")),
    };
    Ok(UpdatePlan {
        release: release.to_owned(),
        target: path.to_owned(),
        sha256: t
            .sha256()
            .ok_or_else(|| format!("{path}: no sha256"))?
            .to_owned(),
        length: t.length,
        installer,
        smoke_test: s("smoke_test"),
        smoke_timeout_secs: b
            .get("smoke_timeout_secs")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(60),
    })
}
