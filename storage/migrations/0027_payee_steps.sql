-- Payout details asked for step by step (issue 21): the open step, and the name already
-- given. While a step is open, and only then, the rider's next text is read as its answer.
CREATE TABLE payee_steps (
    rider_id    INTEGER PRIMARY KEY REFERENCES users (id),
    step        TEXT NOT NULL CHECK (step IN ('name', 'account')),
    real_name   TEXT,
    opened_at   INTEGER NOT NULL
);
