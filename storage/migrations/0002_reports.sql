-- Riders' reports, from the first photo (a draft, written at every step) to a decision.
-- A draft row is the rider's progress: after a restart they continue from `step`.

ALTER TABLE users ADD COLUMN consented_at INTEGER;      -- agreed to the privacy notice
ALTER TABLE users ADD COLUMN erased_at INTEGER;         -- personal data erased on request

CREATE TABLE reports (
    id                INTEGER PRIMARY KEY,
    reference         TEXT UNIQUE,                      -- R-YYYYMMDD-NNNN, given at submission
    rider_id          INTEGER NOT NULL REFERENCES users (id),
    status            TEXT NOT NULL DEFAULT 'draft' CHECK (status IN (
                          'draft', 'pending', 'needs_info', 'approved', 'rejected',
                          'duplicate', 'reversed', 'expired', 'withdrawn')),
    step              TEXT NOT NULL DEFAULT 'photos' CHECK (step IN (
                          'photos', 'category', 'description', 'confirm')),
    latitude          REAL,
    longitude         REAL,
    location_source   TEXT CHECK (location_source IN ('shared', 'venue', 'live', 'photo')),
    photo_distance_m  REAL,                             -- shared location vs the photo's GPS
    category          TEXT,
    description       TEXT,
    created_at        INTEGER NOT NULL,                 -- unix seconds, UTC, throughout
    updated_at        INTEGER NOT NULL,
    reminded_at       INTEGER,                          -- the draft's expiry reminder
    submitted_at      INTEGER,
    deadline_at       INTEGER                           -- the 24-hour promise
);
CREATE UNIQUE INDEX reports_one_draft_per_rider ON reports (rider_id) WHERE status = 'draft';
CREATE INDEX reports_by_rider ON reports (rider_id, submitted_at);
CREATE INDEX reports_by_status ON reports (status, submitted_at);
CREATE INDEX reports_by_place ON reports (latitude, longitude, submitted_at);

CREATE TABLE report_photos (
    id                INTEGER PRIMARY KEY,
    report_id         INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,                 -- 1..max_photos, in the order sent
    file_unique_id    TEXT NOT NULL,                    -- Telegram's id of the rider's file
    sha256            TEXT NOT NULL,                    -- of the bytes the rider sent
    phash             INTEGER NOT NULL,                 -- 64-bit difference hash, as signed int64
    evidence          BLOB,                             -- re-encoded JPEG, no metadata; NULL once purged
    evidence_file_id  TEXT,                             -- Telegram's id of our upload of `evidence`
    taken_at          INTEGER,                          -- EXIF capture time
    gps_latitude      REAL,                             -- EXIF position
    gps_longitude     REAL,
    not_fresh         INTEGER NOT NULL DEFAULT 0 CHECK (not_fresh IN (0, 1)),
    created_at        INTEGER NOT NULL,
    UNIQUE (report_id, position)
);
CREATE INDEX report_photos_by_sha256 ON report_photos (sha256);
CREATE INDEX report_photos_by_unique_id ON report_photos (file_unique_id);
