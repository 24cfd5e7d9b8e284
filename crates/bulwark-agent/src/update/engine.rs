//! [`UpdateEngine`]: drives one [`Pending`] update through the steps,
//! persisting each transition first.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::io;
use super::failpoint::FailPoint;
use super::fsutil::{Hasher, check_digest, hash_file, sync_dir};
use super::installer::{self, Switched};
use super::process::{self, Exit, suffix};
use super::state::{self, Failure, Pending, Persisted};
use super::{
    ArtifactSource, FinalState, InstallConfig, InstalledInfo, InstallerKind, Outcome, Phase,
    Reporter, SourceError, Step, UpdateError, UpdatePlan, UpdateReport,
};

/// The download is fsynced at least every this many bytes, so that a power
/// cut loses little. (Each sync stalls the disk writer, not the receiver:
/// see [`ChunkSink`].)
const SYNC_EVERY: u64 = 64 << 20;

/// Bytes handed to the writer thread at a time, and how many such buffers
/// may wait: bounds the memory in flight to about 1 MiB (the agent's RSS
/// target during an update is 16 MB).
const WRITE_BUF: usize = 256 << 10;
const WRITE_QUEUE: usize = 3;
/// The writer thread's stack: it only loops over write calls.
const WRITER_STACK: usize = 128 << 10;

/// Writes and fsyncs the partial download on its own thread, so receiving
/// and hashing overlap with the disk instead of waiting for it.
#[derive(Debug)]
struct Writer {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    handle: Option<std::thread::JoinHandle<std::io::Result<fs::File>>>,
    buf: Vec<u8>,
}

impl Writer {
    fn spawn(mut file: fs::File) -> Writer {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("download-writer".into())
            .stack_size(WRITER_STACK)
            .spawn(move || {
                let mut unsynced = 0u64;
                for chunk in rx {
                    file.write_all(&chunk)?;
                    unsynced += chunk.len() as u64;
                    if unsynced >= SYNC_EVERY {
                        unsynced = 0;
                        file.sync_data()?;
                    }
                }
                Ok(file)
            });
        Writer {
            tx: Some(tx),
            // Without a thread (spawn failed), `push` fails and the download
            // stops with an error instead of losing bytes.
            handle: spawned.ok(),
            buf: Vec::with_capacity(WRITE_BUF),
        }
    }

    /// Queues bytes; false when the writer thread has failed.
    fn push(&mut self, chunk: &[u8]) -> bool {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() < WRITE_BUF {
            return true;
        }
        self.send()
    }

    fn send(&mut self) -> bool {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BUF));
        match &self.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        }
    }

    /// Writes what is queued and gives the file back.
    fn finish(mut self) -> std::io::Result<fs::File> {
        let flushed = self.buf.is_empty() || self.send();
        drop(self.tx.take());
        let file = match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r?,
            _ => return Err(std::io::Error::other("the download writer thread panicked")),
        };
        if !flushed {
            return Err(std::io::Error::other("the download writer stopped"));
        }
        Ok(file)
    }
}

/// Where the sink's bytes go: the file itself until the first chunk is on
/// disk (so a crash "midway" has written something), then the writer thread.
#[derive(Debug)]
enum Out {
    File(fs::File),
    Thread(Writer),
    Gone,
}

/// How long [`UpdateEngine::open`] waits for the state directory's lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Receives an artifact's bytes from an [`ArtifactSource`]: appends them to
/// the partial download, hashes them, and refuses anything past the plan's
/// length.
#[derive(Debug)]
pub struct ChunkSink {
    out: Out,
    path: PathBuf,
    hasher: Hasher,
    limit: u64,
    sha256: String,
    wrote: bool,
    failpoint: Option<FailPoint>,
    failure: Option<UpdateError>,
}

