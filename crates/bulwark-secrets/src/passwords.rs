//! Empty and well-known default passwords in `/etc/shadow` and `/etc/passwd`.
//!
//! Hashes are verified with `pwhash` (crypt(3) formats `$1$`, `$5$`, `$6$`,
//! `$2a$`/`$2b$`/`$2y$` and 13-character traditional DES) against
//! [`DEFAULT_PASSWORDS`] plus the account name itself. Verification is
//! deliberately slow, so the work per file is capped by [`MAX_HASH_WORK`];
//! hashes that are individually too expensive (huge `rounds=`, bcrypt cost
//! above 12) are skipped rather than verified.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::{Excerpt, Fingerprint, SecretKind, Severity};
use crate::input::{Found, Input, lines, trim};

/// Passwords that IoT botnets (Mirai and descendants) and vendor manuals
/// made famous, most common first: when the work budget runs out, the
/// later ones are the ones not tried. The empty string catches a hashed
/// empty password.
pub const DEFAULT_PASSWORDS: &[&str] = &[
    "",
    "admin",
    "root",
    "password",
    "123456",
    "12345",
    "1234",
    "default",
    "xc3511",
    "vizxv",
    "888888",
    "54321",
    "juantech",
    "toor",
    "ubnt",
    "raspberry",
    "7ujMko0admin",
    "7ujMko0vizxv",
    "anko",
    "zlxx.",
    "hi3518",
    "klv123",
    "klv1234",
    "jvbzd",
    "Zte521",
    "dreambox",
    "realtek",
    "00000000",
    "1111",
    "111111",
    "1111111",
    "666666",
    "12345678",
    "123456789",
    "smcadmin",
    "support",
    "user",
    "guest",
    "pass",
    "admin1234",
    "system",
    "ikwb",
    "meinsm",
    "service",
    "supervisor",
    "tech",
    "changeme",
    "5up",
    "GM8182",
    "hunt5759",
    "tl789",
    "oelinux123",
    "alpine",
    "openelec",
    "letmein",
    "qwerty",
];

/// Total verification work per file, in units of roughly one SHA-crypt
/// round (see [`work_of`]). About a second in a release build.
pub const MAX_HASH_WORK: u64 = 4_000_000;

/// A single hash costing more than this is not verified at all.
const MAX_WORK_PER_HASH: u64 = 1_000_000;

/// At most this many account lines are examined per file.
const MAX_ENTRIES: usize = 10_000;

/// A bcrypt round costs roughly this many SHA-crypt rounds.
const BCRYPT_ROUND_WEIGHT: u64 = 200;

/// Strict shapes of the supported hash formats; anything else is not handed
/// to the hashing library.
static HASH_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        r"[./0-9A-Za-z]{13}",
        r"|\$1\$[./0-9A-Za-z]{0,8}\$[./0-9A-Za-z]{22}",
        r"|\$5\$(?:rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{43}",
        r"|\$6\$(?:rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{86}",
        r"|\$2[aby]\$[0-9]{2}\$[./0-9A-Za-z]{53}",
        r")$"
    ))
    .expect("valid regex")
});

static ACCOUNT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}\$?$").expect("valid regex"));

/// Which account database a file is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Database {
    Shadow,
    Passwd,
}

pub(crate) fn detect(input: &mut Input<'_>) {
    let database = match input.file_name {
        "shadow" | "shadow-" | "shadow.bak" => Database::Shadow,
        "passwd" | "passwd-" | "passwd.bak" | "master.passwd" => Database::Passwd,
        _ => return,
    };
    if !input.is_text {
        return;
    }
    let view = input.view.clone();
    let mut budget = MAX_HASH_WORK;
    for (at, line) in lines(&view).take(MAX_ENTRIES) {
        let Ok(line) = std::str::from_utf8(trim(line)) else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(&user), Some(&field)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        if fields.len() < 2 || !ACCOUNT_NAME.is_match(user) {
            continue;
        }
        if field.is_empty() {
            empty_password(input, database, at, user, &fields);
        } else {
            default_password(input, at, user, field, &mut budget);
        }
    }
}

