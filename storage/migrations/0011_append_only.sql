-- The money tables really are append-only, whatever connection writes to them.
--
-- `INSERT OR REPLACE` (and `UPDATE OR REPLACE`) delete the conflicting row without firing
-- DELETE triggers unless the connection turned `recursive_triggers` on, which the bot does
-- but a stray script need not. So each append-only table refuses, before anything happens,
-- an insert whose key is already taken: a plain duplicate fails as it always did, and a
-- REPLACE fails instead of swapping the row. (Callers that insert idempotently check for
-- the key first; `ON CONFLICT DO NOTHING` would now fail too.) In a BEFORE INSERT trigger
-- NEW.id is -1 unless the statement gives an id, so only an explicit id can match a row.
--
-- A batch's lines, the entries they settle and its payout entries are written while it is
-- `open`, in the same transaction that creates it; once exported, nothing joins it.

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

CREATE TRIGGER decisions_no_replace BEFORE INSERT ON decisions
WHEN EXISTS (SELECT 1 FROM decisions WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'decisions are append-only: this decision exists');
END;
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are append-only');
END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are append-only');
END;

CREATE TRIGGER payout_lines_only_while_open BEFORE INSERT ON payout_lines
WHEN (SELECT status FROM payout_batches WHERE id = NEW.batch_id) IS NOT 'open'
BEGIN
    SELECT RAISE(ABORT, 'payout lines are added only while their batch is open');
END;
CREATE TRIGGER payout_lines_no_replace BEFORE INSERT ON payout_lines
WHEN EXISTS (SELECT 1 FROM payout_lines WHERE batch_id = NEW.batch_id AND rider_id = NEW.rider_id)
    OR EXISTS (SELECT 1 FROM payout_lines WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'payout lines are append-only: this line exists');
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

-- A batch is born open, and never takes another batch's id or period key (which
-- `UPDATE OR REPLACE` would do by deleting that batch).
CREATE TRIGGER payout_batches_born_open BEFORE INSERT ON payout_batches
WHEN NEW.status IS NOT 'open'
BEGIN
    SELECT RAISE(ABORT, 'a payout batch starts open');
END;
CREATE TRIGGER payout_batches_no_replace BEFORE INSERT ON payout_batches
WHEN EXISTS (SELECT 1 FROM payout_batches WHERE period_key = NEW.period_key)
    OR EXISTS (SELECT 1 FROM payout_batches WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'payout batches are never replaced');
END;
CREATE TRIGGER payout_batches_same_identity BEFORE UPDATE OF id, period_key ON payout_batches
WHEN NEW.id IS NOT OLD.id OR NEW.period_key IS NOT OLD.period_key
BEGIN
    SELECT RAISE(ABORT, 'a payout batch keeps its id and period key');
END;
