//! Published RFC 6962 test vectors (the 8-leaf reference tree used by
//! Certificate Transparency implementations) and data-driven edge cases,
//! all read from `test_data/merkle/`.

use crate::common::{ReferenceTree, hex32, vector_lines};
use bulwark_tlog::{
    CompactRange, Error, Hash, MemoryTree, NodeSource, consistency_proof, empty_root,
    inclusion_proof, leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion,
};

fn reference_memory_tree(t: &ReferenceTree) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for leaf in &t.leaves {
        tree.append(leaf_hash(leaf));
    }
    tree
}

fn parse_proof(fields: &[String]) -> Vec<Hash> {
    if fields == ["-"] {
        Vec::new()
    } else {
        fields.iter().map(|h| hex32(h)).collect()
    }
}

#[test]
fn reference_tree_nodes_and_roots() {
    let t = ReferenceTree::load();
    let hashes: Vec<Hash> = t.leaves.iter().map(|l| leaf_hash(l)).collect();
    let tree = reference_memory_tree(&t);
    for (&(level, index), want) in &t.nodes {
        assert_eq!(
            tree.node(level, index).unwrap(),
            *want,
            "node ({level}, {index})"
        );
    }
    let mut range = CompactRange::new();
    assert_eq!(t.roots[0], empty_root());
    assert_eq!(range.root(), t.roots[0]);
    for (size, want) in t.roots.iter().enumerate() {
        assert_eq!(
            root_from_leaf_hashes(&hashes[..size]),
            *want,
            "reference root {size}"
        );
        assert_eq!(
            tree.root_at(size as u64).unwrap(),
            *want,
            "stored root {size}"
        );
        if size > 0 {
            range.append(hashes[size - 1]);
            assert_eq!(range.root(), *want, "compact root {size}");
        }
    }
}

#[test]
fn published_inclusion_proofs() {
    let t = ReferenceTree::load();
    let tree = reference_memory_tree(&t);
    let lines = vector_lines("merkle/inclusion.txt");
    assert_eq!(lines.len(), 5);
    for (line, f) in lines {
        let (index, size): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let want = parse_proof(&f[2..]);
        let leaf = leaf_hash(&t.leaves[index as usize]);
        let root = t.roots[size as usize];
        assert_eq!(
            inclusion_proof(index, size, &tree).unwrap(),
            want,
            "line {line}"
        );
        verify_inclusion(&leaf, index, size, &want, &root).unwrap();

        // The corruptions of transparency-dev/merkle cmd/proofgen, all of
        // which must fail.
        let bad = |i: u64, s: u64, l: &Hash, p: &[Hash], r: &Hash| {
            assert!(
                verify_inclusion(l, i, s, p, r).is_err(),
                "line {line}: ({i}, {s}) {p:?}"
            );
        };
        bad(index.wrapping_sub(1), size, &leaf, &want, &root);
        bad(index + 1, size, &leaf, &want, &root);
        bad(index ^ 2, size, &leaf, &want, &root);
        bad(index, size * 2, &leaf, &want, &root);
        bad(index, size / 2, &leaf, &want, &root);
        bad(index, size, &leaf_hash(b"WrongLeaf"), &want, &root);
        bad(index, size, &leaf, &want, &empty_root());
        bad(index, size, &leaf, &want, &t.token("X"));
        bad(
            index,
            size,
            &leaf,
            &[want.clone(), vec![[0; 32]]].concat(),
            &root,
        );
        bad(
            index,
            size,
            &leaf,
            &[want.clone(), vec![root]].concat(),
            &root,
        );
        bad(
            index,
            size,
            &leaf,
            &[vec![[0; 32]], want.clone()].concat(),
            &root,
        );
        bad(
            index,
            size,
            &leaf,
            &[vec![root], want.clone()].concat(),
            &root,
        );
        for i in 0..want.len() {
            let mut p = want.clone();
            p[i][0] ^= 8;
            bad(index, size, &leaf, &p, &root);
        }
        if !want.is_empty() {
            bad(index, size, &leaf, &want[..want.len() - 1], &root);
        }
    }
}

