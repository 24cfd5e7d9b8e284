-- Accounts, API tokens, enrollment tokens, devices, inventories.
-- Timestamps are Unix milliseconds (BIGINT) in both dialects.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    label        TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE TABLE enroll_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  BYTEA NOT NULL,
    device_group TEXT NOT NULL,
    environment  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    device_id    TEXT
);
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    hostname        TEXT,
    device_group    TEXT NOT NULL,
    environment     TEXT NOT NULL,
    tags            TEXT NOT NULL,
    cert_serial     TEXT NOT NULL UNIQUE,
    cert_not_after  BIGINT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    last_seen       BIGINT,
    agent_version   TEXT,
    boot_id         TEXT,
    status          TEXT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT
);
CREATE INDEX devices_group_env ON devices (environment, device_group);
CREATE TABLE device_inventory (
    device_id   TEXT PRIMARY KEY REFERENCES devices(id),
    digest      TEXT NOT NULL,
    inventory   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
