//! [`CompactRange`]: the right edge of a growing Merkle tree, O(log n) hashes.
//!
//! A tree of size `n` is the concatenation of one perfect subtree per set bit
//! of `n`, largest (leftmost) first. Appending a leaf merges equal-sized
//! subtrees from the right, like incrementing a binary counter; each merge
//! completes one interior node, which [`CompactRange::append`] reports so a
//! store can keep it for proofs.

use crate::proof::{NodeSource, perfect_subtrees};
use crate::{Error, Hash, Result, empty_root, node_hash};

/// The largest tree size [`CompactRange::from_parts`] and
/// [`CompactRange::from_source`] accept: 2^63 leaves. Sizes above it cannot
/// be reached by appending in practice, and refusing them keeps the leaf
/// counter clear of overflow.
pub const MAX_TREE_SIZE: u64 = 1 << 63;

/// The perfect-subtree roots along the right edge of a tree: everything
/// needed to append to it and compute its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// One hash per set bit of `size`, largest subtree first.
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its size and right-edge hashes (as returned by
    /// [`CompactRange::hashes`]), e.g. after loading them from storage.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self> {
        if size > MAX_TREE_SIZE {
            return Err(Error::TreeTooLarge { size });
        }
        let want = size.count_ones() as usize;
        if hashes.len() != want {
            return Err(Error::CompactRangeLength {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(Self { size, hashes })
    }

    /// Rebuilds the range of a tree of `size` leaves from stored nodes:
    /// one lookup per set bit of `size`.
    pub fn from_source<S: NodeSource + ?Sized>(size: u64, src: &S) -> Result<Self> {
        if size > MAX_TREE_SIZE {
            return Err(Error::TreeTooLarge { size });
        }
        let hashes = perfect_subtrees(0, size)
            .map(|(level, index)| src.node(level, index))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { size, hashes })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right-edge hashes, largest subtree first; with [`Self::size`]
    /// this is everything [`Self::from_parts`] needs.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The right edge as `(level, index, hash)` nodes, largest first.
    pub fn nodes(&self) -> Vec<(u8, u64, Hash)> {
        perfect_subtrees(0, self.size)
            .zip(&self.hashes)
            .map(|((level, index), hash)| (level, index, *hash))
            .collect()
    }

    /// Appends a leaf hash. Returns every node this completes as
    /// `(level, index, hash)`, bottom-up: first the leaf itself at
    /// `(0, old size)`, then one interior node per merge. Storing all of them
    /// is what lets [`crate::inclusion_proof`] and
    /// [`crate::consistency_proof`] work from lookups alone.
    ///
    /// # Panics
    ///
    /// If the tree already has `u64::MAX` leaves, which takes 2^63 appends
    /// past [`MAX_TREE_SIZE`]: not reachable in practice.
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(u8, u64, Hash)> {
        let new_size = self.size.checked_add(1).expect("merkle tree size overflow");
        let mut level = 0u8;
        let mut index = self.size;
        let mut carry = leaf_hash;
        let mut done = vec![(level, index, carry)];
        // Each set low bit of the old size is a perfect subtree of that
        // level waiting at the end of the edge for a right sibling.
        while (self.size >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break; // unreachable: one hash per set bit
            };
            carry = node_hash(&left, &carry);
            level += 1;
            index >>= 1;
            done.push((level, index, carry));
        }
        self.hashes.push(carry);
        self.size = new_size;
        done
    }

    /// The Merkle Tree Hash of the tree.
    pub fn root(&self) -> Hash {
        let mut from_right = self.hashes.iter().rev();
        match from_right.next() {
            None => empty_root(),
            Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryTree, leaf_hash, root_from_leaf_hashes};

    #[test]
    fn append_tracks_reference_root_and_reports_nodes() {
        let mut range = CompactRange::new();
        let mut leaves = Vec::new();
        // levels[l][i] = every node reported by append.
        let mut levels: Vec<Vec<Hash>> = Vec::new();
        assert_eq!(range.root(), empty_root());
        for i in 0..300u64 {
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            let done = range.append(leaf);
            assert_eq!(done[0], (0, i, leaf));
            // One node per trailing one bit of the old size, plus the leaf.
            assert_eq!(done.len(), 1 + i.trailing_ones() as usize);
            for (level, index, hash) in done {
                let level = usize::from(level);
                if levels.len() <= level {
                    levels.push(Vec::new());
                }
                assert_eq!(levels[level].len() as u64, index, "nodes arrive in order");
                // Every reported node is the root of its perfect subtree.
                let lo = (index << level) as usize;
                let hi = ((index + 1) << level) as usize;
                assert_eq!(hash, root_from_leaf_hashes(&leaves[lo..hi]));
                levels[level].push(hash);
            }
            assert_eq!(range.size(), i + 1);
            assert_eq!(range.root(), root_from_leaf_hashes(&leaves));
            assert_eq!(range.hashes().len(), range.size().count_ones() as usize);
            let back = CompactRange::from_parts(range.size(), range.hashes().to_vec()).unwrap();
            assert_eq!(back, range);
        }
    }

    #[test]
    fn from_source_matches_appended_range() {
        let mut tree = MemoryTree::new();
        let mut range = CompactRange::new();
        for i in 0..100u64 {
            let leaf = leaf_hash(&i.to_le_bytes());
            tree.append(leaf);
            range.append(leaf);
            let rebuilt = CompactRange::from_source(range.size(), &tree).unwrap();
            assert_eq!(rebuilt, range);
            let nodes = rebuilt.nodes();
            assert_eq!(nodes.len(), rebuilt.hashes().len());
        }
        let r = CompactRange::from_source(6, &tree).unwrap();
        assert_eq!(
            r.nodes()
                .iter()
                .map(|(l, i, _)| (*l, *i))
                .collect::<Vec<_>>(),
            vec![(2, 0), (1, 2)]
        );
    }

    #[test]
    fn from_parts_rejects_bad_input() {
        assert!(matches!(
            CompactRange::from_parts(3, vec![[0; 32]]),
            Err(Error::CompactRangeLength {
                size: 3,
                got: 1,
                want: 2
            })
        ));
        assert!(matches!(
            CompactRange::from_parts(0, vec![[0; 32]]),
            Err(Error::CompactRangeLength { .. })
        ));
        assert!(matches!(
            CompactRange::from_parts(MAX_TREE_SIZE + 1, vec![[0; 32]; 2]),
            Err(Error::TreeTooLarge { .. })
        ));
        let tree = MemoryTree::new();
        assert!(matches!(
            CompactRange::from_source(1, &tree),
            Err(Error::MissingNode { level: 0, index: 0 })
        ));
        assert!(matches!(
            CompactRange::from_source(u64::MAX, &tree),
            Err(Error::TreeTooLarge { .. })
        ));
    }

    #[test]
    fn append_at_max_size_completes_the_top_node() {
        // A range of 2^63 - 1 leaves has 63 hashes; one append merges them
        // all into the level-63 root.
        let size = MAX_TREE_SIZE - 1;
        let mut range = CompactRange::from_parts(size, vec![[1; 32]; 63]).unwrap();
        let done = range.append([2; 32]);
        assert_eq!(done.len(), 64);
        assert_eq!(done.last().map(|n| (n.0, n.1)), Some((63, 0)));
        assert_eq!(range.size(), MAX_TREE_SIZE);
        assert_eq!(range.hashes().len(), 1);
    }
}
