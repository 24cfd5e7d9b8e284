-- Release gates: each release's scan (SBOM, malware and secret findings)
-- and its latest verdict; versioned gate policies; expiring waivers; and
-- alerts raised when new advisories hit releases or devices.
CREATE TABLE release_scans (
    release_id   TEXT PRIMARY KEY REFERENCES releases(id),
    sbom_source  TEXT NOT NULL,
    sbom         TEXT NOT NULL,
    findings     TEXT NOT NULL,
    status       TEXT NOT NULL,
    verdict      TEXT NOT NULL,
    scanned_at   BIGINT NOT NULL,
    evaluated_at BIGINT NOT NULL
);
CREATE TABLE gate_policies (
    version     BIGINT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE waivers (
    id          TEXT PRIMARY KEY,
    finding     TEXT NOT NULL,
    release     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    advisory    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (kind, advisory, subject)
);
CREATE INDEX alerts_created ON alerts (created_at);
