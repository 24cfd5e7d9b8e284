//! [`Error`]: everything that can go wrong in this crate.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A leaf index at or beyond the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("first tree size {size1} exceeds second tree size {size2}")]
    SizeOrder {
        /// The first (older) tree size.
        size1: u64,
        /// The second (newer) tree size.
        size2: u64,
    },
    /// A proof with the wrong number of hashes for its sizes.
    #[error("proof has {got} hashes, expected {want}")]
    ProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes call for.
        want: usize,
    },
    /// A proof that does not lead to the expected root.
    #[error("{which} computed from the proof does not match")]
    RootMismatch {
        /// Which root: `"root"`, `"first root"` or `"second root"`.
        which: &'static str,
    },
    /// A [`crate::NodeSource`] does not have a node.
    #[error("node at level {level} index {index} is not available")]
    MissingNode {
        /// Node level (0 = leaves).
        level: u8,
        /// Node index within its level.
        index: u64,
    },
    /// A [`crate::NodeSource`] failed for a reason of its own (storage error).
    #[error("node source failed: {0}")]
    NodeSource(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A tree size this crate refuses (see [`crate::MAX_TREE_SIZE`]).
    #[error("tree size {size} is too large")]
    TreeTooLarge {
        /// The size given.
        size: u64,
    },
    /// A compact range whose hash count does not fit its size.
    #[error("compact range of size {size} needs {want} hashes, got {got}")]
    CompactRangeLength {
        /// The tree size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes the size calls for (its number of set bits).
        want: usize,
    },
    /// A key name that is empty or contains a space or `+`.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A verifier key string that is not `<name>+<hex id>+<base64 key>`.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A verifier key of a signature type other than Ed25519 (`0x01`).
    #[error("unsupported verifier key type {0:#04x}")]
    UnsupportedKeyType(u8),
    /// A verifier key whose key id does not match its name and key.
    #[error("verifier key id does not match its name and public key")]
    KeyIdMismatch,
    /// Text that cannot be signed as a note.
    #[error("invalid note text: {0}")]
    InvalidNoteText(&'static str),
    /// A signed note that does not follow the signed-note format.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A note with more signature lines than [`crate::MAX_SIGNATURES`].
    #[error("note has {count} signatures, at most {max} are accepted")]
    TooManySignatures {
        /// Signature lines in the note.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature by a known key that does not verify.
    #[error("invalid signature by key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// Two different configured keys share a name and key id.
    #[error("ambiguous verifier key {name}+{key_id:08x}")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// A note with no signature by any configured key.
    #[error("note has no signature by a known key")]
    NoKnownSignature,
    /// The crypto library refused a key or failed to sign.
    #[error("crypto library failure: {0}")]
    Crypto(&'static str),
    /// A checkpoint text that does not follow tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A tile outside what tlog-tiles allows (level, width).
    #[error("invalid tile: {0}")]
    InvalidTile(&'static str),
    /// An entry too large for an entry bundle's 16-bit length prefix.
    #[error("entry of {len} bytes exceeds the 65535-byte bundle limit")]
    EntryTooLarge {
        /// The entry's length.
        len: usize,
    },
    /// An entry bundle that is cut short.
    #[error("malformed entry bundle: {0}")]
    MalformedEntryBundle(&'static str),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
