//! Signed updates end to end, as a user runs them: offline keys, repo
//! init, publish, 2-of-2 signing, promotion, deployment, and a real
//! `bulwark-agent` process that installs, smoke-tests and rolls back —
//! including after SIGKILL at every step of its update state machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

pub(crate) fn agent_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_bulwark"))
        .parent()
        .unwrap()
        .to_owned();
    let bin = dir.join("bulwark-agent");
    if !bin.exists() {
        // `cargo test -p bulwark-cli` alone does not build other packages' binaries.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "bulwark-agent", "--bin", "bulwark-agent"])
            .status()
            .unwrap();
        assert!(st.success(), "building bulwark-agent failed");
    }
    bin
}

struct Device {
    state: PathBuf,
    install: PathBuf,
}

impl Device {
    fn enroll(srv: &Running, dir: &Path, name: &str, group: &str, env: &str) -> Device {
        let (code, token, err) =
            run(srv
                .cli()
                .args(["enroll-token", "create", "--group", group, "--env", env]));
        assert_eq!(code, 0, "{err}");
        let state = dir.join(format!("{name}-state"));
        let out = Command::new(agent_bin())
            .args(["enroll", "--server", &format!("https://{}", srv.dev)])
            .arg("--ca")
            .arg(srv.data.join("ca.pem"))
            .arg("--state-dir")
            .arg(&state)
            .arg("--image-root")
            .arg(dir.join("root.json"))
            .env("BULWARK_ENROLL_TOKEN", token.trim())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Device {
            install: dir.join(format!("{name}-install")),
            state,
        }
    }

    fn run_once(&self, envs: &[(&str, &str)]) -> (i32, String, String) {
        let mut c = Command::new(agent_bin());
        c.args(["run", "--once", "--root", "/nonexistent-root"])
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--install-root")
            .arg(&self.install)
            .arg("--hooks-dir")
            .arg(self.install.join("hooks"))
            .env("BULWARK_LOG", "warn");
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn id(&self) -> String {
        let text = std::fs::read_to_string(self.state.join("agent.toml")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("device_id"))
            .expect("device_id in agent.toml");
        line.split('"').nth(1).unwrap().to_owned()
    }

    fn current_image(&self) -> Vec<u8> {
        std::fs::read(self.install.join("ab/current/image")).unwrap_or_default()
    }
}

fn artifact(dir: &Path, name: &str, seed: u8, len: usize) -> (PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

fn ok(srv: &Running, args: &[&str]) -> String {
    let (code, out, err) = run(srv
        .cli()
        .args(args)
        .env("BULWARK_KEY_PASSPHRASE", "correct horse battery"));
    assert_eq!(code, 0, "bulwark {args:?}: {err}");
    out
}

fn fails(srv: &Running, args: &[&str], needle: &str) {
    let (code, _, err) = run(srv
        .cli()
        .args(args)
        .env("BULWARK_KEY_PASSPHRASE", "correct horse battery"));
    // Any failure but a usage error (2): the kind decides the code
    // (`bulwark --help`, "Exit codes").
    assert!(
        code == 1 || (3..=8).contains(&code),
        "bulwark {args:?} should fail, not exit {code}"
    );
    assert!(
        err.contains(needle),
        "bulwark {args:?}: missing {needle:?} in {err}"
    );
}

fn release(srv: &Running, dir: &Path, version: &str, seed: u8, smoke: &str) -> Vec<u8> {
    let (r, bytes) = publish(srv, dir, version, seed, smoke);
    let k1 = dir.join("rel-ana.key");
    let k2 = dir.join("rel-ben.key");
    // The pinned root is the one `repo init` / `repo rotate-root` wrote.
    let root = dir.join("root.json");
    let sign = |key: &Path| {
        ok(
            srv,
            &[
                "release",
                "sign",
                &r,
                "--key",
                key.to_str().unwrap(),
                "--root",
                root.to_str().unwrap(),
            ],
        )
    };
    let one = sign(&k1);
    assert!(one.contains("1 of 2 signatures"), "{one}");
    let two = sign(&k2);
    assert!(two.contains("threshold met"), "{two}");
    bytes
}

/// Publishes (unsigned) a release of `gateway-fw`; returns its reference
/// and bytes.
fn publish(srv: &Running, dir: &Path, version: &str, seed: u8, smoke: &str) -> (String, Vec<u8>) {
    let (file, bytes) = artifact(dir, &format!("fw-{version}.img"), seed, 300_000);
    // The builder's SBOM: an opaque image has no package database for the
    // gate to inventory, and the default policy requires components.
    let sbom = dir.join(format!("fw-{version}.cdx.json"));
    std::fs::write(
        &sbom,
        serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "firmware", "name": "gateway-fw", "version": version,
                "purl": format!("pkg:generic/gateway-fw@{version}")}]})
        .to_string(),
    )
    .unwrap();
    let out = ok(
        srv,
        &[
            "release",
            "publish",
            file.to_str().unwrap(),
            "--name",
            "gateway-fw",
            "--version",
            version,
            "--installer",
            "ab",
            "--smoke-test",
            smoke,
            "--smoke-timeout",
            "5",
            "--sbom",
            sbom.to_str().unwrap(),
        ],
    );
    let want = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(out.trim(), want, "publish prints the sha256");
    (format!("gateway-fw@{version}"), bytes)
}

