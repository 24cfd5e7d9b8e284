-- Accounts, API tokens, enrollment tokens, devices, inventories.
-- Timestamps are Unix milliseconds (INTEGER) in both dialects.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    label        TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
CREATE TABLE enroll_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  BLOB NOT NULL,
    device_group TEXT NOT NULL,
    environment  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    device_id    TEXT
);
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    hostname        TEXT,
    device_group    TEXT NOT NULL,
    environment     TEXT NOT NULL,
    tags            TEXT NOT NULL,
    cert_serial     TEXT NOT NULL UNIQUE,
    cert_not_after  INTEGER NOT NULL,
    enrolled_at     INTEGER NOT NULL,
    last_seen       INTEGER,
    agent_version   TEXT,
    boot_id         TEXT,
    status          TEXT NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT
);
CREATE INDEX devices_group_env ON devices (environment, device_group);
CREATE TABLE device_inventory (
    device_id   TEXT PRIMARY KEY REFERENCES devices(id),
    digest      TEXT NOT NULL,
    inventory   TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
