//! Detectors for leaked secrets and default credentials in firmware: private
//! keys, cloud credentials, tokens, known password hashes, and remote-login
//! services left open.
//!
//! This is a pure crate: [`scan`] takes a path (only used to pick
//! path-specific detectors and to label findings) and the file's bytes, and
//! returns findings. It does no I/O, has no clock and cannot fail.
//!
//! # Brief overview
//!
//! - [`scan`] runs every detector over one file and returns
//!   [`SecretFinding`]s sorted by offset.
//! - [`SecretKind`] says what was found; its [`code`](SecretKind::code) is
//!   a stable snake_case string for reports and waivers.
//! - [`Excerpt`] is a redacted excerpt (`ghp_…`), [`Fingerprint`] the
//!   SHA-256 of the secret material. Neither holds the secret, so
//!   `Debug`-printing or logging a finding never leaks it.
//!
//! # Example
//!
//! ```
//! let shadow = b"root::0:0:99999:7:::\nuser:!:0:0:99999:7:::\n";
//! let findings = bulwark_secrets::scan("etc/shadow", shadow);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].kind.code(), "empty_password");
//! assert_eq!(findings[0].line, Some(1));
//! ```
//!
//! # What is detected
//!
//! | family | kinds | where |
//! |---|---|---|
//! | private keys | `private_key`, `encrypted_private_key`, `putty_private_key`, `encrypted_putty_private_key`, `gcp_service_account_key` | any file |
//! | tokens | `aws_access_key_id`, `aws_secret_access_key`, `aws_example_key`, `azure_storage_account_key`, `azure_shared_access_key`, `github_token`, `slack_token`, `stripe_live_key`, `jwt` | any file |
//! | accounts | `empty_password`, `default_password` | files named `shadow`, `passwd` (and `-`/`.bak` backups) |
//! | services | `telnet_service`, `dropbear_blank_passwords` | text under an `etc` directory or starting with `#!` |
//! | sshd | `ssh_permit_empty_passwords`, `ssh_root_password_login` | `sshd_config`, `sshd_config.d/*.conf` |
//!
//! # Design
//!
//! - **Text and binaries.** A file is text when its first 8 KiB hold no NUL
//!   and at least 90% text bytes. Binaries are scanned as their printable
//!   "strings" (non-printable bytes become line breaks, offsets are kept),
//!   so keys and tokens compiled into executables are found; their findings
//!   have an offset but no line. Account and service detectors read
//!   configuration and only run on text.
//! - **Mentions are not keys.** A PEM finding needs BEGIN, the matching END
//!   and real base64 in between; a PuTTY finding needs `Private-Lines:`.
//!   Tokens must stand alone (not inside a longer token-like string).
//! - **The AWS documentation key** (`AKIAIOSFODNN7EXAMPLE` and its secret)
//!   is reported as `aws_example_key` at low severity rather than dropped:
//!   it does no harm itself but marks a configuration that was never
//!   finished, and dropping it silently would hide that.
//! - **Fingerprints** hash the secret material: the whole PEM/PuTTY block,
//!   the token, the `private_key` JSON value, or the password hash. For
//!   findings without secret material (empty passwords, service
//!   configuration) they hash the account name and empty field, or the
//!   trimmed configuration line.
//! - **Severity.** Critical: usable without knowing anything (unencrypted
//!   keys, empty/default passwords, live cloud keys, `telnetd -l /bin/sh`,
//!   `dropbear -B`, `PermitEmptyPasswords`). High: open telnet, token ids.
//!   Medium: passphrase-protected keys (the passphrase is often nearby),
//!   root password login over SSH. Low: example keys, JWT-shaped strings.
//!
//! # Limits
//!
//! Only the first [`MAX_SCAN_BYTES`] of a file are scanned, at most
//! [`MAX_FINDINGS_PER_FILE`] findings are kept, and password-hash
//! verification is capped at [`MAX_HASH_WORK`] per file (hashes with huge
//! `rounds=` or bcrypt cost are skipped, not verified).
//!
//! # Current limitations
//!
//! - DER-encoded private keys (no PEM armour) are not detected.
//! - Each file is scanned alone: an empty password in `shadow` is reported
//!   even if `passwd` gives the account a `nologin` shell.
//! - Passwords are only checked against [`DEFAULT_PASSWORDS`] and the
//!   account name; this is a default-credential check, not a cracker.

mod finding;
mod input;
mod keys;
mod passwords;
mod services;
mod tokens;

pub use finding::{Excerpt, Fingerprint, SecretFinding, SecretKind, Severity};
pub use input::{MAX_FINDINGS_PER_FILE, MAX_SCAN_BYTES};
pub use passwords::{DEFAULT_PASSWORDS, MAX_HASH_WORK};

/// Scans one file and returns its findings, sorted by offset.
///
/// `path` is the file's path inside the artifact (e.g. `etc/shadow` or
/// `/etc/shadow`); it selects the account and service detectors and is
/// copied into each finding. Never panics, whatever `data` holds.
pub fn scan(path: &str, data: &[u8]) -> Vec<SecretFinding> {
    let mut input = input::Input::new(path, data);
    keys::detect(&mut input);
    tokens::detect(&mut input);
    passwords::detect(&mut input);
    services::detect(&mut input);
    input.into_findings()
}
