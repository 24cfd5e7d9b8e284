//! Issue 19, item 9, as an operator meets it: log lines without colour
//! codes off a terminal and as JSON for collectors (`--log-format json`),
//! from the real `bulwark` and `bulwark-agent` binaries; every server
//! setting on `bulwark server --help` and in the reference configuration
//! (`--print-config`), with today's flag names still accepted.

use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;

fn free() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// Reads `from` (the child's output) on a thread until a line contains
/// `needle`, and returns what was read; the thread drains the rest. Kills
/// `child` and fails after a minute without it.
fn read_until(child: &mut Child, from: impl Read + Send + 'static, needle: &str) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return seen;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no {needle:?} in:\n{seen}");
            }
        }
    }
}

/// Runs `bulwark GLOBAL… server LOCAL…` with `env` on a fresh data
/// directory under `dir` until it serves, stops it with SIGTERM, and
/// returns its standard error (a pipe, not a terminal), checking that the
/// admin token is not in it.
fn serve_briefly(dir: &Path, global: &[&str], local: &[&str], env: &[(&str, &str)]) -> String {
    let holder = tempfile::tempdir_in(dir).unwrap();
    let data = holder.path().join("data");
    let mut child = bulwark()
        .args(global)
        .args(["server", "--listen", &free(), "--device-listen", &free()])
        .args(local)
        .arg("--data-dir")
        .arg(&data)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Printed last, on a new data directory only.
    let stdout = child.stdout.take().unwrap();
    read_until(&mut child, stdout, "Admin token written to");
    // The SIGTERM handler is installed right after that line.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    assert!(!err.contains(token.trim()), "the admin token was logged");
    err
}

