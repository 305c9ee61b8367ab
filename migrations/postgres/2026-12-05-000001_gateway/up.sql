-- Contract section 10: gateway sessions, for presence and temporary membership across
-- instances.
--
-- A live session has `expires_at` in the future: its instance pushes it forward in one
-- statement for all of its sessions while it runs, so a crashed instance's sessions lapse on
-- their own. A session that ends is kept with `expires_at` set to when it ended: a temporary
-- member is removed once their last session has been gone for the grace period, which is
-- read from here.
CREATE TABLE gateway_sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    instance_id uuid NOT NULL,
    connected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX gateway_sessions_user_idx ON gateway_sessions (user_id, expires_at);
CREATE INDEX gateway_sessions_instance_idx ON gateway_sessions (instance_id, expires_at);
CREATE INDEX gateway_sessions_expires_idx ON gateway_sessions (expires_at);

-- The sweep of temporary members reads only them.
CREATE INDEX members_temporary_idx ON members (joined_at) WHERE temporary;