#[test]
fn published_consistency_proofs() {
    let t = ReferenceTree::load();
    let tree = reference_memory_tree(&t);
    let lines = vector_lines("merkle/consistency.txt");
    assert_eq!(lines.len(), 5);
    for (line, f) in lines {
        let (size1, size2): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let want = parse_proof(&f[2..]);
        let (root1, root2) = (t.roots[size1 as usize], t.roots[size2 as usize]);
        assert_eq!(
            consistency_proof(size1, size2, &tree).unwrap(),
            want,
            "line {line}"
        );
        verify_consistency(size1, size2, &want, &root1, &root2).unwrap();
        if size1 == size2 {
            continue; // covered by consistency_edges.txt
        }
        let bad = |s1: u64, s2: u64, p: &[Hash], r1: &Hash, r2: &Hash| {
            assert!(
                verify_consistency(s1, s2, p, r1, r2).is_err(),
                "line {line}: ({s1}, {s2}) {p:?}"
            );
        };
        bad(size1.wrapping_sub(1), size2, &want, &root1, &root2);
        bad(size1 + 1, size2, &want, &root1, &root2);
        bad(size1 ^ 2, size2, &want, &root1, &root2);
        bad(size1, size2 * 2, &want, &root1, &root2);
        bad(size1, size2 / 2, &want, &root1, &root2);
        bad(size1, size2, &want, &root2, &root1);
        bad(size1, size2, &want, &t.token("X"), &root2);
        bad(size1, size2, &want, &root1, &t.token("X"));
        bad(size1, size2, &want[..want.len() - 1], &root1, &root2);
        bad(size1, size2, &[], &root1, &root2);
        bad(
            size1,
            size2,
            &[want.clone(), vec![[0; 32]]].concat(),
            &root1,
            &root2,
        );
        bad(
            size1,
            size2,
            &[want.clone(), vec![root1]].concat(),
            &root1,
            &root2,
        );
        bad(
            size1,
            size2,
            &[want.clone(), vec![root2]].concat(),
            &root1,
            &root2,
        );
        bad(
            size1,
            size2,
            &[vec![[0; 32]], want.clone()].concat(),
            &root1,
            &root2,
        );
        bad(
            size1,
            size2,
            &[vec![root1], want.clone()].concat(),
            &root1,
            &root2,
        );
        for i in 0..want.len() {
            let mut p = want.clone();
            p[i][0] ^= 8;
            bad(size1, size2, &p, &root1, &root2);
        }
    }
}

fn expect_ok(kind: &str) -> bool {
    match kind {
        "ok" => true,
        "err" => false,
        other => panic!("bad expectation {other}"),
    }
}

#[test]
fn consistency_edge_cases() {
    let t = ReferenceTree::load();
    let lines = vector_lines("merkle/consistency_edges.txt");
    assert!(lines.len() >= 25);
    for (line, f) in lines {
        let (size1, size2): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let (root1, root2) = (t.token(&f[3]), t.token(&f[4]));
        let proof = t.proof(&f[5..]);
        let got = verify_consistency(size1, size2, &proof, &root1, &root2);
        assert_eq!(got.is_ok(), expect_ok(&f[0]), "line {line}: {got:?}");
    }
}

#[test]
fn inclusion_edge_cases() {
    let t = ReferenceTree::load();
    let lines = vector_lines("merkle/inclusion_edges.txt");
    assert!(lines.len() >= 15);
    for (line, f) in lines {
        let (index, size): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let (leaf, root) = (t.token(&f[3]), t.token(&f[4]));
        let proof = t.proof(&f[5..]);
        let got = verify_inclusion(&leaf, index, size, &proof, &root);
        assert_eq!(got.is_ok(), expect_ok(&f[0]), "line {line}: {got:?}");
    }
}

#[test]
fn error_values_name_the_failure() {
    let t = ReferenceTree::load();
    let tree = reference_memory_tree(&t);
    let leaf = leaf_hash(&t.leaves[0]);
    assert!(matches!(
        verify_inclusion(&leaf, 8, 8, &[], &t.roots[8]),
        Err(Error::IndexOutOfRange { index: 8, size: 8 })
    ));
    assert!(matches!(
        verify_inclusion(&leaf, 0, 8, &[], &t.roots[8]),
        Err(Error::ProofLength { got: 0, want: 3 })
    ));
    let proof = inclusion_proof(0, 8, &tree).unwrap();
    assert!(matches!(
        verify_inclusion(&leaf, 0, 8, &proof, &t.roots[7]),
        Err(Error::RootMismatch { which: "root" })
    ));
    assert!(matches!(
        verify_consistency(5, 4, &[], &t.roots[5], &t.roots[4]),
        Err(Error::SizeOrder { size1: 5, size2: 4 })
    ));
    let proof = consistency_proof(6, 8, &tree).unwrap();
    assert!(matches!(
        verify_consistency(6, 8, &proof, &t.roots[5], &t.roots[8]),
        Err(Error::RootMismatch {
            which: "first root"
        })
    ));
    assert!(matches!(
        verify_consistency(6, 8, &proof, &t.roots[6], &t.roots[7]),
        Err(Error::RootMismatch {
            which: "second root"
        })
    ));
    // Generation refuses what verification refuses, and needs the nodes.
    assert!(matches!(
        inclusion_proof(8, 8, &tree),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(9, 8, &tree),
        Err(Error::SizeOrder { .. })
    ));
    assert!(matches!(
        inclusion_proof(0, 9, &tree),
        Err(Error::MissingNode { .. })
    ));
    assert!(matches!(
        consistency_proof(3, 12, &tree),
        Err(Error::MissingNode { .. })
    ));
    assert_eq!(consistency_proof(0, 8, &tree).unwrap(), Vec::<Hash>::new());
}
