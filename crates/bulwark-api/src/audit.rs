//! The audit journal: entries, proofs, checkpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One journal entry as served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the log (leaf index).
    pub seq: u64,
    /// The leaf hash the server recorded (hex); verifiers recompute it.
    pub leaf_hash: String,
    /// The entry bytes as stored, base64 (what the leaf hash covers).
    pub raw: String,
    /// The decoded entry; absent when the stored bytes are not a
    /// canonical entry (a damaged or tampered row), which `problem` says.
    /// The bytes are served either way, so a verifier can name the entry.
    #[serde(default)]
    pub entry: Option<bulwark_proto::JournalEntry>,
    /// Why `entry` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `GET /api/v1/audit/entries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries of this page, in order.
    pub entries: Vec<AuditEntryView>,
    /// The journal's size when read.
    pub size: u64,
    /// `start` of the next page; absent at the end.
    #[serde(default)]
    pub next: Option<u64>,
}

/// Query of `GET /api/v1/audit/entries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First sequence number (default 0).
    #[param(maximum = 9223372036854775807_u64)]
    pub start: Option<u64>,
    /// Page size, 1–1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// An entry with its inclusion proof against a signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionView {
    /// The entry.
    pub entry: AuditEntryView,
    /// Tree size the proof is for (the checkpoint's).
    pub size: u64,
    /// RFC 9162 inclusion proof, hex hashes.
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) for `size`.
    pub checkpoint: String,
}

/// Query of inclusion and consistency proofs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Older tree size (consistency).
    #[param(maximum = 9223372036854775807_u64)]
    pub from: Option<u64>,
    /// Newer tree size (consistency) or the size to prove inclusion in
    /// (default: the newest checkpoint).
    #[param(maximum = 9223372036854775807_u64)]
    pub size: Option<u64>,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyView {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub size: u64,
    /// Hex hashes.
    pub proof: Vec<String>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Tree size.
    pub size: u64,
    /// The C2SP signed note.
    pub note: String,
}

/// The journal's identity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JournalKeyView {
    /// Origin line of every checkpoint.
    pub origin: String,
    /// C2SP verifier key (`name+keyid+key`).
    pub vkey: String,
}