#[test]
fn publish_sign_promote_deploy_install_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = start_server(&d.join("data"));
    for k in ["root-1", "rel-ana", "rel-ben"] {
        let role = if k.starts_with("root") {
            "root"
        } else {
            "targets"
        };
        let p = d.join(format!("{k}.key"));
        ok(
            &srv,
            &[
                "keys",
                "generate",
                "--role",
                role,
                "--out",
                p.to_str().unwrap(),
            ],
        );
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{k} key mode");
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .contains("ENCRYPTED PRIVATE KEY")
        );
    }
    // A wrong passphrase is a clear error.
    let (code, _, err) = run(srv
        .cli()
        .args(["keys", "show"])
        .arg(d.join("rel-ana.key"))
        .env("BULWARK_KEY_PASSPHRASE", "wrong passphrase"));
    assert_eq!(code, 1);
    assert!(err.contains("wrong passphrase"), "{err}");

    let root = d.join("root.json");
    ok(
        &srv,
        &[
            "repo",
            "init",
            "--root-key",
            d.join("root-1.key").to_str().unwrap(),
            "--root-threshold",
            "1",
            "--targets-pub",
            d.join("rel-ana.pub").to_str().unwrap(),
            "--targets-pub",
            d.join("rel-ben.pub").to_str().unwrap(),
            "--targets-threshold",
            "2",
            "--out",
            root.to_str().unwrap(),
        ],
    );
    fails(
        &srv,
        &[
            "repo",
            "init",
            "--root-key",
            d.join("root-1.key").to_str().unwrap(),
            "--targets-pub",
            d.join("rel-ana.pub").to_str().unwrap(),
            "--out",
            d.join("again.json").to_str().unwrap(),
        ],
        "does not follow the current version",
    );

    let v1 = release(&srv, d, "1.0.0", 1, "test -s \"$BULWARK_SLOT/image\"");
    // The promotion ladder: dev (on publication) → staging → production.
    fails(
        &srv,
        &[
            "release",
            "promote",
            "gateway-fw@1.0.0",
            "--env",
            "production",
        ],
        "must be promoted to staging before production",
    );
    fails(
        &srv,
        &[
            "deploy",
            "gateway-fw@1.0.0",
            "--group",
            "lobby-sensors",
            "--env",
            "staging",
        ],
        "is not promoted to staging",
    );
    ok(
        &srv,
        &["release", "promote", "gateway-fw@1.0.0", "--env", "staging"],
    );
    ok(
        &srv,
        &[
            "deploy",
            "gateway-fw@1.0.0",
            "--group",
            "lobby-sensors",
            "--env",
            "staging",
        ],
    );
    // One name and version never holds other bytes.
    let (other, _) = artifact(d, "other.img", 9, 1000);
    fails(
        &srv,
        &[
            "release",
            "publish",
            other.to_str().unwrap(),
            "--name",
            "gateway-fw",
            "--version",
            "1.0.0",
            "--installer",
            "ab",
        ],
        "already exists with different bytes",
    );

    let dev = Device::enroll(&srv, d, "dev1", "lobby-sensors", "staging");
    let (code, out, err) = dev.run_once(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("installed gateway-fw@1.0.0"), "{out}{err}");
    assert_eq!(dev.current_image(), v1);
    let show = ok(&srv, &["devices", "show", &dev.id()]);
    assert!(show.contains("gateway-fw@1.0.0 installed"), "{show}");
    assert!(show.contains("downloading → verifying"), "{show}");
    // Up to date: nothing more happens.
    let (_, out, _) = dev.run_once(&[]);
    assert!(out.contains("gateway-fw@1.0.0 is installed"), "{out}");

    // Root rotation: add a second root key and require both. Signed by the
    // old root key (threshold of the old root) and both (the new one); the
    // device pinned root v1 and must follow the chain.
    ok(
        &srv,
        &[
            "keys",
            "generate",
            "--role",
            "root",
            "--out",
            d.join("root-2.key").to_str().unwrap(),
        ],
    );
    fails(
        &srv,
        &[
            "repo",
            "rotate-root",
            "--key",
            d.join("root-1.key").to_str().unwrap(),
            "--add-root-pub",
            d.join("root-2.pub").to_str().unwrap(),
            "--root-threshold",
            "2",
            "--out",
            root.to_str().unwrap(),
        ],
        "not enough signatures by the new root keys",
    );
    let out = ok(
        &srv,
        &[
            "repo",
            "rotate-root",
            "--key",
            d.join("root-1.key").to_str().unwrap(),
            "--key",
            d.join("root-2.key").to_str().unwrap(),
            "--add-root-pub",
            d.join("root-2.pub").to_str().unwrap(),
            "--root-threshold",
            "2",
            "--out",
            root.to_str().unwrap(),
        ],
    );
    assert!(out.contains("root version 2 accepted"), "{out}");
    let shown = ok(&srv, &["repo", "show"]);
    assert!(
        shown.contains("version:  2") && shown.contains("root       threshold 2"),
        "{shown}"
    );

    // A release whose smoke test fails is rolled back, and the server hears why.
    release(&srv, d, "1.1.0", 2, "echo selftest failed >&2; exit 3");
    ok(
        &srv,
        &["release", "promote", "gateway-fw@1.1.0", "--env", "staging"],
    );
    ok(
        &srv,
        &[
            "deploy",
            "gateway-fw@1.1.0",
            "--group",
            "lobby-sensors",
            "--env",
            "staging",
        ],
    );
    let (_, out, err) = dev.run_once(&[]);
    assert!(out.contains("gateway-fw@1.1.0 rolled back"), "{out}{err}");
    assert_eq!(dev.current_image(), v1, "the previous slot is live again");
    // The same bytes are not tried again: no flapping every cycle.
    let (code, out, err) = dev.run_once(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("gateway-fw@1.1.0 was rolled back here before; not retried"),
        "{out}{err}"
    );
    assert_eq!(dev.current_image(), v1);
    let trusted = std::fs::read(dev.state.join("tuf/image/root.json")).unwrap();
    let trusted: serde_json::Value = serde_json::from_slice(&trusted).unwrap();
    assert_eq!(
        trusted["signed"]["version"], 2,
        "the device followed the root rotation"
    );
    let show = ok(&srv, &["devices", "show", &dev.id()]);
    assert!(show.contains("gateway-fw@1.1.0 rolled_back"), "{show}");
    assert!(show.contains("selftest failed"), "{show}");

    // SIGKILL at every step, then a restart: always a verified slot, and
    // the server is told the truth.
    let v2 = release(&srv, d, "1.2.0", 3, "test -s \"$BULWARK_SLOT/image\"");
    ok(
        &srv,
        &["release", "promote", "gateway-fw@1.2.0", "--env", "staging"],
    );
    ok(
        &srv,
        &[
            "deploy",
            "gateway-fw@1.2.0",
            "--group",
            "lobby-sensors",
            "--env",
            "staging",
        ],
    );
    let mut devices = Vec::new();
    for step in ["download", "verify", "stage", "switch", "smoke", "commit"] {
        let dv = Device::enroll(
            &srv,
            d,
            &format!("crash-{step}"),
            "lobby-sensors",
            "staging",
        );
        let (code, out, err) = dv.run_once(&[("BULWARK_AGENT_FAILPOINT", step)]);
        assert_ne!(
            code, 0,
            "{step}: the fail point must kill the agent\n{out}{err}"
        );
        let img = dv.current_image();
        assert!(
            img.is_empty() || img == v2,
            "{step}: live slot holds unverified bytes"
        );
        let (code, out, err) = dv.run_once(&[]);
        assert_eq!(code, 0, "{step}: restart\n{out}{err}");
        assert_eq!(
            dv.current_image(),
            v2,
            "{step}: ends on the verified new slot"
        );
        devices.push((step, dv));
    }
    for (step, dv) in &devices {
        let show = ok(&srv, &["devices", "show", &dv.id()]);
        assert!(
            show.contains("gateway-fw@1.2.0 installed"),
            "{step}: {show}"
        );
    }
    // The journal holds every release action and device report, and verifies.
    let log = ok(&srv, &["audit", "log"]);
    for action in [
        "repo.init",
        "blob.put",
        "release.create",
        "release.sign",
        "release.promote",
        "deployment.create",
        "device.update",
    ] {
        assert!(log.contains(action), "journal lacks {action}");
    }
    ok(&srv, &["audit", "verify"]);
}

