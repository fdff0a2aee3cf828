-- PostgreSQL twin of ../0011_append_only.sql.
--
-- PostgreSQL has no INSERT OR REPLACE (an upsert is an UPDATE and meets the UPDATE
-- triggers), so the "no replace" guards SQLite needs are the unique constraints here.
-- A batch's lines, the entries they settle and its payout entries are written while it is
-- `open`, in the same transaction that creates it; once exported, nothing joins it.

CREATE FUNCTION refuse_unless_batch_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.batch_id IS NOT NULL
        AND (SELECT status FROM payout_batches WHERE id = NEW.batch_id) IS DISTINCT FROM 'open'
    THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation', MESSAGE = TG_ARGV[0];
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_payout_only_while_open BEFORE INSERT ON ledger
    FOR EACH ROW EXECUTE FUNCTION
    refuse_unless_batch_open('payout entries join a batch only while it is open');

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse('decisions are append-only');
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse('decisions are append-only');
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse('decisions are append-only');

CREATE TRIGGER payout_lines_only_while_open BEFORE INSERT ON payout_lines
    FOR EACH ROW EXECUTE FUNCTION
    refuse_unless_batch_open('payout lines are added only while their batch is open');
CREATE TRIGGER payout_items_only_while_open BEFORE INSERT ON payout_items
    FOR EACH ROW EXECUTE FUNCTION
    refuse_unless_batch_open('payout items are added only while their batch is open');

-- A batch is born open, and never takes another batch's id or period key.
CREATE TRIGGER payout_batches_born_open BEFORE INSERT ON payout_batches
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM 'open')
    EXECUTE FUNCTION refuse('a payout batch starts open');
CREATE TRIGGER payout_batches_same_identity BEFORE UPDATE OF id, period_key ON payout_batches
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.period_key IS DISTINCT FROM OLD.period_key)
    EXECUTE FUNCTION refuse('a payout batch keeps its id and period key');
