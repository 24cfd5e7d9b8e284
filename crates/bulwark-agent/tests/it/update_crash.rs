//! Real-process crash tests: the engine runs in a child process (this test
//! binary, re-executed in "harness" mode), is SIGKILLed by the
//! `BULWARK_AGENT_FAILPOINT` fail point at each step, and is restarted
//! without it; the restart must end on the truth.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bulwark_agent::update::{
    ArtifactSource, ChunkSink, FAILPOINT_ENV, InstallConfig, InstallerKind, Phase, Reporter,
    SourceError, Step, UpdateEngine, UpdatePlan, UpdateReport,
};

const HARNESS_ENV: &str = "BULWARK_UPDATE_HARNESS";

// ------------------------------------------------------------- harness ---

/// Serves artifacts from `dir/<sha256>`, 64 KiB at a time.
struct FileSource {
    dir: PathBuf,
}

impl ArtifactSource for FileSource {
    async fn fetch(
        &self,
        sha256: &str,
        offset: u64,
        sink: &mut ChunkSink,
    ) -> Result<(), SourceError> {
        let mut f =
            std::fs::File::open(self.dir.join(sha256)).map_err(|_| SourceError::NotFound)?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| SourceError::Transport(e.to_string()))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| SourceError::Transport(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            sink.write(&buf[..n])?;
            tokio::task::yield_now().await;
        }
    }
}

/// Appends each report as a JSON line.
struct FileReporter {
    path: PathBuf,
}

impl Reporter for FileReporter {
    async fn report(&self, report: &UpdateReport) -> Result<(), String> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| e.to_string())?;
        let mut line = serde_json::to_vec(report).map_err(|e| e.to_string())?;
        line.push(b'\n');
        f.write_all(&line).map_err(|e| e.to_string())
    }
}

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .unwrap_or_else(|| panic!("{name} not set"))
        .into()
}

/// The child: runs (or resumes) the plan in `$HARNESS_PLAN`. A no-op unless
/// started by [`run_child`].
#[tokio::test]
async fn update_harness_child() {
    if std::env::var_os(HARNESS_ENV).is_none() {
        return;
    }
    let base = env_path(HARNESS_ENV);
    let cfg = InstallConfig::new(base.join("state"), base.join("root"), base.join("hooks"));
    let plan: UpdatePlan = serde_json::from_str(&std::env::var("HARNESS_PLAN").unwrap()).unwrap();
    let src = FileSource {
        dir: base.join("artifacts"),
    };
    let rep = FileReporter {
        path: base.join("reports.jsonl"),
    };
    let mut eng = UpdateEngine::open(cfg).unwrap();
    let done = if eng.pending().is_some() {
        eng.resume(&src, &rep).await.unwrap().unwrap()
    } else {
        eng.run(plan, &src, &rep).await.unwrap()
    };
    std::fs::write(base.join("result.txt"), format!("{done:?}")).unwrap();
}

// -------------------------------------------------------------- parent ---

