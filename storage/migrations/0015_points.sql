-- Points that buy something (issue 12): one-time redemption codes, and a `redemption` kind
-- in the ledger (points only, never yuan) with the key `redeem:<code>`.
--
-- SQLite cannot change a CHECK constraint, so the ledger is rebuilt with the same rows and
-- ids. payout_items refers to ledger rows; it is copied aside and rebuilt after the new
-- ledger takes the name, so no foreign key is ever broken (foreign_keys stays on).

CREATE TABLE ledger_new (
    id               INTEGER PRIMARY KEY,
    rider_id         INTEGER NOT NULL REFERENCES users (id),
    kind             TEXT NOT NULL CHECK (kind IN ('reward', 'reversal', 'payout', 'redemption')),
    amount_fen       INTEGER NOT NULL,
    points           INTEGER NOT NULL DEFAULT 0,
    report_id        INTEGER REFERENCES reports (id),
    batch_id         INTEGER REFERENCES payout_batches (id),
    idempotency_key  TEXT NOT NULL UNIQUE,  -- reward:<report>, reversal:<report>, payout:<batch>:<rider>, redeem:<code>
    memo             TEXT,                  -- e.g. the reason for a reversal, the item redeemed
    created_at       INTEGER NOT NULL,
    CHECK (
        (kind = 'reward' AND amount_fen >= 0 AND points >= 0
            AND report_id IS NOT NULL AND batch_id IS NULL
            AND idempotency_key = 'reward:' || report_id)
        OR (kind = 'reversal' AND amount_fen <= 0 AND points <= 0
            AND report_id IS NOT NULL AND batch_id IS NULL
            AND idempotency_key = 'reversal:' || report_id)
        OR (kind = 'payout' AND amount_fen < 0 AND points = 0
            AND report_id IS NULL AND batch_id IS NOT NULL
            AND idempotency_key = 'payout:' || batch_id || ':' || rider_id)
        OR (kind = 'redemption' AND amount_fen = 0 AND points < 0
            AND report_id IS NULL AND batch_id IS NULL
            AND idempotency_key LIKE 'redeem:%')
    )
);
INSERT INTO ledger_new (id, rider_id, kind, amount_fen, points, report_id, batch_id,
    idempotency_key, memo, created_at)
SELECT id, rider_id, kind, amount_fen, points, report_id, batch_id, idempotency_key, memo,
    created_at FROM ledger;

CREATE TEMP TABLE payout_items_copy AS SELECT ledger_id, batch_id, rider_id FROM payout_items;
DROP TABLE payout_items;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;

CREATE INDEX ledger_by_rider ON ledger (rider_id, created_at);
CREATE INDEX ledger_by_batch ON ledger (batch_id) WHERE batch_id IS NOT NULL;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;
-- A redemption never takes a rider's points below zero.
CREATE TRIGGER ledger_points_not_negative BEFORE INSERT ON ledger
WHEN NEW.kind = 'redemption' AND (
    SELECT COALESCE(SUM(points), 0) FROM ledger WHERE rider_id = NEW.rider_id
) + NEW.points < 0
BEGIN
    SELECT RAISE(ABORT, 'points would go negative');
END;

CREATE TABLE payout_items (
    ledger_id  INTEGER PRIMARY KEY REFERENCES ledger (id),
    batch_id   INTEGER NOT NULL,
    rider_id   INTEGER NOT NULL,
    FOREIGN KEY (batch_id, rider_id) REFERENCES payout_lines (batch_id, rider_id)
);
INSERT INTO payout_items (ledger_id, batch_id, rider_id)
SELECT ledger_id, batch_id, rider_id FROM temp.payout_items_copy;
DROP TABLE temp.payout_items_copy;
CREATE TRIGGER payout_items_no_update BEFORE UPDATE ON payout_items
BEGIN
    SELECT RAISE(ABORT, 'payout items are append-only');
END;
CREATE TRIGGER payout_items_no_delete BEFORE DELETE ON payout_items
BEGIN
    SELECT RAISE(ABORT, 'payout items are append-only');
END;

-- A code a rider shows at a merchant: issued -> used (by one staff member, once) or
-- cancelled (by the rider); an issued code past expires_at is simply refused.
CREATE TABLE redemption_codes (
    code           TEXT PRIMARY KEY,                    -- 8 of 23456789ABCDEFGHJKMNPQRSTUVWXYZ
    rider_id       INTEGER NOT NULL REFERENCES users (id),
    merchant_name  TEXT NOT NULL,
    item           TEXT NOT NULL,
    points         INTEGER NOT NULL CHECK (points > 0),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used', 'cancelled')),
    used_at        INTEGER,
    used_by        INTEGER,                             -- the staff member's Telegram id
    CHECK (status <> 'used' OR (used_at IS NOT NULL AND used_by IS NOT NULL))
);
CREATE INDEX redemption_codes_by_rider ON redemption_codes (rider_id, created_at);
CREATE INDEX redemption_codes_by_merchant ON redemption_codes (merchant_name, used_at);


-- The rebuild dropped the append-only guards of 0011 on these two tables: the same again.
CREATE TRIGGER ledger_no_replace BEFORE INSERT ON ledger
WHEN EXISTS (SELECT 1 FROM ledger WHERE idempotency_key = NEW.idempotency_key)
    OR EXISTS (SELECT 1 FROM ledger WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only: this entry exists');
END;
CREATE TRIGGER ledger_payout_only_while_open BEFORE INSERT ON ledger
WHEN NEW.batch_id IS NOT NULL
    AND (SELECT status FROM payout_batches WHERE id = NEW.batch_id) IS NOT 'open'
BEGIN
    SELECT RAISE(ABORT, 'payout entries join a batch only while it is open');
END;
CREATE TRIGGER payout_items_only_while_open BEFORE INSERT ON payout_items
WHEN (SELECT status FROM payout_batches WHERE id = NEW.batch_id) IS NOT 'open'
BEGIN
    SELECT RAISE(ABORT, 'payout items are added only while their batch is open');
END;
CREATE TRIGGER payout_items_no_replace BEFORE INSERT ON payout_items
WHEN EXISTS (SELECT 1 FROM payout_items WHERE ledger_id = NEW.ledger_id)
BEGIN
    SELECT RAISE(ABORT, 'payout items are append-only: this entry is settled');
END;
