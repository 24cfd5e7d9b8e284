//! Blobs, releases, signing, promotion, deployments and the image repository.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::words::api_enum;

api_enum! {
    /// How devices install a release.
    Installer, "installer" {
        /// Copy the artifact to `install_path`.
        File = "file",
        /// Write it to the inactive A/B slot.
        Ab = "ab",
        /// Run it as a script.
        Script = "script",
    }
}

api_enum! {
    /// Where a release stands in signing.
    ReleaseStatus, "release status" {
        /// Its targets signatures have not reached the threshold.
        Unsigned = "unsigned",
        /// Its targets metadata is published.
        Published = "published",
    }
}

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
    /// Product name (a name: 1–64 of `a-z 0-9 - _ .`, starting with a
    /// letter or digit).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// Version (1–64 of `0-9 A-Z a-z . + - _ ~`, starting with a letter or
    /// digit).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")]
    pub version: String,
    /// Digest of an uploaded blob (lowercase hex SHA-256).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// How devices install it.
    pub installer: Installer,
    /// Where the `file` installer puts the artifact: an absolute path
    /// without `..`, at most 1024 bytes (required by `file`, refused by the
    /// others).
    #[serde(default)]
    #[schema(
        max_length = 1024,
        pattern = "^(/([^/.][^/]*|\\.|\\.[^/.][^/]*|\\.\\.[^/]+)?)+$"
    )]
    pub install_path: Option<String>,
    /// Command the device runs after switching; failure rolls back (1–4096
    /// bytes).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub smoke_test: Option<String>,
    /// Smoke test timeout in seconds (default 60, at most 3600).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    pub smoke_timeout_secs: Option<u64>,
    /// Digest of an uploaded SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON) to
    /// judge together with what the gate extracts from the artifact.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-f]{64}$")]
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
    pub installer: Installer,
    /// `file` installer destination.
    pub install_path: Option<String>,
    /// Smoke test.
    pub smoke_test: Option<String>,
    /// Smoke test timeout.
    pub smoke_timeout_secs: u64,
    /// Where it stands in signing.
    pub status: ReleaseStatus,
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
    /// TUF key id of the signing key (64 hex characters).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub keyid: String,
    /// Hex signature over `signed_canonical` (at most 2048 hex characters).
    #[schema(pattern = "^[0-9a-fA-F]{1,2048}$")]
    pub sig: String,
}

/// `POST /api/v1/releases/{reference}/promote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRelease {
    /// Target environment (one of the server's ladder, a name); the
    /// release must be in the previous one.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub environment: String,
}

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// `name@version`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")]
    pub release: String,
    /// Device group (a name).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub group: String,
    /// Environment (a name; the release must be promoted to it).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
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
