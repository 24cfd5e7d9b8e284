//! The two error enums: [`Error`] for keys, signatures and metadata
//! documents, and [`UpdateError`] for the client workflow.

use time::OffsetDateTime;

/// An error about keys, signatures, canonical JSON or a metadata document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not JSON, or the JSON does not have the shape of the
    /// expected metadata.
    #[error("malformed metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON has the right shape but breaks a rule of the specification.
    #[error("invalid metadata: {0}")]
    Invalid(String),
    /// The metadata's `_type` is not the one the caller asked for.
    #[error("metadata has _type {found:?}, expected {expected:?}")]
    WrongType {
        /// The `_type` the caller expected.
        expected: &'static str,
        /// The `_type` the document has.
        found: String,
    },
    /// The value cannot be written as canonical JSON.
    #[error("cannot encode canonical JSON: {0}")]
    Canonical(String),
    /// The key type and signature scheme pair is not supported.
    #[error("unsupported key type {keytype:?} with scheme {scheme:?}")]
    UnsupportedKey {
        /// The key's `keytype`.
        keytype: String,
        /// The key's `scheme`.
        scheme: String,
    },
    /// The public key value cannot be decoded.
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    /// A private key could not be parsed or generated.
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Signing failed inside the crypto library.
    #[error("signing failed")]
    Signing,
    /// The role has no entry in the delegating metadata.
    #[error("role {0:?} is not delegated by this metadata")]
    UnknownRole(String),
    /// Fewer distinct keys of the role signed than its threshold.
    #[error("role {role:?} has {valid} valid signature(s), threshold is {threshold}")]
    Threshold {
        /// The role whose signatures were checked.
        role: String,
        /// How many distinct authorized keys signed validly.
        valid: usize,
        /// How many are required.
        threshold: u64,
    },
}

/// An error in the client workflow (TUF specification section 5).
///
/// [`UpdateError::kind`] gives a stable short code per attack class.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// New metadata has a lower version than the trusted one (rollback attack).
    #[error("{role} version {new} is lower than trusted version {trusted}: rollback refused")]
    Rollback {
        /// The role.
        role: String,
        /// The trusted version.
        trusted: u64,
        /// The version received.
        new: u64,
    },
    /// A role listed in the trusted snapshot is missing from the new one.
    #[error("new snapshot no longer lists {role}: rollback refused")]
    RoleRemoved {
        /// The `<role>.json` entry that disappeared.
        role: String,
    },
    /// Metadata has expired (freeze attack).
    #[error("{role} version {version} expired at {expires} (now {now})")]
    Expired {
        /// The role.
        role: String,
        /// Its version.
        version: u64,
        /// Its expiry.
        expires: OffsetDateTime,
        /// The reference time.
        now: OffsetDateTime,
    },
    /// Metadata version differs from what its parent metadata (or the URL)
    /// says (mix-and-match attack).
    #[error("{role} is version {got}, but {source_of_truth} says version {expected}")]
    VersionMismatch {
        /// The role.
        role: String,
        /// The version the parent lists.
        expected: u64,
        /// The version received.
        got: u64,
        /// Which metadata gave the expected version.
        source_of_truth: &'static str,
    },
    /// Metadata length or hash differs from what its parent lists
    /// (mix-and-match attack).
    #[error("{role} does not match the {what} listed in {source_of_truth}")]
    MetaMismatch {
        /// The role.
        role: String,
        /// `length` or `<algorithm> hash`.
        what: String,
        /// Which metadata listed it.
        source_of_truth: &'static str,
    },
    /// The parent metadata does not list this role at all.
    #[error("{role} is not listed in {source_of_truth}")]
    NotListed {
        /// The role.
        role: String,
        /// The metadata that should list it.
        source_of_truth: &'static str,
    },
    /// A target's content does not match its metadata (arbitrary software attack).
    #[error("target does not match its metadata: {0}")]
    TargetMismatch(String),
    /// The target metadata has no hash algorithm this client supports.
    #[error("target lists no supported hash algorithm (supported: sha256, sha384, sha512)")]
    UnsupportedHash,
    /// Metadata or target data is larger than allowed (endless data attack).
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Fewer valid signatures than the threshold.
    #[error("{role} version {version}: {source}")]
    Threshold {
        /// The role.
        role: String,
        /// Its version.
        version: u64,
        /// The underlying verification error.
        source: Error,
    },
    /// Metadata cannot be parsed or breaks the format rules.
    #[error("{role}: {source}")]
    Malformed {
        /// The role (or file) being parsed.
        role: String,
        /// Why.
        source: Error,
    },
    /// Fetching failed (including "not found").
    #[error("fetching {path} failed: {message}")]
    Fetch {
        /// The path relative to the metadata or target base.
        path: String,
        /// Why.
        message: String,
    },
    /// The local metadata store failed.
    #[error("storing {role} locally failed: {message}")]
    Storage {
        /// The role being stored.
        role: String,
        /// Why.
        message: String,
    },
    /// There is no trusted root in local storage.
    #[error("no trusted root metadata in local storage")]
    NoTrustedRoot,
}

impl UpdateError {
    /// A stable short code for the class of failure.
    ///
    /// The codes are `rollback`, `freeze`, `mix-and-match`,
    /// `arbitrary-software`, `endless-data`, `threshold`, `malformed`,
    /// `fetch`, `unsupported-hash`, `storage` and `no-trusted-root`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpdateError::Rollback { .. } | UpdateError::RoleRemoved { .. } => "rollback",
            UpdateError::Expired { .. } => "freeze",
            UpdateError::VersionMismatch { .. }
            | UpdateError::MetaMismatch { .. }
            | UpdateError::NotListed { .. } => "mix-and-match",
            UpdateError::TargetMismatch(_) => "arbitrary-software",
            UpdateError::UnsupportedHash => "unsupported-hash",
            UpdateError::TooLarge { .. } => "endless-data",
            UpdateError::Threshold { .. } => "threshold",
            UpdateError::Malformed { .. } => "malformed",
            UpdateError::Fetch { .. } => "fetch",
            UpdateError::Storage { .. } => "storage",
            UpdateError::NoTrustedRoot => "no-trusted-root",
        }
    }
}
