-- Photos riders have sent, for the per-hour limit (photos_per_hour). A cancelled draft is
-- deleted with its photos, so the count cannot come from report_photos. Rows older than
-- the hour are deleted as new ones arrive.

CREATE TABLE photo_intake (
    id           INTEGER PRIMARY KEY,
    rider_id     INTEGER NOT NULL REFERENCES users (id),
    received_at  INTEGER NOT NULL                      -- unix seconds, UTC
);
CREATE INDEX photo_intake_by_rider ON photo_intake (rider_id, received_at);
