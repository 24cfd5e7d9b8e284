//! In-process tests of the update engine: every step × installer × smoke
//! outcome with a simulated crash (fail point) and a resume, plus the
//! verification, hook, boot-counting and reporting edge cases.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bulwark_agent::update::{
    ArtifactSource, ChunkSink, FinalState, InstallConfig, InstallerKind, Outcome, Phase, Reporter,
    STATE_FILE, SourceError, Step, UpdateEngine, UpdateError, UpdatePlan, UpdateReport,
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
            r#"[ "$(cat {s}/live.sha 2>/dev/null)" = "$BULWARK_SHA256" ] || exit 0
if [ -f {s}/prev ]; then cp {s}/prev {s}/live.tmp; mv {s}/live.tmp {s}/live; cp {s}/prev.sha {s}/live.sha
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
        UpdateEngine::open(self.cfg.clone()).unwrap()
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
            assert!(
                live == v1 || live == v2,
                "{ctx}: live bytes are neither release"
            );
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
    let last = finals
        .last()
        .unwrap_or_else(|| panic!("{ctx}: no final report"));
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

// ---------------------------------------------------------- edge cases ---

fn failed(outcome: &FinalState) -> (&str, &str) {
    match outcome {
        FinalState::Failed { code, reason, .. } => (code, reason),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn hash_mismatch_fails_as_arbitrary_software_and_changes_nothing() {
    let fx = fixture();
    let v1 = artifact(1, 100 * 1024);
    let v2 = artifact(2, 100 * 1024);
    install(&fx, Kind::File, "fw@1", &v1).await;
    let plan = fx.plan(Kind::File, "fw@2", &v2, None);
    let evil = artifact(9, v2.len());
    let rep = MemReporter::default();
    let mut eng = fx.open();
    let got = eng
        .run(plan.clone(), &MemSource::new(evil), &rep)
        .await
        .unwrap();
    let (code, reason) = failed(&got);
    assert_eq!(code, "arbitrary-software");
    assert!(reason.starts_with("verify: "), "{reason}");
    assert!(reason.contains(&plan.sha256), "{reason}");
    assert!(reason.contains(".part"), "{reason}");
    let part = fx
        .cfg
        .state_dir
        .join(format!("download/{}.part", plan.sha256));
    assert!(!part.exists());
    assert_eq!(fx.live(Kind::File).unwrap(), v1);
    assert_eq!(eng.installed().unwrap().release, "fw@1");
    assert!(eng.pending().is_none());
    let last = rep.finals().pop().unwrap();
    assert_eq!(last.phase, Phase::Failed);
    assert_eq!(last.code.as_deref(), Some("arbitrary-software"));
}

#[tokio::test]
async fn source_sending_too_many_bytes_is_refused_as_endless_data() {
    let fx = fixture();
    let v2 = artifact(2, 100 * 1024);
    let mut src = MemSource::new(v2.clone());
    src.extra = 10;
    let rep = MemReporter::default();
    let mut eng = fx.open();
    let got = eng
        .run(fx.plan(Kind::Ab, "fw@2", &v2, None), &src, &rep)
        .await
        .unwrap();
    let (code, reason) = failed(&got);
    assert_eq!(code, "endless-data");
    assert!(reason.contains("more than the 102400 bytes"), "{reason}");
    assert!(fx.live(Kind::Ab).is_none());
    assert!(
        std::fs::read_dir(fx.cfg.state_dir.join("download"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn a_dropped_connection_stays_pending_and_resumes_with_a_range() {
    let fx = fixture();
    let v2 = artifact(2, 300 * 1024);
    let plan = fx.plan(Kind::File, "fw@2", &v2, None);
    let mut cut = MemSource::new(v2.clone());
    cut.cut_at = Some(100 * 1024);
    let rep = MemReporter::default();
    let mut eng = fx.open();
    let err = eng.run(plan.clone(), &cut, &rep).await.unwrap_err();
    assert_eq!(err.kind(), "source");
    assert!(
        err.to_string().contains("stopped after 102400 of 307200"),
        "{err}"
    );
    assert_eq!(eng.pending_step(), Some(Step::Download));
    let good = MemSource::new(v2.clone());
    let done = eng.resume(&good, &rep).await.unwrap().unwrap();
    assert!(matches!(done, FinalState::Installed(_)));
    assert_eq!(good.offsets(), vec![100 * 1024]);
    assert_eq!(fx.live(Kind::File).unwrap(), v2);
}

#[tokio::test]
async fn source_errors_keep_the_update_pending() {
    struct Down;
    impl ArtifactSource for Down {
        async fn fetch(&self, _: &str, _: u64, _: &mut ChunkSink) -> Result<(), SourceError> {
            Err(SourceError::Transport("connection refused".into()))
        }
    }
    let fx = fixture();
    let v2 = artifact(2, 1000);
    let mut eng = fx.open();
    let err = eng
        .run(
            fx.plan(Kind::Ab, "fw@2", &v2, None),
            &Down,
            &MemReporter::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "source");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert!(eng.pending().is_some());
}

#[tokio::test]
async fn missing_install_hook_fails_before_downloading() {
    let fx = fixture();
    std::fs::remove_file(fx.cfg.hooks_dir.join("install")).unwrap();
    let v2 = artifact(2, 1000);
    let src = MemSource::new(v2.clone());
    let rep = MemReporter::default();
    let mut eng = fx.open();
    let got = eng
        .run(fx.plan(Kind::Script, "fw@2", &v2, None), &src, &rep)
        .await
        .unwrap();
    let (code, reason) = failed(&got);
    assert_eq!(code, "missing-hook");
    assert!(
        reason.contains("hooks/install is missing or not executable"),
        "{reason}"
    );
    assert!(src.offsets().is_empty());
}

#[tokio::test]
async fn non_executable_rollback_hook_counts_as_missing() {
    let fx = fixture();
    let hook = fx.cfg.hooks_dir.join("rollback");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let v2 = artifact(2, 1000);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::Script, "fw@2", &v2, None),
            &MemSource::new(v2.clone()),
            &MemReporter::default(),
        )
        .await
        .unwrap();
    assert_eq!(failed(&got).0, "missing-hook");
}

#[tokio::test]
async fn failing_install_hook_rolls_back_with_its_stderr() {
    let fx = fixture();
    let v1 = artifact(1, 1000);
    install(&fx, Kind::Script, "fw@1", &v1).await;
    write_hook(
        &fx.cfg.hooks_dir,
        "install",
        "echo 'rauc: bad bundle' >&2; exit 7",
    );
    let v2 = artifact(2, 1000);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::Script, "fw@2", &v2, None),
            &MemSource::new(v2.clone()),
            &MemReporter::default(),
        )
        .await
        .unwrap();
    match got {
        FinalState::RolledBack { code, reason, .. } => {
            assert_eq!(code, "hook-failed");
            assert!(
                reason.ends_with("exited with status 7: rauc: bad bundle"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fx.live(Kind::Script).unwrap(), v1);
}

#[tokio::test]
async fn script_smoke_hook_runs_when_the_plan_has_no_smoke_test() {
    let fx = fixture();
    write_hook(
        &fx.cfg.hooks_dir,
        "smoke",
        "echo 'smoke hook says no' >&2; exit 1",
    );
    let v2 = artifact(2, 1000);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::Script, "fw@2", &v2, None),
            &MemSource::new(v2.clone()),
            &MemReporter::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        FinalState::RolledBack {
            release: "fw@2".into(),
            code: "smoke-failed".into(),
            reason: "smoke test exited with status 1: smoke hook says no".into(),
        }
    );
    assert!(fx.live(Kind::Script).is_none());
}

#[tokio::test]
async fn boot_attempts_exhausted_rolls_back_without_running_the_smoke_test() {
    let mut fx = fixture();
    fx.cfg.max_boot_attempts = 2;
    let v1 = artifact(1, 1000);
    let v2 = artifact(2, 1000);
    install(&fx, Kind::Ab, "fw@1", &v1).await;
    let marker = fx.root.join("smoke-ran");
    let plan = fx.plan(
        Kind::Ab,
        "fw@2",
        &v2,
        Some(&format!("touch {}", marker.display())),
    );
    let src = MemSource::new(v2.clone());
    let rep = MemReporter::default();
    // Two "boots" that die during the smoke phase.
    let mut eng = fx.open().with_failpoint(Step::Smoke);
    assert!(matches!(
        eng.run(plan.clone(), &src, &rep).await,
        Err(UpdateError::FailPoint(Step::Smoke))
    ));
    drop(eng);
    let mut eng = fx.open().with_failpoint(Step::Smoke);
    assert!(matches!(
        eng.resume(&src, &rep).await,
        Err(UpdateError::FailPoint(Step::Smoke))
    ));
    drop(eng);
    assert_eq!(
        fx.live(Kind::Ab).unwrap(),
        v2,
        "the new slot is live while uncommitted"
    );
    // The third start gives up.
    let mut eng = fx.open();
    let done = eng.resume(&src, &rep).await.unwrap().unwrap();
    assert_eq!(
        done,
        FinalState::RolledBack {
            release: "fw@2".into(),
            code: "boot-attempts-exhausted".into(),
            reason: "smoke: 3 boot attempts without a commit exceed the limit of 2".into(),
        }
    );
    assert!(!marker.exists(), "the smoke test must not run again");
    assert_eq!(fx.live(Kind::Ab).unwrap(), v1);
    assert_eq!(eng.installed().unwrap().slot.as_deref(), Some("slot-a"));
}

#[tokio::test]
async fn ab_alternates_slots_and_describes_them() {
    let fx = fixture();
    let mut slots = Vec::new();
    for (i, seed) in [1u8, 2, 3].into_iter().enumerate() {
        let data = artifact(seed, 5000);
        let release = format!("fw@{}", i + 1);
        let mut eng = fx.open();
        // The smoke test runs in the new slot with the documented environment.
        let smoke = format!(
            r#"test "$BULWARK_RELEASE" = {release} && test "$BULWARK_SLOT" = "$(pwd)" && test -f image"#
        );
        let got = eng
            .run(
                fx.plan(Kind::Ab, &release, &data, Some(&smoke)),
                &MemSource::new(data.clone()),
                &MemReporter::default(),
            )
            .await
            .unwrap();
        let FinalState::Installed(info) = got else {
            panic!("{got:?}")
        };
        let slot = info.slot.clone().unwrap();
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fx.root.join("ab").join(&slot).join("release.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["release"], release.as_str());
        assert_eq!(meta["sha256"], sha256_hex(&data).as_str());
        assert_eq!(fx.live(Kind::Ab).unwrap(), data);
        slots.push(slot);
    }
    assert_eq!(slots, ["slot-a", "slot-b", "slot-a"]);
    assert_eq!(
        std::fs::read_link(fx.root.join("ab/current")).unwrap(),
        PathBuf::from("slot-a")
    );
}

#[tokio::test]
async fn first_file_install_rolled_back_leaves_no_file() {
    let fx = fixture();
    let v1 = artifact(1, 1000);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::File, "fw@1", &v1, Some("exit 1")),
            &MemSource::new(v1.clone()),
            &MemReporter::default(),
        )
        .await
        .unwrap();
    assert!(matches!(got, FinalState::RolledBack { .. }), "{got:?}");
    assert!(fx.live(Kind::File).is_none());
    assert!(eng.installed().is_none());
}

#[tokio::test]
async fn final_report_survives_an_unreachable_server_and_a_restart() {
    let fx = fixture();
    let v2 = artifact(2, 1000);
    let rep = MemReporter::default();
    rep.down.store(true, Ordering::SeqCst);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::File, "fw@2", &v2, Some("exit 4")),
            &MemSource::new(v2.clone()),
            &rep,
        )
        .await
        .unwrap();
    assert!(matches!(got, FinalState::RolledBack { .. }));
    assert_eq!(eng.unreported().len(), 1);
    drop(eng);
    let state = std::fs::read_to_string(fx.cfg.state_dir.join(STATE_FILE)).unwrap();
    assert!(state.contains("\"rolled_back\""), "{state}");

    let mut eng = fx.open();
    assert_eq!(eng.unreported().len(), 1);
    rep.down.store(false, Ordering::SeqCst);
    assert_eq!(
        eng.resume(&MemSource::new(Vec::new()), &rep).await.unwrap(),
        None
    );
    assert!(eng.unreported().is_empty());
    let finals = rep.finals();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].phase, Phase::RolledBack);
    assert_eq!(
        finals[0].detail.as_deref(),
        Some("smoke test exited with status 4")
    );
    drop(eng);
    assert!(
        fx.open().unreported().is_empty(),
        "the queue is persisted empty"
    );
}

