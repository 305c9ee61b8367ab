-- The same as migrations/postgres, in SQLite's types.
ALTER TABLE invites ADD COLUMN requires_approval INTEGER NOT NULL DEFAULT 0;

CREATE TABLE join_requests (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    invite_id TEXT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'withdrawn')),
    created_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    CHECK ((status = 'pending') = (decided_at IS NULL))
) STRICT;
CREATE UNIQUE INDEX join_requests_one_pending ON join_requests (server_id, user_id)
    WHERE status = 'pending';
CREATE INDEX join_requests_server_status_idx ON join_requests (server_id, status, created_at, id);
CREATE INDEX join_requests_user_idx ON join_requests (user_id, created_at, id);

-- The events of a join request go to those who may decide it (see invite_core::event). SQLite
-- cannot change a CHECK, so the table is built again, columns in the same order.

CREATE TABLE events_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('members', 'invite_managers', 'join_request_deciders')),
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO events_new (seq, server_id, type, payload, audience, created_at)
SELECT seq, server_id, type, payload, audience, created_at FROM events;
-- The sequence goes on past events purged since, so no seq is ever drawn twice.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_new', seq FROM sqlite_sequence
WHERE name = 'events' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_new');
UPDATE sqlite_sequence
SET seq = max(seq, coalesce((SELECT s.seq FROM sqlite_sequence AS s WHERE s.name = 'events'), 0))
WHERE name = 'events_new';
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_server_seq_idx ON events (server_id, seq);
