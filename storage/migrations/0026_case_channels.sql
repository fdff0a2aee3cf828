-- A case sent back (返工) or re-routed is not fixed until it is fixed again: before this, a
-- fresh dispatch kept the earlier fix's time, which counted as fixed (and in time) in
-- 部门绩效 and gave negative fix times.
UPDATE cases SET fixed_at = NULL WHERE state NOT IN ('fixed', 'confirmed');

-- Cases handed to departments by their own channel (issue 20): e-mail, a signed webhook,
-- Open311. One delivery per dispatch of a case to such a department, retried from here
-- until the other side takes it; each attempt is recorded.
CREATE TABLE case_deliveries (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases (id),
    department      TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'open311')),
    dispatched_at   INTEGER NOT NULL,                   -- which dispatch of the case
    idempotency_key TEXT NOT NULL UNIQUE,               -- the same on every attempt
    created_at      INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,                   -- the next attempt, while undelivered
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER,
    superseded_at   INTEGER,                            -- rerouted or closed before it went
    alerted_at      INTEGER,                            -- admins told "not delivered"
    remote_id       TEXT,                               -- Open311's service_request_id
    remote_status   TEXT,                               -- the last status polled
    polled_at       INTEGER
);
CREATE INDEX case_deliveries_waiting ON case_deliveries (department, id)
    WHERE delivered_at IS NULL AND superseded_at IS NULL;
CREATE INDEX case_deliveries_by_case ON case_deliveries (case_id, id);

CREATE TABLE case_delivery_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES case_deliveries (id),
    at           INTEGER NOT NULL,
    ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
    detail       TEXT NOT NULL,                          -- "HTTP 503", "250 OK", "timed out"
    ms           INTEGER NOT NULL
);
CREATE INDEX case_delivery_attempts_by_delivery ON case_delivery_attempts (delivery_id, id);

-- Status updates a department's system sent back, once each: a replay answers as before.
CREATE TABLE case_updates (
    department   TEXT NOT NULL,
    update_id    TEXT NOT NULL,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    status       TEXT NOT NULL,
    answer       TEXT NOT NULL,                          -- the JSON answered the first time
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (department, update_id)
);
