-- /ask (issue 21): a rider's question for a person, sent to the moderators' chat; their
-- reply goes back to the rider. Erased with the rider's other words by /delete.
CREATE TABLE rider_asks (
    id           INTEGER PRIMARY KEY,
    rider_id     INTEGER REFERENCES users (id),
    text         TEXT,
    asked_at     INTEGER NOT NULL,
    answered_at  INTEGER,
    answered_by  INTEGER
);
CREATE INDEX rider_asks_by_rider ON rider_asks (rider_id, answered_at);
