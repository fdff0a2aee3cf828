-- /stats counts a year of reports per local week, ranks their review times and counts them
-- by status and category (issue 23). These covering indexes let SQLite read only the index:
-- by submission time with the category, by decision time with what a decision's time and
-- its verification count need, and by status and category for the all-time counts, which
-- reports_by_status (status, submitted_at) answered by visiting every row. The same on
-- PostgreSQL, where the two engines keep one schema.
CREATE INDEX reports_by_submission ON reports (submitted_at, category);
CREATE INDEX reports_by_decision ON reports (decided_at, submitted_at, status);
CREATE INDEX reports_by_status_category ON reports (status, category, submitted_at);
