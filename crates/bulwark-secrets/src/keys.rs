//! Private keys: PEM blocks, PuTTY `.ppk` files and Google Cloud
//! service-account JSON.
//!
//! A BEGIN line alone is not a finding: documentation and code that parse
//! keys mention `-----BEGIN PRIVATE KEY-----` all the time. A PEM finding
//! needs the matching END line and at least [`MIN_KEY_BASE64`] base64
//! characters between them. DER-encoded keys (PKCS#8 or PKCS#1 without PEM
//! armour) are not detected: they have no textual marker, and telling them
//! from other ASN.1 (certificates) needs a DER parser; see the crate docs.

use std::ops::Range;
use std::sync::LazyLock;

use base64::Engine as _;
use regex::bytes::Regex;

use crate::finding::{Excerpt, Fingerprint, SecretKind, Severity};
use crate::input::{Found, Input};

/// How far after a BEGIN line the END line may be (an RSA-16384 key is
/// about 12 KiB of PEM).
const MAX_PEM_BYTES: usize = 64 * 1024;

/// Fewer base64 characters than this between BEGIN and END is a placeholder
/// (`...`), not a key. The smallest real key (Ed25519 PKCS#8) has 64.
const MIN_KEY_BASE64: usize = 60;

/// Each detector looks at no more than this many start markers per file, so
/// a file of BEGIN lines without END lines costs at most
/// `MAX_CANDIDATES × MAX_PEM_BYTES` of searching.
const MAX_CANDIDATES: usize = 1000;

static PEM_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?)PRIVATE KEY-----")
        .expect("valid regex")
});

static PUTTY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"PuTTY-User-Key-File-[23]: *([A-Za-z0-9@._-]{1,64})").expect("valid regex")
});

static GCP_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""type"\s*:\s*"service_account""#).expect("valid regex"));

static GCP_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""private_key"\s*:\s*"(-----BEGIN [A-Z ]*PRIVATE KEY-----[^"]+)""#)
        .expect("valid regex")
});

static GCP_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""client_email"\s*:\s*"([A-Za-z0-9@._-]{1,200})""#).expect("valid regex")
});

/// Runs all key detectors.
pub(crate) fn detect(input: &mut Input<'_>) {
    let inside_gcp = gcp_service_accounts(input);
    pem_keys(input, &inside_gcp);
    putty_keys(input);
}

/// Reports service-account JSON and returns the byte ranges of their
/// `private_key` values, which the PEM detector then skips.
fn gcp_service_accounts(input: &mut Input<'_>) -> Vec<Range<usize>> {
    let view = input.view.clone();
    let mut covered = Vec::new();
    for ty in GCP_TYPE.find_iter(&view).take(MAX_CANDIDATES) {
        // The key must be in the same JSON object; objects are small, so
        // look within a window around the "type" field.
        let lo = ty.start().saturating_sub(MAX_PEM_BYTES);
        let hi = (ty.end() + MAX_PEM_BYTES).min(view.len());
        let window = &view[lo..hi];
        let Some(key) = GCP_KEY.captures(window).and_then(|c| c.get(1)) else {
            continue;
        };
        let value = lo + key.start()..lo + key.end();
        if covered.contains(&value) {
            continue;
        }
        let email = GCP_EMAIL
            .captures(window)
            .and_then(|c| c.get(1))
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
        let description = match email {
            Some(email) => format!("Google Cloud service-account private key for {email}"),
            None => "Google Cloud service-account private key".to_owned(),
        };
        input.report(Found {
            kind: SecretKind::GcpServiceAccountKey,
            offset: value.start,
            severity: Severity::Critical,
            description,
            excerpt: Excerpt::redact("\"private_key\": ", &view[value.clone()]),
            fingerprint: Fingerprint::of(&view[value.clone()]),
        });
        covered.push(value);
    }
    covered
}

