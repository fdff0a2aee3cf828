-- What a rider says is wrong at a place (issue 21): closed, broken, gone or other; asked
-- before anyone is alerted. Problems from before this were "closed or broken".
ALTER TABLE place_problems ADD COLUMN what TEXT NOT NULL DEFAULT 'other';
