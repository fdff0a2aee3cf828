-- Notices: every message that follows a state change (a decision, a question, a payout, a
-- reminder) is written here in the same transaction as the change, and delivered from here.
-- `body` is JSON: the message key and its parameters, rendered in the recipient's language at
-- delivery. `once_key` makes queueing idempotent; `claimed_at` makes delivery at most once (a
-- notice claimed by a process that died before confirming it is not sent again).
ALTER TABLE outbox RENAME TO outbox_before_notices;
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    chat_id          INTEGER NOT NULL,
    language         TEXT CHECK (language IN ('zh', 'en')),   -- NULL: the recipient's own
    message          TEXT NOT NULL,                            -- locales key, for logs too
    body             TEXT NOT NULL,                            -- JSON
    once_key         TEXT UNIQUE,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_at       INTEGER,
    sent_at          INTEGER,
    gave_up_at       INTEGER,
    last_error       TEXT
);
INSERT INTO outbox (chat_id, message, body, created_at, attempts, next_attempt_at)
    SELECT chat_id, 'text', json_object('text', text), created_at, attempts, next_attempt_at
    FROM outbox_before_notices WHERE sent_at IS NULL AND gave_up_at IS NULL;
DROP TABLE outbox_before_notices;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_finished ON outbox (created_at)
    WHERE sent_at IS NOT NULL OR gave_up_at IS NOT NULL;
-- Notices to one chat are delivered in the order they were queued: the earliest open one first.
CREATE INDEX outbox_open_by_chat ON outbox (chat_id, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
