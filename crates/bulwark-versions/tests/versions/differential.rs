//! Differential tests: our answer against the reference implementation's,
//! for thousands of generated pairs, every real-world version and every
//! fixture. A missing reference is named with the command that installs
//! it: the test then returns, or fails when `CI` is set
//! (`bulwark_testpg::require_tool`).

use std::cmp::Ordering;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_versions::{Ecosystem, MAX_VERSION_LEN, Pep440Version, compare};

use crate::generate::{Rng, pairs};
use crate::support::{Expected, cases, invalid, real_world};

const DPKG_INSTALL: &str = "apt-get install -y dpkg";
const PACKAGING_INSTALL: &str = "python3 -m pip install 'packaging==26.3'";
const SEMVER_INSTALL: &str = "npm install --no-save --prefix <dir> semver@7";
const NODE_INSTALL: &str = "apt-get install -y nodejs npm";

/// Generated pairs per ecosystem. dpkg costs one or two processes per pair.
const DPKG_PAIRS: usize = 3000;
const PYTHON_PAIRS: usize = 10_000;
const NODE_PAIRS: usize = 10_000;

/// What the reference said about one pair.
#[derive(Debug, Clone)]
struct Answer {
    outcome: Expected,
    /// PEP 440 only: `str(Version(a))`, `str(Version(b))`.
    normalized: Option<(String, String)>,
}

/// Runs `cmd` with `input` on stdin; returns stdout, or panics after
/// `timeout` or on a non-zero exit.
fn run(mut cmd: Command, input: Vec<u8>, timeout: Duration, what: &str) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // The child may exit early (reference missing); ignore EPIPE.
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().expect("writer thread");
    let out = reader.join().expect("reader thread");
    let err = err_reader.join().expect("stderr thread");
    let code = status.code().unwrap_or(-1);
    if code != 0 && code != 3 {
        panic!("{what} failed ({status}): {err}");
    }
    (code, out)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Whether the reference can be asked about `s` at all: NUL cannot be an
/// argument, and non-ASCII and over-long input are where we are stricter by
/// design (checked by the fixture tests instead).
fn sendable(eco: Ecosystem, s: &str) -> bool {
    s.is_ascii()
        && !s.contains('\0')
        && s.len() <= MAX_VERSION_LEN
        && !(eco == Ecosystem::Debian && s.is_empty())
}

/// Inputs the reference accepts and we reject on purpose (see the crate
/// docs): a Debian epoch with a sign or leading whitespace, which dpkg's
/// `strtol` takes.
fn known_stricter(eco: Ecosystem, s: &str) -> bool {
    match eco {
        Ecosystem::Debian => s
            .trim_start_matches([' ', '\t'])
            .split_once(':')
            .is_some_and(|(epoch, _)| epoch.starts_with(['+', '-', '\n', '\r', '\x0b', '\x0c'])),
        _ => false,
    }
}

fn parse_symbol(line: &str) -> Expected {
    match line {
        "<" => Expected::Cmp(Ordering::Less),
        "=" => Expected::Cmp(Ordering::Equal),
        ">" => Expected::Cmp(Ordering::Greater),
        "E" => Expected::Err,
        other => panic!("unexpected reference output {other:?}"),
    }
}

/// `None` when `dpkg` is missing outside CI.
fn ask_dpkg(pairs: &[(String, String)]) -> Option<Vec<Answer>> {
    bulwark_testpg::require_tool("dpkg", DPKG_INSTALL)?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    // Any message on stderr (a warning) or exit code 2 (an error) means
    // dpkg found the syntax bad.
    let prelude = r#"c() {
  e=$(dpkg --compare-versions -- "$1" lt "$2" 2>&1 </dev/null); r=$?
  if [ -n "$e" ] || [ "$r" -gt 1 ]; then echo E; return; fi
  if [ "$r" = 0 ]; then echo '<'; return; fi
  if dpkg --compare-versions -- "$1" gt "$2" </dev/null 2>/dev/null; then echo '>'; else echo '='; fi
}
"#;
    // Two shells in parallel: the machine has two cores.
    let half = pairs.len().div_ceil(2).max(1);
    let handles: Vec<_> = pairs
        .chunks(half)
        .map(|chunk| {
            let mut script = prelude.to_owned();
            for (a, b) in chunk {
                script.push_str(&format!("c {} {}\n", quote(a), quote(b)));
            }
            let n = chunk.len();
            std::thread::spawn(move || {
                let (_, out) = run(
                    Command::new("sh"),
                    script.into_bytes(),
                    Duration::from_secs(300),
                    "sh + dpkg",
                );
                let answers: Vec<Answer> = out
                    .lines()
                    .map(|l| Answer {
                        outcome: parse_symbol(l),
                        normalized: None,
                    })
                    .collect();
                assert_eq!(
                    answers.len(),
                    n,
                    "dpkg script gave the wrong number of answers"
                );
                answers
            })
        })
        .collect();
    Some(
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("dpkg thread"))
            .collect(),
    )
}

const PYTHON_SCRIPT: &str = r#"
import sys
try:
    import packaging
    from packaging.version import Version
