-- Placeholder so this branch's migrations stay consecutive; another branch owns 0010.
-- (Delete at merge: the cases migration is renumbered after the real 0010/0011.)
SELECT 1;
