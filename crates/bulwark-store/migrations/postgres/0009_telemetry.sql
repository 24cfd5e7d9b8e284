-- Telemetry you can look at: per device and minute, the aggregates of
-- every metric (sums, so that two partial writes of one minute merge by
-- addition; maxima merge by the larger), and each device's latest sample
-- as the agent sent it (JSON). Observations, not state changes: not
-- journaled. A retention job deletes minutes past the configured age.
CREATE TABLE telemetry_minutes (
    device_id           TEXT NOT NULL,
    minute              BIGINT NOT NULL,
    samples             BIGINT NOT NULL,
    cpu_sum             DOUBLE PRECISION NOT NULL,
    cpu_max             DOUBLE PRECISION NOT NULL,
    memory_sum          DOUBLE PRECISION NOT NULL,
    memory_max          DOUBLE PRECISION NOT NULL,
    processes_max       BIGINT NOT NULL,
    bytes_in            BIGINT NOT NULL,
    bytes_out           BIGINT NOT NULL,
    packets_in          BIGINT NOT NULL,
    packets_out         BIGINT NOT NULL,
    connection_attempts BIGINT NOT NULL,
    failed_logins       BIGINT NOT NULL,
    listening_max       BIGINT NOT NULL,
    connections_max     BIGINT NOT NULL,
    destinations_max    BIGINT NOT NULL,
    unanswered_max      BIGINT NOT NULL,
    PRIMARY KEY (device_id, minute)
);
CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);
CREATE TABLE telemetry_latest (
    device_id   TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    body        TEXT NOT NULL
);
