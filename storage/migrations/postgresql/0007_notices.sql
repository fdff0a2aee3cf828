-- PostgreSQL twin of ../0007_notices.sql: the outbox becomes the notices' outbox.
-- `body` is JSON: the message key and its parameters, rendered in the recipient's language at
-- delivery. `once_key` makes queueing idempotent; `claimed_at` makes delivery at most once.
-- (SQLite rebuilds the table; PostgreSQL changes it in place, keeping only unsent rows.)
DELETE FROM outbox WHERE sent_at IS NOT NULL OR gave_up_at IS NOT NULL;
DROP INDEX outbox_due;
ALTER TABLE outbox ADD COLUMN language TEXT CHECK (language IN ('zh', 'en'));
ALTER TABLE outbox ADD COLUMN message TEXT NOT NULL DEFAULT 'text';
ALTER TABLE outbox ALTER COLUMN message DROP DEFAULT;
ALTER TABLE outbox ADD COLUMN body TEXT;
UPDATE outbox SET body = json_build_object('text', text)::text;
ALTER TABLE outbox ALTER COLUMN body SET NOT NULL;
ALTER TABLE outbox DROP COLUMN text;
ALTER TABLE outbox ADD COLUMN once_key TEXT UNIQUE;
ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_finished ON outbox (created_at)
    WHERE sent_at IS NOT NULL OR gave_up_at IS NOT NULL;
-- Notices to one chat are delivered in the order they were queued: the earliest open one first.
CREATE INDEX outbox_open_by_chat ON outbox (chat_id, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
