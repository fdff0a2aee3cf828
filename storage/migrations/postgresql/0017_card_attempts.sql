-- PostgreSQL twin of ../0017_card_attempts.sql.
-- When the bot last began sending a report's review card. Set before the send, cleared when
-- Telegram refused it (no copy exists), and left when the send's fate is unknown (the process
-- died mid-send, or the connection dropped): the next attempt then says an earlier copy may
-- be in the chat.
ALTER TABLE reports ADD COLUMN card_attempted_at BIGINT;
