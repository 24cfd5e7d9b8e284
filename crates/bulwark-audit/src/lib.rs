//! Offline verification of Bulwark's audit journal.
//!
//! Anyone holding the journal's verifier key, and ideally an older signed
//! checkpoint they saved, can check a journal without trusting the server
//! that produced it: [`verify`] recomputes every leaf from the entry bytes,
//! rebuilds the Merkle tree, and requires every signed checkpoint to match.
//!
//! # Brief overview
//!
//! - [`Evidence`] — what is checked: entries (bytes, plus the leaf hash the
//!   server recorded, if known), signed checkpoints, consistency proofs.
//!   [`Evidence::from_bundle_files`] / [`Evidence::to_bundle_files`] are the
//!   export bundle's layout.
//! - [`verify`] — returns a [`Report`], or the first [`Failure`] found, which
//!   names the bad entry (or the smallest range that must contain it).
//!
//! # Example
//!
//! ```
//! use bulwark_audit::{Evidence, EvidenceEntry, verify};
//! use bulwark_tlog::{Checkpoint, NoteSigner, leaf_hash, root_from_leaf_hashes};
//! # let entry = bulwark_proto::JournalEntry { time_ms: 0, actor: bulwark_proto::JournalActor { kind: "system".into(), id: "x".into(), name: None, token_id: None }, action: "a".into(), target: "t".into(), request_id: None, source: None, before: None, after: None, detail: Default::default() };
//! let raw = entry.to_canonical();
//! let signer = NoteSigner::new("example.org/log", &[7; 32]).unwrap();
//! let note = Checkpoint::new("example.org/log", 1, root_from_leaf_hashes(&[leaf_hash(&raw)])).sign(&signer).unwrap();
//! let evidence = Evidence {
//!     entries: vec![EvidenceEntry { seq: 0, raw, recorded_leaf_hash: None }],
//!     checkpoints: vec![note.clone()],
//!     consistency: vec![],
//! };
//! let report = verify(&evidence, &signer.verifier(), Some(&note)).unwrap();
//! assert_eq!(report.size, 1);
//! ```
//!
//! # Trust model
//!
//! The verifier key is trusted (pin it: it is printed by `bulwark audit key`
//! and written to the server's `journal.vkey`). Nothing the server sends is:
//! entries are rehashed, roots recomputed, signatures checked. A trusted
//! older checkpoint additionally detects a log rolled back to a shorter or
//! different history, which no amount of self-consistency can.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bulwark_proto::JournalEntry;
use bulwark_tlog::{Checkpoint, CompactRange, Hash, NoteVerifier, leaf_hash, verify_consistency};

/// One entry to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceEntry {
    /// Position in the log.
    pub seq: u64,
    /// Canonical entry bytes.
    pub raw: Vec<u8>,
    /// The leaf hash the server recorded at append time, when known: a
    /// mismatch pinpoints an entry altered after it was appended.
    pub recorded_leaf_hash: Option<Hash>,
}

/// Everything [`verify`] checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Entries in order, from 0.
    pub entries: Vec<EvidenceEntry>,
    /// Signed checkpoints (C2SP notes), any order.
    pub checkpoints: Vec<String>,
    /// Consistency proofs `(from, to, hashes)` between checkpoint sizes.
    pub consistency: Vec<(u64, u64, Vec<Hash>)>,
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Size of the newest verified checkpoint.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// Checkpoints verified.
    pub checkpoints: usize,
    /// Entries beyond the newest checkpoint (present but not yet signed).
    pub unsigned_tail: u64,
    /// Consistency proofs verified.
    pub consistency_proofs: usize,
    /// The trusted checkpoint's size, when one was given.
    pub trusted_size: Option<u64>,
}

