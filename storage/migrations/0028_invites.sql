-- One-time invitations (issue 21): an admin's deep link that makes whoever taps it a
-- moderator, a department's staff or a merchant's staff; signed, expiring, used once.
CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('moderator', 'staff', 'merchant')),
    target      TEXT,                                   -- the department key or merchant name
    created_by  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_by     INTEGER,
    used_at     INTEGER
);
