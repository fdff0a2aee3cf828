-- Money: an append-only ledger in integer fen, payout details, and payout batches.
-- A rider's balance is the sum of their ledger entries. A payout batch settles ledger entries
-- (payout_items: each reward or reversal is settled by at most one batch line) and pays each
-- line's sum with one negative `payout` entry, so money is never paid twice for a report.

CREATE TABLE payout_batches (
    id            INTEGER PRIMARY KEY,
    period_key    TEXT NOT NULL UNIQUE,                 -- 2026-W48 (scheduled) or adhoc-<unix>
    kind          TEXT NOT NULL CHECK (kind IN ('scheduled', 'adhoc')),
    period_start  INTEGER NOT NULL,                     -- unix seconds; shown in the file
    period_end    INTEGER NOT NULL,                     -- pays rewards credited before this
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'exported', 'paid')),
    total_fen     INTEGER NOT NULL DEFAULT 0,
    line_count    INTEGER NOT NULL DEFAULT 0,
    file_sha256   TEXT,                                 -- of file_xlsx
    file_xlsx     BLOB,
    file_csv      BLOB,                                 -- UTF-8 with BOM
    created_at    INTEGER NOT NULL,
    exported_at   INTEGER,
    announced_at  INTEGER,                              -- file sent and riders told
    paid_at       INTEGER,
    paid_by       INTEGER,                              -- the admin's Telegram id
    CHECK (period_start <= period_end),
    CHECK (status = 'open' OR (file_sha256 IS NOT NULL AND exported_at IS NOT NULL)),
    CHECK (status <> 'paid' OR (paid_at IS NOT NULL AND paid_by IS NOT NULL))
);
CREATE INDEX payout_batches_by_status ON payout_batches (status);
CREATE INDEX payout_batches_by_end ON payout_batches (kind, period_end);

CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    rider_id         INTEGER NOT NULL REFERENCES users (id),
    kind             TEXT NOT NULL CHECK (kind IN ('reward', 'reversal', 'payout')),
    amount_fen       INTEGER NOT NULL,
    points           INTEGER NOT NULL DEFAULT 0,
    report_id        INTEGER REFERENCES reports (id),
    batch_id         INTEGER REFERENCES payout_batches (id),
    idempotency_key  TEXT NOT NULL UNIQUE,  -- reward:<report>, reversal:<report>, payout:<batch>:<rider>
    memo             TEXT,                  -- e.g. the reason for a reversal
    created_at       INTEGER NOT NULL,
    CHECK (
        (kind = 'reward' AND amount_fen >= 0 AND points >= 0
            AND report_id IS NOT NULL AND batch_id IS NULL
            AND idempotency_key = 'reward:' || report_id)
        OR (kind = 'reversal' AND amount_fen <= 0 AND points <= 0
            AND report_id IS NOT NULL AND batch_id IS NULL
            AND idempotency_key = 'reversal:' || report_id)
        OR (kind = 'payout' AND amount_fen < 0 AND points = 0
            AND report_id IS NULL AND batch_id IS NOT NULL
            AND idempotency_key = 'payout:' || batch_id || ':' || rider_id)
    )
);
CREATE INDEX ledger_by_rider ON ledger (rider_id, created_at);
CREATE INDEX ledger_by_batch ON ledger (batch_id) WHERE batch_id IS NOT NULL;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;

CREATE TABLE payees (
    rider_id    INTEGER PRIMARY KEY REFERENCES users (id),
    real_name   TEXT NOT NULL,
    account     TEXT NOT NULL,                          -- WeChat or Alipay account, or phone
    updated_at  INTEGER NOT NULL
);

-- One line per rider paid by a batch, with the payee details as they were at that moment.
CREATE TABLE payout_lines (
    id             INTEGER PRIMARY KEY,
    batch_id       INTEGER NOT NULL REFERENCES payout_batches (id),
    rider_id       INTEGER NOT NULL REFERENCES users (id),
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    report_refs    TEXT NOT NULL,                       -- comma-separated report references
    payee_name     TEXT NOT NULL,
    payee_account  TEXT NOT NULL,
    UNIQUE (batch_id, rider_id)
);

-- Which rewards and reversals each line settles; the primary key settles an entry only once.
CREATE TABLE payout_items (
    ledger_id  INTEGER PRIMARY KEY REFERENCES ledger (id),
    batch_id   INTEGER NOT NULL,
    rider_id   INTEGER NOT NULL,
    FOREIGN KEY (batch_id, rider_id) REFERENCES payout_lines (batch_id, rider_id)
);
-- No index on (batch_id, rider_id): lines are never deleted, and maintaining it in random
-- rider order tripled the time to settle a million entries; the audit scans instead.

CREATE TRIGGER payout_lines_no_update BEFORE UPDATE ON payout_lines
BEGIN
    SELECT RAISE(ABORT, 'payout lines are append-only');
END;
CREATE TRIGGER payout_lines_no_delete BEFORE DELETE ON payout_lines
BEGIN
    SELECT RAISE(ABORT, 'payout lines are append-only');
END;
CREATE TRIGGER payout_items_no_update BEFORE UPDATE ON payout_items
BEGIN
    SELECT RAISE(ABORT, 'payout items are append-only');
END;
CREATE TRIGGER payout_items_no_delete BEFORE DELETE ON payout_items
BEGIN
    SELECT RAISE(ABORT, 'payout items are append-only');
END;
CREATE TRIGGER payout_batches_no_delete BEFORE DELETE ON payout_batches
BEGIN
    SELECT RAISE(ABORT, 'payout batches are never deleted');
END;
CREATE TRIGGER payout_batches_one_way BEFORE UPDATE OF status ON payout_batches
WHEN NOT (
    OLD.status = NEW.status
    OR (OLD.status = 'open' AND NEW.status = 'exported')
    OR (OLD.status = 'exported' AND NEW.status = 'paid')
)
BEGIN
    SELECT RAISE(ABORT, 'payout batch status only moves open -> exported -> paid');
END;
-- Once exported, what finance received (period, totals, files) never changes.
CREATE TRIGGER payout_batches_frozen BEFORE UPDATE ON payout_batches
WHEN OLD.status <> 'open' AND (
    NEW.period_key IS NOT OLD.period_key
    OR NEW.kind IS NOT OLD.kind
    OR NEW.period_start IS NOT OLD.period_start
    OR NEW.period_end IS NOT OLD.period_end
    OR NEW.total_fen IS NOT OLD.total_fen
    OR NEW.line_count IS NOT OLD.line_count
    OR NEW.file_sha256 IS NOT OLD.file_sha256
    OR NEW.file_xlsx IS NOT OLD.file_xlsx
    OR NEW.file_csv IS NOT OLD.file_csv
    OR NEW.created_at IS NOT OLD.created_at
    OR NEW.exported_at IS NOT OLD.exported_at
    OR (OLD.status = 'paid' AND (NEW.paid_at IS NOT OLD.paid_at OR NEW.paid_by IS NOT OLD.paid_by))
)
BEGIN
    SELECT RAISE(ABORT, 'an exported payout batch is frozen');
END;
