//! Remote-login services configured insecurely: telnetd started at boot,
//! `dropbear -B`, and permissive `sshd_config`.
//!
//! These detectors read configuration, so they only run on text files:
//! `inittab`, `inetd.conf`, init scripts (any text file under an `etc`
//! directory, or any file starting with `#!`) and `sshd_config`.

use std::sync::LazyLock;

use regex::bytes::Regex;

use crate::finding::{Excerpt, Fingerprint, SecretKind, Severity};
use crate::input::{Found, Input, lines, trim};

/// `telnetd` (or `utelnetd`) used as a command word, e.g. `telnetd -l
/// /bin/sh &`, `/usr/sbin/telnetd`, `busybox telnetd`, or the server
/// column of an inetd.conf line.
static TELNETD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s;&|/])u?telnetd(?:$|[\s;&|])").expect("valid regex"));

/// Words that mention telnetd without starting it.
static NOT_A_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:killall|pkill|kill|pidof|echo|printf|grep|rm|which|command -v)\b")
        .expect("valid regex")
});

/// `telnetd -l /bin/sh`: a root shell without any login.
static TELNETD_SHELL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"telnetd\b[^\n]*\s-l\s*/bin/(?:sh|ash|bash)\b").expect("valid regex")
});

/// `dropbear` with a `-B` flag (flags may be combined, `-RB`), or the
/// `DROPBEAR_ARGS`/`DROPBEAR_EXTRA_ARGS` variable of Debian-style
/// `/etc/default/dropbear` carrying one.
static DROPBEAR_B: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:\bdropbear\b|\bDROPBEAR_(?:EXTRA_)?ARGS\s*=)[^\n]*?[\s"'=]-[A-Za-z]*B"#)
        .expect("valid regex")
});

pub(crate) fn detect(input: &mut Input<'_>) {
    if !input.is_text {
        return;
    }
    let view = input.view.clone();
    if input.file_name == "sshd_config"
        || (input.file_name.ends_with(".conf") && input.path.contains("sshd_config.d"))
    {
        sshd_config(input, &view);
        return;
    }
    let is_script = view.starts_with(b"#!");
    if !(input.under_etc() || is_script) {
        return;
    }
    for (at, line) in lines(&view) {
        let line = trim(line);
        if line.starts_with(b"#") {
            continue;
        }
        // Comments at the end of a line do not start anything.
        let code = match line.iter().position(|&b| b == b'#') {
            Some(hash) => &line[..hash],
            None => line,
        };
        telnetd(input, at, line, code);
        if DROPBEAR_B.is_match(code) {
            input.report(Found {
                kind: SecretKind::DropbearBlankPasswords,
                offset: at,
                severity: Severity::Critical,
                description:
                    "dropbear started with -B: SSH logins with blank passwords are allowed"
                        .to_owned(),
                excerpt: Excerpt::line(line),
                fingerprint: Fingerprint::of(line),
            });
        }
    }
}

fn telnetd(input: &mut Input<'_>, at: usize, line: &[u8], code: &[u8]) {
    let Some(m) = TELNETD.find(code) else { return };
    if NOT_A_START.is_match(&code[..m.start()]) {
        return;
    }
    let (severity, description) = if TELNETD_SHELL.is_match(code) {
        (
            Severity::Critical,
            "telnetd started with -l /bin/sh: unauthenticated remote root shell",
        )
    } else {
        (
            Severity::High,
            "telnetd started at boot: cleartext remote login, the first target of IoT botnets",
        )
    };
    input.report(Found {
        kind: SecretKind::TelnetService,
        offset: at,
        severity,
        description: description.to_owned(),
        excerpt: Excerpt::line(line),
        fingerprint: Fingerprint::of(line),
    });
}

/// sshd uses the first value it reads for each keyword, and `Match` blocks
/// only apply to some connections, so only the global part before the first
/// `Match` line is read. `PasswordAuthentication` defaults to `yes`.
fn sshd_config(input: &mut Input<'_>, view: &[u8]) {
    let mut permit_root: Option<(usize, Vec<u8>, bool)> = None;
    let mut password_auth: Option<bool> = None;
    let mut empty_passwords: Option<(usize, Vec<u8>, bool)> = None;
    for (at, line) in lines(view) {
        let line = trim(line);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let mut words = line
            .split(|&b| b == b' ' || b == b'\t' || b == b'=')
            .filter(|w| !w.is_empty());
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        let yes = value.eq_ignore_ascii_case(b"yes");
        match key.as_slice() {
            b"match" => break,
            b"permitrootlogin" if permit_root.is_none() => {
                permit_root = Some((at, line.to_vec(), yes));
            }
            b"passwordauthentication" if password_auth.is_none() => password_auth = Some(yes),
            b"permitemptypasswords" if empty_passwords.is_none() => {
                empty_passwords = Some((at, line.to_vec(), yes));
            }
            _ => {}
        }
    }
    if let Some((at, line, true)) = empty_passwords {
        input.report(Found {
            kind: SecretKind::SshPermitEmptyPasswords,
            offset: at,
            severity: Severity::Critical,
            description: "sshd accepts accounts with empty passwords".to_owned(),
            excerpt: Excerpt::line(&line),
            fingerprint: Fingerprint::of(&line),
        });
    }
    if let Some((at, line, true)) = permit_root
        && password_auth.unwrap_or(true)
    {
        input.report(Found {
            kind: SecretKind::SshRootPasswordLogin,
            offset: at,
            severity: Severity::Medium,
            description: "sshd allows root to log in with a password \
                          (PasswordAuthentication is yes or left at its default)"
                .to_owned(),
            excerpt: Excerpt::line(&line),
            fingerprint: Fingerprint::of(&line),
        });
    }
}
