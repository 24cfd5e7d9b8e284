//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>) helpers: tile and entry
//! bundle paths, tile contents from stored nodes, the tiles of a tree size,
//! and the entry bundle encoding.
//!
//! Tiles have height 8: tile `(L, N)` holds up to 256 consecutive hashes of
//! tree level `8·L`, starting at node index `N·256`. A *partial* tile (the
//! rightmost ones) holds 1 to 255 hashes.

use std::fmt::Write as _;

use crate::{Error, HASH_LEN, NodeSource, Result};

/// Tree levels spanned by one tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u16 = 256;

/// Largest tile level the spec allows in a path.
const MAX_PATH_LEVEL: u8 = 63;
/// Largest tile level a 64-bit tree has (tree level 8·7 = 56).
const MAX_TREE_TILE_LEVEL: u8 = 7;

/// One tile of a tree: its level, its index within the level and how many
/// hashes it holds (256 when full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level `L`: its hashes are tree nodes of level `8·L`.
    pub level: u8,
    /// Tile index `N` within its level.
    pub index: u64,
    /// Number of hashes, 1 to 256.
    pub width: u16,
}

impl TileId {
    /// Whether this tile holds fewer than 256 hashes.
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The tile's path, `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> Result<String> {
        tile_path(self.level, self.index, self.partial_width()?)
    }

    /// The path of the entry bundle matching this level-0 tile.
    pub fn entries_path(&self) -> Result<String> {
        if self.level != 0 {
            return Err(Error::InvalidTile("only level-0 tiles have entry bundles"));
        }
        entries_path(self.index, self.partial_width()?)
    }

    fn partial_width(&self) -> Result<Option<u16>> {
        if self.width == 0 || self.width > TILE_WIDTH {
            return Err(Error::InvalidTile("width must be between 1 and 256"));
        }
        Ok(self.is_partial().then_some(self.width))
    }
}

/// Appends `/`-separated 3-digit groups of `index`, all but the last
/// prefixed with `x`: 1234067 becomes `x001/x234/067`.
fn push_index(out: &mut String, index: u64) {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    for (i, group) in groups.iter().rev().enumerate() {
        let prefix = if i == last { "" } else { "x" };
        let sep = if i == last { "" } else { "/" };
        // Writing to a String cannot fail.
        let _ = write!(out, "{prefix}{group:03}{sep}");
    }
}

fn push_partial(out: &mut String, partial_width: Option<u16>) -> Result<()> {
    if let Some(width) = partial_width {
        if width == 0 || width >= TILE_WIDTH {
            return Err(Error::InvalidTile(
                "partial width must be between 1 and 255",
            ));
        }
        let _ = write!(out, ".p/{width}");
    }
    Ok(())
}

/// The path of a Merkle tree tile: `tile/<L>/<N>` for a full tile,
/// `tile/<L>/<N>.p/<W>` for a partial one of width `W`. The index is
/// written in 3-digit groups, `x001/x234/067` for 1234067.
///
/// Fails for a level above 63 or a partial width outside 1..=255.
pub fn tile_path(level: u8, index: u64, partial_width: Option<u16>) -> Result<String> {
    if level > MAX_PATH_LEVEL {
        return Err(Error::InvalidTile("level must be at most 63"));
    }
    let mut path = format!("tile/{level}/");
    push_index(&mut path, index);
    push_partial(&mut path, partial_width)?;
    Ok(path)
}

/// The path of an entry bundle: `tile/entries/<N>[.p/<W>]`.
///
/// Fails for a partial width outside 1..=255.
pub fn entries_path(index: u64, partial_width: Option<u16>) -> Result<String> {
    let mut path = String::from("tile/entries/");
    push_index(&mut path, index);
    push_partial(&mut path, partial_width)?;
    Ok(path)
}

/// The contents of tile `(level, index)` with `width` hashes: the
/// concatenated hashes of tree nodes `(8·level, index·256 + i)` for `i` in
/// `0..width`, read from `src`.
pub fn tile_bytes<S: NodeSource + ?Sized>(
    level: u8,
    index: u64,
    width: u16,
    src: &S,
) -> Result<Vec<u8>> {
    if level > MAX_TREE_TILE_LEVEL {
        return Err(Error::InvalidTile("level is beyond any 64-bit tree"));
    }
    if width == 0 || width > TILE_WIDTH {
        return Err(Error::InvalidTile("width must be between 1 and 256"));
    }
    let first = index
        .checked_mul(u64::from(TILE_WIDTH))
        .filter(|first| first.checked_add(u64::from(width) - 1).is_some())
        .ok_or(Error::InvalidTile("tile index out of range"))?;
    let node_level = level * TILE_HEIGHT;
    let mut out = Vec::with_capacity(usize::from(width) * HASH_LEN);
    for i in 0..u64::from(width) {
        out.extend_from_slice(&src.node(node_level, first + i)?);
    }
    Ok(out)
}

/// Every tile, full or partial, of a tree of `size` leaves, by level then
/// index. At level `L` there are `⌊size / 256^L⌋` hashes: that many over
/// 256 full tiles, and a partial tile for the remainder if any.
///
/// The list has about `size / 255` entries; to publish a growing log,
/// [`new_tiles`] lists only what a new checkpoint adds.
pub fn tiles_for_size(size: u64) -> Vec<TileId> {
    new_tiles(0, size)
}

/// The tiles of a tree of `new_size` leaves that a tree of `old_size` did
/// not have with the same contents: new full tiles and the rightmost
/// partial tiles that grew. Empty if `new_size <= old_size`.
pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<TileId> {
    let full = u64::from(TILE_WIDTH);
    let mut tiles = Vec::new();
    if new_size <= old_size {
        return tiles;
    }
    for level in 0..=MAX_TREE_TILE_LEVEL {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let (old, new) = (old_size >> shift, new_size >> shift);
        if new == 0 {
            break;
        }
        // Tiles before the old rightmost one are full in both trees.
        for index in old / full..new.div_ceil(full) {
            let width_in = |hashes: u64| hashes.saturating_sub(index * full).min(full);
            let width = width_in(new);
            if width != width_in(old) {
                // At most 256, so it fits in u16.
                tiles.push(TileId {
                    level,
                    index,
                    width: width as u16,
                });
            }
        }
    }
    tiles
}

/// Encodes log entries as an entry bundle: each entry prefixed with its
/// length as a big-endian u16. Fails for an entry over 65535 bytes.
pub fn encode_entry_bundle(entries: &[&[u8]]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for entry in entries {
        let len =
            u16::try_from(entry.len()).map_err(|_| Error::EntryTooLarge { len: entry.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Decodes an entry bundle into its entries (borrowed from `bundle`).
/// Fails if a length prefix or an entry is cut short.
pub fn decode_entry_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let [hi, lo, tail @ ..] = rest else {
            return Err(Error::MalformedEntryBundle("truncated length prefix"));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return Err(Error::MalformedEntryBundle("truncated entry"));
        }
        let (entry, next) = tail.split_at(len);
        entries.push(entry);
        rest = next;
    }
    Ok(entries)
}
