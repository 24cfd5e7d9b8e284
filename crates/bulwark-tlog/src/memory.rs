//! [`MemoryTree`]: an in-memory log that keeps every perfect-subtree node,
//! for tests, tools and small logs.

use crate::{CompactRange, Error, Hash, NodeSource, Result, root_at};

/// An append-only Merkle tree held in memory: every node
/// [`CompactRange::append`] completes is kept, so it serves proofs for any
/// past size through [`NodeSource`]. Memory is about two hashes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the perfect node `(l, i)`.
    levels: Vec<Vec<Hash>>,
    range: CompactRange,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash; returns its index.
    pub fn append(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.range.size();
        for (level, _, hash) in self.range.append(leaf_hash) {
            let level = usize::from(level);
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
        }
        index
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The current root hash.
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// The root hash of the tree's first `size` leaves; a size beyond the
    /// tree fails with [`Error::MissingNode`].
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        root_at(size, self)
    }

    /// The right edge of the current tree.
    pub fn compact_range(&self) -> &CompactRange {
        &self.range
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(Error::MissingNode { level, index })
    }
}