except ImportError:
    print("MISSING")
    sys.exit(3)
out = ["packaging " + packaging.__version__]
for line in sys.stdin.buffer.read().split(b"\n"):
    if not line:
        continue
    a, b = (bytes.fromhex(h.decode()).decode() for h in line.split(b","))
    try:
        va, vb = Version(a), Version(b)
    except Exception:
        out.append("E")
        continue
    r = "<" if va < vb else (">" if va > vb else "=")
    out.append(f"{r} {va} {vb}")
sys.stdout.write("\n".join(out) + "\n")
"#;

fn python() -> String {
    std::env::var("BULWARK_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `None` when Python or `packaging` is missing outside CI.
fn ask_python(pairs: &[(String, String)]) -> Option<Vec<Answer>> {
    let python = bulwark_testpg::require_python(&python(), &["packaging"], PACKAGING_INSTALL)?;
    let input: String = pairs
        .iter()
        .map(|(a, b)| format!("{},{}\n", hex(a), hex(b)))
        .collect();
    let mut cmd = Command::new(&python);
    cmd.args(["-c", PYTHON_SCRIPT]);
    let what = python.display().to_string();
    let (code, out) = run(cmd, input.into_bytes(), Duration::from_secs(120), &what);
    assert!(
        code == 0 && !out.starts_with("MISSING"),
        "reference Python `packaging` not found for `{what}`; install it with: {PACKAGING_INSTALL}"
    );
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    eprintln!("PEP 440 reference: {header}");
    let answers: Vec<Answer> = lines
        .map(|l| {
            let mut fields = l.split(' ');
            let outcome = parse_symbol(fields.next().unwrap_or_default());
            let normalized = match (fields.next(), fields.next()) {
                (Some(a), Some(b)) => Some((a.to_owned(), b.to_owned())),
                _ => None,
            };
            Answer {
                outcome,
                normalized,
            }
        })
        .collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "python gave the wrong number of answers"
    );
    Some(answers)
}

const NODE_SCRIPT: &str = r#"
let semver;
try { semver = require(process.argv[1]); } catch (e) { console.log("MISSING"); process.exit(3); }
const input = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l.length > 0);
const out = [];
for (const line of input) {
  const [a, b] = line.split(",").map((h) => Buffer.from(h, "hex").toString("utf8"));
  try {
    const c = semver.compare(a, b);
    out.push(c < 0 ? "<" : c > 0 ? ">" : "=");
  } catch (e) {
    out.push("E");
  }
}
process.stdout.write(out.join("\n") + "\n");
"#;

/// Where the npm `semver` package is installed: `$BULWARK_SEMVER_DIR`, or
/// under the cargo target directory, installed there on first use; `None`
/// when npm is missing or the install fails, outside CI.
fn semver_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BULWARK_SEMVER_DIR") {
        return Some(PathBuf::from(dir));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-semver");
    let module = dir.join("node_modules/semver/package.json");
    if !module.exists() {
        let npm = bulwark_testpg::require_tool("npm", NODE_INSTALL)?;
        let install = SEMVER_INSTALL.replace("<dir>", &dir.display().to_string());
        eprintln!("installing the npm semver reference: {install}");
        let mut cmd = Command::new(npm);
        cmd.args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ])
        .arg(&dir)
        .arg("semver@7");
        let spawned = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let ok = spawned.is_ok_and(|mut child| {
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status.success(),
                    Ok(None) if start.elapsed() < Duration::from_secs(180) => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break false;
                    }
                }
            }
        });
        if !(ok && module.exists()) {
            return bulwark_testpg::missing(
                "the npm package `semver`",
                &format!(
                    "not in {}, and `npm install` failed; or point BULWARK_SEMVER_DIR at a \
                     directory holding node_modules/semver",
                    dir.display()
                ),
                &install,
            );
        }
    }
    Some(dir)
}

/// `None` when Node.js or npm's `semver` is missing outside CI.
fn ask_node(pairs: &[(String, String)]) -> Option<Vec<Answer>> {
    let node = bulwark_testpg::require_tool("node", NODE_INSTALL)?;
    let dir = semver_dir()?;
    let module = dir.join("node_modules/semver");
    let input: String = pairs
        .iter()
        .map(|(a, b)| format!("{},{}\n", hex(a), hex(b)))
        .collect();
    let mut cmd = Command::new(&node);
    cmd.arg("-e").arg(NODE_SCRIPT).arg(&module);
    let what = node.display().to_string();
    let (code, out) = run(cmd, input.into_bytes(), Duration::from_secs(120), &what);
    assert!(
        code == 0 && !out.starts_with("MISSING"),
        "reference npm `semver` not loadable from {}; install it with: {}",
        module.display(),
        SEMVER_INSTALL.replace("<dir>", &dir.display().to_string())
    );
    let answers: Vec<Answer> = out
        .lines()
        .map(|l| Answer {
            outcome: parse_symbol(l),
            normalized: None,
        })
        .collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "node gave the wrong number of answers"
    );
    Some(answers)
}

