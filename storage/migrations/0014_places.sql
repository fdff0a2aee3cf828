-- Care for the riders (issue 12): service stations and friendly merchants from the county's
-- places file, an R*Tree for the nearest search, problems riders flag at a place, merchant
-- staff, riders' last shared location and the name shown on their card.

-- One imported file; at most one current set and one previous set (kept for one undo).
CREATE TABLE place_sets (
    id           INTEGER PRIMARY KEY,
    state        TEXT NOT NULL CHECK (state IN ('current', 'previous')),
    loaded_at    INTEGER NOT NULL,
    loaded_by    INTEGER NOT NULL,                      -- the admin's Telegram id
    place_count  INTEGER NOT NULL,
    file_name    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX place_sets_one_per_state ON place_sets (state);

CREATE TABLE places (
    id         INTEGER PRIMARY KEY,
    set_id     INTEGER NOT NULL REFERENCES place_sets (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('station', 'merchant')),
    name       TEXT NOT NULL,                           -- unique per kind: how staff name it
    address    TEXT NOT NULL,
    town       TEXT NOT NULL DEFAULT '',
    lat        REAL NOT NULL,                           -- WGS-84, converted on import
    lon        REAL NOT NULL,
    hours      TEXT NOT NULL,                           -- JSON of services.places.Hours
    amenities  TEXT NOT NULL DEFAULT '',                -- comma-separated keys
    benefit    TEXT NOT NULL DEFAULT '',
    prices     TEXT NOT NULL DEFAULT '[]',              -- JSON [[item, points], ...]
    phone      TEXT NOT NULL DEFAULT '',
    UNIQUE (set_id, kind, name)
);
CREATE INDEX places_by_town ON places (set_id, town, name);

-- Every place of every kept set, as a point; nearest search prefilters by box here.
CREATE VIRTUAL TABLE places_rtree USING rtree (id, min_lat, max_lat, min_lon, max_lon);
CREATE TRIGGER places_rtree_add AFTER INSERT ON places
BEGIN
    INSERT INTO places_rtree VALUES (NEW.id, NEW.lat, NEW.lat, NEW.lon, NEW.lon);
END;
CREATE TRIGGER places_rtree_remove AFTER DELETE ON places
BEGIN
    DELETE FROM places_rtree WHERE id = OLD.id;
END;

-- "Closed / something broken here": by place kind and name, so they outlive re-imports.
CREATE TABLE place_problems (
    id             INTEGER PRIMARY KEY,
    place_kind     TEXT NOT NULL,
    place_name     TEXT NOT NULL,
    rider_id       INTEGER REFERENCES users (id),       -- NULL once the rider is erased
    photo_file_id  TEXT,
    created_at     INTEGER NOT NULL,
    fixed_at       INTEGER,
    fixed_by       INTEGER
);
CREATE INDEX place_problems_by_place ON place_problems (place_kind, place_name, fixed_at);

-- Merchant staff, registered by admins; each works for one merchant (named as in the file).
CREATE TABLE merchant_staff (
    telegram_id    INTEGER PRIMARY KEY,
    merchant_name  TEXT NOT NULL,
    added_by       INTEGER NOT NULL,
    added_at       INTEGER NOT NULL
);

-- A rider's latest shared location, for "near me" without sharing it again the same day.
CREATE TABLE rider_locations (
    rider_id  INTEGER PRIMARY KEY REFERENCES users (id),
    lat       REAL NOT NULL,
    lon       REAL NOT NULL,
    at        INTEGER NOT NULL
);

-- When a rider last asked "near me" without a location: their next location answers it.
CREATE TABLE nearby_asks (
    rider_id  INTEGER PRIMARY KEY REFERENCES users (id),
    asked_at  INTEGER NOT NULL
);

-- The masked name printed on a rider's 联新卡 (never the full name).
CREATE TABLE rider_cards (
    rider_id     INTEGER PRIMARY KEY REFERENCES users (id),
    masked_name  TEXT NOT NULL,
    issued_at    INTEGER NOT NULL
);

-- Erasing a rider (/delete) forgets their location, card name and who flagged a place.
CREATE TRIGGER care_forget_rider AFTER UPDATE OF erased_at ON users
WHEN NEW.erased_at IS NOT NULL
BEGIN
    DELETE FROM rider_locations WHERE rider_id = NEW.id;
    DELETE FROM nearby_asks WHERE rider_id = NEW.id;
    DELETE FROM rider_cards WHERE rider_id = NEW.id;
    UPDATE place_problems SET rider_id = NULL, photo_file_id = NULL WHERE rider_id = NEW.id;
END;
