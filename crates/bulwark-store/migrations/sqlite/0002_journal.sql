-- The audit journal: an append-only RFC 6962 Merkle log.
-- journal: one row per entry (canonical bytes and leaf hash).
-- journal_nodes: every complete (perfect) subtree hash of level >= 4 (lower
--   levels are folded from at most 16 leaf hashes), so proofs are lookups.
-- journal_head: the single row every state change locks first; holds the
--   tree size and the compact range (right edge) to append to.
-- checkpoints: signed C2SP checkpoints, one per size.
CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY,
    entry      BLOB NOT NULL,
    leaf_hash  BLOB NOT NULL
);
CREATE TABLE journal_nodes (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hash   BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE journal_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    compact  BLOB NOT NULL
);
INSERT INTO journal_head (id, size, compact) VALUES (1, 0, x'');
CREATE TABLE checkpoints (
    size        INTEGER PRIMARY KEY,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
