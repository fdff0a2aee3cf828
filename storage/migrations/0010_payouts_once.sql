-- Payout batches announced exactly once; payout details confirmed before they are used.

-- Who is announcing a batch: one guarded UPDATE claims it (see storage/payouts.claim).
ALTER TABLE payout_batches ADD COLUMN announcing_at INTEGER;
ALTER TABLE payout_batches ADD COLUMN announcing_by TEXT;   -- the claiming process's token
ALTER TABLE payout_batches ADD COLUMN announce_attempts INTEGER NOT NULL DEFAULT 0;

-- The chats that accepted a batch's files: a retry sends only to the others.
CREATE TABLE payout_deliveries (
    batch_id   INTEGER NOT NULL REFERENCES payout_batches (id),
    chat_id    INTEGER NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (batch_id, chat_id)
);

-- Payout details typed in answer to the bot's prompt, shown back masked, waiting for Confirm.
CREATE TABLE payee_pending (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,      -- the token on the Confirm button
    rider_id    INTEGER NOT NULL UNIQUE REFERENCES users (id),
    real_name   TEXT NOT NULL,
    account     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Every change of a rider's payout details, so finance sees "details changed on <date>".
CREATE TABLE payee_changes (
    id          INTEGER PRIMARY KEY,
    rider_id    INTEGER NOT NULL REFERENCES users (id),
    changed_at  INTEGER NOT NULL
);
CREATE INDEX payee_changes_by_rider ON payee_changes (rider_id, changed_at);
