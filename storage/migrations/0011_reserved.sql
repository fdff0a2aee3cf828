-- Placeholder so this branch's migrations stay consecutive; another branch owns 0011.
-- (Delete at merge: the cases migration is renumbered after the real 0011/0011.)
SELECT 1;
