-- PostgreSQL twin of ../0015_points.sql: one-time redemption codes, and a `redemption`
-- kind in the ledger (points only, never yuan) with the key `redeem:<code>`. PostgreSQL can
-- change a CHECK constraint in place, so the ledger is not rebuilt.

ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check
    CHECK (kind IN ('reward', 'reversal', 'payout', 'redemption'));
ALTER TABLE ledger DROP CONSTRAINT ledger_entry_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_entry_check CHECK (
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
);

-- A redemption never takes a rider's points below zero. Writers are serialised (the write
-- lock in storage/postgres.py), so the sum read here is not raced.
CREATE FUNCTION ledger_points_not_negative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COALESCE(SUM(points), 0) FROM ledger WHERE rider_id = NEW.rider_id) + NEW.points < 0
    THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'points would go negative';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ledger_points_not_negative BEFORE INSERT ON ledger
    FOR EACH ROW WHEN (NEW.kind = 'redemption') EXECUTE FUNCTION ledger_points_not_negative();

-- A code a rider shows at a merchant: issued -> used (by one staff member, once) or
-- cancelled (by the rider); an issued code past expires_at is simply refused.
CREATE TABLE redemption_codes (
    code           TEXT PRIMARY KEY,                    -- 8 of 23456789ABCDEFGHJKMNPQRSTUVWXYZ
    rider_id       BIGINT NOT NULL REFERENCES users (id),
    merchant_name  TEXT NOT NULL,
    item           TEXT NOT NULL,
    points         BIGINT NOT NULL CHECK (points > 0),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used', 'cancelled')),
    used_at        BIGINT,
    used_by        BIGINT,                             -- the staff member's Telegram id
    CHECK (status <> 'used' OR (used_at IS NOT NULL AND used_by IS NOT NULL))
);
CREATE INDEX redemption_codes_by_rider ON redemption_codes (rider_id, created_at);
CREATE INDEX redemption_codes_by_merchant ON redemption_codes (merchant_name, used_at);
