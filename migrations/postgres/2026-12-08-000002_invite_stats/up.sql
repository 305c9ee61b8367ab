-- Per-invite analytics (contract section 11), kept apart from the rows an accept writes: an
-- accept writes nothing here. Joins and departures are folded in from the outbox (every
-- MEMBER_JOIN names its invite, every MEMBER_REMOVE the invite its member had joined through)
-- behind `invite_stats_fold.folded_through`, in the same transaction as the cursor; previews
-- and refusals are counted in each instance's memory and added in batches. `day` is the UTC
-- day as days since 1970-01-01 (invite_core::stats::day_number), the same on both backends.
CREATE TABLE invite_stats (
    invite_id uuid PRIMARY KEY REFERENCES invites (id) ON DELETE CASCADE,
    server_id uuid NOT NULL,
    previews bigint NOT NULL DEFAULT 0,
    accepts bigint NOT NULL DEFAULT 0,
    departures bigint NOT NULL DEFAULT 0
);
-- The server's top invites by accepts, read in index order.
CREATE INDEX invite_stats_server_accepts_idx ON invite_stats (server_id, accepts DESC, invite_id);

CREATE TABLE invite_refusals (
    invite_id uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    code text NOT NULL,
    server_id uuid NOT NULL,
    refusals bigint NOT NULL,
    PRIMARY KEY (invite_id, code)
);
CREATE INDEX invite_refusals_server_idx ON invite_refusals (server_id);

CREATE TABLE invite_joins_daily (
    invite_id uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    day bigint NOT NULL,
    server_id uuid NOT NULL,
    joins bigint NOT NULL,
    PRIMARY KEY (invite_id, day)
);
CREATE INDEX invite_joins_daily_server_day_idx ON invite_joins_daily (server_id, day);

-- The same by server, which the fold adds to with its invites' rows: a server's last 30 days
-- are 30 rows, however many of its invites were used on each.
CREATE TABLE server_joins_daily (
    server_id uuid NOT NULL,
    day bigint NOT NULL,
    joins bigint NOT NULL,
    PRIMARY KEY (server_id, day)
);

-- How far the outbox is folded in: one row, locked by the fold that advances it, so instances
-- sharing the database never fold an event twice.
CREATE TABLE invite_stats_fold (
    id smallint PRIMARY KEY CHECK (id = 1),
    folded_through bigint NOT NULL
);

-- What came before is not in the outbox whole (it keeps a week): the fold starts after the
-- events already written, and the counters start from what the tables hold. An invite's uses
-- are its accepts, and its members still there its retained; the joins of the last 30 days
-- are those of the members still there (who left before now are not known by day).
INSERT INTO invite_stats_fold (id, folded_through) SELECT 1, coalesce(max(seq), 0) FROM events;
INSERT INTO invite_stats (invite_id, server_id, accepts, departures)
SELECT i.id, i.server_id, greatest(i.uses, coalesce(m.n, 0)),
       greatest(i.uses, coalesce(m.n, 0)) - coalesce(m.n, 0)
FROM invites AS i
LEFT JOIN (SELECT joined_via_invite_id AS invite_id, count(*) AS n FROM members
           WHERE joined_via_invite_id IS NOT NULL GROUP BY joined_via_invite_id) AS m
    ON m.invite_id = i.id
WHERE i.uses > 0 OR m.n > 0;
INSERT INTO invite_joins_daily (invite_id, day, server_id, joins)
SELECT joined_via_invite_id, floor(extract(epoch FROM joined_at) / 86400)::bigint, server_id,
       count(*)
FROM members
WHERE joined_via_invite_id IS NOT NULL AND joined_at >= now() - interval '30 days'
GROUP BY 1, 2, 3;
INSERT INTO server_joins_daily (server_id, day, joins)
SELECT server_id, day, sum(joins) FROM invite_joins_daily GROUP BY server_id, day;
