-- The mail outbox: mail is queued in the transaction of the change that causes it and
-- delivered afterwards by a worker, at least once (the idempotency key becomes the
-- Message-ID, so a receiver can drop a duplicate). Keep the same meaning as
-- ../sqlite/20261128000013_outbox.sql.
--
-- case_id and meeting_id are not foreign keys: the outbox records what was sent about them and
-- must not stand in the way of their tables changing shape.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    organism_id      TEXT REFERENCES organisms (id),
    case_id          TEXT,
    meeting_id       TEXT,
    kind             TEXT NOT NULL CHECK (kind IN ('invitation', 'reminder', 'rescheduled',
                                                   'cancelled')),
    to_name          TEXT NOT NULL,
    to_email         TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    -- The personal link inside body while the mail is pending; NULL once sent or cancelled,
    -- when body keeps only a placeholder in its place.
    secret           TEXT,
    ics              TEXT,
    ics_method       TEXT CHECK (ics_method IN ('REQUEST', 'CANCEL')),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL CHECK (attempts >= 0),
    -- Unix milliseconds, like every time.
    next_attempt_at  BIGINT NOT NULL,
    -- A worker that claimed the mail holds it until then; another may take it after.
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    CHECK ((ics IS NULL) = (ics_method IS NULL)),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_case ON outbox (case_id);
