//! Blobs, releases, signing, promotion, deployments and the image repository.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST /api/v1/blobs`: the stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobView {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub length: u64,
}

/// `POST /api/v1/blobs/gc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GcView {
    /// Digests of the blobs deleted.
    pub deleted: Vec<String>,
    /// Bytes freed on disk.
    pub freed_bytes: u64,
}

/// `POST /api/v1/releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// Product name (a name: `a-z 0-9 - _ .`).
    pub name: String,
    /// Version (`0-9 A-Z a-z . + - _ ~`).
    pub version: String,
    /// Digest of an uploaded blob.
    pub sha256: String,
    /// `file`, `ab` or `script`.
    pub installer: String,
    /// Where the `file` installer puts the artifact (absolute path).
    #[serde(default)]
    pub install_path: Option<String>,
    /// Command the device runs after switching; failure rolls back.
    #[serde(default)]
    pub smoke_test: Option<String>,
    /// Smoke test timeout in seconds (default 60, at most 3600).
    #[serde(default)]
    pub smoke_timeout_secs: Option<u64>,
    /// Digest of an uploaded SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON) to
    /// judge together with what the gate extracts from the artifact.
    #[serde(default)]
    pub sbom_sha256: Option<String>,
}

/// A release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    /// `name@version`.
    pub reference: String,
    /// Product name.
    pub name: String,
    /// Version.
    pub version: String,
    /// TUF target path.
    pub target: String,
    /// Artifact digest.
    pub sha256: String,
    /// Artifact length.
    pub length: u64,
    /// Installer.
    pub installer: String,
    /// `file` installer destination.
    pub install_path: Option<String>,
    /// Smoke test.
    pub smoke_test: Option<String>,
    /// Smoke test timeout.
    pub smoke_timeout_secs: u64,
    /// `unsigned` or `published`.
    pub status: String,
    /// Environments, in promotion order.
    pub environments: Vec<String>,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Published at.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
}

/// `GET /api/v1/releases`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseList {
    /// Newest first.
    pub releases: Vec<ReleaseView>,
}

/// What a release's signers sign, and how far signing got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SigningView {
    /// `name@version`.
    pub release: String,
    /// Published targets version the proposal adds to.
    pub base_version: u64,
    /// The exact bytes to sign: canonical JSON of the proposed targets
    /// `signed` part.
    pub signed_canonical: String,
    /// Targets keys of the image root.
    pub keyids: Vec<String>,
    /// Signatures needed.
    pub threshold: u64,
    /// Valid signatures so far.
    pub valid_signatures: usize,
    /// True once the threshold was met.
    pub published: bool,
}

/// `POST /api/v1/releases/{reference}/signatures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSignature {
    /// TUF key id of the signing key.
    pub keyid: String,
    /// Hex signature over `signed_canonical`.
    pub sig: String,
}

/// `POST /api/v1/releases/{reference}/promote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRelease {
    /// Target environment; the release must be in the previous one.
    pub environment: String,
}

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// `name@version`.
    pub release: String,
    /// Device group.
    pub group: String,
    /// Environment (the release must be promoted to it).
    pub environment: String,
    /// A remediation: quarantined devices of the group receive it too
    /// (every other update is withheld from them).
    #[serde(default)]
    pub remediation: bool,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    /// Id.
    pub id: String,
    /// Order: the newest deployment for a group and environment wins.
    pub seq: u64,
    /// `name@version`.
    pub release: String,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// A remediation (reaches quarantined devices too).
    #[serde(default)]
    pub remediation: bool,
}

/// `GET /api/v1/deployments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    /// Newest first.
    pub deployments: Vec<DeploymentView>,
}

/// `GET /api/v1/repo/online-key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OnlineKeyView {
    /// Key id.
    pub keyid: String,
    /// The TUF public key object to list under snapshot and timestamp.
    #[schema(value_type = Object)]
    pub key: serde_json::Value,
    /// The promotion ladder.
    pub environments: Vec<String>,
}

/// `POST /api/v1/repo/root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootAccepted {
    /// The root version now trusted.
    pub version: u64,
}
