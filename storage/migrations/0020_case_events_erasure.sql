-- Case events are append-only, with the one exception decisions have: when a rider uses
-- /delete, what the rider said on a case (the reason, the photo, who they were) may be
-- blanked. Nothing else about an event can change.
DROP TRIGGER case_events_no_update;
CREATE TRIGGER case_events_no_update BEFORE UPDATE ON case_events
WHEN NOT (
    OLD.role = 'rider'
    AND NEW.note IS NULL
    AND NEW.photo_id IS NULL
    AND NEW.actor IS 0
    AND NEW.id = OLD.id
    AND NEW.case_id = OLD.case_id
    AND NEW.role = OLD.role
    AND NEW.action = OLD.action
    AND NEW.from_state IS OLD.from_state
    AND NEW.to_state = OLD.to_state
    AND NEW.department = OLD.department
    AND NEW.created_at = OLD.created_at
)
BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;
