//! Shared helpers: fixture listing, SBOM rendering, reference runners.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_sbom::{Limits, Sbom};

/// A reference validator: its script in `tests/`, the Python modules it
/// imports, and the command that installs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    pub(crate) script: &'static str,
    pub(crate) modules: &'static [&'static str],
    pub(crate) install: &'static str,
}

pub(crate) const CYCLONEDX: Reference = Reference {
    script: "validate_cyclonedx.py",
    modules: &["cyclonedx.validation.json", "jsonschema"],
    install: "python3 -m pip install 'cyclonedx-python-lib[json-validation]==11.12.0'",
};
pub(crate) const SPDX: Reference = Reference {
    script: "validate_spdx.py",
    modules: &["spdx_tools.spdx.validation.document_validator"],
    install: "python3 -m pip install 'spdx-tools==0.8.5'",
};

pub(crate) fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixtures(dir: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(dir)
}

/// The `.json` files of a fixture folder, sorted.
pub(crate) fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures(dir))
        .unwrap_or_else(|e| panic!("cannot list fixtures/{dir}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// One line per component, enough to review a reader's result.
pub(crate) fn render(sbom: &Sbom) -> String {
    let mut out = format!(
        "subject: {:?} {:?}\n",
        sbom.subject,
        sbom.subject_version.as_deref().unwrap_or("-")
    );
    for c in &sbom.components {
        write!(
            out,
            "- {:?} {:?} {:?}\n  purl: {}\n",
            c.ecosystem, c.name, c.version, c.purl
        )
        .expect("write to String");
        for (key, value) in [
            ("license", &c.license),
            ("sha256", &c.sha256),
            ("found_in", &c.found_in),
        ] {
            if let Some(value) = value {
                writeln!(out, "  {key}: {value}").expect("write to String");
            }
        }
    }
    out
}

/// Reads a fixture with the default limits; `Ok` renders the SBOM, `Err`
/// the error message.
pub(crate) fn read_fixture(path: &Path) -> Result<Sbom, String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sbom::from_json(&bytes, &Limits::default()).map_err(|e| e.to_string())
}

/// What a reference validator said about each file.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) path: PathBuf,
    /// `None` when valid, else the reference's reason.
    pub(crate) problem: Option<String>,
}

pub(crate) fn python() -> String {
    std::env::var("BULWARK_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs the reference's script on `files`. When Python or the reference
/// package is missing: `None` after a skip line (the test returns), or a
/// failure when `CI` is set (`bulwark_testpg::require_python`).
pub(crate) fn run_reference(reference: Reference, files: &[PathBuf]) -> Option<Vec<Verdict>> {
    let Reference {
        script,
        modules,
        install,
    } = reference;
    let python = bulwark_testpg::require_python(&python(), modules, install)?;
    let output = Command::new(&python)
        .arg(crate_dir().join("tests").join(script))
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code() != Some(3),
        "reference validator missing: {}\ninstall it with: {install}",
        stdout.trim()
    );
    assert!(
        output.status.success(),
        "{script} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    eprintln!("{}", lines.next().unwrap_or("no reference version line"));
    let verdicts: Vec<Verdict> = lines
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let (verdict, path) = (fields.next(), fields.next());
            let path = PathBuf::from(path.unwrap_or_else(|| panic!("bad line {line:?}")));
            match verdict {
                Some("ok") => Verdict {
                    path,
                    problem: None,
                },
                Some("invalid") => Verdict {
                    path,
                    problem: Some(fields.next().unwrap_or("").to_owned()),
                },
                _ => panic!("bad line {line:?}"),
            }
        })
        .collect();
    assert_eq!(verdicts.len(), files.len(), "{script} skipped files");
    Some(verdicts)
}
