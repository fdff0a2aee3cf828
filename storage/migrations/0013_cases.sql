-- Cases (即时办): an approved report becomes a case for the department that handles its
-- category, and is followed to fixed and confirmed. States and allowed changes live in
-- services/cases.py; every change is one guarded UPDATE plus one case_events row.

CREATE TABLE department_staff (
    department   TEXT NOT NULL,                         -- key from config.toml [[departments]]
    telegram_id  INTEGER NOT NULL,
    added_by     INTEGER NOT NULL,
    added_at     INTEGER NOT NULL,
    PRIMARY KEY (department, telegram_id)
);

-- Photos taken while handling a case: the staff's after-photo, a rider's photo on reopening.
-- Re-encoded JPEG without metadata, like the riders' evidence; `jpeg` NULL once purged.
CREATE TABLE case_photos (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('after', 'rider')),
    jpeg        BLOB,
    file_id     TEXT,                                   -- Telegram's id of our upload
    created_at  INTEGER NOT NULL
);

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY,
    report_id        INTEGER NOT NULL UNIQUE REFERENCES reports (id),
    department       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('dispatched', 'accepted', 'fixed',
                         'not_ours', 'cannot_fix', 'confirmed', 'reopened')),
    urgent           INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
    opened_at        INTEGER NOT NULL,                  -- the approval that made it a case
    dispatched_at    INTEGER NOT NULL,                  -- the latest dispatch (re-routing resets)
    due_at           INTEGER NOT NULL,                  -- dispatched_at + the category's fix_hours
    fixed_at         INTEGER,
    closed_at        INTEGER,                           -- confirmed or cannot_fix
    reopened         INTEGER NOT NULL DEFAULT 0,        -- times the rider said "not fixed"
    after_photo_id   INTEGER REFERENCES case_photos (id),
    note             TEXT,                              -- the latest reason given
    card_chat_id     INTEGER,                           -- the department chat's card
    card_message_id  INTEGER,                           -- NULL: the card is still to send
    reminded_at      INTEGER,                           -- 75% of the time gone, reminded
    breached_at      INTEGER,                           -- due time passed while open
    asked_at         INTEGER,                           -- the rider was asked "is it fixed?"
    updated_at       INTEGER NOT NULL
);
CREATE INDEX cases_by_state ON cases (state, due_at);
CREATE INDEX cases_cards_to_send ON cases (urgent, dispatched_at) WHERE card_message_id IS NULL;

-- Every change of a case: who (Telegram id; NULL for the clock), in which role, when, from
-- which state to which, the reason and a photo. Append-only.
CREATE TABLE case_events (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    actor       INTEGER,
    role        TEXT NOT NULL CHECK (role IN ('moderator', 'staff', 'rider', 'clock')),
    action      TEXT NOT NULL,
    from_state  TEXT,                                   -- NULL for the case's creation
    to_state    TEXT NOT NULL,
    department  TEXT NOT NULL,                          -- the case's department afterwards
    note        TEXT,
    photo_id    INTEGER REFERENCES case_photos (id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX case_events_by_case ON case_events (case_id, id);
CREATE TRIGGER case_events_no_update BEFORE UPDATE ON case_events
BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;
CREATE TRIGGER case_events_no_delete BEFORE DELETE ON case_events
BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;

-- The bot's "reply to this" prompts about a case (a reason, an after-photo, a rider's photo):
-- a reply is matched to its prompt by (chat, message), never by parsing the prompt's text.
CREATE TABLE case_prompts (
    chat_id         INTEGER NOT NULL,
    message_id      INTEGER NOT NULL,
    case_id         INTEGER NOT NULL REFERENCES cases (id),
    action          TEXT NOT NULL,
    expected_state  TEXT NOT NULL,
    department      TEXT,                               -- re-routing: the chosen department
    asked_of        INTEGER NOT NULL,                   -- only this person's reply counts
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
