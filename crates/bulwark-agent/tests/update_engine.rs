//! In-process tests of the update engine: every step × installer × smoke
//! outcome with a simulated crash (fail point) and a resume, plus the
//! verification, hook, boot-counting and reporting edge cases.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bulwark_agent::update::{
    ArtifactSource, ChunkSink, FinalState, InstallConfig, InstallerKind, Outcome, Phase,
    Reporter, STATE_FILE, SourceError, Step, UpdateEngine, UpdateError, UpdatePlan, UpdateReport,
};

// ------------------------------------------------------------ fixtures ---

fn artifact(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `data` from any offset, in `chunk`-sized pieces, then `extra`
/// bytes the plan does not allow.
struct MemSource {
    data: Vec<u8>,
    extra: usize,
    chunk: usize,
    /// Stop early after this many bytes (simulates a dropped connection).
    cut_at: Option<usize>,
    offsets: Mutex<Vec<u64>>,
}

impl MemSource {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data,
            extra: 0,
            chunk: 64 * 1024,
            cut_at: None,
            offsets: Mutex::new(Vec::new()),
        }
    }

    fn offsets(&self) -> Vec<u64> {
        self.offsets.lock().unwrap().clone()
    }
}

impl ArtifactSource for MemSource {
    async fn fetch(
        &self,
        _sha256: &str,
        offset: u64,
        sink: &mut ChunkSink,
    ) -> Result<(), SourceError> {
        self.offsets.lock().unwrap().push(offset);
        let mut body = self.data[offset as usize..].to_vec();
        body.extend(std::iter::repeat_n(0xAAu8, self.extra));
        if let Some(cut) = self.cut_at {
            body.truncate(cut.saturating_sub(offset as usize));
        }
        for chunk in body.chunks(self.chunk) {
            sink.write(chunk)?;
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}

#[derive(Default)]
struct MemReporter {
    reports: Mutex<Vec<UpdateReport>>,
    down: AtomicBool,
}

impl MemReporter {
    fn all(&self) -> Vec<UpdateReport> {
        self.reports.lock().unwrap().clone()
    }

    fn finals(&self) -> Vec<UpdateReport> {
        self.all()
            .into_iter()
            .filter(|r| r.phase.is_final())
            .collect()
    }
}

impl Reporter for MemReporter {
    async fn report(&self, report: &UpdateReport) -> Result<(), String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("server unreachable".into());
        }
        self.reports.lock().unwrap().push(report.clone());
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    File,
    Ab,
    Script,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Smoke {
    Pass,
    Fail,
    Timeout,
}

impl Smoke {
    fn command(self) -> &'static str {
        match self {
            Smoke::Pass => "true",
            Smoke::Fail => "echo 'self test: boom' >&2; exit 3",
            Smoke::Timeout => "echo hanging >&2; sleep 30",
        }
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cfg: InstallConfig,
}

fn write_hook(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&hooks).unwrap();
    // A toy "external installer": live + live.sha, previous kept as prev.
    let s = root.join("script");
    let s = s.display();
    write_hook(
        &hooks,
        "install",
        &format!(
            r#"mkdir -p {s}
if [ "$(cat {s}/live.sha 2>/dev/null)" != "$BULWARK_SHA256" ]; then
  if [ -f {s}/live ]; then cp {s}/live {s}/prev; cp {s}/live.sha {s}/prev.sha; else rm -f {s}/prev {s}/prev.sha; fi
fi
test "$1" = "$BULWARK_ARTIFACT"
cp "$1" {s}/live.tmp && mv {s}/live.tmp {s}/live
echo "$BULWARK_SHA256" > {s}/live.sha"#
        ),
    );
    write_hook(
        &hooks,
        "rollback",
        &format!(
            r#"if [ -f {s}/prev ]; then cp {s}/prev {s}/live.tmp; mv {s}/live.tmp {s}/live; cp {s}/prev.sha {s}/live.sha
else rm -f {s}/live {s}/live.sha; fi"#
        ),
    );
    write_hook(
        &hooks,
        "commit",
        &format!(r#"echo "$BULWARK_RELEASE" >> {s}/committed.log"#),
    );
    let cfg = InstallConfig::new(dir.path().join("state"), &root, &hooks);
    Fx {
        root,
        cfg,
        _dir: dir,
    }
}

impl Fx {
    fn installer(&self, kind: Kind) -> InstallerKind {
        match kind {
            Kind::File => InstallerKind::File {
                path: self.root.join("opt/fw.bin"),
            },
            Kind::Ab => InstallerKind::Ab,
            Kind::Script => InstallerKind::Script,
        }
    }

    fn plan(&self, kind: Kind, release: &str, data: &[u8], smoke: Option<&str>) -> UpdatePlan {
        UpdatePlan {
            release: release.into(),
            target: release.replace('@', "/"),
            sha256: sha256_hex(data),
            length: data.len() as u64,
            installer: self.installer(kind),
            smoke_test: smoke.map(str::to_owned),
            smoke_timeout_secs: 1,
        }
    }

    /// The bytes that are live now for this installer.
    fn live(&self, kind: Kind) -> Option<Vec<u8>> {
        let p = match kind {
            Kind::File => self.root.join("opt/fw.bin"),
            Kind::Ab => self.root.join("ab/current/image"),
            Kind::Script => self.root.join("script/live"),
        };
        std::fs::read(p).ok()
    }

    fn open(&self) -> UpdateEngine {
        UpdateEngine::open(self.cfg.clone()).unwrap_or_else(|e| panic!("{e}: {}", std::backtrace::Backtrace::force_capture()))
    }
}

async fn install(fx: &Fx, kind: Kind, release: &str, data: &[u8]) {
    let mut eng = fx.open();
    let rep = MemReporter::default();
    let got = eng
        .run(
            fx.plan(kind, release, data, Some("true")),
            &MemSource::new(data.to_vec()),
            &rep,
        )
        .await
        .unwrap();
    assert!(matches!(got, FinalState::Installed(_)), "{got:?}");
}

// -------------------------------------------------------------- matrix ---

/// Installs v1, then v2 with a crash at `step`, reopens, resumes, and checks
/// the end state against `smoke`.
async fn crash_and_resume(kind: Kind, smoke: Smoke, step: Step) {
    let ctx = format!("{kind:?}/{smoke:?}/crash at {step}");
    let fx = fixture();
    let v1 = artifact(1, 150 * 1024);
    let v2 = artifact(2, 200 * 1024);
    install(&fx, kind, "fw@1", &v1).await;
    let plan = fx.plan(kind, "fw@2", &v2, Some(smoke.command()));
    let src = MemSource::new(v2.clone());
    let rep = MemReporter::default();

    let eng = fx.open().with_failpoint(step);
    let mut eng = eng;
    let first = eng.run(plan.clone(), &src, &rep).await;
    drop(eng);
    let outcome = match first {
        Err(UpdateError::FailPoint(s)) => {
            assert_eq!(s, step, "{ctx}");
            // The crash left a pending update and verified bytes live.
            let live = fx.live(kind).unwrap();
            assert!(live == v1 || live == v2, "{ctx}: live bytes are neither release");
            let state = std::fs::read_to_string(fx.cfg.state_dir.join(STATE_FILE)).unwrap();
            assert!(state.contains("\"pending\": {"), "{ctx}: {state}");
            let mut eng = fx.open();
            assert_eq!(eng.pending(), Some(&plan), "{ctx}");
            let done = eng.resume(&src, &rep).await.unwrap();
            assert!(eng.pending().is_none(), "{ctx}");
            if step == Step::Download {
                let offsets = src.offsets();
                assert!(
                    offsets.len() == 2 && offsets[1] > 0,
                    "{ctx}: resume did not continue the download: {offsets:?}"
                );
            }
            done.unwrap()
        }
        Ok(done) => {
            // The fail point lies on a path this outcome does not take.
            assert!(
                matches!(
                    (smoke, step),
                    (Smoke::Pass, Step::Rollback) | (Smoke::Fail | Smoke::Timeout, Step::Commit)
                ),
                "{ctx}: fail point did not fire: {done:?}"
            );
            done
        }
        Err(e) => panic!("{ctx}: {e}"),
    };

    let eng = fx.open();
    let finals = rep.finals();
    let last = finals.last().unwrap_or_else(|| panic!("{ctx}: no final report"));
    assert_eq!(last.release, "fw@2", "{ctx}");
    match smoke {
        Smoke::Pass => {
            let FinalState::Installed(info) = &outcome else {
                panic!("{ctx}: {outcome:?}")
            };
            assert_eq!(info.sha256, plan.sha256, "{ctx}");
            assert_eq!(fx.live(kind).unwrap(), v2, "{ctx}");
            assert_eq!(eng.installed().unwrap().release, "fw@2", "{ctx}");
            assert_eq!(eng.previous().unwrap().release, "fw@1", "{ctx}");
            assert_eq!(last.phase, Phase::Installed, "{ctx}");
            assert_eq!(last.outcome, Some(Outcome::Success), "{ctx}");
            if kind == Kind::File {
                let prev = std::fs::read(fx.root.join("opt/fw.bin.bulwark-prev")).unwrap();
                assert_eq!(prev, v1, "{ctx}: previous version not kept");
            }
            if kind == Kind::Script {
                let log = std::fs::read_to_string(fx.root.join("script/committed.log")).unwrap();
                assert!(log.ends_with("fw@2\n"), "{ctx}: {log}");
            }
        }
        Smoke::Fail | Smoke::Timeout => {
            let FinalState::RolledBack { code, reason, .. } = &outcome else {
                panic!("{ctx}: {outcome:?}")
            };
            if smoke == Smoke::Fail {
                assert_eq!(code, "smoke-failed", "{ctx}");
                assert_eq!(
                    reason, "smoke test exited with status 3: self test: boom",
                    "{ctx}"
                );
            } else {
                assert_eq!(code, "smoke-timeout", "{ctx}");
                assert_eq!(reason, "smoke test timed out after 1s: hanging", "{ctx}");
            }
            assert_eq!(fx.live(kind).unwrap(), v1, "{ctx}");
            assert_eq!(eng.installed().unwrap().release, "fw@1", "{ctx}");
            assert_eq!(last.phase, Phase::RolledBack, "{ctx}");
            assert_eq!(last.outcome, Some(Outcome::Failure), "{ctx}");
            assert_eq!(last.detail.as_deref(), Some(reason.as_str()), "{ctx}");
            assert_eq!(last.code.as_deref(), Some(code.as_str()), "{ctx}");
        }
    }
    assert!(eng.unreported().is_empty(), "{ctx}");
    // Nothing is left in the download directory.
    let left: Vec<_> = std::fs::read_dir(fx.cfg.state_dir.join("download"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{ctx}: {left:?}");
}

async fn matrix(kind: Kind, smoke: Smoke) {
    for step in Step::ALL {
        crash_and_resume(kind, smoke, step).await;
    }
}

#[tokio::test]
async fn file_crash_at_every_step_smoke_passes() {
    matrix(Kind::File, Smoke::Pass).await;
}

#[tokio::test]
async fn file_crash_at_every_step_smoke_fails() {
    matrix(Kind::File, Smoke::Fail).await;
}

#[tokio::test]
async fn file_crash_at_every_step_smoke_times_out() {
    matrix(Kind::File, Smoke::Timeout).await;
}

#[tokio::test]
async fn ab_crash_at_every_step_smoke_passes() {
    matrix(Kind::Ab, Smoke::Pass).await;
}

#[tokio::test]
async fn ab_crash_at_every_step_smoke_fails() {
    matrix(Kind::Ab, Smoke::Fail).await;
}

#[tokio::test]
async fn ab_crash_at_every_step_smoke_times_out() {
    matrix(Kind::Ab, Smoke::Timeout).await;
}

#[tokio::test]
async fn script_crash_at_every_step_smoke_passes() {
    matrix(Kind::Script, Smoke::Pass).await;
}

#[tokio::test]
async fn script_crash_at_every_step_smoke_fails() {
    matrix(Kind::Script, Smoke::Fail).await;
}

#[tokio::test]
async fn script_crash_at_every_step_smoke_times_out() {
    matrix(Kind::Script, Smoke::Timeout).await;
}
