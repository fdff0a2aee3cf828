-- PostgreSQL twin of ../0022_case_card_attempts.sql.
-- When the bot last began sending a case's department card, as reports.card_attempted_at
-- (0017) is for review cards. Set before the send, cleared when Telegram refused it or took it
-- (and on a fresh dispatch), and left when the send's fate is unknown (the process died
-- mid-send, or the connection dropped): the next attempt then says an earlier copy may be in
-- the chat.
ALTER TABLE cases ADD COLUMN card_attempted_at BIGINT;
