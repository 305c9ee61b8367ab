//! The database's own ceilings: pgbench scripts doing each scenario's database work with nothing
//! else in the way (no HTTP, no JSON, no tokens). Two for each write:
//!
//! - the store's own work (`<scenario>.sql`): the accept runs the very statement the store
//!   sends; the create runs the statements the store sends on PostgreSQL, its create statement
//!   the very one;
//! - the minimal work the contract needs (`<scenario>.minimal.sql`), written by hand as a
//!   textbook implementation would send it, in one statement, and not taken from the store:
//!   a ratio to the store's own statement would hide that statement's cost.

use invite_store::repo::{accept_statement_sql, create_statement_sql};

use crate::ids;
use crate::scenario::Scenario;

/// A random seeded invite's code, in pgbench's variables.
const RANDOM_CODE: &str = "'d' || lpad(:n::text, 7, '0')";

/// The store's accept statement for a join like the load tool's: a token without a username,
/// a request without an `Idempotency-Key`.
fn accept(code: &str) -> String {
    let params = format!(
        "SELECT {code} AS code, gen_random_uuid() AS user_id, now() AS now, \
         gen_random_uuid() AS audit_id, gen_random_uuid() AS pause_audit_id"
    );
    format!("{};\n", accept_statement_sql(&params))
}

/// The least an accept must do under the contract, in one statement: take a use if the invite
/// is live, unpaused and not used up and the user is not banned, insert the member, count it,
/// and write the audit entry and the `MEMBER_JOIN` event. The primary key refuses a member who
/// already is one.
fn minimal_accept(code: &str) -> String {
    format!(
        "WITH p AS (SELECT gen_random_uuid() AS user_id, now() AS now), \
         used AS (UPDATE invites AS i SET uses = i.uses + 1 FROM p, servers AS s \
         WHERE i.code = {code} AND s.id = i.server_id AND i.revoked_at IS NULL \
         AND (i.expires_at IS NULL OR i.expires_at > p.now) AND (i.max_uses IS NULL OR i.uses < i.max_uses) \
         AND NOT s.invites_paused_indefinitely \
         AND (s.invites_paused_until IS NULL OR s.invites_paused_until <= p.now) \
         AND NOT EXISTS (SELECT 1 FROM bans AS b WHERE b.server_id = i.server_id AND b.user_id = p.user_id) \
         RETURNING i.id, i.server_id, i.code), \
         joined AS (INSERT INTO members (server_id, user_id, permissions, joined_at, temporary, source, \
         joined_via_invite_id, joined_via_code) SELECT u.server_id, p.user_id, 0, p.now, false, 'invite', \
         u.id, u.code FROM used AS u, p RETURNING server_id), \
         counted AS (UPDATE servers AS s SET member_count = s.member_count + 1 FROM joined AS j \
         WHERE s.id = j.server_id RETURNING s.id, s.member_count), \
         audited AS (INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, \
         details, created_at) SELECT gen_random_uuid(), u.server_id, p.user_id, 'MemberJoin', 'user', \
         p.user_id, jsonb_build_object('code', u.code), p.now FROM used AS u, p) \
         INSERT INTO events (server_id, type, payload, audience, created_at) \
         SELECT c.id, 'MEMBER_JOIN', jsonb_build_object('user_id', p.user_id, 'member_count', c.member_count), \
         'members', p.now FROM counted AS c, p;\n"
    )
}

/// The least a create must do under the contract, in one statement: the caller's membership,
/// the server's lock (creates of one server are counted one at a time), the active-invite
/// count, the insert, the audit entry and the `INVITE_CREATE` event.
fn minimal_create(servers: u64) -> String {
    let (server, owner) = seeded_server_and_owner();
    format!(
        "\\set k random(1, {servers})\n\
         WITH p AS (SELECT {server} AS server_id, {owner} AS user_id, now() AS now), \
         locked AS (SELECT s.id FROM p JOIN members AS m ON m.server_id = p.server_id AND m.user_id = p.user_id \
         JOIN servers AS s ON s.id = p.server_id FOR NO KEY UPDATE OF s), \
         active AS (SELECT count(*) AS n FROM invites AS i, p WHERE i.server_id = p.server_id \
         AND i.kind = 'random' AND i.revoked_at IS NULL AND (i.expires_at IS NULL OR i.expires_at > p.now) \
         AND (i.max_uses IS NULL OR i.uses < i.max_uses)), \
         created AS (INSERT INTO invites (id, server_id, code, kind, created_by, max_uses, uses, max_age, \
         temporary, created_at, updated_at, version) SELECT gen_random_uuid(), l.id, \
         substr(md5(random()::text), 1, 8), 'random', p.user_id, 10, 0, 0, false, p.now, p.now, 1 \
         FROM locked AS l, active AS a, p WHERE a.n < 1000 ON CONFLICT (code) DO NOTHING \
         RETURNING id, server_id, code), \
         audited AS (INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, \
         details, created_at) SELECT gen_random_uuid(), c.server_id, p.user_id, 'InviteCreate', 'invite', \
         c.id, jsonb_build_object('code', c.code), p.now FROM created AS c, p) \
         INSERT INTO events (server_id, type, payload, audience, created_at) \
         SELECT c.server_id, 'INVITE_CREATE', jsonb_build_object('code', c.code), 'invite_managers', p.now \
         FROM created AS c, p;\n"
    )
}

