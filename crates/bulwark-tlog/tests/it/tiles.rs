//! C2SP tlog-tiles helpers: path encoding against `test_data/tiles/paths.txt`
//! (with the spec's examples), the tiles of a tree size, tile contents and
//! entry bundles.

use crate::common::vector_lines;
use bulwark_tlog::{
    Error, MemoryTree, NodeSource, TileId, decode_entry_bundle, encode_entry_bundle, entries_path,
    leaf_hash, new_tiles, root_from_leaf_hashes, tile_bytes, tile_path, tiles_for_size,
};

fn width(field: &str) -> Option<u16> {
    (field != "-").then(|| field.parse().unwrap())
}

#[test]
fn paths_match_the_vectors() {
    let lines = vector_lines("tiles/paths.txt");
    assert!(lines.len() >= 15);
    for (line, f) in lines {
        let (got, want) = match f[0].as_str() {
            "tile" => (
                tile_path(f[1].parse().unwrap(), f[2].parse().unwrap(), width(&f[3])),
                &f[4],
            ),
            "entries" => (entries_path(f[1].parse().unwrap(), width(&f[2])), &f[3]),
            other => panic!("line {line}: unknown kind {other}"),
        };
        match (got, want.as_str()) {
            (Err(Error::InvalidTile(_)), "err") => {}
            (Ok(path), want) => assert_eq!(path, want, "line {line}"),
            (got, want) => panic!("line {line}: got {got:?}, want {want}"),
        }
    }
}

