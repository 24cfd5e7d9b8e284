//! `bulwark demo` at small scale: the whole loop, every step's outcome
//! asserted by the demo itself (it exits non-zero if any step did not do
//! what it should), and the closing table checked here.

use crate::support::*;

#[test]
fn the_whole_loop_on_fifty_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo-data");
    let (code, out, err) = run(bulwark()
        .args(["demo", "--devices", "50", "--attackers", "2", "--data-dir"])
        .arg(&data));
    assert_eq!(code, 0, "the demo failed:\n{out}\n{err}");
    for needle in [
        "sensor-fw@1.0.0 blocked: smallvec@1.6.0 has RUSTSEC-2021-0003",
        "sensor-fw@1.0.1 passed the gate",
        "threshold met",
        "5 installed, 0 rolled back",
        "43 installed, 2 rolled back",
        "2 attackers alerted, quarantined and isolated",
        "no other device was quarantined",
        "(staging in CBOR, production in JSON), none refused as invalid",
        "journal verified",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    for row in [
        "| publish → gate verdict (blocked) |",
        "| deploy → 100% installed (staging) |",
        "| deploy → 100% settled (production) |",
        "| attack → all attackers quarantined |",
        "| journal verify |",
    ] {
        assert!(out.contains(row), "missing {row:?} in:\n{out}");
    }
    // The release keys it made are private.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("demo/keys/release-ana.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A data directory in use is refused, not overwritten.
    let (code, _, err) = run(bulwark()
        .args(["demo", "--devices", "50", "--data-dir"])
        .arg(&data));
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");
}

#[test]
fn bad_demo_and_sim_arguments_are_refused_clearly() {
    for (args, needle) in [
        (
            &["demo", "--devices", "3"][..],
            "--devices must be 10..=20000",
        ),
        (
            &["demo", "--devices", "20", "--attackers", "5"][..],
            "--attackers must be",
        ),
        (
            &[
                "sim",
                "--server",
                "https://127.0.0.1:1",
                "--ca",
                "/nonexistent/ca.pem",
                "--enroll-token",
                "x",
            ][..],
            "reading the CA certificate",
        ),
        (
            &[
                "sim",
                "--server",
                "https://127.0.0.1:1",
                "--ca",
                "x",
                "--enroll-token",
                "x",
                "--attack",
                "ddos",
            ][..],
            "unknown attack",
        ),
        (
            &[
                "sim",
                "--server",
                "https://127.0.0.1:1",
                "--ca",
                "x",
                "--enroll-token",
                "x",
                "--devices",
                "0",
            ][..],
            "--devices must be",
        ),
        (
            &[
                "sim",
                "--server",
                "https://127.0.0.1:1",
                "--ca",
                "x",
                "--enroll-token",
                "x",
                "--checkin-interval",
                "0s",
            ][..],
            "more than zero",
        ),
    ] {
        let (code, _, err) = run(bulwark().args(args));
        assert_ne!(code, 0, "{args:?}");
        assert!(
            err.contains(needle),
            "{args:?}: missing {needle:?} in {err}"
        );
    }
}

#[test]
fn sim_enrolls_with_one_token_and_checks_in() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start_server(&tmp.path().join("data"));
    let (code, token, err) = run(srv.cli().args([
        "enroll-token",
        "create",
        "--group",
        "sim",
        "--env",
        "staging",
        "--uses",
        "4",
    ]));
    assert_eq!(code, 0, "{err}");
    let work = tmp.path().join("fleet");
    let sim = |devices: &str| {
        let mut c = bulwark();
        c.args(["sim", "--server", &format!("https://{}", srv.dev), "--ca"])
            .arg(srv.data.join("ca.pem"))
            .args([
                "--devices",
                devices,
                "--checkin-interval",
                "1s",
                "--duration",
                "3s",
                "--work-dir",
            ])
            .arg(&work)
            .env("BULWARK_ENROLL_TOKEN", token.trim());
        run(&mut c)
    };
    let (code, out, err) = sim("4");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("4 devices enrolled"), "{err}");
    assert!(
        out.contains("check-ins") && !out.contains("check-ins 0 "),
        "{out}"
    );
    let (_, list, _) = run(srv.cli().args(["devices", "list", "--group", "sim"]));
    assert_eq!(list.matches("sim-0000").count(), 4, "{list}");
    // The same work dir: the enrolled devices are reused, not enrolled again
    // (the token has no uses left).
    let (code, out, err) = sim("4");
    assert_eq!(code, 0, "{out}\n{err}");
    // One more device needs one more use: refused, clearly.
    let (code, _, err) = sim("5");
    assert_eq!(code, 1);
    assert!(
        err.contains("enrolling device 4") && err.contains("already been used"),
        "{err}"
    );
}
