-- PostgreSQL twin of ../0024_schema_parity.sql.
-- What the schema parity test (tests/test_schema_parity.py) found SQLite doing differently:
-- here redemption_codes.code, a PRIMARY KEY, is NOT NULL already, so nothing changes.
SELECT 1;
