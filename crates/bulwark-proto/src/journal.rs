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

macro_rules! journal_actions {
    ($($variant:ident = $text:literal: $doc:literal,)*) => {
        /// What a journal entry records: every state change the server
        /// makes has exactly one of these. Entries carry it as text
        /// ([`JournalEntry::action`], part of the canonical bytes), so an
        /// entry written by a newer server with an action this one does not
        /// know still parses; [`JournalAction::parse`] says `None` then.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum JournalAction {
            $(#[doc = $doc] $variant,)*
        }

        impl JournalAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [JournalAction] = &[$(JournalAction::$variant,)*];

            /// The text entries carry (`device.quarantine`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(JournalAction::$variant => $text,)*
                }
            }

            /// The action an entry's text names, if this version knows it.
            pub fn parse(text: &str) -> Option<JournalAction> {
                match text {
                    $($text => Some(JournalAction::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

journal_actions! {
    AccountCreate = "account.create": "An account created.",
    TokenCreate = "token.create": "An API token created.",
    TokenRevoke = "token.revoke": "An API token revoked.",
    EnrollTokenCreate = "enroll_token.create": "An enrollment token created.",
    DeviceEnroll = "device.enroll": "A device enrolled.",
    DeviceBulkInsert = "device.bulk_insert": "Devices inserted in bulk (simulation, benchmarks).",
    DeviceInventory = "device.inventory": "A device's inventory changed.",
    DeviceTag = "device.tag": "A device's tags changed.",
    DeviceRename = "device.rename": "A device renamed.",
    DeviceRevoke = "device.revoke": "A device revoked.",
    DeviceUpdate = "device.update": "A device reported an update's progress or outcome.",
    DeviceQuarantine = "device.quarantine": "A device quarantined.",
    DeviceRelease = "device.release": "A device released from quarantine.",
    BlobPut = "blob.put": "An artifact uploaded.",
    BlobGc = "blob.gc": "Unreferenced artifacts deleted.",
    ReleaseCreate = "release.create": "A release created.",
    ReleaseScan = "release.scan": "A release's gate scan stored with its verdict.",
    ReleaseSign = "release.sign": "A release's targets signature added (published at the threshold).",
    ReleasePromote = "release.promote": "A release promoted to an environment.",
    DeploymentCreate = "deployment.create": "A release deployed to a group.",
    GatePolicy = "gate.policy": "A gate policy version stored.",
    WaiverAdd = "waiver.add": "A gate waiver added.",
    WaiverRevoke = "waiver.revoke": "A gate waiver revoked.",
    AdvisoriesImport = "advisories.import": "Advisories imported (verdicts re-evaluated).",
    ProfileApply = "profile.apply": "A detection profile version applied to a group.",
    WebhookAdd = "webhook.add": "A webhook registered.",
    WebhookRemove = "webhook.remove": "A webhook removed.",
    RepoInit = "repo.init": "The image repository's first root stored.",
    RepoRotateRoot = "repo.rotate_root": "A new image repository root stored.",
    RepoRefresh = "repo.refresh": "The image repository's online metadata re-signed.",
    DirectorInit = "director.init": "The director repository's root created.",
}

impl std::fmt::Display for JournalAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

    #[test]
    fn journal_actions_have_one_text_each() {
        let mut seen = std::collections::BTreeSet::new();
        for a in JournalAction::ALL {
            assert_eq!(JournalAction::parse(a.as_str()), Some(*a));
            assert!(seen.insert(a.as_str()), "{a} twice");
            let (noun, verb) = a.as_str().split_once('.').unwrap();
            assert!(!noun.is_empty() && !verb.is_empty(), "{a}");
        }
        assert_eq!(JournalAction::parse("device.explode"), None);
    }
}