/// python-tuf's ngclient (the reference client) consumes our server's
/// image repository: root, timestamp, snapshot, targets and a
/// hash-prefixed target download.
#[test]
fn python_tuf_ngclient_consumes_our_repository() {
    let Some(python) = crate::tuf_interop::tuf_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = start_server(&d.join("data"));
    for k in ["root-1", "rel-ana", "rel-ben"] {
        let role = if k.starts_with("root") {
            "root"
        } else {
            "targets"
        };
        ok(
            &srv,
            &[
                "keys",
                "generate",
                "--role",
                role,
                "--out",
                d.join(format!("{k}.key")).to_str().unwrap(),
            ],
        );
    }
    let root = d.join("root.json");
    ok(
        &srv,
        &[
            "repo",
            "init",
            "--root-key",
            d.join("root-1.key").to_str().unwrap(),
            "--targets-pub",
            d.join("rel-ana.pub").to_str().unwrap(),
            "--targets-pub",
            d.join("rel-ben.pub").to_str().unwrap(),
            "--targets-threshold",
            "2",
            "--out",
            root.to_str().unwrap(),
        ],
    );
    release(&srv, d, "1.0.0", 1, "true");
    let v2 = release(&srv, d, "2.0.0", 2, "true");
    let want = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&v2))
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ngclient_consume.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}", srv.api))
        .arg(&srv.token)
        .arg(&root)
        .arg(d.join("ngclient"))
        .arg("gateway-fw/2.0.0")
        .arg(&want)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ngclient failed: {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok gateway-fw/2.0.0") && stdout.contains("targets v2"),
        "{stdout}"
    );
}

