//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed-note
//! body naming a log, its size and its root hash.
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <base64 root hash>
//! [extension lines…]
//! ```
//!
//! Every line, the last included, ends in a newline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Error, HASH_LEN, Hash, NoteSigner, NoteVerifier, Result, Verified, open};

/// A log's tree head as a C2SP checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, conventionally a schema-less URL
    /// (`example.com/log`); non-empty.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// Root hash of the tree at `size`.
    pub root_hash: Hash,
    /// Opaque extension lines (without their newlines), each non-empty.
    /// Their use is discouraged by the spec; usually empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root_hash: Hash) -> Self {
        Self {
            origin: origin.to_owned(),
            size,
            root_hash,
            extensions: Vec::new(),
        }
    }

    /// The note text: origin, size, base64 root and extension lines, each
    /// followed by a newline. Does not validate; see [`Self::validate`].
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root_hash)
        );
        for ext in &self.extensions {
            text.push_str(ext);
            text.push('\n');
        }
        text
    }

    /// Checks that [`Self::to_text`] is a well-formed checkpoint: non-empty
    /// origin and extension lines without newlines or control characters.
    pub fn validate(&self) -> Result<()> {
        let parsed = Self::parse(&self.to_text())?;
        if parsed != *self {
            // A field with an embedded newline re-parses differently.
            return Err(Error::MalformedCheckpoint("a field contains a newline"));
        }
        Ok(())
    }

    /// Parses a checkpoint body strictly: at least three lines, each ending
    /// in a newline; a non-empty origin; a decimal size without sign or
    /// leading zeros (`0` itself excepted) that fits in 64 bits; a
    /// canonical padded base64 root of exactly 32 bytes; non-empty extension
    /// lines; no control characters.
    pub fn parse(text: &str) -> Result<Self> {
        if text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(Error::MalformedCheckpoint("control character"));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(Error::MalformedCheckpoint("text must end with a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::MalformedCheckpoint("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(Error::MalformedCheckpoint("empty origin"));
        }
        let size = parse_size(size)?;
        let root_hash = parse_root(root)?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(Error::MalformedCheckpoint("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root_hash,
            extensions,
        })
    }

    /// Validates the checkpoint and signs it as a note.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String> {
        self.validate()?;
        signer.sign(&self.to_text())
    }

    /// Opens a signed checkpoint note (see [`open`]) and parses its body.
    ///
    /// The caller still has to check that the origin is the log it expects
    /// and that the checkpoint is consistent with earlier ones.
    pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<(Self, Verified)> {
        let verified = open(note, verifiers)?;
        let checkpoint = Self::parse(&verified.text)?;
        Ok((checkpoint, verified))
    }
}

fn parse_size(line: &str) -> Result<u64> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::MalformedCheckpoint(
            "tree size is not a decimal number",
        ));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(Error::MalformedCheckpoint("tree size has a leading zero"));
    }
    line.parse()
        .map_err(|_| Error::MalformedCheckpoint("tree size does not fit in 64 bits"))
}

fn parse_root(line: &str) -> Result<Hash> {
    let raw = B64
        .decode(line)
        .map_err(|_| Error::MalformedCheckpoint("root hash is not valid base64"))?;
    if raw.len() != HASH_LEN {
        return Err(Error::MalformedCheckpoint("root hash is not 32 bytes"));
    }
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(&raw);
    Ok(hash)
}
