//! The finding type and its parts: kind codes, severities, redacted excerpts
//! and fingerprints.
//!
//! Nothing in this module can hold a secret in full: [`Excerpt`] is only built
//! by redaction and [`Fingerprint`] is a SHA-256 digest, so deriving `Debug`
//! on [`SecretFinding`] is safe.

use std::fmt;

use sha2::{Digest, Sha256};

/// One secret or insecure default found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFinding {
    /// What was found.
    pub kind: SecretKind,
    /// The path passed to [`crate::scan`], unchanged.
    pub path: String,
    /// 1-based line of the match, for text files. `None` for binaries, where
    /// only [`SecretFinding::offset`] is meaningful.
    pub line: Option<usize>,
    /// Byte offset of the start of the match.
    pub offset: usize,
    /// Human-readable explanation, never containing the secret.
    pub description: String,
    /// How bad it is.
    pub severity: Severity,
    /// A redacted excerpt such as `ghp_…`.
    pub excerpt: Excerpt,
    /// SHA-256 of the secret material, so waivers can name the finding
    /// without storing the secret.
    pub fingerprint: Fingerprint,
}

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Probably harmless (documented example keys, JWT-looking strings).
    Low,
    /// Needs a look (encrypted private keys, root login by password).
    Medium,
    /// A usable credential or an open remote service.
    High,
    /// Remote access without knowing anything: empty or default passwords,
    /// unencrypted private keys, unauthenticated shells.
    Critical,
}

impl Severity {
    /// Stable lowercase code (`low`, `medium`, `high`, `critical`).
    pub fn code(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

macro_rules! secret_kinds {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// What a finding is. Each kind has a stable snake_case
        /// [`code`](SecretKind::code) that waivers and reports may store.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum SecretKind {
            $($(#[$doc])* $variant,)*
        }

        impl SecretKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [SecretKind] = &[$(SecretKind::$variant,)*];

            /// The stable snake_case code of this kind.
            pub fn code(self) -> &'static str {
                match self {
                    $(SecretKind::$variant => $code,)*
                }
            }

            /// The kind with this code, if any.
            pub fn from_code(code: &str) -> Option<SecretKind> {
                match code {
                    $($code => Some(SecretKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

secret_kinds! {
    /// PEM private key without encryption (`-----BEGIN … PRIVATE KEY-----`).
    PrivateKey => "private_key",
    /// PEM private key protected by a passphrase (PKCS#8 `ENCRYPTED`, legacy
    /// `Proc-Type: 4,ENCRYPTED`, or an OpenSSH key with a cipher).
    EncryptedPrivateKey => "encrypted_private_key",
    /// PuTTY `.ppk` private key without encryption.
    PuttyPrivateKey => "putty_private_key",
    /// PuTTY `.ppk` private key protected by a passphrase.
    EncryptedPuttyPrivateKey => "encrypted_putty_private_key",
    /// AWS access key id (`AKIA…`/`ASIA…`).
    AwsAccessKeyId => "aws_access_key_id",
    /// AWS secret access key (40 characters next to a key id or a
    /// `aws_secret_access_key` label).
    AwsSecretAccessKey => "aws_secret_access_key",
    /// The key id or secret key from the AWS documentation
    /// (`AKIAIOSFODNN7EXAMPLE`); reported so policy can decide, at low
    /// severity.
    AwsExampleKey => "aws_example_key",
    /// Google Cloud service-account JSON key file.
    GcpServiceAccountKey => "gcp_service_account_key",
    /// Azure storage connection string with `AccountKey=`.
    AzureStorageAccountKey => "azure_storage_account_key",
    /// Azure `SharedAccessKey=` (IoT Hub, Service Bus, Event Hubs).
    AzureSharedAccessKey => "azure_shared_access_key",
    /// GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken => "github_token",
    /// Slack token (`xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-`).
    SlackToken => "slack_token",
    /// Stripe live secret or restricted key (`sk_live_`, `rk_live_`).
    StripeLiveKey => "stripe_live_key",
    /// Something shaped like a JSON Web Token; may be a bearer credential.
    Jwt => "jwt",
    /// A login account in `/etc/shadow` or `/etc/passwd` with an empty
    /// password field.
    EmptyPassword => "empty_password",
    /// A password hash that verifies against a well-known default password.
    DefaultPassword => "default_password",
    /// `telnetd` started from inittab, inetd.conf or an init script.
    TelnetService => "telnet_service",
    /// `dropbear -B`: SSH logins with blank passwords allowed.
    DropbearBlankPasswords => "dropbear_blank_passwords",
    /// `PermitEmptyPasswords yes` in `sshd_config`.
    SshPermitEmptyPasswords => "ssh_permit_empty_passwords",
    /// `PermitRootLogin yes` with password authentication on.
    SshRootPasswordLogin => "ssh_root_password_login",
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A redacted excerpt: at most the first [`Excerpt::KEEP`] characters of the
/// secret followed by `…`, or a non-secret configuration line.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// How many leading characters of a secret an excerpt keeps.
    pub const KEEP: usize = 4;

    /// Longest excerpt of a non-secret line, in characters.
    const MAX_LINE: usize = 120;

    /// `label` (not secret, e.g. `root:`) followed by the first
    /// [`Excerpt::KEEP`] characters of `secret` and `…`.
    pub(crate) fn redact(label: &str, secret: &[u8]) -> Excerpt {
        let mut out = printable(label.as_bytes(), Self::MAX_LINE);
        let kept = secret.len().min(Self::KEEP);
        out.push_str(&printable(&secret[..kept], Self::KEEP));
        out.push('…');
        Excerpt(out)
    }

    /// A configuration line that is not itself secret, shortened and with
    /// control characters replaced.
    pub(crate) fn line(line: &[u8]) -> Excerpt {
        Excerpt(printable(line, Self::MAX_LINE))
    }

    /// The excerpt text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Printable ASCII rendering of at most `max` bytes; anything else becomes `?`.
fn printable(bytes: &[u8], max: usize) -> String {
    let mut out: String = bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

/// SHA-256 of a finding's secret material (see [`crate`] docs for what that
/// is per kind). Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub(crate) fn of(material: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(material).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as stored in waivers.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for &kind in SecretKind::ALL {
            assert_eq!(SecretKind::from_code(kind.code()), Some(kind));
            assert!(seen.insert(kind.code()), "duplicate code {}", kind.code());
            assert!(
                kind.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[test]
    fn redaction_keeps_four_characters() {
        let e = Excerpt::redact("", b"ghp_abcdefghijklmnop");
        assert_eq!(e.as_str(), "ghp_…");
        let e = Excerpt::redact("root:", b"$1\n");
        assert_eq!(e.as_str(), "root:$1?…");
    }
}
