-- Monitoring: a device's quarantine (set by an operator or by a detection
-- behaviour with action = "quarantine", lifted only by an explicit,
-- journaled release), versioned detection profiles per device group, and
-- detection alerts with the datapoints that fired them.
ALTER TABLE devices ADD COLUMN quarantined_at BIGINT;
ALTER TABLE devices ADD COLUMN quarantine_reason TEXT;
CREATE TABLE detection_profiles (
    revision     BIGINT PRIMARY KEY,
    device_group TEXT NOT NULL,
    version      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (device_group, version)
);
CREATE TABLE detection_alerts (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    device_group    TEXT NOT NULL,
    behaviour       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    profile_version TEXT NOT NULL,
    action          TEXT,
    message         TEXT NOT NULL,
    evidence        TEXT NOT NULL,
    observed_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX detection_alerts_created ON detection_alerts (created_at);
CREATE INDEX detection_alerts_device ON detection_alerts (device_id, created_at);
