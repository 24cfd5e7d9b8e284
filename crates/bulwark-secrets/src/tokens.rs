//! Cloud and SaaS credentials recognisable by their shape: AWS, Azure,
//! GitHub, Slack, Stripe, and JWT-looking bearer tokens.

use std::sync::LazyLock;

use regex::bytes::Regex;

use crate::finding::{Excerpt, Fingerprint, SecretKind, Severity};
use crate::input::{Found, Input};

/// The key id and secret key AWS uses in its own documentation.
const AWS_EXAMPLE_KEY_ID: &[u8] = b"AKIAIOSFODNN7EXAMPLE";
const AWS_EXAMPLE_SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A secret access key without a label must be this close (bytes) after a
/// key id to count.
const AWS_PAIR_DISTANCE: usize = 512;

/// One shape-based detector.
struct TokenRule {
    kind: SecretKind,
    severity: Severity,
    description: &'static str,
    /// Capture group 1 is the secret; the whole match must be delimited by
    /// non-token characters (checked in code, since `regex` has no
    /// look-around).
    regex: Regex,
}

static RULES: LazyLock<Vec<TokenRule>> = LazyLock::new(|| {
    let rule = |kind, severity, description, pattern: &str| TokenRule {
        kind,
        severity,
        description,
        regex: Regex::new(pattern).expect("valid regex"),
    };
    vec![
        rule(
            SecretKind::AwsAccessKeyId,
            Severity::High,
            "AWS access key id",
            r"((?:AKIA|ASIA)[A-Z0-9]{16})",
        ),
        rule(
            SecretKind::AwsSecretAccessKey,
            Severity::Critical,
            "AWS secret access key",
            r#"(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})"#,
        ),
        rule(
            SecretKind::AzureStorageAccountKey,
            Severity::Critical,
            "Azure storage account key in a connection string",
            r"AccountKey=([A-Za-z0-9+/]{40,100}={0,2})",
        ),
        rule(
            SecretKind::AzureSharedAccessKey,
            Severity::Critical,
            "Azure shared access key (IoT Hub, Service Bus or Event Hubs connection string)",
            r"SharedAccessKey=([A-Za-z0-9+/]{40,100}={0,2})",
        ),
        rule(
            SecretKind::GithubToken,
            Severity::Critical,
            "GitHub token",
            r"((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})",
        ),
        rule(
            SecretKind::SlackToken,
            Severity::High,
            "Slack token",
            r"(xox[abprs]-[0-9A-Za-z]{1,40}(?:-[0-9A-Za-z]{1,64}){1,4})",
        ),
        rule(
            SecretKind::StripeLiveKey,
            Severity::Critical,
            "Stripe live secret key",
            r"((?:sk|rk)_live_[0-9A-Za-z]{24,99})",
        ),
        rule(
            SecretKind::Jwt,
            Severity::Low,
            "JSON Web Token; a bearer token if still valid",
            r"(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})",
        ),
    ]
});

/// An unlabelled 40-character secret key candidate near a key id.
static AWS_SECRET_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([A-Za-z0-9/+]{40})").expect("valid regex"));

/// Characters that may continue a token; a match touching one of these on
/// either side is part of a longer string (say, a base64 blob) and not
/// reported. `=` is not one: it separates keys from values and pads base64.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'+')
}

/// Whether `view[start..end]` stands alone.
fn delimited(view: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).map(|i| view[i]);
    let after = view.get(end).copied();
    !before.is_some_and(is_token_char) && !after.is_some_and(is_token_char)
}

pub(crate) fn detect(input: &mut Input<'_>) {
    let view = input.view.clone();
    let mut key_ids = Vec::new();
    for rule in RULES.iter() {
        for caps in rule.regex.captures_iter(&view) {
            let (Some(whole), Some(secret)) = (caps.get(0), caps.get(1)) else {
                continue;
            };
            // Labelled rules (`AccountKey=…`) check the label's start.
            if !delimited(&view, whole.start(), secret.end()) {
                continue;
            }
            let bytes = secret.as_bytes();
            let example = bytes == AWS_EXAMPLE_KEY_ID || bytes == AWS_EXAMPLE_SECRET;
            if rule.kind == SecretKind::AwsAccessKeyId {
                key_ids.push(secret.end());
            }
            if rule.kind == SecretKind::AwsSecretAccessKey && !mixed_case_with_digit(bytes) {
                continue;
            }
            report(input, rule, secret.start(), bytes, example);
        }
    }
    aws_unlabelled_secrets(input, &view, &key_ids);
}

fn report(input: &mut Input<'_>, rule: &TokenRule, offset: usize, secret: &[u8], example: bool) {
    let (kind, severity, description) = if example {
        (
            SecretKind::AwsExampleKey,
            Severity::Low,
            format!(
                "the {} published in the AWS documentation; harmless, \
                 but a sign of unfinished configuration",
                rule.description
            ),
        )
    } else {
        (rule.kind, rule.severity, rule.description.to_owned())
    };
    input.report(Found {
        kind,
        offset,
        severity,
        description,
        excerpt: Excerpt::redact("", secret),
        fingerprint: Fingerprint::of(secret),
    });
}

/// 40-character strings shortly after an access key id, as in
/// `AKIA…,wJalr…` CSV exports or two adjacent `#define`s.
fn aws_unlabelled_secrets(input: &mut Input<'_>, view: &[u8], key_id_ends: &[usize]) {
    let secret_rule = RULES
        .iter()
        .find(|r| r.kind == SecretKind::AwsSecretAccessKey)
        .expect("rule exists");
    for &after in key_id_ends {
        let window_end = (after + AWS_PAIR_DISTANCE).min(view.len());
        for m in AWS_SECRET_SHAPE.find_iter(&view[after..window_end]) {
            let (start, end) = (after + m.start(), after + m.end());
            let bytes = m.as_bytes();
            if !delimited(view, start, end) || !mixed_case_with_digit(bytes) {
                continue;
            }
            let example = bytes == AWS_EXAMPLE_SECRET;
            let kind = if example {
                SecretKind::AwsExampleKey
            } else {
                SecretKind::AwsSecretAccessKey
            };
            if !input.has_finding_at(kind, start) {
                report(input, secret_rule, start, bytes, example);
            }
        }
    }
}

/// Real secret keys are random base64: upper, lower and digits all occur.
/// This rejects hex digests (SHA-1 is also 40 characters) and words.
fn mixed_case_with_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase)
        && s.iter().any(u8::is_ascii_lowercase)
        && s.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_hex_is_not_a_secret_key() {
        assert!(!mixed_case_with_digit(
            b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
        ));
        assert!(mixed_case_with_digit(AWS_EXAMPLE_SECRET));
    }

    #[test]
    fn tokens_must_be_delimited() {
        let view = b"xAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLE";
        assert!(!delimited(view, 1, 21));
        assert!(delimited(view, 22, 42));
    }
}
