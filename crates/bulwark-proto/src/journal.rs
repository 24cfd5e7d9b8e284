//! [`JournalEntry`]: one entry of the audit journal, and its canonical
//! encoding — the bytes that become a Merkle leaf.
//!
//! The canonical form is compact JSON with the fields in declaration order
//! and `detail` keys sorted (a `BTreeMap`). [`JournalEntry::from_canonical`]
//! re-encodes what it parsed and refuses input that is not byte-identical,
//! so one entry has exactly one encoding and a verifier can never be fooled
//! by two byte strings meaning the same thing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest canonical entry, in bytes (entry bundles cap entries at 64 KiB).
pub const MAX_JOURNAL_ENTRY: usize = 16 * 1024;

/// Who caused a state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalActor {
    /// `account`, `device`, `engine` or `system`.
    pub kind: String,
    /// Account id, device id, or engine name.
    pub id: String,
    /// Account name, when an account acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API token id used, when an account acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// When, Unix milliseconds (UTC).
    pub time_ms: i64,
    /// Who.
    pub actor: JournalActor,
    /// What, e.g. `device.revoke`.
    pub action: String,
    /// On what, e.g. `device:<id>`.
    pub target: String,
    /// The API request id, when a request caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// SHA-256 (hex) of the target's state before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// SHA-256 (hex) of the target's state after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Human context (reason, group, role…). Never secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

/// Bytes that are not a canonical journal entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical journal entry: {0}")]
pub struct NotCanonical(pub String);

impl JournalEntry {
    /// The canonical bytes (the Merkle leaf data).
    pub fn to_canonical(&self) -> Vec<u8> {
        // A struct of strings, integers and a BTreeMap always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses canonical bytes; anything else is refused.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, NotCanonical> {
        if bytes.len() > MAX_JOURNAL_ENTRY {
            return Err(NotCanonical(format!(
                "longer than {MAX_JOURNAL_ENTRY} bytes"
            )));
        }
        let entry: JournalEntry =
            serde_json::from_slice(bytes).map_err(|e| NotCanonical(e.to_string()))?;
        if entry.to_canonical() != bytes {
            return Err(NotCanonical("valid JSON but not in canonical form".into()));
        }
        Ok(entry)
    }
}

/// SHA-256 (lowercase hex) of a state snapshot's canonical JSON: the
/// `before`/`after` digests of a journal entry.
pub fn state_digest<T: Serialize>(state: &T) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        serde_json::to_vec(state).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> JournalEntry {
        JournalEntry {
            time_ms: 1_795_000_000_000,
            actor: JournalActor {
                kind: "account".into(),
                id: "a1".into(),
                name: Some("ana".into()),
                token_id: Some("0123".into()),
            },
            action: "device.revoke".into(),
            target: "device:5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10".into(),
            request_id: Some("r1".into()),
            source: Some("127.0.0.1:5000".into()),
            before: Some("00".repeat(32)),
            after: Some("11".repeat(32)),
            detail: [("reason".to_owned(), "stolen \"truck\"".to_owned())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn canonical_round_trip_and_shape() {
        let e = entry();
        let bytes = e.to_canonical();
        assert_eq!(JournalEntry::from_canonical(&bytes).unwrap(), e);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"time_ms":1795000000000,"actor":{"kind":"account","id":"a1","name":"ana","token_id":"0123"},"action":"device.revoke""#), "{text}");
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let canonical = String::from_utf8(entry().to_canonical()).unwrap();
        let spaced = canonical.replacen(":", ": ", 1);
        let reordered = canonical.replacen(r#"{"time_ms":1795000000000,"actor""#, r#"{"actor""#, 1);
        let escaped = canonical.replace("ana", "\\u0061na");
        for bad in [
            spaced.as_str(),
            escaped.as_str(),
            reordered.as_str(),
            "{}",
            "",
            "null",
        ] {
            assert!(
                JournalEntry::from_canonical(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        let mut unknown = canonical.clone();
        unknown.insert_str(1, r#""x":1,"#);
        assert!(JournalEntry::from_canonical(unknown.as_bytes()).is_err());
    }
}
