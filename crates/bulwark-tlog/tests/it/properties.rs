//! Exhaustive properties over small trees (sizes 1..=70): generated proofs
//! equal the RFC 6962 reference definitions and verify, and corrupted
//! proofs, roots, leaves, indices and sizes are rejected. Also checks that
//! proof generation stays O(log n) lookups on a 10M-entry tree.

use std::cell::Cell;

use bulwark_tlog::{
    CompactRange, Error, Hash, MemoryTree, NodeSource, consistency_proof, inclusion_proof,
    leaf_hash, node_hash, root_at, root_from_leaf_hashes, verify_consistency, verify_inclusion,
};

const MAX: usize = 70;
/// Sizes up to which every single bit flip is tried.
const FLIP_MAX: usize = 17;

fn largest_power_of_two_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1.1 `PATH(m, D[n])`, straight from the definition.
fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = largest_power_of_two_below(d.len());
    let (mut path, sibling) = if m < k {
        (ref_path(m, &d[..k]), root_from_leaf_hashes(&d[k..]))
    } else {
        (ref_path(m - k, &d[k..]), root_from_leaf_hashes(&d[..k]))
    };
    path.push(sibling);
    path
}

/// RFC 6962 §2.1.2 `SUBPROOF(m, D[n], b)`, straight from the definition.
fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b {
            Vec::new()
        } else {
            vec![root_from_leaf_hashes(d)]
        };
    }
    let k = largest_power_of_two_below(d.len());
    let (mut proof, extra) = if m <= k {
        (ref_subproof(m, &d[..k], b), root_from_leaf_hashes(&d[k..]))
    } else {
        (
            ref_subproof(m - k, &d[k..], false),
            root_from_leaf_hashes(&d[..k]),
        )
    };
    proof.push(extra);
    proof
}

struct Fixture {
    leaves: Vec<Hash>,
    tree: MemoryTree,
    /// `roots[n]`: root of the first `n` leaves.
    roots: Vec<Hash>,
}

fn fixture() -> Fixture {
    let leaves: Vec<Hash> = (0..MAX as u32)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut tree = MemoryTree::new();
    for l in &leaves {
        tree.append(*l);
    }
    let roots = (0..=MAX)
        .map(|n| root_from_leaf_hashes(&leaves[..n]))
        .collect();
    Fixture {
        leaves,
        tree,
        roots,
    }
}

fn flip_each_bit(h: &Hash, mut check: impl FnMut(&Hash)) {
    for bit in 0..256 {
        let mut bad = *h;
        bad[bit / 8] ^= 1 << (bit % 8);
        check(&bad);
    }
}

#[test]
fn stored_roots_match_reference() {
    let f = fixture();
    for n in 0..=MAX {
        assert_eq!(root_at(n as u64, &f.tree).unwrap(), f.roots[n], "size {n}");
        assert_eq!(
            CompactRange::from_source(n as u64, &f.tree).unwrap().root(),
            f.roots[n]
        );
    }
}

