//! Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2, RFC 9162
//! §2.1.3–2.1.4): generation from stored perfect-subtree nodes, and the
//! RFC 9162 verification algorithms.
//!
//! Proof generation walks the path from a node to the root. Below the level
//! where the paths to the target leaf and to the last leaf of the tree fork,
//! every sibling is a perfect subtree, looked up as is. At the fork, the
//! sibling is the (possibly imperfect) subtree over the rest of the tree,
//! rebuilt from at most log₂(n) perfect nodes. Above the fork only left
//! siblings exist, and they are perfect. So a proof costs O(log n) lookups
//! and at most O(log n) hashes.

use crate::{Error, Hash, Result, empty_root, node_hash};

/// Where proofs get their nodes: the hash of the *perfect* subtree at
/// `(level, index)`, i.e. the root over leaves `[index·2^level,
/// (index+1)·2^level)`. Level 0 holds the leaf hashes. Proof functions only
/// ask for nodes that are complete in the tree size they were given.
///
/// A store implements this over its node table; [`crate::MemoryTree`] is an
/// in-memory implementation. Return [`Error::MissingNode`] for a node you do
/// not have, or [`Error::NodeSource`] for a storage failure.
pub trait NodeSource {
    /// The hash of the perfect subtree at `(level, index)`.
    fn node(&self, level: u8, index: u64) -> Result<Hash>;
}

/// A map of prefetched nodes is a [`NodeSource`]: fetch what
/// [`nodes_needed`] lists from storage, then run the proof on the map.
impl NodeSource for std::collections::HashMap<(u8, u64), Hash> {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        self.get(&(level, index))
            .copied()
            .ok_or(Error::MissingNode { level, index })
    }
}

/// The nodes `f` (a proof or tile computation) will ask its source for,
/// sorted and deduplicated. The algorithms here ask for the same nodes
/// whatever the hashes are, so a dry run against a recording source tells
/// an asynchronous store exactly what to fetch, in one batch.
pub fn nodes_needed<T>(f: impl FnOnce(&dyn NodeSource) -> Result<T>) -> Result<Vec<(u8, u64)>> {
    struct Recorder(std::sync::Mutex<Vec<(u8, u64)>>);
    impl NodeSource for Recorder {
        fn node(&self, level: u8, index: u64) -> Result<Hash> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((level, index));
            Ok([0; 32])
        }
    }
    let rec = Recorder(std::sync::Mutex::new(Vec::new()));
    f(&rec)?;
    let mut keys = rec
        .0
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        (**self).node(level, index)
    }
}

/// The perfect subtrees covering `[start, end)`, largest first, as
/// `(level, index)`. `start` must be a multiple of the largest power of two
/// not above `end - start` (true for `start == 0`, and for the right-hand
/// sibling ranges proofs need).
pub(crate) fn perfect_subtrees(start: u64, end: u64) -> impl Iterator<Item = (u8, u64)> {
    let mut remaining = end.saturating_sub(start);
    let mut pos = start;
    std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let level = 63 - remaining.leading_zeros(); // highest set bit
        let node = (level as u8, pos >> level);
        remaining &= !(1 << level);
        pos += 1 << level;
        Some(node)
    })
}

/// The Merkle Tree Hash of leaves `[start, end)`, from perfect nodes (see
/// [`perfect_subtrees`] for the alignment requirement).
fn range_root<S: NodeSource + ?Sized>(start: u64, end: u64, src: &S) -> Result<Hash> {
    let nodes = perfect_subtrees(start, end)
        .map(|(level, index)| src.node(level, index))
        .collect::<Result<Vec<_>>>()?;
    let mut from_right = nodes.iter().rev();
    Ok(match from_right.next() {
        None => empty_root(),
        Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
    })
}

/// The root hash of the tree's first `size` leaves, from O(log n) stored
/// nodes (one per set bit of `size`). `size == 0` gives [`empty_root`].
pub fn root_at<S: NodeSource + ?Sized>(size: u64, src: &S) -> Result<Hash> {
    range_root(0, size, src)
}