/// Every pair to ask about: generated, real-world, fixtures; plus, from
/// `invalid.txt`, each entry against a valid version with what the
/// reference must say about it.
struct Batch {
    pairs: Vec<(String, String)>,
    /// For pairs from `invalid.txt`: whether the reference must *accept*
    /// the pair (a `strict` entry) rather than reject it.
    invalid: Vec<Option<bool>>,
    generated: usize,
}

fn batch(eco: Ecosystem, generated: usize, salt: u64) -> Batch {
    let mut pairs: Vec<(String, String)> = pairs(eco, generated, salt)
        .into_iter()
        .filter(|(a, b)| sendable(eco, a) && sendable(eco, b))
        .collect();
    let mut invalid_flags = vec![None; pairs.len()];
    // Real-world versions: neighbours in our order (so our sort is checked),
    // and random pairs.
    let mut real: Vec<String> = real_world(eco);
    real.sort_by(|a, b| compare(eco, a, b).expect("real-world versions are valid"));
    for w in real.windows(2) {
        pairs.push((w[0].clone(), w[1].clone()));
    }
    let mut rng = Rng::new(salt ^ 0xfeed);
    for _ in 0..real.len() * 2 {
        let a = real[rng.below(real.len())].clone();
        let b = real[rng.below(real.len())].clone();
        pairs.push((a, b));
    }
    invalid_flags.resize(pairs.len(), None);
    for case in cases(eco) {
        if sendable(eco, &case.a) && sendable(eco, &case.b) {
            pairs.push((case.a, case.b));
            invalid_flags.push(None);
        }
    }
    let valid = match eco {
        Ecosystem::Semver => "1.0.0",
        _ => "1.0",
    };
    for entry in invalid(eco) {
        if sendable(eco, &entry.version) {
            pairs.push((entry.version, valid.to_owned()));
            invalid_flags.push(Some(entry.stricter_than_reference));
        }
    }
    Batch {
        pairs,
        invalid: invalid_flags,
        generated,
    }
}

fn check(eco: Ecosystem, batch: &Batch, answers: &[Answer]) {
    let mut problems = Vec::new();
    let mut disagreements = 0;
    let mut stricter = 0;
    for (((a, b), answer), invalid) in batch.pairs.iter().zip(answers).zip(&batch.invalid) {
        let ours = Expected::of(&compare(eco, a, b));
        if let Some(strict) = invalid {
            assert_eq!(ours, Expected::Err, "invalid.txt entry {a:?} was accepted");
            let reference_accepts = answer.outcome != Expected::Err;
            if reference_accepts != *strict {
                problems.push(format!(
                    "invalid.txt entry {a:?}: reference {} it, but the fixture says it {}",
                    if reference_accepts {
                        "accepts"
                    } else {
                        "rejects"
                    },
                    if *strict {
                        "accepts (strict)"
                    } else {
                        "rejects"
                    }
                ));
            }
            continue;
        }
        if ours == Expected::Err && (known_stricter(eco, a) || known_stricter(eco, b)) {
            stricter += 1;
            continue;
        }
        if ours != answer.outcome {
            disagreements += 1;
            problems.push(format!(
                "{eco}: compare({a:?}, {b:?}): ours {} reference {}",
                ours.symbol(),
                answer.outcome.symbol()
            ));
            continue;
        }
        if let Some((na, nb)) = &answer.normalized {
            for (raw, reference) in [(a, na), (b, nb)] {
                let ours = raw.parse::<Pep440Version>().map(|v| v.to_string());
                if ours.as_deref() != Ok(reference.as_str()) {
                    problems.push(format!(
                        "PEP 440 normal form of {raw:?}: ours {ours:?} reference {reference:?}"
                    ));
                }
            }
        }
    }
    let errors = answers
        .iter()
        .filter(|a| a.outcome == Expected::Err)
        .count();
    eprintln!(
        "{eco}: {} pairs checked against the reference ({} generated, {} rejected by it), \
         {stricter} rejected only by us by design, {disagreements} disagreements",
        batch.pairs.len(),
        batch.generated,
        errors
    );
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(60).map(String::as_str).collect();
        panic!(
            "{} problems, first ones:\n{}",
            problems.len(),
            shown.join("\n")
        );
    }
}

#[test]
fn debian_agrees_with_dpkg() {
    let batch = batch(Ecosystem::Debian, DPKG_PAIRS, 1);
    let Some(answers) = ask_dpkg(&batch.pairs) else {
        return;
    };
    check(Ecosystem::Debian, &batch, &answers);
}

#[test]
fn pep440_agrees_with_packaging() {
    let batch = batch(Ecosystem::Pep440, PYTHON_PAIRS, 2);
    let Some(answers) = ask_python(&batch.pairs) else {
        return;
    };
    check(Ecosystem::Pep440, &batch, &answers);
}

#[test]
fn semver_agrees_with_npm_semver() {
    let batch = batch(Ecosystem::Semver, NODE_PAIRS, 3);
    let Some(answers) = ask_node(&batch.pairs) else {
        return;
    };
    check(Ecosystem::Semver, &batch, &answers);
}