impl ChunkSink {
    /// The offset of the next byte expected (bytes held so far).
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.offset())
    }

    /// Appends `chunk`. On an error the source must stop and return it; the
    /// engine keeps the real reason.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), SourceError> {
        if self.failure.is_some() {
            return Err(SourceError::SinkRefused);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.len() as u64 > self.remaining() {
            self.failure = Some(UpdateError::TooLong {
                sha256: self.sha256.clone(),
                limit: self.limit,
            });
            return Err(SourceError::SinkRefused);
        }
        let written = match &mut self.out {
            Out::File(f) => f.write_all(chunk),
            Out::Thread(w) => {
                if w.push(chunk) {
                    Ok(())
                } else {
                    // The writer failed: collect its error.
                    match std::mem::replace(&mut self.out, Out::Gone) {
                        Out::Thread(w) => w.finish().map(|_| ()),
                        _ => Ok(()),
                    }
                    .and(Err(std::io::Error::other("the download writer stopped")))
                }
            }
            Out::Gone => Err(std::io::Error::other("the download writer stopped")),
        };
        if let Err(e) = written {
            self.failure = Some(io(Step::Download, "writing", &self.path)(e));
            return Err(SourceError::SinkRefused);
        }
        self.hasher.update(chunk);
        if !self.wrote {
            // "Crash midway": some bytes of this run are on disk.
            self.wrote = true;
            if let Err(e) = FailPoint::check(self.failpoint, Step::Download) {
                self.failure = Some(e);
                return Err(SourceError::SinkRefused);
            }
            if let Out::File(f) = std::mem::replace(&mut self.out, Out::Gone) {
                self.out = Out::Thread(Writer::spawn(f));
            }
        }
        Ok(())
    }

    /// Writes everything received and makes it durable.
    fn finish(&mut self) -> std::io::Result<()> {
        let file = match std::mem::replace(&mut self.out, Out::Gone) {
            Out::File(f) => f,
            Out::Thread(w) => w.finish()?,
            Out::Gone => return Err(std::io::Error::other("the download writer stopped")),
        };
        file.sync_all()
    }
}

/// The crash-safe update engine. See the [module docs](super).
///
/// Holds an exclusive lock on `state_dir/update.lock` while it exists.
#[derive(Debug)]
pub struct UpdateEngine {
    cfg: InstallConfig,
    state: Persisted,
    failpoint: Option<FailPoint>,
    /// The digest computed while downloading, so verify need not re-read.
    digest: Option<(String, (u64, String))>,
    _lock: fs::File,
}

/// What one step leads to: `None` = go on with the persisted next step.
type Flow = Result<Option<FinalState>, UpdateError>;

async fn blocking<T: Send + 'static>(
    step: Step,
    f: impl FnOnce() -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, UpdateError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UpdateError::Io {
            step,
            action: "running blocking task",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?
}

fn final_report(release: &str, phase: Phase, failure: Option<&Failure>) -> UpdateReport {
    let mut r = UpdateReport::new(release, phase);
    r.outcome = Some(if phase == Phase::Installed {
        Outcome::Success
    } else {
        Outcome::Failure
    });
    if let Some(f) = failure {
        r.code = Some(f.code.clone());
        r.detail = Some(f.detail.clone());
    }
    r
}