/// Why a journal failed verification. Messages name the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// No signed checkpoint to verify against.
    #[error("no signed checkpoint in the evidence")]
    NoCheckpoint,
    /// A checkpoint is malformed, for another log, or its signature fails.
    #[error("checkpoint #{index} does not verify: {reason}")]
    BadCheckpoint {
        /// Position in the evidence.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The trusted checkpoint itself does not verify.
    #[error("the trusted checkpoint does not verify: {reason}")]
    BadTrusted {
        /// Why.
        reason: String,
    },
    /// Sequence numbers skip or repeat: an entry was deleted or duplicated.
    #[error("entry {seq} is missing (found entry {found} in its place)")]
    EntryMissing {
        /// The expected sequence number.
        seq: u64,
        /// What was there instead.
        found: u64,
    },
    /// An entry's bytes are not a canonical journal entry.
    #[error("entry {seq} is not a canonical journal entry: {reason}")]
    EntryNotCanonical {
        /// Which entry.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// An entry's bytes no longer hash to the leaf recorded when it was appended.
    #[error(
        "entry {seq} was altered after it was appended (its bytes no longer match its recorded leaf hash)"
    )]
    EntryAltered {
        /// Which entry.
        seq: u64,
    },
    /// The entries do not produce a signed checkpoint's root.
    #[error(
        "entries {first}..={last} do not match the signed checkpoint for size {size}: an entry in that range was altered, reordered or replaced"
    )]
    RootMismatch {
        /// Checkpoint size.
        size: u64,
        /// First entry that may be bad (the previous checkpoint matched up to here).
        first: u64,
        /// Last entry that may be bad.
        last: u64,
    },
    /// A signed checkpoint is larger than the entries available.
    #[error(
        "the checkpoint for size {size} covers more entries than the {have} present: entries {have}.. are missing"
    )]
    EntriesTruncated {
        /// Checkpoint size.
        size: u64,
        /// Entries present.
        have: u64,
    },
    /// The log is shorter than a trusted checkpoint: history was rolled back.
    #[error(
        "the log was rolled back: a trusted checkpoint has {trusted} entries but the log has {size}"
    )]
    RolledBack {
        /// Trusted size.
        trusted: u64,
        /// Log size now.
        size: u64,
    },
    /// The first `size` entries differ from the trusted checkpoint's.
    #[error(
        "the log's first {size} entries differ from the trusted checkpoint: history was rewritten"
    )]
    HistoryRewritten {
        /// Trusted size.
        size: u64,
    },
    /// A consistency proof fails.
    #[error("consistency proof {from} -> {to} does not verify: {reason}")]
    BadConsistencyProof {
        /// Older size.
        from: u64,
        /// Newer size.
        to: u64,
        /// Why.
        reason: String,
    },
}

fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, String> {
    let (cp, _) =
        Checkpoint::open(note, std::slice::from_ref(verifier)).map_err(|e| e.to_string())?;
    if cp.origin != verifier.name() {
        return Err(format!(
            "origin {:?} is not the key's log {:?}",
            cp.origin,
            verifier.name()
        ));
    }
    Ok(cp)
}

/// Verifies `evidence` with the journal's `verifier` key, and against a
/// `trusted` older checkpoint when one is given.
pub fn verify(
    evidence: &Evidence,
    verifier: &NoteVerifier,
    trusted: Option<&str>,
) -> Result<Report, Failure> {
    let mut signed: BTreeMap<u64, Hash> = BTreeMap::new();
    for (index, note) in evidence.checkpoints.iter().enumerate() {
        let cp = open_checkpoint(note, verifier)
            .map_err(|reason| Failure::BadCheckpoint { index, reason })?;
        if let Some(prev) = signed.insert(cp.size, cp.root_hash)
            && prev != cp.root_hash
        {
            return Err(Failure::BadCheckpoint {
                index,
                reason: format!("two different signed roots for size {}", cp.size),
            });
        }
    }
    let trusted = trusted
        .map(|note| {
            open_checkpoint(note, verifier).map_err(|reason| Failure::BadTrusted { reason })
        })
        .transpose()?;
    let (&newest, &newest_root) = signed.iter().next_back().ok_or(Failure::NoCheckpoint)?;

    // Rebuild the tree from the entry bytes, checking each signed root as
    // its size is reached.
    let mut tree = CompactRange::new();
    let mut last_good = 0u64;
    let mut roots_at: BTreeMap<u64, Hash> = BTreeMap::new();
    let wanted: Vec<u64> = signed
        .keys()
        .copied()
        .chain(trusted.as_ref().map(|t| t.size))
        .chain(evidence.consistency.iter().flat_map(|(a, b, _)| [*a, *b]))
        .collect();
    for e in &evidence.entries {
        let seq = tree.size();
        if e.seq != seq {
            return Err(Failure::EntryMissing { seq, found: e.seq });
        }
        JournalEntry::from_canonical(&e.raw)
            .map_err(|err| Failure::EntryNotCanonical { seq, reason: err.0 })?;
        let leaf = leaf_hash(&e.raw);
        if e.recorded_leaf_hash.is_some_and(|r| r != leaf) {
            return Err(Failure::EntryAltered { seq });
        }
        tree.append(leaf);
        let size = tree.size();
        if wanted.contains(&size) {
            roots_at.insert(size, tree.root());
        }
        if let Some(root) = signed.get(&size) {
            if *root != tree.root() {
                return Err(Failure::RootMismatch {
                    size,
                    first: last_good,
                    last: size - 1,
                });
            }
            last_good = size;
        }
    }
    let have = tree.size();
    if let Some(t) = &trusted {
        if t.size > have.max(newest) {
            return Err(Failure::RolledBack {
                trusted: t.size,
                size: have.max(newest),
            });
        }
        let ours = if t.size == 0 {
            Some(bulwark_tlog::empty_root())
        } else {
            roots_at.get(&t.size).copied()
        };
        if ours != Some(t.root_hash) {
            return Err(Failure::HistoryRewritten { size: t.size });
        }
    }
    if newest > have {
        return Err(Failure::EntriesTruncated { size: newest, have });
    }
    let root_of = |size: u64| {
        if size == 0 {
            Some(bulwark_tlog::empty_root())
        } else {
            roots_at.get(&size).copied()
        }
    };
    for (from, to, proof) in &evidence.consistency {
        let (Some(r1), Some(r2)) = (root_of(*from), root_of(*to)) else {
            return Err(Failure::BadConsistencyProof {
                from: *from,
                to: *to,
                reason: "sizes beyond the entries present".into(),
            });
        };
        verify_consistency(*from, *to, proof, &r1, &r2).map_err(|e| {
            Failure::BadConsistencyProof {
                from: *from,
                to: *to,
                reason: e.to_string(),
            }
        })?;
    }
    Ok(Report {
        size: newest,
        root: newest_root,
        checkpoints: signed.len(),
        unsigned_tail: have - newest,
        consistency_proofs: evidence.consistency.len(),
        trusted_size: trusted.map(|t| t.size),
    })
}

