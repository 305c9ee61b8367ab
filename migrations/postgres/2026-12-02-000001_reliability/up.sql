-- Contract section 6: the maintenance switch every instance follows, and the responses recorded
-- for Idempotency-Key replays.

-- One row (id = 1) when an operator has ever switched maintenance; no row means "off". It lives
-- in the database so that every instance sharing it follows the switch (each reads it every few
-- seconds).
CREATE TABLE maintenance (
    id smallint PRIMARY KEY CHECK (id = 1),
    enabled boolean NOT NULL,
    message text CHECK (message IS NULL OR char_length(message) <= 500),
    ends_at timestamptz,
    -- When the current state began, for /status.
    since timestamptz NOT NULL
);

-- The first response to a POST carrying an Idempotency-Key, committed in the same transaction
-- as the change it describes, so a replay can never repeat or contradict a committed change.
-- `fingerprint` is a hash of the method, path and body: the same key on another request is
-- refused. Rows older than 24 hours are ignored, and purged in the background.
CREATE TABLE idempotency_records (
    user_id uuid NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint text NOT NULL,
    status integer NOT NULL CHECK (status BETWEEN 200 AND 599),
    body text NOT NULL,
    etag text,
    created_at timestamptz NOT NULL,
    CONSTRAINT idempotency_records_pkey PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);
