-- A deployment marked remediation reaches quarantined devices too (every
-- other update is withheld from them).
ALTER TABLE deployments ADD COLUMN remediation BIGINT NOT NULL DEFAULT 0;