/// A random seeded server and its owner, in pgbench's variable `k`.
fn seeded_server_and_owner() -> (String, String) {
    (
        format!("('{}' || lpad(:k::text, 12, '0'))::uuid", ids::prefix::SERVER),
        format!("('{}' || lpad(:k::text, 12, '0'))::uuid", ids::prefix::OWNER),
    )
}

/// What the store's preview query reads: the invite, its server, its channel.
fn preview(code: &str) -> String {
    format!(
        "SELECT i.id, i.server_id, i.channel_id, i.code, i.kind, i.created_by, i.max_uses, i.uses, \
         i.max_age, i.expires_at, i.temporary, i.created_at, i.updated_at, i.version, i.revoked_at, \
         s.name, s.icon_url, s.member_count, s.invites_paused_until, s.invites_paused_indefinitely, \
         c.id, c.name FROM invites i JOIN servers s ON s.id = i.server_id \
         LEFT JOIN channels c ON c.id = i.channel_id WHERE i.code = {code} LIMIT 1;\n"
    )
}

/// What the store sends to create an invite on PostgreSQL, in one transaction: the caller's
/// standing with the server's row lock, then the store's create statement (the owner's name,
/// the count of active invites, the invite with `ON CONFLICT DO NOTHING`, its audit entry and
/// its event).
fn create(servers: u64) -> String {
    let (server, owner) = seeded_server_and_owner();
    let params = format!(
        "SELECT gen_random_uuid() AS id, {server} AS server_id, NULL::uuid AS channel_id, \
         substr(md5(random()::text), 1, 8) AS code, {owner} AS created_by, 'owner' || :k AS username, \
         10::bigint AS max_uses, \
         0::bigint AS max_age, NULL::timestamptz AS expires_at, false AS temporary, \
         0::bigint AS grant_permissions, NULL::uuid AS granted_by, NULL::jsonb AS allowed_user_ids, \
         false AS requires_approval, now() AS now, \
         1000::bigint AS max_active, gen_random_uuid() AS audit_id, 'InviteCreate' AS audit_action, \
         'invite' AS audit_target, '{{\"max_uses\": 10}}'::jsonb AS audit_details, \
         'INVITE_CREATE' AS event_type, 'invite_managers' AS audience, \
         '{{\"max_uses\": 10}}'::jsonb AS payload"
    );
    format!(
        "\\set k random(1, {servers})\n\
         BEGIN;\n\
         SELECT s.owner_id, s.default_permissions, m.permissions FROM members m JOIN servers s ON s.id = m.server_id \
         WHERE m.server_id = {server} AND m.user_id = {owner} FOR UPDATE OF s;\n\
         {};\n\
         COMMIT;\n",
        create_statement_sql(&params)
    )
}

/// The pgbench script for a scenario: `(file name, script)` pairs; `mixed` is three scripts run
/// with weights 90/8/2. `None` for scenarios without a database ceiling.
pub(crate) fn scripts(
    scenario: Scenario,
    servers: u64,
    invites: u64,
) -> Option<Vec<(&'static str, String)>> {
    let random = format!("\\set n random(1, {invites})\n");
    let hot = format!("'{}'", ids::HOT_CODE);
    Some(match scenario {
        Scenario::AcceptDistinct => vec![
            ("accept-distinct.sql", format!("{random}{}", accept(RANDOM_CODE))),
            ("accept-distinct.minimal.sql", format!("{random}{}", minimal_accept(RANDOM_CODE))),
        ],
        Scenario::AcceptHot => {
            vec![("accept-hot.sql", accept(&hot)), ("accept-hot.minimal.sql", minimal_accept(&hot))]
        }
        Scenario::Preview => vec![("preview.sql", format!("{random}{}", preview(RANDOM_CODE)))],
        Scenario::Create => {
            vec![("create.sql", create(servers)), ("create.minimal.sql", minimal_create(servers))]
        }
        Scenario::Mixed => vec![
            ("preview.sql@90", format!("{random}{}", preview(RANDOM_CODE))),
            ("accept-distinct.sql@8", format!("{random}{}", accept(RANDOM_CODE))),
            ("create.sql@2", create(servers)),
        ],
        Scenario::AcceptCapped
        | Scenario::PreviewBigServer
        | Scenario::Page
        | Scenario::ListInvites => return None,
    })
}