/// Folder inside the export bundle.
pub const BUNDLE_DIR: &str = "bulwark-journal";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    seq: u64,
    raw: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leaf_hash: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofFile {
    from: u64,
    to: u64,
    proof: Vec<String>,
}

/// A bundle file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bundle file {file}: {reason}")]
pub struct BundleError {
    /// Which file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

fn hash_from_hex(s: &str) -> Option<Hash> {
    hex::decode(s).ok()?.try_into().ok()
}

impl Evidence {
    /// The export bundle's files (path → bytes): `entries.jsonl`,
    /// `checkpoints/<size>.note`, `proofs/consistency-<from>-<to>.json`,
    /// and `key.vkey`, under [`BUNDLE_DIR`].
    pub fn to_bundle_files(&self, vkey: &str) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut lines = String::new();
        for e in &self.entries {
            let line = EntryLine {
                seq: e.seq,
                raw: STANDARD.encode(&e.raw),
                leaf_hash: e.recorded_leaf_hash.map(hex::encode),
            };
            lines.push_str(&serde_json::to_string(&line).unwrap_or_default());
            lines.push('\n');
        }
        files.insert(format!("{BUNDLE_DIR}/entries.jsonl"), lines.into_bytes());
        for (i, note) in self.checkpoints.iter().enumerate() {
            let size = Checkpoint::parse(note.split("\n\n").next().unwrap_or(""))
                .map(|c| c.size)
                .unwrap_or(i as u64);
            files.insert(
                format!("{BUNDLE_DIR}/checkpoints/{size:012}.note"),
                note.clone().into_bytes(),
            );
        }
        for (from, to, proof) in &self.consistency {
            let f = ProofFile {
                from: *from,
                to: *to,
                proof: proof.iter().map(hex::encode).collect(),
            };
            files.insert(
                format!("{BUNDLE_DIR}/proofs/consistency-{from}-{to}.json"),
                serde_json::to_vec(&f).unwrap_or_default(),
            );
        }
        files.insert(
            format!("{BUNDLE_DIR}/key.vkey"),
            format!("{vkey}\n").into_bytes(),
        );
        files
    }

