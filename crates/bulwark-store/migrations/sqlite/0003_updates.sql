-- Signed updates: content-addressed blobs, TUF metadata (image repository
-- and director), releases with their offline signatures, promotions,
-- deployments, per-device director state and update reports.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    length      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
-- repo: 'image' or 'director'. Every version ever published is kept.
CREATE TABLE tuf_metadata (
    repo        TEXT NOT NULL,
    role        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    body        BLOB NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo, role, version)
);
CREATE TABLE releases (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    version             TEXT NOT NULL,
    sha256              TEXT NOT NULL REFERENCES blobs(sha256),
    length              BIGINT NOT NULL,
    installer           TEXT NOT NULL,
    install_path        TEXT,
    smoke_test          TEXT,
    smoke_timeout_secs  BIGINT NOT NULL,
    status              TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    published_at        BIGINT,
    UNIQUE (name, version)
);
-- The targets metadata a release's signers are asked to sign: the
-- published targets plus this release, as canonical JSON.
CREATE TABLE release_proposals (
    release_id    TEXT PRIMARY KEY REFERENCES releases(id),
    base_version  BIGINT NOT NULL,
    signed        BLOB NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE release_signatures (
    release_id  TEXT NOT NULL REFERENCES releases(id),
    keyid       TEXT NOT NULL,
    sig         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (release_id, keyid)
);
CREATE TABLE release_environments (
    release_id   TEXT NOT NULL REFERENCES releases(id),
    environment  TEXT NOT NULL,
    promoted_at  BIGINT NOT NULL,
    PRIMARY KEY (release_id, environment)
);
CREATE TABLE deployments (
    seq           BIGINT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    release_id    TEXT NOT NULL REFERENCES releases(id),
    device_group  TEXT NOT NULL,
    environment   TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX deployments_target ON deployments (device_group, environment, seq);
-- The director's current signed metadata for one device.
CREATE TABLE director_state (
    device_id          TEXT PRIMARY KEY,
    deployment_seq     BIGINT,
    targets_version    BIGINT NOT NULL,
    timestamp_version  BIGINT NOT NULL,
    targets            BLOB NOT NULL,
    snapshot           BLOB NOT NULL,
    timestamp          BLOB NOT NULL,
    snapshot_expires   BIGINT NOT NULL,
    timestamp_expires  BIGINT NOT NULL
);
CREATE TABLE device_updates (
    device_id   TEXT PRIMARY KEY,
    release     TEXT NOT NULL,
    phase       TEXT NOT NULL,
    outcome     TEXT,
    detail      TEXT,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE update_events (
    seq        BIGINT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    release    TEXT NOT NULL,
    phase      TEXT NOT NULL,
    outcome    TEXT,
    detail     TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX update_events_device ON update_events (device_id, seq);
