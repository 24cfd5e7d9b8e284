//! The journal: a Merkle log (RFC 6962 leaves) every change appends to in
//! its own transaction, and its signed checkpoints.
//!
//! Every repository's mutating method calls `lock_journal` first (writers
//! queue on the journal head, so entries are totally ordered) and
//! `journal_in` before it commits; [`JournalRepo`] is the read side plus
//! appends of entries that record no other change.

use async_trait::async_trait;
use bulwark_proto::JournalEntry;
use bulwark_tlog::{CompactRange, leaf_hash};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore};
use crate::model::ms;
use crate::{Error, Result};

/// One stored journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// Position in the log (the leaf index).
    pub seq: u64,
    /// Canonical entry bytes (the leaf data).
    pub entry: Vec<u8>,
    /// The leaf hash recorded when it was appended.
    pub leaf_hash: [u8; 32],
}

/// The journal and its checkpoints.
#[async_trait]
pub trait JournalRepo: Send + Sync + std::fmt::Debug {
    /// Appends entries that record no other state change (engine events);
    /// returns the new journal size.
    async fn append_journal(&self, entries: &[JournalEntry]) -> Result<u64>;
    /// The journal's size and root hash, read together.
    async fn journal_root(&self) -> Result<(u64, [u8; 32])>;
    /// Entries `start..start+limit` as stored: sequence number, canonical
    /// bytes and the leaf hash recorded at append time.
    async fn journal_entries(&self, start: u64, limit: u32) -> Result<Vec<JournalRow>>;
    /// Hashes of complete subtrees `(level, index)`; `None` for a node that
    /// does not exist (yet).
    async fn journal_nodes(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<[u8; 32]>>>;
    /// Stores a signed checkpoint for `size` (idempotent per size).
    async fn put_checkpoint(&self, size: u64, note: &str, now: OffsetDateTime) -> Result<()>;
    /// Every stored checkpoint, by size.
    async fn checkpoints(&self) -> Result<Vec<(u64, String)>>;
    /// The newest checkpoint (one row, not the whole list).
    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>>;
    /// The checkpoint for exactly `size`.
    async fn checkpoint(&self, size: u64) -> Result<Option<String>>;
}

/// Internal Merkle nodes below this level are not stored: they are
/// recomputed from at most `2^STORED_NODE_LEVEL` (16) leaf hashes when a
/// proof or tile needs them. Appends then write ~1.1 rows per entry instead
/// of ~3; a proof costs two queries.
const STORED_NODE_LEVEL: u8 = 4;

/// Root of a perfect subtree given its leaf-level hashes (length a power of two).
fn perfect_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| bulwark_tlog::node_hash(&p[0], &p[1]))
            .collect();
    }
    level
        .first()
        .copied()
        .unwrap_or_else(bulwark_tlog::empty_root)
}

/// Rows per multi-row statement: 3 parameters a row stays far below the
/// bound-parameter limits of SQLite (32766) and PostgreSQL (65535).
const ROWS_PER_INSERT: usize = 500;

