-- People who have talked to the bot. Money records refer to the internal id, so when a rider
-- asks to be forgotten their Telegram id can be erased while the accounts still balance.
-- Until a rider agrees to the privacy notice, nothing but the Telegram id and the language
-- they chose is kept.
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,                      -- internal id
    telegram_id  INTEGER UNIQUE,                           -- NULL once erased
    language     TEXT CHECK (language IN ('zh', 'en')),    -- chosen with /language; NULL follows Telegram
    created_at   INTEGER NOT NULL                          -- unix seconds, UTC
);