#[test]
fn inclusion_proofs_match_reference_and_verify() {
    let f = fixture();
    let mut checked = 0;
    for n in 1..=MAX {
        let size = n as u64;
        for m in 0..n {
            let index = m as u64;
            let proof = inclusion_proof(index, size, &f.tree).unwrap();
            assert_eq!(proof, ref_path(m, &f.leaves[..n]), "PATH({m}, D[{n}])");
            verify_inclusion(&f.leaves[m], index, size, &proof, &f.roots[n]).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, MAX * (MAX + 1) / 2);
}

#[test]
fn consistency_proofs_match_reference_and_verify() {
    let f = fixture();
    let mut checked = 0;
    for n in 1..=MAX {
        for m in 0..=n {
            let proof = consistency_proof(m as u64, n as u64, &f.tree).unwrap();
            let want = if m == 0 || m == n {
                Vec::new()
            } else {
                ref_subproof(m, &f.leaves[..n], true)
            };
            assert_eq!(proof, want, "PROOF({m}, D[{n}])");
            verify_consistency(m as u64, n as u64, &proof, &f.roots[m], &f.roots[n]).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, (2..=MAX + 1).sum::<usize>());
}

#[test]
fn inclusion_rejects_wrong_index_size_leaf_and_length() {
    let f = fixture();
    for n in 1..=MAX {
        let size = n as u64;
        for m in 0..n {
            let (index, leaf, root) = (m as u64, &f.leaves[m], &f.roots[n]);
            let proof = inclusion_proof(index, size, &f.tree).unwrap();
            for j in 0..n as u64 {
                if j != index {
                    assert!(verify_inclusion(leaf, j, size, &proof, root).is_err());
                    assert!(
                        verify_inclusion(&f.leaves[j as usize], index, size, &proof, root).is_err()
                    );
                }
            }
            // The proof, paired with any other tree (its size and its root).
            for other in m + 1..=MAX {
                if other != n {
                    let r = &f.roots[other];
                    assert!(verify_inclusion(leaf, index, other as u64, &proof, r).is_err());
                }
            }
            assert!(matches!(
                verify_inclusion(leaf, size, size, &proof, root),
                Err(Error::IndexOutOfRange { .. })
            ));
            assert!(verify_inclusion(leaf, index + size, size, &proof, root).is_err());
            // One hash short or long, anywhere.
            let extra = [0x5a; 32];
            let mut longer = proof.clone();
            longer.push(extra);
            assert!(verify_inclusion(leaf, index, size, &longer, root).is_err());
            let mut longer = proof.clone();
            longer.insert(0, extra);
            assert!(verify_inclusion(leaf, index, size, &longer, root).is_err());
            for i in 0..proof.len() {
                let mut shorter = proof.clone();
                shorter.remove(i);
                assert!(matches!(
                    verify_inclusion(leaf, index, size, &shorter, root),
                    Err(Error::ProofLength { .. })
                ));
            }
        }
    }
}

#[test]
fn consistency_rejects_wrong_sizes_roots_and_length() {
    let f = fixture();
    for n in 1..=MAX {
        for m in 1..n {
            let (s1, s2) = (m as u64, n as u64);
            let (r1, r2) = (&f.roots[m], &f.roots[n]);
            let proof = consistency_proof(s1, s2, &f.tree).unwrap();
            // The proof, paired with other tree sizes and their real roots.
            for other in 1..=MAX {
                if other != m && other <= n {
                    let ok = verify_consistency(other as u64, s2, &proof, &f.roots[other], r2);
                    assert!(ok.is_err(), "({m}->{n}) as ({other}->{n})");
                }
                if other != n && other >= m {
                    let ok = verify_consistency(s1, other as u64, &proof, r1, &f.roots[other]);
                    assert!(ok.is_err(), "({m}->{n}) as ({m}->{other})");
                }
            }
            assert!(matches!(
                verify_consistency(s2, s1, &proof, r2, r1),
                Err(Error::SizeOrder { .. })
            ));
            assert!(verify_consistency(s1, s2, &proof, r2, r1).is_err());
            assert!(verify_consistency(s1, s2, &[], r1, r2).is_err());
            let extra = [0xa5; 32];
            for at in [0, proof.len()] {
                let mut longer = proof.clone();
                longer.insert(at, extra);
                assert!(verify_consistency(s1, s2, &longer, r1, r2).is_err());
            }
            for i in 0..proof.len() {
                let mut shorter = proof.clone();
                shorter.remove(i);
                assert!(verify_consistency(s1, s2, &shorter, r1, r2).is_err());
            }
        }
    }
}

#[test]
fn every_bit_flip_in_inclusion_inputs_fails() {
    let f = fixture();
    for n in 1..=FLIP_MAX {
        let size = n as u64;
        for m in 0..n {
            let (index, leaf, root) = (m as u64, &f.leaves[m], &f.roots[n]);
            let proof = inclusion_proof(index, size, &f.tree).unwrap();
            flip_each_bit(leaf, |bad| {
                assert!(verify_inclusion(bad, index, size, &proof, root).is_err());
            });
            flip_each_bit(root, |bad| {
                assert!(verify_inclusion(leaf, index, size, &proof, bad).is_err());
            });
            for i in 0..proof.len() {
                flip_each_bit(&proof[i], |bad| {
                    let mut p = proof.clone();
                    p[i] = *bad;
                    assert!(verify_inclusion(leaf, index, size, &p, root).is_err());
                });
            }
            // And every bit of the index that stays in range.
            for bit in 0..64 {
                let j = index ^ (1 << bit);
                assert!(verify_inclusion(leaf, j, size, &proof, root).is_err());
            }
        }
    }
}

#[test]
fn every_bit_flip_in_consistency_inputs_fails() {
    let f = fixture();
    for n in 1..=FLIP_MAX {
        for m in 1..n {
            let (s1, s2) = (m as u64, n as u64);
            let (r1, r2) = (&f.roots[m], &f.roots[n]);
            let proof = consistency_proof(s1, s2, &f.tree).unwrap();
            flip_each_bit(r1, |bad| {
                assert!(verify_consistency(s1, s2, &proof, bad, r2).is_err());
            });
            flip_each_bit(r2, |bad| {
                assert!(verify_consistency(s1, s2, &proof, r1, bad).is_err());
            });
            for i in 0..proof.len() {
                flip_each_bit(&proof[i], |bad| {
                    let mut p = proof.clone();
                    p[i] = *bad;
                    assert!(verify_consistency(s1, s2, &p, r1, r2).is_err());
                });
            }
        }
    }
}

/// Counts lookups; hashes are made up (cheap, distinct), so proofs built
/// from it are only good for counting.
struct CountingSource {
    size: u64,
    lookups: Cell<usize>,
}

impl NodeSource for CountingSource {
    fn node(&self, level: u8, index: u64) -> bulwark_tlog::Result<Hash> {
        assert!(
            level < 64 && (index + 1) << level <= self.size,
            "imperfect node asked for"
        );
        self.lookups.set(self.lookups.get() + 1);
        let mut h = [0u8; 32];
        h[0] = level;
        h[1..9].copy_from_slice(&index.to_be_bytes());
        Ok(h)
    }
}

#[test]
fn proofs_on_a_ten_million_entry_tree_take_logarithmic_lookups() {
    let size = 10_000_000u64;
    let src = CountingSource {
        size,
        lookups: Cell::new(0),
    };
    let depth = 64 - (size - 1).leading_zeros() as usize; // 24
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut indices = vec![0, 1, size / 2, size - 2, size - 1];
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        indices.push(x % size);
    }
    for &i in &indices {
        src.lookups.set(0);
        let proof = inclusion_proof(i, size, &src).unwrap();
        assert!(proof.len() <= depth);
        assert!(
            src.lookups.get() <= 3 * depth,
            "index {i}: {} lookups",
            src.lookups.get()
        );
        src.lookups.set(0);
        let proof = consistency_proof(i + 1, size, &src).unwrap();
        assert!(proof.len() <= depth + 1);
        assert!(
            src.lookups.get() <= 3 * depth + 1,
            "size1 {}: {}",
            i + 1,
            src.lookups.get()
        );
    }
}

#[test]
fn large_tree_proofs_verify() {
    // 2^17 + a ragged tail exercises deep right edges.
    let n = (1u64 << 17) + 1234;
    let mut tree = MemoryTree::new();
    let mut range = CompactRange::new();
    for i in 0..n {
        let l = leaf_hash(&i.to_le_bytes());
        tree.append(l);
        range.append(l);
    }
    let root = range.root();
    assert_eq!(tree.root(), root);
    for &i in &[0, 1, 4095, 65_536, 131_071, 131_072, n - 2, n - 1] {
        let proof = inclusion_proof(i, n, &tree).unwrap();
        verify_inclusion(&leaf_hash(&i.to_le_bytes()), i, n, &proof, &root).unwrap();
        let old = tree.root_at(i + 1).unwrap();
        let proof = consistency_proof(i + 1, n, &tree).unwrap();
        verify_consistency(i + 1, n, &proof, &old, &root).unwrap();
    }
    // Sanity: the two top-level halves combine into the root.
    let left = tree.node(17, 0).unwrap();
    let right = root_at(
        1234,
        &Offset {
            inner: &tree,
            by: 1 << 17,
        },
    )
    .unwrap();
    assert_eq!(node_hash(&left, &right), root);
}

/// A view of `inner` shifted right by `by` leaves (a power of two), to
/// compute the root of a right-hand subtree.
struct Offset<'a> {
    inner: &'a MemoryTree,
    by: u64,
}

impl NodeSource for Offset<'_> {
    fn node(&self, level: u8, index: u64) -> bulwark_tlog::Result<Hash> {
        self.inner.node(level, index + (self.by >> level))
    }
}
