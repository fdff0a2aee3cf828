-- PostgreSQL twin of ../0008_question_expiry.sql.
-- A moderator's question waits for the rider's answer: reminded once, then it expires and the
-- report returns to the moderators.
ALTER TABLE reports ADD COLUMN asked_at BIGINT;              -- when the open question was asked
ALTER TABLE reports ADD COLUMN question_reminded_at BIGINT;  -- the rider was reminded of it
UPDATE reports SET asked_at = updated_at WHERE status = 'needs_info';
CREATE INDEX reports_open_questions ON reports (asked_at) WHERE status = 'needs_info';
