-- PostgreSQL twin of ../0012_decisions_erasure.sql.
-- Decisions are append-only, with one exception the privacy notice promises: when a rider
-- uses /delete, the words of a question or an answer (and the answer's author, the rider)
-- may be blanked. Nothing else about a decision can change.
DROP TRIGGER decisions_no_update ON decisions;
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    FOR EACH ROW WHEN (NOT (
        OLD.action IN ('ask', 'answer')
        AND NEW.detail IS NULL
        AND NEW.id = OLD.id
        AND NEW.report_id = OLD.report_id
        AND NEW.action = OLD.action
        AND NEW.previous_status = OLD.previous_status
        AND NEW.new_status = OLD.new_status
        AND NEW.amount_fen IS NOT DISTINCT FROM OLD.amount_fen
        AND NEW.created_at = OLD.created_at
        AND (NEW.moderator_id = OLD.moderator_id
             OR (OLD.action = 'answer' AND NEW.moderator_id = 0))
    ))
    EXECUTE FUNCTION refuse('decisions are append-only');
