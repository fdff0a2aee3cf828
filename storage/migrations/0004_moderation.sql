-- Moderators' decisions on reports, the cards they decide from, and the 24-hour promise.

ALTER TABLE reports ADD COLUMN card_chat_id INTEGER;        -- where the review card was sent
ALTER TABLE reports ADD COLUMN card_message_id INTEGER;     -- NULL: the card is still to send
ALTER TABLE reports ADD COLUMN decided_by INTEGER;          -- the moderator's Telegram id
ALTER TABLE reports ADD COLUMN decided_at INTEGER;
ALTER TABLE reports ADD COLUMN reward_fen INTEGER;
ALTER TABLE reports ADD COLUMN points INTEGER;
ALTER TABLE reports ADD COLUMN reject_reason TEXT;
ALTER TABLE reports ADD COLUMN duplicate_of INTEGER REFERENCES reports (id);
ALTER TABLE reports ADD COLUMN question TEXT;               -- asked of the rider (needs_info)
ALTER TABLE reports ADD COLUMN answer TEXT;                 -- the rider's answer
ALTER TABLE reports ADD COLUMN proposed_fen INTEGER;        -- a large approval awaiting a second moderator
ALTER TABLE reports ADD COLUMN proposed_by INTEGER;
ALTER TABLE reports ADD COLUMN digest_at INTEGER;           -- first listed in a reminder digest
ALTER TABLE reports ADD COLUMN escalated_at INTEGER;        -- admins told privately
ALTER TABLE reports ADD COLUMN breached_at INTEGER;         -- the 24-hour promise was missed

CREATE INDEX reports_cards_to_send ON reports (submitted_at) WHERE card_message_id IS NULL
    AND reference IS NOT NULL;

-- Moderators added by an admin with /mods add (those in MODERATOR_IDS and ADMIN_IDS are
-- moderators without a row here).
CREATE TABLE moderators (
    telegram_id  INTEGER PRIMARY KEY,
    added_by     INTEGER NOT NULL,
    added_at     INTEGER NOT NULL
);

-- Every decision and attempt that changed a report: who, what, when, and the state before.
CREATE TABLE decisions (
    id               INTEGER PRIMARY KEY,
    report_id        INTEGER NOT NULL REFERENCES reports (id),
    moderator_id     INTEGER NOT NULL,                  -- Telegram id
    action           TEXT NOT NULL CHECK (action IN (
                         'approve', 'propose', 'confirm', 'reject', 'duplicate', 'ask', 'answer')),
    previous_status  TEXT NOT NULL,
    new_status       TEXT NOT NULL,
    amount_fen       INTEGER,
    detail           TEXT,                              -- reason, question, original reference
    created_at       INTEGER NOT NULL
);
CREATE INDEX decisions_by_report ON decisions (report_id, created_at);