/// A root of another image repository, version `version`: its own root
/// (and online) key, but the same release keys as ours, so that only the
/// root chain can tell them apart. Written to `path`.
fn foreign_root(dir: &Path, path: &Path, version: u64) {
    use bulwark_tuf::{Metadata, PublicKey, Root, SigningKey};
    let (key, _) = SigningKey::generate_ed25519().unwrap();
    let mut root = Root::new(time::OffsetDateTime::now_utc() + time::Duration::days(365));
    root.version = version;
    for role in ["root", "snapshot", "timestamp"] {
        root.add_key(role, key.public().clone());
    }
    for k in ["rel-ana", "rel-ben"] {
        let public: PublicKey =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{k}.pub"))).unwrap()).unwrap();
        root.add_key("targets", public);
    }
    root.set_threshold("targets", 2);
    let mut md = Metadata::new(root);
    md.sign(&key).unwrap();
    std::fs::write(path, md.to_vec().unwrap()).unwrap();
}

/// `release sign` trusts the server's root only when it follows from the
/// pinned root by signed rotations: a server handing over another root (a
/// compromised server's own, with "published" targets signed by its own
/// key) is refused before anything is signed, and so are a server older
/// than the pinned root and a missing pinned root. `repo rotate-root`
/// starts from the pinned root the same way.
#[test]
fn release_sign_refuses_a_root_that_does_not_chain_from_the_pinned_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = start_server(&d.join("data"));
    for (k, role) in [
        ("root-1", "root"),
        ("rel-ana", "targets"),
        ("rel-ben", "targets"),
    ] {
        let out = d.join(format!("{k}.key"));
        ok(
            &srv,
            &[
                "keys",
                "generate",
                "--role",
                role,
                "--out",
                out.to_str().unwrap(),
            ],
        );
    }
    let root = d.join("root.json");
    let root_v1 = {
        ok(
            &srv,
            &[
                "repo",
                "init",
                "--root-key",
                d.join("root-1.key").to_str().unwrap(),
                "--targets-pub",
                d.join("rel-ana.pub").to_str().unwrap(),
                "--targets-pub",
                d.join("rel-ben.pub").to_str().unwrap(),
                "--targets-threshold",
                "2",
                "--out",
                root.to_str().unwrap(),
            ],
        );
        std::fs::read(&root).unwrap()
    };
    // Targets version 1 is published: the next proposal builds on it.
    release(&srv, d, "1.0.0", 1, "true");
    let (r, _) = publish(&srv, d, "1.1.0", 2, "true");
    let sign = |root: &Path| {
        run(srv
            .cli()
            .args(["release", "sign", &r, "--key"])
            .arg(d.join("rel-ana.key"))
            .arg("--root")
            .arg(root)
            .env("BULWARK_KEY_PASSPHRASE", "correct horse battery"))
    };

    // Another repository's root, same version: not the server's root.
    let other = d.join("other-root.json");
    foreign_root(d, &other, 1);
    let (code, out, err) = sign(&other);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("does not chain from the pinned root")
            && err.contains("other-root.json")
            && err.contains("another image repository"),
        "{err}"
    );
    // A pinned root newer than the server's: rollback.
    let newer = d.join("newer-root.json");
    foreign_root(d, &newer, 7);
    let (code, out, err) = sign(&newer);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("rollback refused"), "{err}");
    // No pinned root: say which option and which file.
    let (code, out, err) = sign(&d.join("missing.json"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("--root") && err.contains("repo init --out"),
        "{err}"
    );
    // None of the refusals signed: the right root gives the first signature.
    let (code, out, err) = sign(&root);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 of 2 signatures"), "{out}");

    // rotate-root starts from the pinned root in --out, too.
    for (pinned, needle) in [
        (&other, "does not chain from the pinned root"),
        (&d.join("missing.json"), "pass --out FILE"),
    ] {
        fails(
            &srv,
            &[
                "repo",
                "rotate-root",
                "--key",
                d.join("root-1.key").to_str().unwrap(),
                "--targets-threshold",
                "1",
                "--out",
                pinned.to_str().unwrap(),
            ],
            needle,
        );
    }
    assert_eq!(std::fs::read(&root).unwrap(), root_v1);
    let shown = ok(&srv, &["repo", "show"]);
    assert!(shown.contains("version:  1"), "{shown}");

    // A signer pinned at version 1 follows a rotation to version 2.
    let pinned_v1 = d.join("root-v1.json");
    std::fs::write(&pinned_v1, &root_v1).unwrap();
    let out = ok(
        &srv,
        &[
            "repo",
            "rotate-root",
            "--key",
            d.join("root-1.key").to_str().unwrap(),
            "--out",
            root.to_str().unwrap(),
        ],
    );
    assert!(out.contains("root version 2 accepted"), "{out}");
    let (code, out, err) = run(srv
        .cli()
        .args(["release", "sign", &r, "--key"])
        .arg(d.join("rel-ben.key"))
        .arg("--root")
        .arg(&pinned_v1)
        .env("BULWARK_KEY_PASSPHRASE", "correct horse battery"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("followed 1 signed rotation(s) from the pinned version 1"),
        "{err}"
    );
    assert!(out.contains("signatures"), "{out}");
}
