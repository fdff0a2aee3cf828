-- PostgreSQL twin of ../0005_payee_requests.sql.
-- The bot asked the rider for payout details and waits for them (their next text answers).
ALTER TABLE users ADD COLUMN payee_asked_at BIGINT;
