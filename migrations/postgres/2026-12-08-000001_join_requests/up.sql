-- Join approval (contract section 11). An invite that requires approval files a join request
-- when accepted; a moderator approves it (the user joins through the invite) or denies it.
ALTER TABLE invites ADD COLUMN requires_approval boolean NOT NULL DEFAULT false;

CREATE TABLE join_requests (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- The invite the user accepted: an approval joins through it (its use, its grant).
    invite_id uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'withdrawn')),
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    -- Who approved or denied it; NULL while pending and when the user withdrew it.
    decided_by uuid,
    CONSTRAINT join_requests_decided CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- At most one pending request per user and server: the filing reads it under the server's
-- lock, and this index is the guarantee should anything else write one. It also serves the
-- count of a server's pending requests (at most 1000).
CREATE UNIQUE INDEX join_requests_one_pending ON join_requests (server_id, user_id)
    WHERE status = 'pending';
-- A server's list by status, oldest first.
CREATE INDEX join_requests_server_status_idx ON join_requests (server_id, status, created_at, id);
-- A user's own requests.
CREATE INDEX join_requests_user_idx ON join_requests (user_id, created_at, id);

-- The events of a join request go to those who may decide it (see invite_core::event).
ALTER TABLE events DROP CONSTRAINT events_audience_check;
ALTER TABLE events ADD CONSTRAINT events_audience_check
    CHECK (audience IN ('members', 'invite_managers', 'join_request_deciders'));