/// Summarises a tile list as `L<level>: <n> full[, partial <w>]` lines.
fn summary(tiles: &[TileId]) -> String {
    let mut out = String::new();
    for level in 0..8u8 {
        let at: Vec<&TileId> = tiles.iter().filter(|t| t.level == level).collect();
        if at.is_empty() {
            continue;
        }
        let full = at.iter().filter(|t| !t.is_partial()).count();
        out.push_str(&format!("L{level}: {full} full"));
        for (i, t) in at.iter().enumerate() {
            assert_eq!(t.index, i as u64, "indices are consecutive");
            if t.is_partial() {
                assert_eq!(i, at.len() - 1, "the partial tile is last");
                out.push_str(&format!(", partial {}", t.width));
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn tiles_for_size_matches_the_spec_examples() {
    // tlog-tiles: "a tree of size 70,000 will be represented by 273 full
    // level 0 tiles, one partial level 0 tile of width 112, one full level 1
    // tile, one partial level 1 tile of width 17, and one partial level 2
    // tile of width 1."
    assert_eq!(
        summary(&tiles_for_size(70_000)),
        "L0: 273 full, partial 112\nL1: 1 full, partial 17\nL2: 0 full, partial 1\n"
    );
    // "a tree of size 256 will be represented by a full level 0 tile and a
    // partial level 1 tile of width 1."
    assert_eq!(
        summary(&tiles_for_size(256)),
        "L0: 1 full\nL1: 0 full, partial 1\n"
    );
    assert!(tiles_for_size(0).is_empty());
    assert_eq!(
        tiles_for_size(1),
        vec![TileId {
            level: 0,
            index: 0,
            width: 1
        }]
    );
    assert_eq!(summary(&tiles_for_size(255)), "L0: 0 full, partial 255\n");
    assert_eq!(
        summary(&tiles_for_size(65_536)),
        "L0: 256 full\nL1: 1 full\nL2: 0 full, partial 1\n"
    );
    // The very top of a 64-bit tree, without listing 2^56 tiles.
    assert_eq!(
        new_tiles(u64::MAX - 1, u64::MAX),
        vec![TileId {
            level: 0,
            index: u64::MAX / 256,
            width: 255
        }]
    );
    // One more leaf completing a tile at every level up to the top one.
    let top = new_tiles((255 << 56) - 1, 255 << 56);
    assert_eq!(top.len(), 8);
    assert_eq!(
        top.last(),
        Some(&TileId {
            level: 7,
            index: 0,
            width: 255
        })
    );
}

#[test]
fn new_tiles_are_what_growth_changes() {
    let sizes = [
        0u64, 1, 2, 255, 256, 257, 511, 512, 1000, 65_535, 65_536, 65_537, 70_000,
    ];
    for &old in &sizes {
        for &new in &sizes {
            let added = new_tiles(old, new);
            let before = tiles_for_size(old);
            let after = tiles_for_size(new);
            if new <= old {
                assert!(added.is_empty());
                continue;
            }
            for t in &after {
                // Every tile of the new tree is either unchanged or listed.
                assert_ne!(before.contains(t), added.contains(t), "{old}->{new}: {t:?}");
            }
            assert!(added.iter().all(|t| after.contains(t)));
        }
    }
    // Go's sumdb/tlog NewTiles counts for height-8 tiles are not comparable
    // (different height); check a hand-computed case instead: growing 256
    // to 513 adds full tile 1, partial tile 2 of width 1, and the level-1
    // partial tile of width 2.
    assert_eq!(
        new_tiles(256, 513),
        vec![
            TileId {
                level: 0,
                index: 1,
                width: 256
            },
            TileId {
                level: 0,
                index: 2,
                width: 1
            },
            TileId {
                level: 1,
                index: 0,
                width: 2
            },
        ]
    );
}

#[test]
fn tile_contents_come_from_stored_nodes() {
    let size = 70_000u64;
    let mut tree = MemoryTree::new();
    let mut leaves = Vec::new();
    for i in 0..size {
        let l = leaf_hash(&i.to_be_bytes());
        leaves.push(l);
        tree.append(l);
    }
    let tiles = tiles_for_size(size);
    for t in &tiles {
        let bytes = tile_bytes(t.level, t.index, t.width, &tree).unwrap();
        assert_eq!(bytes.len(), usize::from(t.width) * 32);
        let hashes: Vec<[u8; 32]> = bytes.chunks(32).map(|c| c.try_into().unwrap()).collect();
        let level = t.level * 8;
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(*h, tree.node(level, t.index * 256 + i as u64).unwrap());
        }
        if !t.is_partial() {
            // A full tile's hashes are the leaves of the node one tile up.
            let up = tree.node(level + 8, t.index).unwrap();
            assert_eq!(root_from_leaf_hashes(&hashes), up);
        }
        assert!(t.path().unwrap().starts_with(&format!("tile/{}/", t.level)));
    }
    // Level-0 tiles are the leaf hashes themselves.
    let first = tile_bytes(0, 0, 256, &tree).unwrap();
    assert_eq!(first[..32], leaves[0]);
    assert_eq!(first[255 * 32..], leaves[255]);
    assert_eq!(
        TileId {
            level: 0,
            index: 273,
            width: 112
        }
        .entries_path()
        .unwrap(),
        "tile/entries/273.p/112"
    );
    assert!(
        TileId {
            level: 1,
            index: 0,
            width: 256
        }
        .entries_path()
        .is_err()
    );

    // Bad requests.
    assert!(matches!(
        tile_bytes(0, 0, 0, &tree),
        Err(Error::InvalidTile(_))
    ));
    assert!(matches!(
        tile_bytes(0, 0, 257, &tree),
        Err(Error::InvalidTile(_))
    ));
    assert!(matches!(
        tile_bytes(8, 0, 1, &tree),
        Err(Error::InvalidTile(_))
    ));
    assert!(matches!(
        tile_bytes(0, u64::MAX, 1, &tree),
        Err(Error::InvalidTile(_))
    ));
    assert!(matches!(
        tile_bytes(0, 273, 113, &tree),
        Err(Error::MissingNode { .. })
    ));
    assert!(tile_bytes(1, 1, 17, &tree).is_ok());
    assert!(matches!(
        tile_bytes(1, 1, 18, &tree),
        Err(Error::MissingNode { .. })
    ));
}

#[test]
fn entry_bundles_round_trip() {
    let big = vec![0xee; 65_535];
    let entries: Vec<&[u8]> = vec![b"first", b"", b"\x00\x01", &big];
    let bundle = encode_entry_bundle(&entries).unwrap();
    assert_eq!(&bundle[..7], b"\x00\x05first");
    assert_eq!(&bundle[7..9], b"\x00\x00");
    assert_eq!(bundle.len(), 2 + 5 + 2 + 2 + 2 + 2 + 65_535);
    assert_eq!(decode_entry_bundle(&bundle).unwrap(), entries);
    assert_eq!(decode_entry_bundle(&[]).unwrap(), Vec::<&[u8]>::new());
}

#[test]
fn entry_bundle_errors() {
    let too_big = vec![0; 65_536];
    assert!(matches!(
        encode_entry_bundle(&[b"ok", &too_big]),
        Err(Error::EntryTooLarge { len: 65_536 })
    ));
    let bundle = encode_entry_bundle(&[b"abc", b"defg"]).unwrap();
    for cut in 1..bundle.len() {
        if cut == 5 {
            continue; // a whole first entry is a valid bundle
        }
        assert!(
            matches!(
                decode_entry_bundle(&bundle[..cut]),
                Err(Error::MalformedEntryBundle(_))
            ),
            "cut at {cut}"
        );
    }
    assert_eq!(decode_entry_bundle(&bundle[..5]).unwrap(), vec![b"abc"]);
    assert!(decode_entry_bundle(&[0x00]).is_err());
    assert!(decode_entry_bundle(&[0xff, 0xff, 0x00]).is_err());
}