#[tokio::test]
async fn progress_reports_cover_every_phase_in_order() {
    let fx = fixture();
    let v2 = artifact(2, 1000);
    let rep = MemReporter::default();
    fx.open()
        .run(
            fx.plan(Kind::Ab, "fw@2", &v2, Some("true")),
            &MemSource::new(v2.clone()),
            &rep,
        )
        .await
        .unwrap();
    let phases: Vec<Phase> = rep.all().iter().map(|r| r.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Downloading,
            Phase::Verifying,
            Phase::Staging,
            Phase::Switching,
            Phase::SmokeTesting,
            Phase::Committing,
            Phase::Installed
        ]
    );
}

#[tokio::test]
async fn a_different_plan_supersedes_an_unswitched_one_but_not_a_switched_one() {
    let fx = fixture();
    let v2 = artifact(2, 200 * 1024);
    let v3 = artifact(3, 1000);
    let rep = MemReporter::default();
    let mut eng = fx.open().with_failpoint(Step::Download);
    let _ = eng
        .run(
            fx.plan(Kind::Ab, "fw@2", &v2, None),
            &MemSource::new(v2.clone()),
            &rep,
        )
        .await
        .unwrap_err();
    drop(eng);
    let mut eng = fx.open();
    let got = eng
        .run(
            fx.plan(Kind::Ab, "fw@3", &v3, None),
            &MemSource::new(v3.clone()),
            &rep,
        )
        .await
        .unwrap();
    assert!(matches!(got, FinalState::Installed(_)));
    let finals = rep.finals();
    assert_eq!(finals[0].release, "fw@2");
    assert_eq!(finals[0].code.as_deref(), Some("superseded"));
    assert_eq!(finals[1].release, "fw@3");
    drop(eng);

    // Past the switch, the pending update must be finished first.
    let v4 = artifact(4, 1000);
    let mut eng = fx.open().with_failpoint(Step::Smoke);
    let _ = eng
        .run(
            fx.plan(Kind::Ab, "fw@4", &v4, None),
            &MemSource::new(v4.clone()),
            &rep,
        )
        .await
        .unwrap_err();
    drop(eng);
    let mut eng = fx.open();
    let err = eng
        .run(
            fx.plan(Kind::Ab, "fw@5", &v3, None),
            &MemSource::new(v3.clone()),
            &rep,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "busy");
    assert!(matches!(
        eng.resume(&MemSource::new(v4.clone()), &rep).await.unwrap(),
        Some(FinalState::Installed(_))
    ));
}