/// Every line of `log` is a JSON object with a level, a target and a
/// message; returns the messages.
fn json_messages(log: &str) -> Vec<String> {
    assert!(!log.trim().is_empty(), "no log lines");
    log.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(v["level"].is_string(), "{line}");
            assert!(v["target"].is_string(), "{line}");
            assert!(v["timestamp"].is_string(), "{line}");
            v["fields"]["message"]
                .as_str()
                .unwrap_or_else(|| panic!("no fields.message: {line}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn server_logs_are_plain_text_off_a_terminal_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let text = serve_briefly(dir, &[], &[], &[]);
    assert!(text.contains("bulwark server started"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "colour codes in a piped log: {text:?}"
    );
    for (how, log) in [
        (
            "server --log-format json",
            serve_briefly(
                dir,
                &[],
                &["--log-format", "json"],
                &[("BULWARK_LOG_FORMAT", "text")],
            ),
        ),
        (
            "BULWARK_LOG_FORMAT=json",
            serve_briefly(dir, &[], &[], &[("BULWARK_LOG_FORMAT", "json")]),
        ),
        (
            "bulwark --log-format json server",
            serve_briefly(dir, &["--log-format", "json"], &[], &[]),
        ),
    ] {
        let messages = json_messages(&log);
        for needed in [
            "bulwark server started",
            "shutdown signal received",
            "bulwark server stopped",
        ] {
            assert!(
                messages.iter().any(|m| m == needed),
                "{how}: no {needed:?} in {log}"
            );
        }
    }
    // A fatal error is a JSON line too, so a collector sees why.
    let (code, _, err) = run(bulwark().args(["--log-format", "json", "server", "--listen", "x"]));
    assert_eq!(code, 1);
    assert_eq!(json_messages(&err), ["exiting on an error"]);
    assert!(err.contains("data_dir: is required"), "{err}");
}

/// `script` runs the server on a pseudo-terminal: colour there, unless
/// `NO_COLOR` is set.
#[test]
fn server_logs_are_coloured_only_on_a_terminal_without_no_color() {
    let Some(script) = bulwark_testpg::require_tool("script", "apt-get install -y bsdutils") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let on_a_terminal = |no_color: Option<&str>| -> String {
        let line = format!(
            "exec {} server --data-dir {} --listen {} --device-listen {}",
            env!("CARGO_BIN_EXE_bulwark"),
            dir.path().join("data").display(),
            free(),
            free()
        );
        let mut cmd = Command::new(&script);
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("BULWARK_LOG_FORMAT")
            .env_remove("BULWARK_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = read_until(&mut child, stdout, "bulwark server started");
        // Closing the terminal hangs the server up.
        let _ = child.kill();
        let _ = child.wait();
        seen
    };
    assert!(
        on_a_terminal(None).contains("\x1b["),
        "no colour on a terminal"
    );
    assert!(
        !on_a_terminal(Some("1")).contains("\x1b["),
        "colour despite NO_COLOR"
    );
}

#[test]
fn agent_logs_json_lines_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_server(&dir.path().join("data"));
    let (code, token, err) =
        run(srv
            .cli()
            .args(["enroll-token", "create", "--group", "g", "--env", "dev"]));
    assert_eq!(code, 0, "{err}");
    let state = dir.path().join("agent");
    let agent = || {
        let mut c = Command::new(crate::updates::agent_bin());
        c.env_remove("NO_COLOR")
            .env_remove("BULWARK_LOG_FORMAT")
            .env_remove("BULWARK_LOG");
        c
    };
    let out = agent()
        .args(["enroll", "--server", &format!("https://{}", srv.dev)])
        .arg("--ca")
        .arg(srv.data.join("ca.pem"))
        .arg("--state-dir")
        .arg(&state)
        .env("BULWARK_ENROLL_TOKEN", token.trim())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for (format, check) in [("text", false), ("json", true)] {
        let mut child = agent()
            .args(["--log-format", format, "run", "--no-updates", "--state-dir"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let seen = read_until(&mut child, stderr, "checked in");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!seen.contains("\x1b["), "{format}: colour codes: {seen:?}");
        if check {
            assert!(json_messages(&seen).iter().any(|m| m == "checked in"));
        }
    }
    // A fatal error is a JSON line too.
    let out = agent()
        .args(["--log-format", "json", "run", "--once", "--state-dir"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(json_messages(&err), ["exiting on an error"]);
}

/// The keys of a reference configuration: `key = …` and `#key = …` lines.
fn keys(reference: &str) -> Vec<String> {
    reference
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#').unwrap_or(l);
            let (key, _) = l.split_once(" = ")?;
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
                .then(|| key.to_owned())
        })
        .collect()
}

#[test]
fn every_server_setting_is_a_flag_and_in_the_reference() {
    let (code, reference, err) = run(bulwark().args(["server", "--print-config"]));
    assert_eq!(code, 0, "{err}");
    let settings = keys(&reference);
    // 25 when issue 19 was filed, 11 of them flags.
    assert!(settings.len() >= 25, "{settings:?}");
    assert!(
        reference
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#')),
        "the plain reference sets nothing:\n{reference}"
    );
    let (code, help, err) = run(bulwark().args(["server", "--help"]).env(
        "BULWARK_DATABASE_URL",
        "postgres://bulwark:hunter2@db/bulwark",
    ));
    assert_eq!(code, 0, "{err}");
    assert!(!help.contains("hunter2"), "--help shows the database URL");
    for key in &settings {
        let flag = format!("--{}", key.replace('_', "-"));
        let named = help
            .match_indices(&flag)
            .any(|(i, _)| help[i + flag.len()..].starts_with([' ', ']', ',', '\n']));
        assert!(named, "{key}: no {flag} in bulwark server --help:\n{help}");
    }
    // The packaged configuration file is a reference too.
    let packaged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/bulwark/server.toml"
    ))
    .unwrap();
    assert_eq!(keys(&packaged), settings);
}

#[test]
fn flags_keep_their_names_and_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\npoll_interval_secs = 30\ndevice_hostnames = [\"file.example\"]\n",
    )
    .unwrap();
    let (code, printed, err) = run(bulwark().args(["server", "--config"]).arg(&file).args([
        "--data-dir",
        "/srv/bulwark",
        "--poll-interval",
        "45",
        "--device-hostname",
        "a.example",
        "--device-hostname",
        "b.example",
        "--webhook-allow",
        "10.0.0.0/8",
        "--webhook-allow",
        "siem.internal",
        "--mqtt-listen",
        "127.0.0.1:8883",
        "--mqtt-broker",
        "broker.example:8883",
        "--mqtt-broker-ca",
        "ca.pem",
        "--mqtt-broker-cert",
        "c.pem",
        "--mqtt-broker-key",
        "k.pem",
        "--telemetry-retention-days",
        "3",
        "--environments",
        "dev,prod",
        "--checkpoint-interval-ms",
        "500",
        "--print-config",
    ]));
    assert_eq!(code, 0, "{err}");
    let raw = bulwark_server::RawConfig::from_toml(&printed).unwrap();
    assert_eq!(raw.listen.as_deref(), Some("127.0.0.1:1"), "from the file");
    assert_eq!(raw.poll_interval_secs, Some(45), "the flag wins");
    assert_eq!(
        raw.device_hostnames,
        ["file.example", "a.example", "b.example"],
        "lists join"
    );
    assert_eq!(raw.webhook_allow, ["10.0.0.0/8", "siem.internal"]);
    assert_eq!(raw.mqtt_broker_key.as_deref(), Some(Path::new("k.pem")));
    assert_eq!(raw.telemetry_retention_days, Some(3));
    assert_eq!(
        raw.environments.as_deref(),
        Some(&["dev".to_owned(), "prod".to_owned()][..])
    );
    assert_eq!(raw.checkpoint_interval_ms, Some(500));
    assert!(raw.clone().validate().is_ok());
    // What --print-config wrote reads back as the same configuration.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &printed).unwrap();
    let (code, reprinted, err) = run(bulwark()
        .args(["server", "--print-config", "--config"])
        .arg(&again));
    assert_eq!(code, 0, "{err}");
    assert_eq!(reprinted, printed);
    // The new names and the old ones are the same settings.
    let (code, printed, err) = run(bulwark().args([
        "server",
        "--poll-interval-secs",
        "50",
        "--device-hostnames",
        "c.example",
        "--print-config",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(printed.contains("\npoll_interval_secs = 50\n"), "{printed}");
    assert!(
        printed.contains("\ndevice_hostnames = [\"c.example\"]\n"),
        "{printed}"
    );
    // Values are still checked when the server starts.
    let (code, _, err) = run(bulwark().args([
        "server",
        "--data-dir",
        "/nonexistent/bulwark",
        "--checkpoint-interval-ms",
        "1",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains("checkpoint_interval_ms: 1 is outside"),
        "{err}"
    );
}