fn pem_keys(input: &mut Input<'_>, skip: &[Range<usize>]) {
    let view = input.view.clone();
    for caps in PEM_BEGIN.captures_iter(&view).take(MAX_CANDIDATES) {
        let (Some(begin), Some(label)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if skip.iter().any(|r| r.contains(&begin.start())) {
            continue;
        }
        let label = label.as_bytes();
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(b"PRIVATE KEY-----");
        let search_end = (begin.end() + MAX_PEM_BYTES).min(view.len());
        let Some(end_at) = find(&view[begin.end()..search_end], &end_marker) else {
            continue;
        };
        let body = &view[begin.end()..begin.end() + end_at];
        let block_end = begin.end() + end_at + end_marker.len();
        let base64_body = base64_chars(body);
        if base64_body.len() < MIN_KEY_BASE64 {
            continue;
        }
        let encrypted = label == b"ENCRYPTED "
            || find(body, b"Proc-Type: 4,ENCRYPTED").is_some()
            || (label == b"OPENSSH " && openssh_key_is_encrypted(&base64_body));
        let kind_name = String::from_utf8_lossy(label).trim().to_owned();
        let kind_name = if kind_name.is_empty() {
            "PKCS#8".to_owned()
        } else {
            kind_name
        };
        let (kind, severity, description) = if encrypted {
            (
                SecretKind::EncryptedPrivateKey,
                Severity::Medium,
                format!(
                    "passphrase-protected {kind_name} private key; \
                     the passphrase is often stored nearby in the same image"
                ),
            )
        } else {
            (
                SecretKind::PrivateKey,
                Severity::Critical,
                format!("unencrypted {kind_name} private key"),
            )
        };
        let header = String::from_utf8_lossy(begin.as_bytes()).into_owned() + " ";
        input.report(Found {
            kind,
            offset: begin.start(),
            severity,
            description,
            excerpt: Excerpt::redact(&header, &base64_body),
            fingerprint: Fingerprint::of(&view[begin.start()..block_end]),
        });
    }
}

/// The base64 alphabet characters of a PEM body, skipping header lines
/// (`Proc-Type:`, `DEK-Info:`) and JSON `\n` escapes.
fn base64_chars(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let text = body.split(|&b| b == b'\n').flat_map(|line| {
        // Header lines contain ':'; base64 never does.
        let line = if line.contains(&b':') { &[][..] } else { line };
        line.split(|&b| b == b'\\')
            .enumerate()
            .flat_map(|(i, part)| {
                // After a backslash the next character is an escape letter.
                if i == 0 {
                    part
                } else {
                    part.get(1..).unwrap_or(&[])
                }
            })
    });
    for &b in text {
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') {
            out.push(b);
        }
    }
    out
}

/// OpenSSH's own key format names its cipher right after the magic:
/// `"openssh-key-v1\0"`, a big-endian u32 length, then e.g. `none` or
/// `aes256-ctr`. Undecodable input counts as unencrypted (the worse case).
fn openssh_key_is_encrypted(base64_body: &[u8]) -> bool {
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let head = &base64_body[..base64_body.len().min(64)];
    let Ok(raw) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(head) else {
        return false;
    };
    let Some(rest) = raw.strip_prefix(MAGIC) else {
        return false;
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let len = u32::from_be_bytes(*len) as usize;
    rest.get(..len).is_some_and(|cipher| cipher != b"none")
}

fn putty_keys(input: &mut Input<'_>) {
    let view = input.view.clone();
    for caps in PUTTY.captures_iter(&view).take(MAX_CANDIDATES) {
        let (Some(header), Some(algorithm)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let window_end = (header.end() + MAX_PEM_BYTES).min(view.len());
        let window = &view[header.end()..window_end];
        // A real key file has the private section; a mention does not.
        let Some(private_at) = find(window, b"Private-Lines:") else {
            continue;
        };
        let private = &window[private_at..];
        let private_end = find(private, b"Private-MAC:")
            .map(|at| {
                let mac_line = &private[at..];
                at + mac_line
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(mac_line.len())
            })
            .unwrap_or(private.len());
        let secret = &private[..private_end];
        let encrypted = match find(&window[..private_at], b"Encryption:") {
            Some(at) => {
                let value = window[at + b"Encryption:".len()..private_at]
                    .split(|&b| b == b'\n')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                value != b"none"
            }
            None => false,
        };
        let algorithm = String::from_utf8_lossy(algorithm.as_bytes()).into_owned();
        let (kind, severity, description) = if encrypted {
            (
                SecretKind::EncryptedPuttyPrivateKey,
                Severity::Medium,
                format!("passphrase-protected PuTTY {algorithm} private key"),
            )
        } else {
            (
                SecretKind::PuttyPrivateKey,
                Severity::Critical,
                format!("unencrypted PuTTY {algorithm} private key"),
            )
        };
        // Skip "Private-Lines: N\n" so the excerpt shows key bytes.
        let key_bytes = secret
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |nl| &secret[nl + 1..]);
        input.report(Found {
            kind,
            offset: header.start(),
            severity,
            description,
            excerpt: Excerpt::redact("Private-Lines: ", key_bytes),
            fingerprint: Fingerprint::of(secret),
        });
    }
}

/// First position of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_chars_skip_headers_and_json_escapes() {
        let body = b"\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nAbC+\nd/E=\n";
        assert_eq!(base64_chars(body), b"AbC+d/E=");
        assert_eq!(base64_chars(br"\nAbCd\nEfGh\n"), b"AbCdEfGh");
    }

    #[test]
    fn openssh_cipher_is_read() {
        let mut raw = b"openssh-key-v1\0".to_vec();
        raw.extend_from_slice(&4u32.to_be_bytes());
        raw.extend_from_slice(b"none");
        raw.extend_from_slice(&[0; 20]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert!(!openssh_key_is_encrypted(b64.as_bytes()));
        let mut raw = b"openssh-key-v1\0".to_vec();
        raw.extend_from_slice(&10u32.to_be_bytes());
        raw.extend_from_slice(b"aes256-ctr");
        raw.extend_from_slice(&[0; 20]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert!(openssh_key_is_encrypted(b64.as_bytes()));
    }
}
