-- The audit journal: an append-only RFC 6962 Merkle log.
-- journal: one row per entry (canonical bytes and leaf hash).
-- journal_nodes: every complete (perfect) subtree hash of level >= 4 (lower
--   levels are folded from at most 16 leaf hashes), so proofs are lookups.
-- journal_head: the single row every state change locks first; holds the
--   tree size and the compact range (right edge) to append to.
-- checkpoints: signed C2SP checkpoints, one per size.
CREATE TABLE journal (
    seq        BIGINT PRIMARY KEY,
    entry      BYTEA NOT NULL,
    leaf_hash  BYTEA NOT NULL
);
CREATE TABLE journal_nodes (
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE journal_head (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    size     BIGINT NOT NULL,
    compact  BYTEA NOT NULL
);
INSERT INTO journal_head (id, size, compact) VALUES (1, 0, '\x'::bytea);
CREATE TABLE checkpoints (
    size        BIGINT PRIMARY KEY,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
