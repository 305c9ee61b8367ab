-- The same tables as migrations/postgres, in SQLite's types (see there for why).
CREATE TABLE invite_stats (
    invite_id TEXT PRIMARY KEY REFERENCES invites (id) ON DELETE CASCADE,
    server_id TEXT NOT NULL,
    previews INTEGER NOT NULL DEFAULT 0,
    accepts INTEGER NOT NULL DEFAULT 0,
    departures INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX invite_stats_server_accepts_idx ON invite_stats (server_id, accepts DESC, invite_id);

CREATE TABLE invite_refusals (
    invite_id TEXT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    server_id TEXT NOT NULL,
    refusals INTEGER NOT NULL,
    PRIMARY KEY (invite_id, code)
) STRICT, WITHOUT ROWID;
CREATE INDEX invite_refusals_server_idx ON invite_refusals (server_id);

CREATE TABLE invite_joins_daily (
    invite_id TEXT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    server_id TEXT NOT NULL,
    joins INTEGER NOT NULL,
    PRIMARY KEY (invite_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX invite_joins_daily_server_day_idx ON invite_joins_daily (server_id, day);

CREATE TABLE server_joins_daily (
    server_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    joins INTEGER NOT NULL,
    PRIMARY KEY (server_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE invite_stats_fold (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    folded_through INTEGER NOT NULL
) STRICT;

INSERT INTO invite_stats_fold (id, folded_through) SELECT 1, coalesce(max(seq), 0) FROM events;
INSERT INTO invite_stats (invite_id, server_id, accepts, departures)
SELECT i.id, i.server_id, max(i.uses, coalesce(m.n, 0)), max(i.uses, coalesce(m.n, 0)) - coalesce(m.n, 0)
FROM invites AS i
LEFT JOIN (SELECT joined_via_invite_id AS invite_id, count(*) AS n FROM members
           WHERE joined_via_invite_id IS NOT NULL GROUP BY joined_via_invite_id) AS m
    ON m.invite_id = i.id
WHERE i.uses > 0 OR m.n > 0;
INSERT INTO invite_joins_daily (invite_id, day, server_id, joins)
SELECT joined_via_invite_id, CAST(unixepoch(joined_at) / 86400 AS INTEGER), server_id, count(*)
FROM members
WHERE joined_via_invite_id IS NOT NULL AND unixepoch(joined_at) >= unixepoch('now', '-30 days')
GROUP BY 1, 2, 3;
INSERT INTO server_joins_daily (server_id, day, joins)
SELECT server_id, day, sum(joins) FROM invite_joins_daily GROUP BY server_id, day;
