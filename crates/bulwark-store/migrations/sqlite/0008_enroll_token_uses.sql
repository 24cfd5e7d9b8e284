-- Multi-use enrollment tokens (fleet provisioning): a token enrolls up to
-- max_uses devices; used_at and device_id record the last use. A token
-- consumed before this migration has used its one use.
ALTER TABLE enroll_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 1;
ALTER TABLE enroll_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
UPDATE enroll_tokens SET uses = 1 WHERE used_at IS NOT NULL;