#[tokio::test]
async fn running_the_installed_plan_again_is_a_no_op() {
    let fx = fixture();
    let v1 = artifact(1, 1000);
    install(&fx, Kind::File, "fw@1", &v1).await;
    let src = MemSource::new(v1.clone());
    let got = fx
        .open()
        .run(
            fx.plan(Kind::File, "fw@1", &v1, None),
            &src,
            &MemReporter::default(),
        )
        .await
        .unwrap();
    assert!(matches!(got, FinalState::Installed(_)));
    assert!(src.offsets().is_empty());
}

#[tokio::test]
async fn invalid_plans_are_reported_failed() {
    let fx = fixture();
    let v1 = artifact(1, 10);
    let mut plan = fx.plan(Kind::File, "fw@1", &v1, None);
    plan.sha256 = plan.sha256.to_uppercase();
    let got = fx
        .open()
        .run(plan, &MemSource::new(v1.clone()), &MemReporter::default())
        .await
        .unwrap();
    assert_eq!(failed(&got).0, "bad-plan");
    let mut plan = fx.plan(Kind::File, "fw@1", &v1, None);
    plan.installer = InstallerKind::File {
        path: "relative/fw.bin".into(),
    };
    assert!(plan.validate().is_err());
}

#[tokio::test]
async fn a_second_engine_on_the_same_state_is_refused() {
    let fx = fixture();
    let _first = fx.open();
    let err = UpdateEngine::open(fx.cfg.clone()).unwrap_err();
    assert_eq!(err.kind(), "locked");
}

#[test]
fn plan_json_has_defaults_and_rejects_unknown_fields() {
    let plan: UpdatePlan = serde_json::from_str(
        r#"{"release":"fw@1","target":"fw/1","sha256":"00","length":1,
            "installer":{"kind":"file","path":"/opt/fw.bin"}}"#,
    )
    .unwrap();
    assert_eq!(plan.smoke_timeout_secs, 60);
    assert_eq!(plan.smoke_test, None);
    assert!(
        serde_json::from_str::<UpdatePlan>(
            r#"{"release":"fw@1","target":"fw/1","sha256":"00","length":1,
                "installer":{"kind":"ab"},"extra":1}"#,
        )
        .is_err()
    );
}
