//! Helpers shared by the integration tests: reading `test_data/` files and
//! the RFC 6962 reference tree.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::PathBuf;

use bulwark_tlog::Hash;

/// Absolute path of a file or folder under `test_data/`.
pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(rel)
}

/// The lines of a vector file, split on whitespace, without comments
/// (`#` to end of line) or blank lines. Each comes with its line number.
pub fn vector_lines(rel: &str) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(data_path(rel)).unwrap();
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or("");
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            (!fields.is_empty()).then_some((i + 1, fields))
        })
        .collect()
}

/// Every file in a `test_data/` folder as `(file name, contents)`, sorted.
pub fn fixtures(rel: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(data_path(rel))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {rel}");
    out
}

/// Decodes hex; `-` is the empty string.
pub fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Decodes a 64-digit hex hash.
pub fn hex32(s: &str) -> Hash {
    hex(s).try_into().unwrap()
}

/// The 8-leaf reference tree of `merkle/reference_tree.txt`.
#[derive(Debug)]
pub struct ReferenceTree {
    pub leaves: Vec<Vec<u8>>,
    pub nodes: HashMap<(u8, u64), Hash>,
    /// `roots[n]` is the root of the first `n` leaves.
    pub roots: Vec<Hash>,
}

impl ReferenceTree {
    pub fn load() -> Self {
        let mut t = ReferenceTree {
            leaves: Vec::new(),
            nodes: HashMap::new(),
            roots: Vec::new(),
        };
        for (_, f) in vector_lines("merkle/reference_tree.txt") {
            match f[0].as_str() {
                "leaf" => t.leaves.push(hex(&f[1])),
                "node" => {
                    t.nodes
                        .insert((f[1].parse().unwrap(), f[2].parse().unwrap()), hex32(&f[3]));
                }
                "root" => {
                    assert_eq!(f[1].parse::<usize>().unwrap(), t.roots.len());
                    t.roots.push(hex32(&f[2]));
                }
                other => panic!("unknown line kind {other}"),
            }
        }
        assert_eq!(t.leaves.len(), 8);
        assert_eq!(t.roots.len(), 9);
        t
    }

    /// Resolves a hash token: `R<n>`, `L<i>`, `Z`, `X` or 64 hex digits.
    pub fn token(&self, tok: &str) -> Hash {
        if let Some(n) = tok.strip_prefix('R') {
            return self.roots[n.parse::<usize>().unwrap()];
        }
        if let Some(i) = tok.strip_prefix('L') {
            return self.nodes[&(0, i.parse().unwrap())];
        }
        match tok {
            "Z" => [0; 32],
            // sha256SomeHash of transparency-dev/merkle cmd/proofgen.
            "X" => hex32("abacaba000000000000000000000000000000000000000000060061e00123456"),
            _ => hex32(tok),
        }
    }

    /// Resolves proof tokens (`-` alone is the empty proof).
    pub fn proof(&self, toks: &[String]) -> Vec<Hash> {
        if toks == ["-"] {
            Vec::new()
        } else {
            toks.iter().map(|t| self.token(t)).collect()
        }
    }
}
