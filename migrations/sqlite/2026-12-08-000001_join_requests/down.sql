DELETE FROM events WHERE audience = 'join_request_deciders';
CREATE TABLE events_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('members', 'invite_managers')),
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
DROP TABLE join_requests;
ALTER TABLE invites DROP COLUMN requires_approval;