impl UpdateEngine {
    /// Opens (creating, 0700) the state directory, locks it and loads
    /// `update-state.json`. Arms the [`super::FAILPOINT_ENV`] fail point if
    /// set.
    pub fn open(cfg: InstallConfig) -> Result<Self, UpdateError> {
        let dir = &cfg.state_dir;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(Step::Download, "creating", dir))?;
        let lock_path = dir.join("update.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(Step::Download, "opening", &lock_path))?;
        // A process being spawned elsewhere in this program holds a copy of
        // every descriptor between fork and exec, so a lock released just now
        // can look taken for a moment: retry briefly before giving up.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(UpdateError::Locked { path: lock_path });
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(io(Step::Download, "locking", &lock_path)(e));
                }
            }
        }
        let state = state::load(dir)?;
        Ok(Self {
            cfg,
            state,
            failpoint: FailPoint::from_env(),
            digest: None,
            _lock: lock,
        })
    }

    /// Test support: make the engine stop with [`UpdateError::FailPoint`] at
    /// `step`, leaving the state on disk as a crash there would.
    #[must_use]
    pub fn with_failpoint(mut self, step: Step) -> Self {
        self.failpoint = Some(FailPoint::in_process(step));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &InstallConfig {
        &self.cfg
    }

    /// The interrupted update, if any; [`Self::resume`] finishes it.
    pub fn pending(&self) -> Option<&UpdatePlan> {
        self.state.pending.as_ref().map(|p| &p.plan)
    }

    /// The step the interrupted update will run next.
    pub fn pending_step(&self) -> Option<Step> {
        self.state.pending.as_ref().map(|p| p.step)
    }

    /// What is committed now.
    pub fn installed(&self) -> Option<&InstalledInfo> {
        self.state.installed.as_ref()
    }

    /// The last release rolled back (not retried while it stays assigned).
    pub fn rolled_back(&self) -> Option<&InstalledInfo> {
        self.state.rolled_back.as_ref()
    }

    /// What was committed before [`Self::installed`].
    pub fn previous(&self) -> Option<&InstalledInfo> {
        self.state.previous.as_ref()
    }

    /// Final reports the server has not accepted yet, oldest first.
    pub fn unreported(&self) -> &[UpdateReport] {
        &self.state.unreported
    }

    /// Sends the queued final reports, oldest first, stopping at the first
    /// failure. Returns how many are still queued.
    pub async fn flush_reports(&mut self, rep: &impl Reporter) -> Result<usize, UpdateError> {
        while let Some(r) = self.state.unreported.first().cloned() {
            match rep.report(&r).await {
                Ok(()) => {
                    self.state.unreported.remove(0);
                    self.save(Step::Commit)?;
                }
                Err(e) => {
                    tracing::warn!(release = %r.release, error = %e, "final update report not sent; will retry");
                    break;
                }
            }
        }
        Ok(self.state.unreported.len())
    }

    /// Runs `plan` to a final state, or resumes it when it is the pending
    /// plan. A different pending plan that has not switched yet is
    /// superseded (reported Failed); one past the switch makes this return
    /// [`UpdateError::Busy`].
    ///
    /// `Ok` means a final state was reached and reported (or queued).
    /// `Err` means the update is still pending (source unreachable, I/O
    /// error, fail point): call [`Self::resume`] later.
    pub async fn run(
        &mut self,
        plan: UpdatePlan,
        src: &impl ArtifactSource,
        rep: &impl Reporter,
    ) -> Result<FinalState, UpdateError> {
        self.flush_quietly(rep).await;
        if let Err(e) = plan.validate() {
            let f = Failure::from(&e);
            self.conclude(final_report(&plan.release, Phase::Failed, Some(&f)), rep)
                .await?;
            return Ok(FinalState::Failed {
                release: plan.release,
                code: f.code,
                reason: f.detail,
            });
        }
        if let Some(p) = &self.state.pending
            && p.plan != plan
        {
            if !p.step.before_switch() {
                return Err(UpdateError::Busy {
                    pending: p.plan.release.clone(),
                });
            }
            let old = p.plan.clone();
            let f = Failure::from(&UpdateError::Superseded {
                by: plan.release.clone(),
            });
            self.state.pending = None;
            self.cleanup(&old);
            self.conclude(final_report(&old.release, Phase::Failed, Some(&f)), rep)
                .await?;
        }
        if self.state.pending.is_none() {
            self.sweep_downloads();
            if let Some(info) = self.state.installed.clone()
                && info.release == plan.release
                && info.sha256 == plan.sha256
            {
                // Already there: tell the server the truth again.
                self.conclude(final_report(&plan.release, Phase::Installed, None), rep)
                    .await?;
                return Ok(FinalState::Installed(info));
            }
            self.state.pending = Some(Pending::new(plan));
            self.save(Step::Download)?;
        }
        self.drive(src, rep).await
    }

    /// Sends queued reports, then finishes the interrupted update, if any.
    pub async fn resume(
        &mut self,
        src: &impl ArtifactSource,
        rep: &impl Reporter,
    ) -> Result<Option<FinalState>, UpdateError> {
        self.flush_quietly(rep).await;
        if self.state.pending.is_none() {
            return Ok(None);
        }
        self.drive(src, rep).await.map(Some)
    }

    async fn drive(
        &mut self,
        src: &impl ArtifactSource,
        rep: &impl Reporter,
    ) -> Result<FinalState, UpdateError> {
        loop {
            let p = self.current()?.clone();
            let done = match p.step {
                Step::Download => self.download(&p, src, rep).await?,
                Step::Verify => self.verify(&p, rep).await?,
                Step::Stage => self.stage(&p, rep).await?,
                Step::Switch => self.switch(&p, rep).await?,
                Step::Smoke => self.smoke(&p, rep).await?,
                Step::Commit => self.commit(&p, rep).await?,
                Step::Rollback => self.rollback(&p, rep).await?,
            };
            if let Some(done) = done {
                return Ok(done);
            }
        }
    }

    // ------------------------------------------------------------ steps --

    async fn download(
        &mut self,
        p: &Pending,
        src: &impl ArtifactSource,
        rep: &impl Reporter,
    ) -> Flow {
        let plan = &p.plan;
        self.announce(rep, plan, Step::Download).await;
        if plan.installer == InstallerKind::Script {
            for name in installer::REQUIRED_HOOKS {
                let path = self.cfg.hooks_dir.join(name);
                if !installer::is_executable(&path) {
                    let e = UpdateError::MissingHook {
                        step: Step::Download,
                        path,
                    };
                    return self.fail(p, &e, rep).await;
                }
            }
        }
        let dir = self.download_dir();
        fs::create_dir_all(&dir).map_err(io(Step::Download, "creating", &dir))?;
        let part = self.part_path(plan);
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(io(Step::Download, "opening", &part))?;
        let have = file
            .metadata()
            .map_err(io(Step::Download, "reading", &part))?
            .len();
        let mut hasher = if have > plan.length {
            tracing::warn!(path = %part.display(), have, "partial download is too long; starting over");
            file.set_len(0)
                .map_err(io(Step::Download, "truncating", &part))?;
            Hasher::new()
        } else if have > 0 {
            let path = part.clone();
            blocking(Step::Download, move || hash_file(Step::Download, &path)).await?
        } else {
            Hasher::new()
        };
        if hasher.len() < plan.length {
            let offset = hasher.len();
            let mut sink = ChunkSink {
                out: Out::File(file),
                path: part.clone(),
                hasher,
                limit: plan.length,
                sha256: plan.sha256.clone(),
                wrote: false,
                failpoint: self.failpoint,
                failure: None,
            };
            let fetched = src.fetch(&plan.sha256, offset, &mut sink).await;
            let synced = sink.finish();
            if let Some(e) = sink.failure.take() {
                if matches!(e, UpdateError::TooLong { .. }) {
                    let _ = fs::remove_file(&part);
                    return self.fail(p, &e, rep).await;
                }
                return Err(e);
            }
            fetched.map_err(|source| UpdateError::Source {
                sha256: plan.sha256.clone(),
                offset,
                source,
            })?;
            synced.map_err(io(Step::Download, "syncing", &part))?;
            if sink.hasher.len() < plan.length {
                return Err(UpdateError::Truncated {
                    sha256: plan.sha256.clone(),
                    got: sink.hasher.len(),
                    expected: plan.length,
                });
            }
            hasher = sink.hasher;
        } else {
            file.sync_all()
                .map_err(io(Step::Download, "syncing", &part))?;
        }
        self.digest = Some((plan.sha256.clone(), hasher.finish()));
        self.advance(Step::Verify, |_| {})
    }

    async fn verify(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        FailPoint::check(self.failpoint, Step::Verify)?;
        let plan = &p.plan;
        self.announce(rep, plan, Step::Verify).await;
        let part = self.part_path(plan);
        let verified = self.verified_path(plan);
        if !part.is_file() {
            if verified.is_file() {
                // Renamed just before a crash; stage checks the digest again.
                return self.enter_stage(p);
            }
            return self.advance(Step::Download, |_| {});
        }
        let got = match self.digest.take() {
            Some((sha, got)) if sha == plan.sha256 => got,
            _ => {
                let path = part.clone();
                blocking(Step::Verify, move || hash_file(Step::Verify, &path))
                    .await?
                    .finish()
            }
        };
        if let Err(e) = check_digest(Step::Verify, &part, got, plan.length, &plan.sha256) {
            let _ = fs::remove_file(&part);
            return self.fail(p, &e, rep).await;
        }
        fs::rename(&part, &verified).map_err(io(Step::Verify, "renaming", &verified))?;
        sync_dir(Step::Verify, &self.download_dir())?;
        self.enter_stage(p)
    }

    /// Records what stage and rollback need to know about the device as it
    /// is before anything changes, together with the move to Stage.
    fn enter_stage(&mut self, p: &Pending) -> Flow {
        match &p.plan.installer {
            InstallerKind::File { path } => {
                let had = path.is_file();
                self.advance(Step::Stage, |q| q.had_previous = Some(had))
            }
            InstallerKind::Ab => {
                let current = installer::ab_current(&self.cfg.install_root)?;
                let slot = installer::ab_inactive(current.as_deref());
                self.advance(Step::Stage, |q| {
                    q.slot = Some(slot.to_owned());
                    q.previous_slot = current;
                })
            }
            InstallerKind::Script => self.advance(Step::Stage, |_| {}),
        }
    }

    async fn stage(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        let plan = p.plan.clone();
        self.announce(rep, &plan, Step::Stage).await;
        let verified = self.verified_path(&plan);
        if !verified.is_file() {
            tracing::warn!(path = %verified.display(), "verified artifact is gone; downloading again");
            return self.advance(Step::Download, |_| {});
        }
        let fp = self.failpoint;
        let midway = move || FailPoint::check(fp, Step::Stage);
        let staged = match &plan.installer {
            InstallerKind::File { path } => {
                let path = path.clone();
                blocking(Step::Stage, move || {
                    installer::file_stage(&verified, &path, &plan, &midway)
                })
                .await
            }
            InstallerKind::Ab => {
                let slot = p
                    .slot
                    .clone()
                    .ok_or_else(|| self.bad_state("no A/B slot chosen"))?;
                let root = self.cfg.install_root.clone();
                blocking(Step::Stage, move || {
                    installer::ab_stage(&root, &slot, &verified, &plan, &midway)
                })
                .await
            }
            InstallerKind::Script => {
                // The install hook reads the verified file itself: check it.
                blocking(Step::Stage, move || {
                    let got = hash_file(Step::Stage, &verified)?.finish();
                    check_digest(Step::Stage, &verified, got, plan.length, &plan.sha256)?;
                    midway()
                })
                .await
            }
        };
        match staged {
            Ok(()) => self.advance(Step::Switch, |_| {}),
            Err(e @ UpdateError::FailPoint(_)) => Err(e),
            Err(e) => {
                if matches!(
                    e,
                    UpdateError::HashMismatch { .. } | UpdateError::LengthMismatch { .. }
                ) {
                    let _ = fs::remove_file(self.verified_path(&p.plan));
                }
                self.fail(p, &e, rep).await
            }
        }
    }

    async fn switch(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        let plan = &p.plan;
        self.announce(rep, plan, Step::Switch).await;
        let switched = match &plan.installer {
            InstallerKind::File { path } => {
                let (path, plan, had) =
                    (path.clone(), plan.clone(), p.had_previous.unwrap_or(false));
                blocking(Step::Switch, move || {
                    installer::file_switch(&path, &plan, had)
                })
                .await
            }
            InstallerKind::Ab => {
                let slot = p
                    .slot
                    .as_deref()
                    .ok_or_else(|| self.bad_state("no A/B slot chosen"))?;
                installer::ab_point(&self.cfg.install_root, Some(slot), Step::Switch)
                    .map(|()| Switched::Done)
            }
            InstallerKind::Script => {
                let artifact = self.verified_path(plan);
                self.run_hook("install", Step::Switch, p, &[artifact.as_path()])
                    .await
                    .map(|()| Switched::Done)
            }
        };
        match switched {
            Ok(Switched::Done) => {
                FailPoint::check(self.failpoint, Step::Switch)?;
                self.advance(Step::Smoke, |_| {})
            }
            Ok(Switched::Restage) => {
                tracing::warn!("staged file is gone and the switch did not happen; staging again");
                self.advance(Step::Stage, |_| {})
            }
            Err(e @ UpdateError::FailPoint(_)) => Err(e),
            Err(e) => self.start_rollback(&e),
        }
    }

    async fn smoke(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        let attempts = p.attempts.saturating_add(1);
        self.advance(Step::Smoke, |q| q.attempts = attempts)?;
        FailPoint::check(self.failpoint, Step::Smoke)?;
        self.announce(rep, &p.plan, Step::Smoke).await;
        let max = self.cfg.max_boot_attempts;
        if attempts > max {
            return self.start_rollback(&UpdateError::BootAttemptsExhausted { attempts, max });
        }
        match self.smoke_test(p).await {
            Ok(()) => self.advance(Step::Commit, |_| {}),
            Err(e) => {
                tracing::warn!(release = %p.plan.release, error = %e, "smoke test failed; rolling back");
                self.start_rollback(&e)
            }
        }
    }

    async fn commit(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        FailPoint::check(self.failpoint, Step::Commit)?;
        let plan = &p.plan;
        self.announce(rep, plan, Step::Commit).await;
        if plan.installer == InstallerKind::Script
            && installer::is_executable(&self.cfg.hooks_dir.join("commit"))
        {
            let artifact = self.verified_path(plan);
            if let Err(e) = self
                .run_hook("commit", Step::Commit, p, &[artifact.as_path()])
                .await
            {
                return self.start_rollback(&e);
            }
        }
        let info = InstalledInfo {
            release: plan.release.clone(),
            sha256: plan.sha256.clone(),
            slot: p.slot.clone(),
        };
        if let Some(old) = self.state.installed.replace(info.clone()) {
            self.state.previous = Some(old);
        }
        self.state.pending = None;
        self.state.rolled_back = None;
        self.conclude(final_report(&plan.release, Phase::Installed, None), rep)
            .await?;
        self.cleanup(plan);
        tracing::info!(release = %plan.release, "update installed");
        Ok(Some(FinalState::Installed(info)))
    }

    async fn rollback(&mut self, p: &Pending, rep: &impl Reporter) -> Flow {
        FailPoint::check(self.failpoint, Step::Rollback)?;
        let plan = &p.plan;
        self.announce(rep, plan, Step::Rollback).await;
        match &plan.installer {
            InstallerKind::File { path } => {
                let (path, had) = (path.clone(), p.had_previous.unwrap_or(false));
                blocking(Step::Rollback, move || installer::file_rollback(&path, had)).await?;
            }
            InstallerKind::Ab => installer::ab_point(
                &self.cfg.install_root,
                p.previous_slot.as_deref(),
                Step::Rollback,
            )?,
            InstallerKind::Script => {
                let artifact = self.verified_path(plan);
                self.run_hook("rollback", Step::Rollback, p, &[artifact.as_path()])
                    .await?;
            }
        }
        let failure = p.failure.clone().unwrap_or_else(|| Failure {
            code: "unknown".into(),
            detail: "rolled back without a recorded reason".into(),
        });
        self.state.pending = None;
        self.state.rolled_back = Some(InstalledInfo {
            release: plan.release.clone(),
            sha256: plan.sha256.clone(),
            slot: None,
        });
        self.conclude(
            final_report(&plan.release, Phase::RolledBack, Some(&failure)),
            rep,
        )
        .await?;
        self.cleanup(plan);
        tracing::warn!(release = %plan.release, reason = %failure.detail, "update rolled back");
        Ok(Some(FinalState::RolledBack {
            release: plan.release.clone(),
            code: failure.code,
            reason: failure.detail,
        }))
    }

    // ---------------------------------------------------------- helpers --

    /// Ends an update before the switch: nothing on the device changed.
    async fn fail(&mut self, p: &Pending, e: &UpdateError, rep: &impl Reporter) -> Flow {
        tracing::warn!(release = %p.plan.release, error = %e, "update failed");
        let f = Failure::from(e);
        self.state.pending = None;
        self.conclude(final_report(&p.plan.release, Phase::Failed, Some(&f)), rep)
            .await?;
        self.cleanup(&p.plan);
        Ok(Some(FinalState::Failed {
            release: p.plan.release.clone(),
            code: f.code,
            reason: f.detail,
        }))
    }

    fn start_rollback(&mut self, e: &UpdateError) -> Flow {
        let f = Failure::from(e);
        self.advance(Step::Rollback, |q| q.failure = Some(f))
    }

    /// Persists `step` as the next step (after `f` updates the pending
    /// record).
    fn advance(&mut self, step: Step, f: impl FnOnce(&mut Pending)) -> Flow {
        let dir = self.cfg.state_dir.clone();
        let p = self
            .state
            .pending
            .as_mut()
            .ok_or_else(|| no_pending(&dir))?;
        p.step = step;
        f(p);
        self.save(step)?;
        Ok(None)
    }

    /// Queues a final report together with the state change that produced
    /// it (one atomic write), then tries to send the queue.
    async fn conclude(
        &mut self,
        report: UpdateReport,
        rep: &impl Reporter,
    ) -> Result<(), UpdateError> {
        self.state.unreported.push(report);
        self.save(Step::Commit)?;
        self.flush_quietly(rep).await;
        Ok(())
    }

    async fn flush_quietly(&mut self, rep: &impl Reporter) {
        if let Err(e) = self.flush_reports(rep).await {
            tracing::warn!(error = %e, "cannot update the report queue");
        }
    }

    async fn announce(&self, rep: &impl Reporter, plan: &UpdatePlan, step: Step) {
        tracing::info!(release = %plan.release, %step, "update step");
        let r = UpdateReport::new(&plan.release, step.phase());
        if let Err(e) = rep.report(&r).await {
            tracing::debug!(error = %e, "progress report not sent");
        }
    }

    fn save(&self, step: Step) -> Result<(), UpdateError> {
        state::save(&self.cfg.state_dir, &self.state, step)
    }

    fn current(&self) -> Result<&Pending, UpdateError> {
        self.state
            .pending
            .as_ref()
            .ok_or_else(|| no_pending(&self.cfg.state_dir))
    }

    fn bad_state(&self, reason: &str) -> UpdateError {
        UpdateError::BadState {
            path: state::state_path(&self.cfg.state_dir),
            reason: reason.to_owned(),
        }
    }

    fn download_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("download")
    }

    fn part_path(&self, plan: &UpdatePlan) -> PathBuf {
        self.download_dir().join(format!("{}.part", plan.sha256))
    }

    fn verified_path(&self, plan: &UpdatePlan) -> PathBuf {
        self.download_dir()
            .join(format!("{}.verified", plan.sha256))
    }

    /// Removes the files an update left behind (best effort).
    fn cleanup(&self, plan: &UpdatePlan) {
        let mut junk = vec![self.part_path(plan), self.verified_path(plan)];
        if let InstallerKind::File { path } = &plan.installer {
            for s in [".bulwark-new", ".bulwark-rb", ".bulwark-prev.tmp"] {
                junk.push(installer::with_suffix(path, s));
            }
        }
        for path in junk {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove"),
            }
        }
    }

    /// With nothing pending, nothing in `download/` is needed.
    fn sweep_downloads(&self) {
        if let Ok(entries) = fs::read_dir(self.download_dir()) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    fn env(&self, p: &Pending) -> Vec<(&'static str, std::ffi::OsString)> {
        let plan = &p.plan;
        let mut env = vec![
            ("BULWARK_RELEASE", plan.release.clone().into()),
            ("BULWARK_SHA256", plan.sha256.clone().into()),
            (
                "BULWARK_ARTIFACT",
                self.verified_path(plan).into_os_string(),
            ),
        ];
        match &plan.installer {
            InstallerKind::File { path } => env.push(("BULWARK_SLOT", path.clone().into())),
            InstallerKind::Ab => {
                if let Some(dir) = self.slot_dir(p) {
                    env.push(("BULWARK_SLOT", dir.into_os_string()));
                }
            }
            InstallerKind::Script => {}
        }
        env
    }

    fn slot_dir(&self, p: &Pending) -> Option<PathBuf> {
        p.slot
            .as_deref()
            .map(|s| installer::ab_dir(&self.cfg.install_root).join(s))
    }

    async fn smoke_test(&self, p: &Pending) -> Result<(), UpdateError> {
        let plan = &p.plan;
        let hook = self.cfg.hooks_dir.join("smoke");
        let mut cmd = match (&plan.smoke_test, &plan.installer) {
            (Some(line), _) => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(line);
                c
            }
            (None, InstallerKind::Script) if installer::is_executable(&hook) => {
                tokio::process::Command::new(&hook)
            }
            _ => return Ok(()),
        };
        let cwd = match plan.installer {
            InstallerKind::Ab => self
                .slot_dir(p)
                .unwrap_or_else(|| self.cfg.state_dir.clone()),
            _ => self.cfg.state_dir.clone(),
        };
        cmd.current_dir(cwd).envs(self.env(p));
        let secs = plan.smoke_timeout_secs;
        match process::run(cmd, Duration::from_secs(secs)).await {
            Ok(Exit::Success) => Ok(()),
            Ok(Exit::Failed { status, tail }) => Err(UpdateError::SmokeFailed {
                detail: format!("{status}{}", suffix(&tail)),
            }),
            Ok(Exit::TimedOut { tail }) => Err(UpdateError::SmokeTimeout {
                secs,
                tail: suffix(&tail),
            }),
            Err(e) => Err(UpdateError::SmokeFailed {
                detail: format!("could not be started: {e}"),
            }),
        }
    }

    async fn run_hook(
        &self,
        name: &str,
        step: Step,
        p: &Pending,
        args: &[&Path],
    ) -> Result<(), UpdateError> {
        let path = self.cfg.hooks_dir.join(name);
        if !installer::is_executable(&path) {
            return Err(UpdateError::MissingHook { step, path });
        }
        let mut cmd = tokio::process::Command::new(&path);
        cmd.args(args)
            .current_dir(&self.cfg.state_dir)
            .envs(self.env(p));
        let secs = self.cfg.hook_timeout_secs;
        let detail = match process::run(cmd, Duration::from_secs(secs)).await {
            Ok(Exit::Success) => return Ok(()),
            Ok(Exit::Failed { status, tail }) => format!("{status}{}", suffix(&tail)),
            Ok(Exit::TimedOut { tail }) => format!("timed out after {secs}s{}", suffix(&tail)),
            Err(e) => format!("could not be started: {e}"),
        };
        Err(UpdateError::HookFailed { step, path, detail })
    }
}

fn no_pending(dir: &Path) -> UpdateError {
    UpdateError::BadState {
        path: state::state_path(dir),
        reason: "no update is pending".into(),
    }
}
