-- How many times an update taken and never finished has been handed to a new process: one
-- that killed the process each time (a hostile file, a crash in a library) is set aside after
-- a few tries instead of being replayed at every start for ever.
ALTER TABLE update_inbox ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
