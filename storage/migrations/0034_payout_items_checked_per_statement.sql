-- PostgreSQL checks a statement's new payout_items together now, in one trigger per
-- statement instead of two foreign keys and a trigger per row
-- (postgresql/0034_payout_items_checked_per_statement.sql). SQLite has no statement-level
-- triggers, and its per-row checks cost it about 5 microseconds an item where PostgreSQL's
-- cost 25, so it keeps them: the foreign keys to ledger and payout_lines and
-- payout_items_only_while_open. Nothing changes here but the schema's version.
SELECT 1;
