-- The same model as migrations/postgres, in SQLite's types: UUIDs as hyphenated lower-case text,
-- timestamps as fixed-width RFC 3339 text with microseconds (so text order is time order), JSON as
-- text, booleans as 0/1. STRICT tables refuse values of the wrong type.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    icon_url TEXT,
    owner_id TEXT NOT NULL,
    default_permissions INTEGER NOT NULL CHECK (default_permissions >= 0),
    features TEXT NOT NULL DEFAULT '[]' CHECK (json_type(features) = 'array'),
    invites_paused_until TEXT,
    invites_paused_indefinitely INTEGER NOT NULL DEFAULT 0,
    member_count INTEGER NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX channels_server_idx ON channels (server_id, created_at, id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id TEXT REFERENCES channels (id) ON DELETE SET NULL,
    code TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('random', 'vanity')),
    created_by TEXT,
    max_uses INTEGER CHECK (max_uses > 0),
    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    max_age INTEGER NOT NULL DEFAULT 0 CHECK (max_age >= 0),
    expires_at TEXT,
    temporary INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    revoked_at TEXT,
    CONSTRAINT invites_code_key UNIQUE (code),
    CONSTRAINT invites_uses_within_max CHECK (max_uses IS NULL OR uses <= max_uses),
    CONSTRAINT invites_code_present CHECK (code IS NOT NULL OR (kind = 'vanity' AND revoked_at IS NOT NULL)),
    CONSTRAINT invites_vanity_unlimited CHECK (kind = 'random' OR (max_uses IS NULL AND expires_at IS NULL AND max_age = 0))
) STRICT;
CREATE INDEX invites_server_created_idx ON invites (server_id, created_at DESC, id DESC);
CREATE INDEX invites_channel_created_idx ON invites (channel_id, created_at DESC, id DESC)
    WHERE channel_id IS NOT NULL;
CREATE UNIQUE INDEX invites_one_vanity_per_server ON invites (server_id)
    WHERE kind = 'vanity' AND revoked_at IS NULL;

CREATE TABLE members (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    permissions INTEGER NOT NULL DEFAULT 0 CHECK (permissions >= 0),
    joined_at TEXT NOT NULL,
    temporary INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL CHECK (source IN ('owner', 'invite', 'vanity')),
    joined_via_invite_id TEXT REFERENCES invites (id),
    joined_via_code TEXT,
    inviter_id TEXT,
    CONSTRAINT members_pkey PRIMARY KEY (server_id, user_id),
    CONSTRAINT members_source_has_invite CHECK ((source = 'owner') = (joined_via_invite_id IS NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX members_user_idx ON members (user_id);
CREATE INDEX members_invite_idx ON members (joined_via_invite_id, joined_at, user_id)
    WHERE joined_via_invite_id IS NOT NULL;

CREATE TABLE bans (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    reason TEXT,
    banned_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT bans_pkey PRIMARY KEY (server_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_entries (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX audit_entries_server_created_idx ON audit_entries (server_id, created_at DESC, id DESC);
