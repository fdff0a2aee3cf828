-- Voice notes in a report (issue 21): Telegram's file id (the bot keeps no audio bytes),
-- its length and size, in the order the rider sent them. Erased with the rider's photos.
CREATE TABLE report_voices (
    report_id       INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    file_id         TEXT,
    file_unique_id  TEXT NOT NULL,
    seconds         INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (report_id, position),
    UNIQUE (report_id, file_unique_id)
);
