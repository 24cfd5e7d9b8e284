//! Telemetry's two encodings over the fixtures in `tests/fixtures/telemetry`:
//!
//! - `valid/*.json`: each sample decodes from JSON, and from our CBOR, to
//!   the same value; and, differentially, Python's `cbor2` (an independent
//!   implementation of the layout, `cbor_reference.py`) decodes our CBOR
//!   to the same sample and writes CBOR of its own (doubles, minimal
//!   integers) that we decode to the same sample. Without `cbor2` that
//!   test says so and returns, or fails when `CI` is set
//!   (`bulwark_testpg::require_python`).
//! - `hostile/*.txt`: a `# expect: …` line and the message in hex; each is
//!   refused, with an error whose text contains the expectation.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bulwark_proto::telemetry::{Encoding, Telemetry, decode};

fn fixtures(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/telemetry")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// A Python 3 with `cbor2`, or `None` (the test returns) outside CI.
fn cbor2_python() -> Option<PathBuf> {
    bulwark_testpg::require_python("python3", &["cbor2"], "python3 -m pip install cbor2==5.6.5")
}

/// Runs the reference script in `mode` with `input` on stdin.
fn reference(python: &Path, mode: &str, input: &str) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telemetry/cbor_reference.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cbor_reference.py {mode} failed (is cbor2 installed? `cargo xtask ci` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn valid_samples_mean_the_same_in_both_encodings() {
    for path in fixtures("valid", "json") {
        let name = path.display();
        let json = std::fs::read_to_string(&path).unwrap();
        let t: Telemetry = decode(json.trim().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));

        let ours = t.encode_as(Encoding::Cbor).unwrap();
        assert_eq!(Encoding::of(&ours), Encoding::Cbor);
        assert!(
            ours.len() < t.encode().unwrap().len(),
            "{name}: CBOR not smaller"
        );
        assert_eq!(decode(&ours).unwrap(), t, "{name}: our CBOR round trip");
    }
}

#[test]
fn valid_samples_mean_the_same_to_cbor2() {
    let Some(python) = cbor2_python() else {
        return;
    };
    for path in fixtures("valid", "json") {
        let name = path.display();
        let json = std::fs::read_to_string(&path).unwrap();
        let t: Telemetry = decode(json.trim().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = t.encode_as(Encoding::Cbor).unwrap();

        // cbor2 reads our bytes as the same sample…
        let theirs_json = reference(&python, "from-cbor", &hex(&ours));
        assert_eq!(
            decode(theirs_json.as_bytes()).unwrap(),
            t,
            "{name}: cbor2 read our CBOR as {theirs_json}"
        );
        // …and writes the sample its own way, which we read back.
        let theirs = unhex(&reference(&python, "to-cbor", &json));
        assert_eq!(
            decode(&theirs).unwrap_or_else(|e| panic!("{name}: cbor2's CBOR refused: {e}")),
            t,
            "{name}: cbor2's CBOR"
        );
    }
}

#[test]
fn hostile_messages_are_refused_with_a_clear_error() {
    let mut failures = Vec::new();
    for path in fixtures("hostile", "txt") {
        let name = path.display();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let expect = lines
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: …`"));
        let bytes = unhex(
            lines
                .next()
                .unwrap_or_else(|| panic!("{name}: no hex line")),
        );
        match decode(&bytes) {
            Ok(t) => failures.push(format!("{name}: accepted as {t:?}")),
            Err(e) if !e.to_string().contains(expect) => {
                failures.push(format!("{name}: error `{e}` does not mention `{expect}`"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_truncation_and_every_single_byte_change_of_a_sample_is_handled() {
    // Not a substitute for the fuzz target: a deterministic sweep so that a
    // panic on a near-valid message shows up in the test suite too.
    // The sample with lists of every kind (by index it was `minimal`,
    // which has none).
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telemetry/valid/typical.json");
    let t = decode(std::fs::read_to_string(&path).unwrap().trim().as_bytes()).unwrap();
    let good = t.encode_as(Encoding::Cbor).unwrap();
    for cut in 0..good.len() {
        assert!(
            decode(&good[..cut]).is_err(),
            "a prefix of {cut} bytes was accepted"
        );
    }
    for i in 0..good.len() {
        for b in [
            0x00, 0x17, 0x18, 0x1b, 0x40, 0x5f, 0x80, 0x9f, 0xa0, 0xbf, 0xf6, 0xfb, 0xff,
        ] {
            let mut bad = good.clone();
            bad[i] = b;
            if let Ok(d) = decode(&bad) {
                // A change may still be a valid sample (another number);
                // then it must survive its own round trip.
                assert_eq!(decode(&d.encode_as(Encoding::Cbor).unwrap()).unwrap(), d);
            }
        }
    }
}
