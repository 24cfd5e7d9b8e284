//! The transparency-log core behind Bulwark's audit journal: RFC 6962 /
//! RFC 9162 Merkle tree hashing and proofs, C2SP signed notes and
//! checkpoints, and C2SP tlog-tiles helpers. Pure functions only: no I/O,
//! no clock, no randomness of its own.
//!
//! # Brief overview
//!
//! - [`Hash`](type@Hash), [`leaf_hash`], [`node_hash`], [`empty_root`],
//!   [`root_from_leaf_hashes`] — RFC 6962 §2.1 hashing and the reference
//!   Merkle Tree Hash.
//! - [`CompactRange`] — the O(log n) right edge of a growing tree.
//!   [`CompactRange::append`] returns every perfect-subtree node the new leaf
//!   completes, so a store can persist them and never rehash the log.
//! - [`NodeSource`] — "give me the hash of perfect subtree (level, index)".
//!   [`inclusion_proof`], [`consistency_proof`] and [`root_at`] need only
//!   O(log n) lookups; [`MemoryTree`] is an in-memory source.
//! - [`verify_inclusion`], [`verify_consistency`] — the RFC 9162 §2.1.3.2 and
//!   §2.1.4.2 verifiers.
//! - [`NoteSigner`], [`NoteVerifier`], [`open`] — C2SP signed notes with
//!   Ed25519 keys; [`Verified`] lists the known keys that signed.
//! - [`Checkpoint`] — the C2SP tlog-checkpoint note body, with strict parsing.
//! - [`tile_path`], [`entries_path`], [`tile_bytes`], [`tiles_for_size`],
//!   [`new_tiles`], [`encode_entry_bundle`], [`decode_entry_bundle`] — C2SP
//!   tlog-tiles.
//!
//! # Example
//!
//! ```
//! use bulwark_tlog::{
//!     Checkpoint, MemoryTree, NoteSigner, NoteVerifier, consistency_proof, inclusion_proof,
//!     leaf_hash, open, verify_consistency, verify_inclusion,
//! };
//!
//! // The log appends entries and keeps every complete node.
//! let mut tree = MemoryTree::new();
//! for entry in ["boot", "enrol sensor-1", "rotate key"] {
//!     tree.append(leaf_hash(entry.as_bytes()));
//! }
//! let old_root = tree.root_at(2).unwrap();
//!
//! // It signs a checkpoint (the 32-byte seed comes from the caller's RNG).
//! let signer = NoteSigner::new("audit.example/fleet", &[7; 32]).unwrap();
//! let checkpoint = Checkpoint::new("audit.example/fleet", tree.size(), tree.root());
//! let note = checkpoint.sign(&signer).unwrap();
//!
//! // A verifier configured with the log's public key opens the note...
//! let verifier = NoteVerifier::from_vkey(&signer.verifier_key()).unwrap();
//! let verified = open(&note, &[verifier]).unwrap();
//! let head = Checkpoint::parse(&verified.text).unwrap();
//! assert_eq!(head, checkpoint);
//!
//! // ...and checks an entry and the log's append-only growth against it.
//! let proof = inclusion_proof(1, head.size, &tree).unwrap();
//! verify_inclusion(&leaf_hash(b"enrol sensor-1"), 1, head.size, &proof, &head.root_hash).unwrap();
//! let proof = consistency_proof(2, head.size, &tree).unwrap();
//! verify_consistency(2, head.size, &proof, &old_root, &head.root_hash).unwrap();
//! ```
//!
//! # Design
//!
//! The tree is RFC 6962's: SHA-256, leaves hashed as `H(0x00 || data)`,
//! interior nodes as `H(0x01 || left || right)`, the split at the largest
//! power of two below the size. Nodes are named `(level, index)`: level 0
//! holds the leaf hashes, node `(l, i)` is the root of the perfect subtree
//! over leaves `[i·2^l, (i+1)·2^l)`. Only perfect subtrees are ever stored;
//! the "ephemeral" right-edge nodes a proof needs are rebuilt from at most
//! log₂(n) perfect ones, so generating a proof is O(log n) lookups and
//! hashes whatever the log's size.
//!
//! SHA-256 and Ed25519 come from aws-lc-rs; nothing cryptographic is
//! implemented here. Signing keys are derived from a 32-byte seed the caller
//! provides. All parsers (notes, verifier keys, checkpoints, entry bundles)
//! are strict and reject anything the specifications do not allow.
//!
//! # Trust model
//!
//! A verifier trusts a log through its verifier key alone, configured out of
//! band. [`open`] accepts a note only if at least one signature by a
//! configured key verifies and every signature by a configured key verifies;
//! signatures by other keys are ignored, so witnesses can cosign. A verified
//! checkpoint commits the log to one tree per size: clients then demand an
//! inclusion proof for every entry they rely on and a consistency proof
//! between every pair of checkpoints they see, which turns a log that forks
//! or rewrites history into a pair of signed, contradictory statements. The
//! log's own storage ([`NodeSource`]) is not trusted by verifiers: a proof
//! built from corrupted nodes fails verification.

mod checkpoint;
mod compact;
mod error;
mod hash;
mod memory;
mod note;
mod proof;
mod tiles;

pub use checkpoint::Checkpoint;
pub use compact::{CompactRange, MAX_TREE_SIZE};
pub use error::{Error, Result};
pub use hash::{HASH_LEN, Hash, empty_root, leaf_hash, node_hash, root_from_leaf_hashes};
pub use memory::MemoryTree;
pub use note::{MAX_SIGNATURES, NoteSigner, NoteVerifier, SignerId, Verified, open};
pub use proof::{
    NodeSource, consistency_proof, inclusion_proof, nodes_needed, root_at, verify_consistency,
    verify_inclusion,
};
pub use tiles::{
    TILE_HEIGHT, TILE_WIDTH, TileId, decode_entry_bundle, encode_entry_bundle, entries_path,
    new_tiles, tile_bytes, tile_path, tiles_for_size,
};
