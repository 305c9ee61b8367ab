-- The whole data model of the invite service except the event outbox and idempotency records,
-- which arrive with the features that use them.

-- Users are known by the `sub` of their token; a row exists only to remember a `username` claim.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE servers (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    icon_url text,
    owner_id uuid NOT NULL,
    default_permissions bigint NOT NULL CHECK (default_permissions >= 0),
    features jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(features) = 'array'),
    invites_paused_until timestamptz,
    invites_paused_indefinitely boolean NOT NULL DEFAULT false,
    -- Maintained in the same transaction as every member insert and delete, so a preview reads
    -- one row whatever the server's size.
    member_count bigint NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE channels (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL
);
CREATE INDEX channels_server_idx ON channels (server_id, created_at, id);

CREATE TABLE invites (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id uuid REFERENCES channels (id) ON DELETE SET NULL,
    -- One namespace for random and vanity codes. NULL only on a released vanity invite whose code
    -- another server claimed after the cooldown; revoked rows otherwise keep their code forever,
    -- so a code is never handed out twice.
    code text,
    kind text NOT NULL CHECK (kind IN ('random', 'vanity')),
    created_by uuid,
    max_uses bigint CHECK (max_uses > 0),
    uses bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    max_age bigint NOT NULL DEFAULT 0 CHECK (max_age >= 0),
    expires_at timestamptz,
    temporary boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    revoked_at timestamptz,
    CONSTRAINT invites_code_key UNIQUE (code),
    CONSTRAINT invites_uses_within_max CHECK (max_uses IS NULL OR uses <= max_uses),
    CONSTRAINT invites_code_present CHECK (code IS NOT NULL OR (kind = 'vanity' AND revoked_at IS NOT NULL)),
    CONSTRAINT invites_vanity_unlimited CHECK (kind = 'random' OR (max_uses IS NULL AND expires_at IS NULL AND max_age = 0))
);
-- Lists, newest first, and the active-invite count of a server.
CREATE INDEX invites_server_created_idx ON invites (server_id, created_at DESC, id DESC);
CREATE INDEX invites_channel_created_idx ON invites (channel_id, created_at DESC, id DESC)
    WHERE channel_id IS NOT NULL;
CREATE UNIQUE INDEX invites_one_vanity_per_server ON invites (server_id)
    WHERE kind = 'vanity' AND revoked_at IS NULL;

CREATE TABLE members (
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    permissions bigint NOT NULL DEFAULT 0 CHECK (permissions >= 0),
    joined_at timestamptz NOT NULL,
    temporary boolean NOT NULL DEFAULT false,
    -- How they joined: kept after the invite is revoked, for moderation.
    source text NOT NULL CHECK (source IN ('owner', 'invite', 'vanity')),
    joined_via_invite_id uuid REFERENCES invites (id),
    joined_via_code text,
    inviter_id uuid,
    CONSTRAINT members_pkey PRIMARY KEY (server_id, user_id),
    CONSTRAINT members_source_has_invite CHECK ((source = 'owner') = (joined_via_invite_id IS NULL))
);
CREATE INDEX members_user_idx ON members (user_id);
CREATE INDEX members_invite_idx ON members (joined_via_invite_id, joined_at, user_id)
    WHERE joined_via_invite_id IS NOT NULL;

CREATE TABLE bans (
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    reason text,
    banned_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT bans_pkey PRIMARY KEY (server_id, user_id)
);

CREATE TABLE audit_entries (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    actor_id uuid NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id uuid,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX audit_entries_server_created_idx ON audit_entries (server_id, created_at DESC, id DESC);
