-- Updates from Telegram, written down before the bot confirms them to Telegram (the next
-- getUpdates offset, or the webhook's 200): one the process took but did not finish handling
-- is handled after a restart or by the standby. A handled update keeps only its id and time,
-- so that Telegram sending it again (its offset never confirmed) is not handled twice.
CREATE TABLE update_inbox (
    update_id    INTEGER PRIMARY KEY,
    payload      TEXT,
    received_at  INTEGER NOT NULL,
    handled_at   INTEGER
);
CREATE INDEX update_inbox_unhandled ON update_inbox (update_id) WHERE handled_at IS NULL;