fn artifact(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_hook(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    File,
    Ab,
    Script,
}

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        for d in ["root", "hooks", "artifacts"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        let s = base.join("root/script");
        let s = s.display();
        let hooks = base.join("hooks");
        write_hook(
            &hooks,
            "install",
            &format!(
                r#"mkdir -p {s}
if [ "$(cat {s}/live.sha 2>/dev/null)" != "$BULWARK_SHA256" ]; then
  if [ -f {s}/live ]; then cp {s}/live {s}/prev; cp {s}/live.sha {s}/prev.sha; else rm -f {s}/prev {s}/prev.sha; fi
fi
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
        write_hook(&hooks, "commit", "true");
        Self { dir }
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    fn plan(&self, kind: Kind, release: &str, data: &[u8], smoke: &str) -> UpdatePlan {
        let sha256 = sha256_hex(data);
        std::fs::write(self.base().join("artifacts").join(&sha256), data).unwrap();
        UpdatePlan {
            release: release.into(),
            target: release.replace('@', "/"),
            sha256,
            length: data.len() as u64,
            installer: match kind {
                Kind::File => InstallerKind::File {
                    path: self.base().join("root/opt/fw.bin"),
                },
                Kind::Ab => InstallerKind::Ab,
                Kind::Script => InstallerKind::Script,
            },
            smoke_test: Some(smoke.into()),
            smoke_timeout_secs: 10,
        }
    }

    fn live(&self, kind: Kind) -> Option<Vec<u8>> {
        let p = match kind {
            Kind::File => "root/opt/fw.bin",
            Kind::Ab => "root/ab/current/image",
            Kind::Script => "root/script/live",
        };
        std::fs::read(self.base().join(p)).ok()
    }

    fn reports(&self) -> Vec<UpdateReport> {
        std::fs::read_to_string(self.base().join("reports.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs the harness child; returns its exit status.
    fn run_child(&self, plan: &UpdatePlan, failpoint: Option<Step>) -> std::process::ExitStatus {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "update_crash::update_harness_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HARNESS_ENV, self.base())
        .env("HARNESS_PLAN", serde_json::to_string(plan).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        match failpoint {
            Some(step) => cmd.env(FAILPOINT_ENV, step.as_str()),
            None => cmd.env_remove(FAILPOINT_ENV),
        };
        cmd.status().unwrap()
    }
}

fn crash_matrix(kind: Kind) {
    for step in Step::ALL {
        let ctx = format!("{kind:?}: SIGKILL at {step}");
        let fx = Fx::new();
        let v1 = artifact(1, 100 * 1024);
        let v2 = artifact(2, 200 * 1024);
        let plan1 = fx.plan(kind, "fw@1", &v1, "true");
        assert!(fx.run_child(&plan1, None).success(), "{ctx}: installing v1");
        assert_eq!(fx.live(kind).unwrap(), v1, "{ctx}");

        // Rollback is only reached when the smoke test fails.
        let smoke_ok = step != Step::Rollback;
        let smoke = if smoke_ok {
            "test -n \"$BULWARK_RELEASE\""
        } else {
            "echo nope >&2; exit 2"
        };
        let plan2 = fx.plan(kind, "fw@2", &v2, smoke);
        let status = fx.run_child(&plan2, Some(step));
        assert_eq!(status.signal(), Some(9), "{ctx}: not killed ({status:?})");
        let live = fx.live(kind).unwrap();
        assert!(
            live == v1 || live == v2,
            "{ctx}: live bytes are neither release"
        );

        let status = fx.run_child(&plan2, None);
        assert!(status.success(), "{ctx}: restart failed ({status:?})");
        let reports = fx.reports();
        let last = reports.last().unwrap();
        assert_eq!(last.release, "fw@2", "{ctx}");
        if smoke_ok {
            assert_eq!(last.phase, Phase::Installed, "{ctx}");
            assert_eq!(fx.live(kind).unwrap(), v2, "{ctx}");
        } else {
            assert_eq!(last.phase, Phase::RolledBack, "{ctx}");
            assert_eq!(
                last.detail.as_deref(),
                Some("smoke test exited with status 2: nope"),
                "{ctx}"
            );
            assert_eq!(fx.live(kind).unwrap(), v1, "{ctx}");
        }
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fx.base().join("state/update-state.json")).unwrap(),
        )
        .unwrap();
        assert!(state["pending"].is_null(), "{ctx}: {state}");
        assert_eq!(state["unreported"], serde_json::json!([]), "{ctx}");
        let want = if smoke_ok { "fw@2" } else { "fw@1" };
        assert_eq!(state["installed"]["release"], want, "{ctx}");
    }
}

#[test]
fn file_installer_survives_sigkill_at_every_step() {
    crash_matrix(Kind::File);
}

#[test]
fn ab_installer_survives_sigkill_at_every_step() {
    crash_matrix(Kind::Ab);
}

#[test]
fn script_installer_survives_sigkill_at_every_step() {
    crash_matrix(Kind::Script);
}
