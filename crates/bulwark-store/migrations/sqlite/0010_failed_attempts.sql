-- Failed connection attempts (refused, reset or timed out: the agent's
-- `Tcp AttemptFails` delta) per device and minute, summed like the other
-- counters. Minutes written before this column existed read as 0.
ALTER TABLE telemetry_minutes ADD COLUMN failed_attempts BIGINT NOT NULL DEFAULT 0;