    /// Reads the files of an export bundle; returns the evidence and the
    /// verifier key the bundle carries (which a careful verifier compares
    /// with the key it pinned).
    pub fn from_bundle_files(
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(Self, String), BundleError> {
        let err = |file: &str, reason: String| BundleError {
            file: file.to_owned(),
            reason,
        };
        let text = |name: &str| -> Result<&str, BundleError> {
            let bytes = files.get(name).ok_or_else(|| err(name, "missing".into()))?;
            std::str::from_utf8(bytes).map_err(|_| err(name, "not UTF-8".into()))
        };
        let vkey = text(&format!("{BUNDLE_DIR}/key.vkey"))?.trim().to_owned();
        let entries_name = format!("{BUNDLE_DIR}/entries.jsonl");
        let mut entries = Vec::new();
        for (n, line) in text(&entries_name)?.lines().enumerate() {
            let l: EntryLine = serde_json::from_str(line)
                .map_err(|e| err(&entries_name, format!("line {}: {e}", n + 1)))?;
            let raw = STANDARD
                .decode(&l.raw)
                .map_err(|e| err(&entries_name, format!("line {}: {e}", n + 1)))?;
            let recorded_leaf_hash =
                match l.leaf_hash {
                    Some(h) => Some(hash_from_hex(&h).ok_or_else(|| {
                        err(&entries_name, format!("line {}: bad leaf hash", n + 1))
                    })?),
                    None => None,
                };
            entries.push(EvidenceEntry {
                seq: l.seq,
                raw,
                recorded_leaf_hash,
            });
        }
        let mut checkpoints = Vec::new();
        let mut consistency = Vec::new();
        for (name, bytes) in files {
            if name.starts_with(&format!("{BUNDLE_DIR}/checkpoints/")) && name.ends_with(".note") {
                checkpoints.push(
                    String::from_utf8(bytes.clone()).map_err(|_| err(name, "not UTF-8".into()))?,
                );
            } else if name.starts_with(&format!("{BUNDLE_DIR}/proofs/")) && name.ends_with(".json")
            {
                let p: ProofFile =
                    serde_json::from_slice(bytes).map_err(|e| err(name, e.to_string()))?;
                let hashes = p
                    .proof
                    .iter()
                    .map(|h| hash_from_hex(h))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(name, "bad hash".into()))?;
                consistency.push((p.from, p.to, hashes));
            }
        }
        Ok((
            Self {
                entries,
                checkpoints,
                consistency,
            },
            vkey,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_proto::JournalActor;
    use bulwark_tlog::{MemoryTree, NoteSigner, consistency_proof};

    fn entry(i: u64) -> Vec<u8> {
        JournalEntry {
            time_ms: 1_795_000_000_000 + i as i64,
            actor: JournalActor {
                kind: "account".into(),
                id: "a".into(),
                name: Some("ana".into()),
                token_id: None,
            },
            action: "device.tag".into(),
            target: format!("device:{i}"),
            request_id: None,
            source: None,
            before: None,
            after: None,
            detail: Default::default(),
        }
        .to_canonical()
    }

    struct Log {
        signer: NoteSigner,
        raws: Vec<Vec<u8>>,
    }

    impl Log {
        fn new(n: u64) -> Self {
            Self {
                signer: NoteSigner::new("test.invalid/journal", &[1; 32]).unwrap(),
                raws: (0..n).map(entry).collect(),
            }
        }

        fn tree(raws: &[Vec<u8>]) -> MemoryTree {
            let mut t = MemoryTree::new();
            for r in raws {
                t.append(leaf_hash(r));
            }
            t
        }

        fn note(&self, raws: &[Vec<u8>], size: u64) -> String {
            let t = Self::tree(raws);
            Checkpoint::new("test.invalid/journal", size, t.root_at(size).unwrap())
                .sign(&self.signer)
                .unwrap()
        }

        /// Evidence with checkpoints at 3, 7 and 10 and leaf hashes recorded.
        fn evidence(&self) -> Evidence {
            let t = Self::tree(&self.raws);
            Evidence {
                entries: self
                    .raws
                    .iter()
                    .enumerate()
                    .map(|(i, r)| EvidenceEntry {
                        seq: i as u64,
                        raw: r.clone(),
                        recorded_leaf_hash: Some(leaf_hash(r)),
                    })
                    .collect(),
                checkpoints: [3, 7, 10]
                    .iter()
                    .map(|s| self.note(&self.raws, *s))
                    .collect(),
                consistency: vec![
                    (3, 7, consistency_proof(3, 7, &t).unwrap()),
                    (7, 10, consistency_proof(7, 10, &t).unwrap()),
                ],
            }
        }
    }

    #[test]
    fn clean_journal_verifies_with_and_without_trusted() {
        let log = Log::new(12);
        let ev = log.evidence();
        let report = verify(&ev, &log.signer.verifier(), None).unwrap();
        assert_eq!(
            (
                report.size,
                report.checkpoints,
                report.unsigned_tail,
                report.consistency_proofs
            ),
            (10, 3, 2, 2)
        );
        let trusted = log.note(&log.raws, 3);
        assert_eq!(
            verify(&ev, &log.signer.verifier(), Some(&trusted))
                .unwrap()
                .trusted_size,
            Some(3)
        );
    }

    #[test]
    fn altered_entry_is_named() {
        let log = Log::new(12);
        let mut ev = log.evidence();
        ev.entries[5].raw = entry(99);
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::EntryAltered { seq: 5 })
        );
        // With its recorded leaf hash rewritten too, the signed roots catch it.
        ev.entries[5].recorded_leaf_hash = Some(leaf_hash(&ev.entries[5].raw));
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::RootMismatch {
                size: 7,
                first: 3,
                last: 6
            })
        );
    }

    #[test]
    fn reordered_deleted_and_non_canonical_entries_fail() {
        let log = Log::new(12);
        let mut ev = log.evidence();
        ev.entries.swap(1, 2);
        ev.entries[1].seq = 1;
        ev.entries[2].seq = 2;
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::RootMismatch {
                size: 3,
                first: 0,
                last: 2
            })
        );
        let mut ev = log.evidence();
        ev.entries.remove(4);
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::EntryMissing { seq: 4, found: 5 })
        );
        let mut ev = log.evidence();
        let text = String::from_utf8(ev.entries[0].raw.clone())
            .unwrap()
            .replacen(":", ": ", 1);
        ev.entries[0].raw = text.into_bytes();
        ev.entries[0].recorded_leaf_hash = None;
        assert!(matches!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::EntryNotCanonical { seq: 0, .. })
        ));
    }

    #[test]
    fn rollback_and_rewritten_history_fail_against_a_trusted_checkpoint() {
        let log = Log::new(12);
        let trusted = log.note(&log.raws, 10);
        // Rolled back to 7 entries, later checkpoints deleted.
        let mut ev = log.evidence();
        ev.entries.truncate(7);
        ev.checkpoints.truncate(2);
        ev.consistency.truncate(1);
        assert!(
            verify(&ev, &log.signer.verifier(), None).is_ok(),
            "self-consistent on its own"
        );
        assert_eq!(
            verify(&ev, &log.signer.verifier(), Some(&trusted)),
            Err(Failure::RolledBack {
                trusted: 10,
                size: 7
            })
        );
        // A different history of the same length, signed with the stolen key.
        let mut other = log.raws.clone();
        other[8] = entry(1000);
        let fork = Log {
            signer: NoteSigner::new("test.invalid/journal", &[1; 32]).unwrap(),
            raws: other,
        };
        let ev = fork.evidence();
        assert!(verify(&ev, &log.signer.verifier(), None).is_ok());
        assert_eq!(
            verify(&ev, &log.signer.verifier(), Some(&trusted)),
            Err(Failure::HistoryRewritten { size: 10 })
        );
    }

    #[test]
    fn forged_checkpoints_and_proofs_fail() {
        let log = Log::new(12);
        let mut ev = log.evidence();
        let rogue = NoteSigner::new("test.invalid/journal", &[2; 32]).unwrap();
        ev.checkpoints[1] = Checkpoint::new("test.invalid/journal", 7, [0; 32])
            .sign(&rogue)
            .unwrap();
        assert!(matches!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::BadCheckpoint { index: 1, .. })
        ));
        let mut ev = log.evidence();
        ev.consistency[0].2[0][0] ^= 1;
        assert!(matches!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::BadConsistencyProof { from: 3, to: 7, .. })
        ));
        let mut ev = log.evidence();
        ev.checkpoints.clear();
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::NoCheckpoint)
        );
        let mut ev = log.evidence();
        ev.entries.truncate(9);
        assert_eq!(
            verify(&ev, &log.signer.verifier(), None),
            Err(Failure::EntriesTruncated { size: 10, have: 9 })
        );
        assert!(matches!(
            verify(&log.evidence(), &log.signer.verifier(), Some("garbage")),
            Err(Failure::BadTrusted { .. })
        ));
    }

    #[test]
    fn bundle_round_trip() {
        let log = Log::new(12);
        let ev = log.evidence();
        let files = ev.to_bundle_files(&log.signer.verifier_key());
        let (back, vkey) = Evidence::from_bundle_files(&files).unwrap();
        assert_eq!(vkey, log.signer.verifier_key());
        assert_eq!(back.entries, ev.entries);
        assert_eq!(back.checkpoints.len(), 3);
        assert!(verify(&back, &NoteVerifier::from_vkey(&vkey).unwrap(), None).is_ok());
        let mut broken = files.clone();
        broken.insert(format!("{BUNDLE_DIR}/entries.jsonl"), b"{not json".to_vec());
        assert!(Evidence::from_bundle_files(&broken).is_err());
    }
}
