//! The `bulwark` binary as a user runs it: exit codes and messages for bad
//! input, and a real server round trip.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn missing_server_or_token_is_a_clear_error() {
    let (code, _, err) = run(bulwark().args(["devices", "list"]));
    assert_eq!(code, 1);
    assert!(err.contains("no server: set BULWARK_SERVER"), "{err}");
    let (code, _, err) = run(bulwark()
        .args(["devices", "list"])
        .env("BULWARK_SERVER", "http://127.0.0.1:1"));
    assert_eq!(code, 1);
    assert!(err.contains("no API token"), "{err}");
    let (code, _, err) = run(bulwark()
        .args(["devices", "list"])
        .env("BULWARK_SERVER", "ftp://x")
        .env("BULWARK_TOKEN", "t"));
    assert_eq!(code, 1);
    assert!(err.contains("must start with http://"), "{err}");
}

#[test]
fn invalid_server_configuration_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bulwark.toml");
    std::fs::write(
        &cfg,
        "poll_interval_secs = 1\ndatabase_url = \"mysql://x\"\n",
    )
    .unwrap();
    let (code, _, err) = run(bulwark()
        .args(["server", "--config"])
        .arg(&cfg)
        .args(["--listen", "nonsense"]));
    assert_eq!(code, 1);
    for needle in [
        "data_dir: is required",
        "listen: \"nonsense\" is not an IP:port",
        "database_url: must start with",
        "poll_interval_secs: 1 is outside",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    std::fs::write(&cfg, "listen_adress = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = run(bulwark().args(["server", "--config"]).arg(&cfg));
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `listen_adress`"), "{err}");
}

#[test]
fn exit_codes_are_listed_and_an_unreachable_server_exits_8() {
    let (code, out, _) = run(bulwark().arg("--help"));
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit codes:") && out.contains("8  server unreachable"),
        "{out}"
    );
    let (code, _, err) = run(bulwark()
        .args(["devices", "list"])
        .env("BULWARK_SERVER", "http://127.0.0.1:1")
        .env("BULWARK_TOKEN", "t"));
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (code, _, err) = run(bulwark().args(["devices", "tag", "x"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(bulwark()
        .args([
            "enroll-token",
            "create",
            "--group",
            "g",
            "--env",
            "e",
            "--ttl",
            "soon",
        ])
        .env("BULWARK_SERVER", "http://127.0.0.1:1")
        .env("BULWARK_TOKEN", "t"));
    assert_eq!(code, 1);
    assert!(err.contains("is not a duration"), "{err}");
}

#[test]
fn openapi_prints_the_committed_document() {
    let (code, out, _) = run(bulwark().arg("openapi"));
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    assert_eq!(out, committed);
}

/// Starts `bulwark server` on free ports, then drives it with the CLI.
#[test]
fn server_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (api, dev) = (free(), free());
    let mut server = bulwark()
        .args([
            "server",
            "--listen",
            &api,
            "--device-listen",
            &dev,
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.starts_with("Admin token written to");
        printed.push(line);
        if done {
            break;
        }
    }
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    assert!(
        !printed.join("\n").contains(token.trim()),
        "the token itself must never be printed"
    );
    let env = |c: &mut Command| {
        c.env("BULWARK_SERVER", format!("http://{api}"))
            .env("BULWARK_TOKEN", token.trim());
    };
    let mut c = bulwark();
    env(&mut c);
    let (code, out, err) = run(c.args([
        "enroll-token",
        "create",
        "--group",
        "lobby-sensors",
        "--env",
        "staging",
        "--ttl",
        "10m",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("bwe_"), "{out}");
    let mut c = bulwark();
    env(&mut c);
    // A token the server does not know: not authenticated exits 6.
    let mut c = bulwark();
    env(&mut c);
    let (code, _, err) = run(c
        .args(["devices", "list"])
        .env("BULWARK_TOKEN", "bwk_0000000000000000_x"));
    assert_eq!(code, 6, "{err}");
    // Not an id, so a name: none has it, and not found exits 3.
    let mut c = bulwark();
    env(&mut c);
    let (code, _, err) = run(c.args(["devices", "show", "not-an-id"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not-an-id"), "{err}");
    let mut c = bulwark();
    env(&mut c);
    let (code, _, err) = run(c.args(["accounts", "create", "ana", "--role", "wizard"]));
    assert_eq!(code, 1);
    assert!(err.contains("role: must be one of"), "{err}");
    let mut c = bulwark();
    env(&mut c);
    let (code, out, _) = run(c.args(["whoami"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("admin (admin)"), "{out}");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown on SIGTERM exits 0, got {status}"
    );
}

/// Every change the API acknowledged — and its journal entry — survives
/// SIGKILL of the server; the restarted server signs a checkpoint over them
/// and the journal verifies against one saved before the kill.
#[test]
fn acknowledged_changes_and_their_journal_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start_server(&data);
    let (code, trusted, err) = run(server.cli().args(["audit", "checkpoint"]));
    assert_eq!(code, 0, "{err}");
    for i in 0..15 {
        let (code, _, err) = run(server.cli().args([
            "accounts",
            "create",
            &format!("user{i}"),
            "--role",
            "viewer",
        ]));
        assert_eq!(code, 0, "{err}");
    }
    // No grace: the process dies with whatever it had not flushed.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut server = start_server(&data);
    let (code, out, err) = run(server.cli().args(["accounts", "list"]));
    assert_eq!(code, 0, "{err}");
    for i in 0..15 {
        assert!(
            out.contains(&format!("user{i} ")),
            "user{i} lost after SIGKILL:\n{out}"
        );
    }
    let (code, log, _) = run(server
        .cli()
        .args(["audit", "log", "--action", "account.create"]));
    assert_eq!(code, 0);
    assert_eq!(
        log.lines().filter(|l| l.contains("account.create")).count(),
        16,
        "admin + 15 users:\n{log}"
    );
    let cp = dir.path().join("trusted.txt");
    std::fs::write(&cp, trusted).unwrap();
    let (code, out, err) = run(server
        .cli()
        .args(["audit", "verify", "--trusted"])
        .arg(&cp)
        .arg("--key")
        .arg(data.join("journal.vkey")));
    assert_eq!(code, 0, "{err}");
    // Bootstrap: admin account, its token, the built-in detection profile,
    // the director's root; then 15.
    assert!(out.starts_with("journal verified: 19 entries"), "{out}");
    assert!(
        out.contains("consistent with the trusted checkpoint of size 4"),
        "{out}"
    );
    let bundle = dir.path().join("journal.tar");
    let (code, _, err) = run(server.cli().args(["audit", "export", "--out"]).arg(&bundle));
    assert_eq!(code, 0, "{err}");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status();
    server.child.wait().unwrap();
    // Offline: the server is gone, the bundle still verifies.
    let (code, out, err) = run(bulwark()
        .args(["audit", "verify", "--bundle"])
        .arg(&bundle)
        .arg("--trusted")
        .arg(&cp)
        .arg("--key")
        .arg(data.join("journal.vkey")));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("consistent with the trusted checkpoint"),
        "{out}"
    );
    // A bundle whose entry was altered fails, naming it.
    let mut archive = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
    let mut files = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        files.insert(name, bytes);
    }
    let entries = files.get_mut("bulwark-journal/entries.jsonl").unwrap();
    let text = String::from_utf8(entries.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(line["raw"].as_str().unwrap())
        .unwrap();
    let forged = String::from_utf8(raw).unwrap().replace("viewer", "admin");
    line["raw"] =
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(forged));
    lines[5] = line.to_string();
    *entries = (lines.join("\n") + "\n").into_bytes();
    let forged_bundle = dir.path().join("forged.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&forged_bundle).unwrap());
    for (name, bytes) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let (code, _, err) = run(bulwark()
        .args(["audit", "verify", "--bundle"])
        .arg(&forged_bundle)
        .arg("--key")
        .arg(data.join("journal.vkey")));
    assert_eq!(code, 1);
    assert!(err.contains("entry 5 was altered"), "{err}");
}

/// One token enrolls a small fleet: `--uses 2` enrolls two real agents, the
/// third is refused with a clear message, and the listing counts the uses.
#[test]
fn a_multi_use_enrollment_token_enrolls_exactly_its_uses() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_server(&dir.path().join("data"));
    let (code, token, err) = run(srv.cli().args([
        "enroll-token",
        "create",
        "--group",
        "lobby-sensors",
        "--env",
        "staging",
        "--uses",
        "2",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("token for 2 devices"), "{err}");
    let enroll = |name: &str| {
        Command::new(crate::updates::agent_bin())
            .args(["enroll", "--server", &format!("https://{}", srv.dev)])
            .arg("--ca")
            .arg(srv.data.join("ca.pem"))
            .arg("--state-dir")
            .arg(dir.path().join(name))
            .env("BULWARK_ENROLL_TOKEN", token.trim())
            .output()
            .unwrap()
    };
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let out = enroll(name);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ids.push(
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("enrolled as device "))
                .unwrap_or_else(|| panic!("{stdout}"))
                .trim()
                .to_owned(),
        );
    }
    assert_ne!(ids[0], ids[1]);
    let out = enroll("third");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("409") && err.contains("already been used (all 2 uses)"),
        "{err}"
    );
    assert!(!dir.path().join("third").join("agent.toml").exists());

    let (code, out, err) = run(srv.cli().args(["enroll-token", "list"]));
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.contains("lobby-sensors"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" 2/2 ") && row.contains(&ids[1]), "{out}");
    let (code, out, err) = run(srv.cli().args(["devices", "list"]));
    assert_eq!(code, 0, "{err}");
    for id in &ids {
        assert!(out.contains(id.as_str()), "{out}");
    }
    // The listing has a header and a state per device (issue 19).
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME", "STATE", "RELEASE", "GROUP", "ENV", "LAST", "SEEN", "ID"
        ],
        "{out}"
    );
    // Names: a name is accepted wherever an id is; renamed uniquely.
    let (code, out, err) = run(srv.cli().args(["devices", "rename", &ids[0], "lobby-a"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("to lobby-a"), "{out}");
    let (code, _, err) = run(srv.cli().args(["devices", "rename", &ids[1], "lobby-a"]));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, out, err) = run(srv.cli().args(["devices", "show", "lobby-a"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(ids[0].as_str()), "{out}");
    let (code, _, err) =
        run(srv
            .cli()
            .args(["devices", "quarantine", "lobby-a", "--reason", "test"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(srv
        .cli()
        .args(["devices", "list", "--state", "quarantined"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("lobby-a") && out.contains("quarantined"),
        "{out}"
    );
    assert!(!out.contains(ids[1].as_str()), "{out}");
    let (code, out, err) = run(srv.cli().args(["devices", "list", "--search", "lobby-"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let (code, _, err) = run(srv.cli().args(["devices", "show", "no-such-device"]));
    assert_ne!(code, 0);
    assert!(err.contains("no-such-device"), "{err}");
    // The journal: what devices did can be left out; the newest N, and
    // the page before.
    let (code, out, err) = run(srv.cli().args(["audit", "log"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("device.enroll"), "{out}");
    let (_, out, _) = run(srv.cli().args(["audit", "log", "--exclude-devices"]));
    assert!(
        !out.contains("device.enroll") && out.contains("device.rename"),
        "{out}"
    );
    let (code, out, err) = run(srv.cli().args(["audit", "log", "--limit", "2"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("device.quarantine"), "{out}");
    let first: u64 = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(err.contains(&format!("--before {first}")), "{err}");
    let (_, out, _) = run(srv.cli().args([
        "audit",
        "log",
        "--limit",
        "1",
        "--before",
        &first.to_string(),
    ]));
    let seq: u64 = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seq, first - 1, "{out}");
    // Out of range is the server's clear 400.
    let (code, _, err) = run(srv.cli().args([
        "enroll-token",
        "create",
        "--group",
        "g",
        "--env",
        "e",
        "--uses",
        "0",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("uses: must be between 1 and 100000"), "{err}");
    // An environment the server does not have would strand the devices
    // enrolled into it: refused, naming the ones it has.
    assert!(
        err.contains(
            "environment: \"e\" is not one of this server's environments (dev, staging, production)"
        ),
        "{err}"
    );
}
