-- What the schema parity test (tests/test_schema_parity.py) found SQLite doing differently.
--
-- redemption_codes.code was a TEXT PRIMARY KEY without NOT NULL, which SQLite (unlike
-- PostgreSQL, and unlike an INTEGER PRIMARY KEY) lets hold NULL. SQLite cannot add NOT NULL
-- to a column, so the table is rebuilt with the same rows; nothing refers to it and it has
-- no triggers, so the copy, drop and rename keep every foreign key whole (foreign_keys on).

CREATE TABLE redemption_codes_new (
    code           TEXT NOT NULL PRIMARY KEY,           -- 8 of 23456789ABCDEFGHJKMNPQRSTUVWXYZ
    rider_id       INTEGER NOT NULL REFERENCES users (id),
    merchant_name  TEXT NOT NULL,
    item           TEXT NOT NULL,
    points         INTEGER NOT NULL CHECK (points > 0),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used', 'cancelled')),
    used_at        INTEGER,
    used_by        INTEGER,                             -- the staff member's Telegram id
    press          TEXT,                                -- the button press that asked for it
    CHECK (status <> 'used' OR (used_at IS NOT NULL AND used_by IS NOT NULL))
);
INSERT INTO redemption_codes_new (code, rider_id, merchant_name, item, points, created_at,
    expires_at, status, used_at, used_by, press)
SELECT code, rider_id, merchant_name, item, points, created_at, expires_at, status, used_at,
    used_by, press FROM redemption_codes;
DROP TABLE redemption_codes;
ALTER TABLE redemption_codes_new RENAME TO redemption_codes;

CREATE INDEX redemption_codes_by_rider ON redemption_codes (rider_id, created_at);
CREATE INDEX redemption_codes_by_merchant ON redemption_codes (merchant_name, used_at);
CREATE UNIQUE INDEX redemption_codes_press ON redemption_codes (press);