/// Level at which the root paths of leaves `a` and `b` meet: the bit length
/// of `a ^ b` (0 when `a == b`).
fn fork_level(a: u64, b: u64) -> u32 {
    64 - (a ^ b).leading_zeros()
}

/// Appends to `out` the audit path of leaf `leaf` in a tree of `size`
/// leaves, bottom-up, skipping levels below `from_level` (which the caller
/// proves by other means).
fn audit_path<S: NodeSource + ?Sized>(
    leaf: u64,
    from_level: u32,
    size: u64,
    src: &S,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let fork = fork_level(leaf, size - 1);
    // Below the fork: siblings are perfect, except the one just below the
    // fork, which spans from its start to the end of the tree.
    for level in from_level..fork {
        let sibling = (leaf >> level) ^ 1;
        let hash = if level + 1 == fork {
            range_root(sibling << level, size, src)?
        } else {
            src.node(level as u8, sibling)?
        };
        out.push(hash);
    }
    // Above the fork the node is on the tree's right edge: it has a left
    // sibling exactly where its index is odd, and no right sibling.
    let mut level = fork.max(from_level);
    while level < 64 && (leaf >> level) != 0 {
        let index = leaf >> level;
        if index & 1 == 1 {
            out.push(src.node(level as u8, index - 1)?);
        }
        level += 1;
    }
    Ok(())
}

/// Number of hashes in the audit path of `leaf` in a tree of `size`, from
/// level `from_level` up.
fn audit_path_len(leaf: u64, from_level: u32, size: u64) -> usize {
    let fork = fork_level(leaf, size - 1);
    let inner = fork.saturating_sub(from_level);
    let border = leaf
        .checked_shr(fork.max(from_level))
        .unwrap_or(0)
        .count_ones();
    (inner + border) as usize
}

/// The inclusion proof (RFC 9162 §2.1.3.1 `PATH(m, D[n])`) of leaf `index`
/// in the tree of the first `size` leaves: sibling hashes, bottom-up.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    index: u64,
    size: u64,
    src: &S,
) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(audit_path_len(index, 0, size));
    audit_path(index, 0, size, src, &mut proof)?;
    Ok(proof)
}

/// The consistency proof (RFC 9162 §2.1.4.1 `PROOF(m, D[n])`) between the
/// trees of the first `size1` and `size2` leaves.
///
/// For `size1 == size2`, and for `size1 == 0` (the empty tree is a prefix
/// of every tree), the proof is empty; [`verify_consistency`] accepts those.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    size1: u64,
    size2: u64,
    src: &S,
) -> Result<Vec<Hash>> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    let mut proof = Vec::with_capacity(consistency_len(size1, size2));
    // The old tree's rightmost perfect subtree is the "seed": unless it is
    // the whole old tree (size1 a power of two, whose root the verifier
    // already has), the proof starts with it. The rest is that subtree's
    // audit path in the new tree.
    let level = size1.trailing_zeros();
    if !size1.is_power_of_two() {
        proof.push(src.node(level as u8, (size1 >> level) - 1)?);
    }
    audit_path(size1 - 1, level, size2, src, &mut proof)?;
    Ok(proof)
}

/// Number of hashes in a consistency proof, for `0 < size1 < size2`.
fn consistency_len(size1: u64, size2: u64) -> usize {
    let level = size1.trailing_zeros();
    let seed = usize::from(!size1.is_power_of_two());
    seed + audit_path_len(size1 - 1, level, size2)
}

