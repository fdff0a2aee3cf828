-- PostgreSQL twin of ../0018_payout_lines_by_rider.sql.
-- A rider's earlier payout lines, found by rider: the finance file compares each line's
-- payout details with the rider's previous batch, which without this index scanned every
-- line for every line (100,000 riders: a batch that never finished).
CREATE INDEX payout_lines_by_rider ON payout_lines (rider_id, batch_id);
