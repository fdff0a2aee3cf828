-- Cases as a county is assessed on them (issue 19).
-- The town (乡镇/街道) and grid (网格) a report's location falls in, tagged at submission.
ALTER TABLE reports ADD COLUMN town TEXT;
ALTER TABLE reports ADD COLUMN grid TEXT;
ALTER TABLE reports ADD COLUMN venue_name TEXT;         -- the place named by a shared venue
-- Two deadlines per dispatch: accept (签收) and fix, each with its 75% reminder point
-- (counted in working time when the category counts working days). NULL accept_due_at: a
-- case dispatched before deadlines to accept existed.
ALTER TABLE cases ADD COLUMN accept_due_at INTEGER;
ALTER TABLE cases ADD COLUMN accept_remind_at INTEGER;
ALTER TABLE cases ADD COLUMN accepted_at INTEGER;
ALTER TABLE cases ADD COLUMN accept_reminded_at INTEGER;
ALTER TABLE cases ADD COLUMN accept_breached_at INTEGER;
ALTER TABLE cases ADD COLUMN remind_at INTEGER;
ALTER TABLE cases ADD COLUMN urged_at INTEGER;              -- the automatic 催办, once per dispatch
UPDATE cases SET remind_at = dispatched_at + (due_at - dispatched_at) * 3 / 4;

-- 延期: a department's request for more time, decided by a moderator or admin.
CREATE TABLE case_extensions (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    department  TEXT NOT NULL,                          -- the department that asked
    asked_by    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    old_due_at  INTEGER NOT NULL,
    new_due_at  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'refused')),
    decided_by  INTEGER,
    asked_at    INTEGER NOT NULL,
    decided_at  INTEGER
);
CREATE UNIQUE INDEX case_extensions_one_pending ON case_extensions (case_id)
    WHERE state = 'pending';

-- 督办: an admin's supervision notice; the department must reply by reply_due_at.
CREATE TABLE case_supervisions (
    id            INTEGER PRIMARY KEY,
    case_id       INTEGER NOT NULL REFERENCES cases (id),
    issued_by     INTEGER NOT NULL,
    text          TEXT NOT NULL,
    issued_at     INTEGER NOT NULL,
    reply_due_at  INTEGER NOT NULL,
    reply         TEXT,
    replied_by    INTEGER,
    replied_at    INTEGER,
    escalated_at  INTEGER
);
CREATE INDEX case_supervisions_by_case ON case_supervisions (case_id, id);

-- 回访: each reporter's satisfaction with each fix (round = cases.reopened when asked).
-- silent = 1: nobody answered within confirm_days and it counts as 基本满意, apart from
-- real answers.
CREATE TABLE case_feedback (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    report_id   INTEGER NOT NULL REFERENCES reports (id),
    round       INTEGER NOT NULL,
    answer      TEXT NOT NULL CHECK (answer IN ('satisfied', 'basic', 'unsatisfied')),
    silent      INTEGER NOT NULL DEFAULT 0 CHECK (silent IN (0, 1)),
    reason      TEXT,
    photo_id    INTEGER REFERENCES case_photos (id),
    created_at  INTEGER NOT NULL,
    UNIQUE (case_id, report_id, round)
);
