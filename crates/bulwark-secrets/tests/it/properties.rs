//! Properties every finding must have, checked over all fixture cases.
//! (The size cap is a unit test in `src/input.rs`: scanning 64 MiB takes a
//! minute in an unoptimised build.)

use bulwark_secrets::{SecretKind, scan};

use crate::fixtures::{files_under, fixtures_dir};

/// Kinds whose excerpt is a configuration line rather than a redacted
/// secret.
fn excerpt_is_config_line(kind: SecretKind) -> bool {
    matches!(
        kind,
        SecretKind::TelnetService
            | SecretKind::DropbearBlankPasswords
            | SecretKind::SshPermitEmptyPasswords
            | SecretKind::SshRootPasswordLogin
            | SecretKind::EmptyPassword
    )
}

/// Token-like words of a file: runs of base64/token characters of at least
/// 16 characters. No finding's `Debug` may contain one of them.
fn secret_like_words(data: &[u8]) -> Vec<String> {
    data.split(|&b| !(b.is_ascii_alphanumeric() || b"+/_=-$".contains(&b)))
        .filter(|w| w.len() >= 16)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[test]
fn debug_and_excerpts_never_contain_secret_material() {
    for (rel, full) in files_under(&fixtures_dir()) {
        let data = std::fs::read(&full).expect("read");
        let words = secret_like_words(&data);
        for finding in scan(&rel, &data) {
            if excerpt_is_config_line(finding.kind) {
                continue;
            }
            let debug = format!("{finding:?}");
            for word in &words {
                // The excerpt's own label (e.g. "-----BEGIN") is not secret;
                // only check words longer than any label.
                assert!(
                    !debug.contains(word.as_str()),
                    "{rel}: Debug of {} contains {word:?}",
                    finding.kind
                );
            }
            assert!(finding.excerpt.as_str().ends_with('…'), "{rel}: {debug}");
        }
    }
}

#[test]
fn fingerprint_is_sha256_of_the_token() {
    use sha2::Digest as _;
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let findings = scan("app.env", format!("TOKEN={token}\n").as_bytes());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].kind, SecretKind::GithubToken);
    assert_eq!(findings[0].excerpt.as_str(), "ghp_…");
    assert_eq!(
        findings[0].fingerprint.to_hex(),
        hex::encode(sha2::Sha256::digest(token))
    );
}

#[test]
fn embedded_nul_and_invalid_utf8_do_not_panic() {
    for data in [
        &b"\0\0\0"[..],
        b"\xff\xfe-----BEGIN PRIVATE KEY-----\xff",
        b"root:\xff:0:0::/:/bin/sh\n",
        b"",
    ] {
        for path in [
            "etc/shadow",
            "etc/passwd",
            "etc/ssh/sshd_config",
            "etc/inittab",
            "x",
        ] {
            let _ = scan(path, data);
        }
    }
}