/// `INSERT INTO {table} VALUES ($1, $2, $3), ($4, …)…` for `rows` rows of
/// `cols` placeholders. Only placeholders are generated: no value is ever
/// spliced into SQL.
fn multi_row_insert(table: &str, cols: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// The journal's right edge from `journal_head` (size, concatenated hashes).
fn decode_edge(size: i64, blob: &[u8]) -> Option<CompactRange> {
    let size = u64::try_from(size).ok()?;
    if !blob.len().is_multiple_of(32) {
        return None;
    }
    let hashes = blob
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect();
    CompactRange::from_parts(size, hashes).ok()
}

macro_rules! impl_journal_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            /// Locks the journal head (the first write of every mutating
            /// transaction, so writers queue here instead of deadlocking on a
            /// read-to-write upgrade) and returns the tree's right edge.
            pub(crate) async fn lock_journal(tx: &mut sqlx::Transaction<'static, $db>) -> Result<CompactRange> {
                sqlx::query::<$db>("UPDATE journal_head SET size = size WHERE id = 1").execute(&mut **tx).await?;
                let row = sqlx::query::<$db>("SELECT size, compact FROM journal_head WHERE id = 1").fetch_one(&mut **tx).await?;
                let size: i64 = row.try_get("size")?;
                let blob: Vec<u8> = row.try_get("compact")?;
                decode_edge(size, &blob)
                    .ok_or_else(|| Error::Corrupt { what: "journal head", detail: format!("size {size} with {} edge bytes", blob.len()) })
            }

            /// Appends `entries` to the journal inside `tx`, with multi-row
            /// inserts (one statement per few hundred rows, not per row).
            pub(crate) async fn journal_in(tx: &mut sqlx::Transaction<'static, $db>, edge: &mut CompactRange, entries: &[JournalEntry]) -> Result<()> {
                let mut leaves: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
                let mut nodes: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(entries.len() * 2);
                for e in entries {
                    let bytes = e.to_canonical();
                    if bytes.len() > bulwark_proto::MAX_JOURNAL_ENTRY {
                        return Err(Error::Corrupt { what: "journal entry", detail: format!("{} bytes is over the limit", bytes.len()) });
                    }
                    let leaf = leaf_hash(&bytes);
                    let seq = i64::try_from(edge.size()).unwrap_or(i64::MAX);
                    // Levels below STORED_NODE_LEVEL are recomputed from the
                    // leaf hashes on demand (see `journal_nodes`).
                    for (level, idx, hash) in edge.append(leaf).into_iter().filter(|(l, _, _)| *l >= STORED_NODE_LEVEL) {
                        nodes.push((i64::from(level), i64::try_from(idx).unwrap_or(i64::MAX), hash.to_vec()));
                    }
                    leaves.push((seq, bytes, leaf.to_vec()));
                }
                for chunk in leaves.chunks(ROWS_PER_INSERT) {
                    let sql = sqlx::AssertSqlSafe(multi_row_insert("journal (seq, entry, leaf_hash)", 3, chunk.len()));
                    let mut q = sqlx::query::<$db>(sql);
                    for (seq, entry, leaf) in chunk {
                        q = q.bind(*seq).bind(entry.as_slice()).bind(leaf.as_slice());
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in nodes.chunks(ROWS_PER_INSERT) {
                    let sql = sqlx::AssertSqlSafe(multi_row_insert("journal_nodes (level, idx, hash)", 3, chunk.len()));
                    let mut q = sqlx::query::<$db>(sql);
                    for (level, idx, hash) in chunk {
                        q = q.bind(*level).bind(*idx).bind(hash.as_slice());
                    }
                    q.execute(&mut **tx).await?;
                }
                sqlx::query::<$db>("UPDATE journal_head SET size = $1, compact = $2 WHERE id = 1")
                    .bind(i64::try_from(edge.size()).unwrap_or(i64::MAX))
                    .bind(edge.hashes().concat())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl JournalRepo for $store {
            async fn append_journal(&self, entries: &[JournalEntry]) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                Self::journal_in(&mut tx, &mut edge, entries).await?;
                tx.commit().await?;
                Ok(edge.size())
            }

            async fn journal_root(&self) -> Result<(u64, [u8; 32])> {
                let row = sqlx::query::<$db>("SELECT size, compact FROM journal_head WHERE id = 1").fetch_one(&self.pool).await?;
                let size: i64 = row.try_get("size")?;
                let blob: Vec<u8> = row.try_get("compact")?;
                let edge = decode_edge(size, &blob)
                    .ok_or_else(|| Error::Corrupt { what: "journal head", detail: format!("size {size} with {} edge bytes", blob.len()) })?;
                Ok((edge.size(), edge.root()))
            }

            async fn journal_entries(&self, start: u64, limit: u32) -> Result<Vec<JournalRow>> {
                let rows = sqlx::query::<$db>("SELECT seq, entry, leaf_hash FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2")
                    .bind(i64::try_from(start).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let seq: i64 = r.try_get("seq")?;
                        let leaf: Vec<u8> = r.try_get("leaf_hash")?;
                        Ok(JournalRow {
                            seq: u64::try_from(seq).unwrap_or(0),
                            entry: r.try_get("entry")?,
                            leaf_hash: leaf.try_into().map_err(|_| Error::Corrupt { what: "journal leaf hash", detail: "not 32 bytes".into() })?,
                        })
                    })
                    .collect()
            }

            async fn journal_nodes(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<[u8; 32]>>> {
                let corrupt = |what: &'static str| move |_| Error::Corrupt { what, detail: "hash is not 32 bytes".into() };
                // Stored nodes (level >= STORED_NODE_LEVEL), in batches.
                let stored: Vec<&(u8, u64)> = keys.iter().filter(|(l, _)| *l >= STORED_NODE_LEVEL).collect();
                let mut found: std::collections::HashMap<(u8, u64), [u8; 32]> = std::collections::HashMap::with_capacity(keys.len());
                for chunk in stored.chunks(ROWS_PER_INSERT) {
                    let tuples: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT level, idx, hash FROM journal_nodes WHERE (level, idx) IN (VALUES {})",
                        tuples.join(", ")
                    ));
                    let mut q = sqlx::query::<$db>(sql);
                    for (level, idx) in chunk {
                        q = q.bind(i64::from(*level)).bind(i64::try_from(*idx).unwrap_or(i64::MAX));
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        let (level, idx): (i64, i64) = (r.try_get("level")?, r.try_get("idx")?);
                        let hash: Vec<u8> = r.try_get("hash")?;
                        let key = (u8::try_from(level).unwrap_or(u8::MAX), u64::try_from(idx).unwrap_or(0));
                        found.insert(key, hash.try_into().map_err(corrupt("journal node"))?);
                    }
                }
                // Low nodes: fetch the leaf hashes of every 16-leaf block they
                // fall in (usually one or two blocks per proof) and fold.
                let mut blocks: Vec<u64> = keys
                    .iter()
                    .filter(|(l, _)| *l < STORED_NODE_LEVEL)
                    .map(|(l, i)| (i << l) >> STORED_NODE_LEVEL)
                    .collect();
                blocks.sort_unstable();
                blocks.dedup();
                let mut leaves: std::collections::HashMap<u64, [u8; 32]> = std::collections::HashMap::new();
                for block in blocks {
                    let start = block << STORED_NODE_LEVEL;
                    let rows = sqlx::query::<$db>("SELECT seq, leaf_hash FROM journal WHERE seq >= $1 AND seq < $2")
                        .bind(i64::try_from(start).unwrap_or(i64::MAX))
                        .bind(i64::try_from(start + (1 << STORED_NODE_LEVEL)).unwrap_or(i64::MAX))
                        .fetch_all(&self.pool)
                        .await?;
                    for r in rows {
                        let seq: i64 = r.try_get("seq")?;
                        let hash: Vec<u8> = r.try_get("leaf_hash")?;
                        leaves.insert(u64::try_from(seq).unwrap_or(0), hash.try_into().map_err(corrupt("journal leaf hash"))?);
                    }
                }
                Ok(keys
                    .iter()
                    .map(|&(level, idx)| {
                        if level >= STORED_NODE_LEVEL {
                            return found.get(&(level, idx)).copied();
                        }
                        let start = idx << level;
                        let hashes: Option<Vec<[u8; 32]>> = (start..start + (1 << level)).map(|s| leaves.get(&s).copied()).collect();
                        hashes.map(|h| perfect_root(&h))
                    })
                    .collect())
            }

            async fn put_checkpoint(&self, size: u64, note: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query::<$db>("INSERT INTO checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .bind(note)
                    .bind(ms(now))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
                let row = sqlx::query::<$db>("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    let size: i64 = r.try_get("size")?;
                    Ok((u64::try_from(size).unwrap_or(0), r.try_get::<String, _>("note")?))
                })
                .transpose()
            }

            async fn checkpoint(&self, size: u64) -> Result<Option<String>> {
                let row = sqlx::query::<$db>("SELECT note FROM checkpoints WHERE size = $1")
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.try_get("note")).transpose()?)
            }

            async fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
                let rows = sqlx::query::<$db>("SELECT size, note FROM checkpoints ORDER BY size").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let size: i64 = r.try_get("size")?;
                        Ok((u64::try_from(size).unwrap_or(0), r.try_get::<String, _>("note")?))
                    })
                    .collect()
            }
        }
    };
}

impl_journal_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_journal_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
