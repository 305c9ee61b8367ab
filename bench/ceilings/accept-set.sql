-- The set-based accept: one statement for a batch of joins, the ceiling issue 28 measures the
-- service's accepts against (one statement per join today, grouped into shared commits). A
-- pgbench script over a database of `invite-loadtest seed`: each transaction joins :batch new
-- users through random invites, with every per-join refusal of the single statement (member,
-- banned, a second join of one user to one server, paused, revoked, expired, used up in the
-- order of the batch).
--
--   sed 's/:batch/64/' bench/ceilings/accept-set.sql > /tmp/set64.sql
--   pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 4 -T 10 -f /tmp/set64.sql <database>
--
-- The invites and then their servers are locked first, in id order (two batches cannot
-- deadlock, and a single join locks an invite before its server too), so every count below is
-- of their latest committed versions. Still missing before it can serve: a ban committed
-- between the snapshot and the lock (the single statement compares `bans_version`), the
-- username upsert and the Idempotency-Key records.
WITH p AS (
  SELECT x.ord, 'd' || lpad((1 + floor(random() * 100000))::int::text, 7, '0') AS code, gen_random_uuid() AS user_id, gen_random_uuid() AS audit_id, now() AS now
  FROM generate_series(1, :batch) AS x(ord)
),
inv AS (
  SELECT i.id, i.server_id, i.code, i.kind, i.created_by, i.max_uses, i.uses, i.expires_at, i.temporary, i.revoked_at
  FROM invites i WHERE i.code IN (SELECT code FROM p) ORDER BY i.id FOR UPDATE
),
srv AS (
  SELECT s.id, s.member_count, s.bans_version, s.invites_paused_until, s.invites_paused_indefinitely
  FROM servers s WHERE s.id IN (SELECT server_id FROM inv) ORDER BY s.id FOR UPDATE
),
t AS (
  SELECT p.ord, p.user_id, p.audit_id, p.now, inv.id, inv.server_id, inv.code, inv.kind, inv.created_by, inv.max_uses, inv.uses,
         inv.expires_at, inv.temporary, inv.revoked_at, srv.member_count, srv.invites_paused_until, srv.invites_paused_indefinitely,
         EXISTS (SELECT 1 FROM members m WHERE m.server_id = inv.server_id AND m.user_id = p.user_id) AS is_member,
         EXISTS (SELECT 1 FROM bans b WHERE b.server_id = inv.server_id AND b.user_id = p.user_id) AS is_banned,
         row_number() OVER (PARTITION BY inv.server_id, p.user_id ORDER BY p.ord) AS nth
  FROM p JOIN inv ON inv.code = p.code JOIN srv ON srv.id = inv.server_id
),
ok AS (
  SELECT t.*, row_number() OVER (PARTITION BY t.id ORDER BY t.ord) AS rank
  FROM t
  WHERE NOT t.is_member AND NOT t.is_banned AND t.nth = 1 AND NOT t.invites_paused_indefinitely
    AND (t.invites_paused_until IS NULL OR t.invites_paused_until <= t.now)
    AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > t.now)
),
admitted AS (
  SELECT ok.*, row_number() OVER (PARTITION BY ok.server_id ORDER BY ok.ord) AS server_rank
  FROM ok WHERE ok.max_uses IS NULL OR ok.uses + ok.rank <= ok.max_uses
),
per_invite AS (SELECT id, count(*) AS k, max(now) AS now FROM admitted GROUP BY id),
per_server AS (SELECT server_id, count(*) AS k FROM admitted GROUP BY server_id),
used AS (
  UPDATE invites AS i SET uses = i.uses + pi.k, version = i.version + 1, updated_at = pi.now
  FROM per_invite pi WHERE i.id = pi.id RETURNING i.id
),
counted AS (
  UPDATE servers AS s SET member_count = s.member_count + ps.k
  FROM per_server ps WHERE s.id = ps.server_id RETURNING s.id
),
joined AS (
  INSERT INTO members (server_id, user_id, permissions, joined_at, temporary, source, joined_via_invite_id, joined_via_code, inviter_id)
  SELECT a.server_id, a.user_id, 0, a.now, a.temporary, CASE a.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
         a.id, a.code, CASE a.kind WHEN 'vanity' THEN NULL ELSE a.created_by END
  FROM admitted a
),
audited AS (
  INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details, created_at)
  SELECT a.audit_id, a.server_id, a.user_id, 'MemberJoin', 'user', a.user_id, jsonb_build_object('code', a.code, 'invite_id', a.id), a.now
  FROM admitted a
),
evented AS (
  INSERT INTO events (server_id, type, payload, audience, created_at)
  SELECT a.server_id, 'MEMBER_JOIN',
         jsonb_build_object('server_id', a.server_id, 'user_id', a.user_id, 'invite_id', a.id, 'code', a.code,
           'source', CASE a.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
           'inviter_id', CASE a.kind WHEN 'vanity' THEN NULL ELSE a.created_by END,
           'temporary', a.temporary, 'member_count', a.member_count + a.server_rank),
         'members', a.now
  FROM admitted a ORDER BY a.ord
  RETURNING seq
)
SELECT t.ord, t.is_member, t.is_banned, a.ord IS NOT NULL AS joined, a.member_count + a.server_rank AS member_count
FROM t LEFT JOIN admitted a ON a.ord = t.ord ORDER BY t.ord;
