//! Differential interop: a repository written by python-tuf
//! (`tests/tuf_interop/make_repo.py`), served by Python's `http.server` on
//! 127.0.0.1, is consumed by the `bulwark-tuf-client` binary.
//!
//! Needs python-tuf with its crypto extra ([`TUF_INSTALL`]). The interpreter is
//! `$BULWARK_TUF_PYTHON`, or `python3`. Without python-tuf the test says so and
//! returns, or fails when `CI` is set ([`tuf_python`]).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Installs the reference (python-tuf) for [`tuf_python`].
pub(crate) const TUF_INSTALL: &str =
    "python3 -m pip install tuf==7.0.0 'securesystemslib[crypto]==1.4.0'";

/// `$BULWARK_TUF_PYTHON` (or `python3`) once it imports python-tuf and its
/// crypto; `None` (after a skip line) when missing outside CI, a failure
/// when `CI` is set (`bulwark_testpg::require_python`).
pub(crate) fn tuf_python() -> Option<PathBuf> {
    let python = std::env::var("BULWARK_TUF_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    bulwark_testpg::require_python(
        &python,
        &["tuf.ngclient", "securesystemslib.signer", "cryptography"],
        TUF_INSTALL,
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tuf_interop")
        .join(name)
}

/// Kills the HTTP server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(python: &Path, dir: &Path) -> (Server, u16) {
    let mut child = Command::new(python)
        .arg(script("serve.py"))
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python http.server");
    let stdout = child.stdout.take().expect("server stdout");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read port");
    let port = line.trim().parse().expect("server printed its port");
    (server, port)
}

fn client(args: &[&str]) -> bool {
    let status = Command::new(env!("CARGO_BIN_EXE_bulwark-tuf-client"))
        .args(args)
        .status()
        .expect("run bulwark-tuf-client");
    status.success()
}

#[test]
fn consumes_a_python_tuf_repository() {
    let Some(python) = tuf_python() else {
        return;
    };

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let made = Command::new(&python)
        .arg(script("make_repo.py"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(made.success(), "make_repo.py failed");
    let (_server, port) = serve(&python, &repo);

    let metadata_dir = tmp.path().join("metadata");
    let target_dir = tmp.path().join("targets");
    std::fs::create_dir_all(&metadata_dir).unwrap();
    std::fs::create_dir_all(&target_dir).unwrap();
    let md = metadata_dir.to_str().unwrap();
    let td = target_dir.to_str().unwrap();
    let metadata_url = format!("http://127.0.0.1:{port}/metadata");
    let targets_url = format!("http://127.0.0.1:{port}/targets");
    let initial_root = repo.join("metadata/1.root.json");

    assert!(client(&[
        "--metadata-dir",
        md,
        "init",
        initial_root.to_str().unwrap()
    ]));
    assert!(client(&[
        "--metadata-dir",
        md,
        "--metadata-url",
        &metadata_url,
        "refresh"
    ]));
    // The rotated root was accepted and stored byte for byte.
    assert_eq!(
        std::fs::read(metadata_dir.join("root.json")).unwrap(),
        std::fs::read(repo.join("metadata/2.root.json")).unwrap()
    );

    let download = |names: &[&str]| {
        let mut args = vec!["--metadata-dir", md, "--metadata-url", &metadata_url];
        for name in names {
            args.extend(["--target-name", name]);
        }
        args.extend([
            "--target-base-url",
            &targets_url,
            "--target-dir",
            td,
            "download",
        ]);
        client(&args)
    };
    assert!(download(&["hello.txt", "nested/dir/data.bin"]));
    assert_eq!(
        std::fs::read(target_dir.join("hello.txt")).unwrap(),
        std::fs::read(repo.join("expected/hello.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read(target_dir.join("nested%2Fdir%2Fdata.bin")).unwrap(),
        std::fs::read(repo.join("expected/nested/dir/data.bin")).unwrap()
    );
    // The delegated role was verified and stored.
    assert!(metadata_dir.join("team.json").exists());

    // A target the repository replaced with other bytes is refused.
    for entry in std::fs::read_dir(repo.join("targets")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"malicious").unwrap();
        }
    }
    std::fs::remove_file(target_dir.join("hello.txt")).unwrap();
    assert!(!download(&["hello.txt"]), "tampered target must be refused");
    assert!(!target_dir.join("hello.txt").exists());
    // Only the earlier, verified download remains (no partial files).
    let left: Vec<_> = std::fs::read_dir(&target_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