fn empty_password(
    input: &mut Input<'_>,
    database: Database,
    at: usize,
    user: &str,
    fields: &[&str],
) {
    let description = match database {
        Database::Shadow => format!("account \"{user}\" has an empty password"),
        Database::Passwd => {
            // passwd tells whether the account can log in at all.
            let shell = fields.get(6).copied().unwrap_or("");
            let no_login = ["nologin", "false", "sync", "shutdown", "halt"]
                .iter()
                .any(|s| shell.ends_with(s));
            if fields.len() >= 7 && no_login {
                return;
            }
            format!("login account \"{user}\" has an empty password field in passwd")
        }
    };
    input.report(Found {
        kind: SecretKind::EmptyPassword,
        offset: at,
        severity: Severity::Critical,
        description,
        excerpt: Excerpt::line(format!("{user}::").as_bytes()),
        fingerprint: Fingerprint::of(format!("{user}::").as_bytes()),
    });
}

fn default_password(input: &mut Input<'_>, at: usize, user: &str, hash: &str, budget: &mut u64) {
    // Locked (`!`, `*`, `!!`, `*LK*`, `!$6$…`), shadowed (`x`) or
    // unsupported fields never verify.
    if !HASH_SHAPE.is_match(hash) {
        return;
    }
    let Some(work) = work_of(hash) else { return };
    if work > MAX_WORK_PER_HASH {
        return;
    }
    let candidates = std::iter::once(user).chain(DEFAULT_PASSWORDS.iter().copied());
    for (i, password) in candidates.enumerate() {
        if i > 0 && password == user {
            continue;
        }
        let Some(rest) = budget.checked_sub(work) else {
            return;
        };
        *budget = rest;
        if pwhash::unix::verify(password, hash) {
            let hint = if password == user {
                "the account name".to_owned()
            } else {
                let shown: String = password.chars().take(2).collect();
                format!(
                    "the well-known default \"{shown}…\" ({} characters)",
                    password.len()
                )
            };
            input.report(Found {
                kind: SecretKind::DefaultPassword,
                offset: at,
                severity: Severity::Critical,
                description: format!("password of account \"{user}\" is {hint}"),
                excerpt: Excerpt::redact(&format!("{user}:"), hash.as_bytes()),
                fingerprint: Fingerprint::of(hash.as_bytes()),
            });
            return;
        }
    }
}

/// Approximate cost of one verification, in SHA-crypt rounds.
fn work_of(hash: &str) -> Option<u64> {
    if let Some(rest) = hash
        .strip_prefix("$5$")
        .or_else(|| hash.strip_prefix("$6$"))
    {
        let rounds = match rest.strip_prefix("rounds=") {
            Some(r) => r.split('$').next()?.parse::<u64>().ok()?,
            None => 5000,
        };
        // crypt(3) clamps rounds to at least 1000.
        return Some(rounds.max(1000));
    }
    if hash.starts_with("$1$") {
        return Some(1000);
    }
    if let Some(rest) = hash.strip_prefix("$2") {
        let cost: u32 = rest.get(2..4)?.parse().ok()?;
        if !(4..=31).contains(&cost) {
            return None;
        }
        return Some((1u64 << cost) * BCRYPT_ROUND_WEIGHT);
    }
    // Traditional DES: 25 iterations.
    Some(25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_hash_parameters_are_skipped_not_verified() {
        assert_eq!(work_of("$6$rounds=999999999$salt$x"), Some(999_999_999));
        assert!(work_of("$2b$31$x").unwrap() > MAX_WORK_PER_HASH);
        assert_eq!(work_of("$2b$99$x"), None);
        assert_eq!(work_of("$6$rounds=12$s$x"), Some(1000));
    }

    #[test]
    fn shapes() {
        assert!(HASH_SHAPE.is_match("aZGJuE6EXrjEE"));
        assert!(HASH_SHAPE.is_match("$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0"));
        assert!(!HASH_SHAPE.is_match("!$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0"));
        assert!(!HASH_SHAPE.is_match("*"));
        assert!(!HASH_SHAPE.is_match("x"));
    }

    #[test]
    fn list_has_no_duplicates() {
        let set: std::collections::BTreeSet<_> = DEFAULT_PASSWORDS.iter().collect();
        assert_eq!(set.len(), DEFAULT_PASSWORDS.len());
    }
}
