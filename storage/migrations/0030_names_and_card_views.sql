-- People named, not numbered (issue 21): what Telegram last called each moderator, admin and
-- department or merchant staff member, so cards and lists show names. Riders are not kept
-- here.
CREATE TABLE staff_names (
    telegram_id  INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    username     TEXT,
    seen_at      INTEGER NOT NULL
);

-- A review card's private copies a moderator acted on (a proposal from /queue): a decision
-- made elsewhere is shown there too.
CREATE TABLE card_views (
    report_id   INTEGER NOT NULL REFERENCES reports (id),
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (report_id, chat_id, message_id)
);