/// Verifies an inclusion proof per RFC 9162 §2.1.3.2: `leaf_hash` is leaf
/// `index` of the tree of `size` leaves whose root is `root`.
///
/// Fails with [`Error::IndexOutOfRange`] if `index >= size`,
/// [`Error::ProofLength`] if the proof has the wrong number of hashes, and
/// [`Error::RootMismatch`] if it leads elsewhere.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let want = audit_path_len(index, 0, size);
    if proof.len() != want {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    // RFC 9162 §2.1.3.2, steps 2-5.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(Error::ProofLength {
                got: proof.len(),
                want,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    if r != *root {
        return Err(Error::RootMismatch { which: "root" });
    }
    Ok(())
}

/// Verifies a consistency proof per RFC 9162 §2.1.4.2: the tree of `size2`
/// leaves with root `root2` extends the tree of `size1` leaves with root
/// `root1`.
///
/// The RFC algorithm covers `0 < size1 < size2`. Outside it:
/// - `size1 > size2` fails with [`Error::SizeOrder`];
/// - `size1 == size2` needs an empty proof and `root1 == root2`;
/// - `size1 == 0` needs an empty proof and `root1` equal to [`empty_root`]
///   (the empty tree is a prefix of every tree).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<()> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        if !proof.is_empty() {
            return Err(Error::ProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            return Err(Error::RootMismatch {
                which: "first root",
            });
        }
        if size1 == size2 && root1 != root2 {
            return Err(Error::RootMismatch {
                which: "second root",
            });
        }
        return Ok(());
    }
    let want = consistency_len(size1, size2);
    if proof.len() != want {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    // Step 2: a power-of-two first tree is its own seed.
    let (seed, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        match proof.split_first() {
            Some((seed, rest)) => (seed, rest),
            None => return Err(Error::ProofLength { got: 0, want }),
        }
    };
    // Steps 3-4.
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Steps 5-6.
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return Err(Error::ProofLength {
                got: proof.len(),
                want,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    if fr != *root1 {
        return Err(Error::RootMismatch {
            which: "first root",
        });
    }
    if sr != *root2 {
        return Err(Error::RootMismatch {
            which: "second root",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dry_run_then_prefetched_map_gives_the_same_proof() {
        let mut tree = crate::MemoryTree::new();
        for i in 0..37u32 {
            tree.append(crate::leaf_hash(&i.to_be_bytes()));
        }
        let keys = super::nodes_needed(|src| super::inclusion_proof(11, 37, src)).unwrap();
        let map: std::collections::HashMap<(u8, u64), crate::Hash> = keys
            .iter()
            .map(|&(l, i)| ((l, i), super::NodeSource::node(&tree, l, i).unwrap()))
            .collect();
        assert_eq!(
            super::inclusion_proof(11, 37, &map).unwrap(),
            super::inclusion_proof(11, 37, &tree).unwrap()
        );
        assert!(matches!(
            super::inclusion_proof(11, 37, &std::collections::HashMap::new()),
            Err(crate::Error::MissingNode { .. })
        ));
    }

    use super::*;

    #[test]
    fn perfect_subtrees_decompose_ranges() {
        let got: Vec<_> = perfect_subtrees(0, 13).collect();
        assert_eq!(got, vec![(3, 0), (2, 2), (0, 12)]);
        let got: Vec<_> = perfect_subtrees(8, 11).collect();
        assert_eq!(got, vec![(1, 4), (0, 10)]);
        assert_eq!(perfect_subtrees(5, 5).count(), 0);
        assert_eq!(perfect_subtrees(0, u64::MAX).count(), 64);
    }

    #[test]
    fn proof_lengths_match_the_rfc_for_small_trees() {
        // Size 8, any leaf: 3 hashes. Size 7, leaf 6: 2 (no level-0 sibling).
        assert_eq!(audit_path_len(0, 0, 8), 3);
        assert_eq!(audit_path_len(6, 0, 7), 2);
        assert_eq!(audit_path_len(0, 0, 1), 0);
        assert_eq!(consistency_len(4, 8), 1);
        assert_eq!(consistency_len(6, 8), 3);
        assert_eq!(consistency_len(1, 2), 1);
    }
}
