//! The database's own ceiling: pgbench scripts doing each scenario's database work with nothing
//! else in the way (no HTTP, no JSON, no tokens). The accept script runs the very statement the
//! store sends.

use invite_store::repo::accept_statement_sql;

use crate::ids;
use crate::scenario::Scenario;

/// A random seeded invite's code, in pgbench's variables.
const RANDOM_CODE: &str = "'d' || lpad(:n::text, 7, '0')";

fn accept(code: &str) -> String {
    let params = format!(
        "SELECT {code} AS code, gen_random_uuid() AS user_id, now() AS now, \
         NULL::text AS username, gen_random_uuid() AS audit_id, NULL::text AS idempotency_key, \
         NULL::text AS fingerprint, NULL::integer AS status, NULL::text AS body_before, \
         NULL::text AS body_after"
    );
    format!("{};\n", accept_statement_sql(&params))
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

/// What creating an invite does: the caller's standing, then a transaction that locks the
/// server, counts its active invites, inserts with `ON CONFLICT DO NOTHING` and writes the
/// audit entry under a savepoint.
fn create(servers: u64) -> String {
    let server = "('5e000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid";
    let owner = "('0e000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid";
    format!(
        "\\set k random(1, {servers})\n\
         SELECT s.owner_id, s.default_permissions, m.permissions FROM members m JOIN servers s ON s.id = m.server_id \
         WHERE m.server_id = {server} AND m.user_id = {owner};\n\
         BEGIN;\n\
         UPDATE servers SET updated_at = updated_at WHERE id = {server};\n\
         SELECT count(*) FROM invites WHERE server_id = {server} AND kind = 'random' AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now()) AND (max_uses IS NULL OR uses < max_uses);\n\
         INSERT INTO invites (id, server_id, channel_id, code, kind, created_by, max_uses, uses, max_age, \
         expires_at, temporary, created_at, updated_at, version, revoked_at) VALUES (gen_random_uuid(), \
         {server}, NULL, substr(md5(random()::text), 1, 8), 'random', {owner}, 10, 0, 0, NULL, false, now(), \
         now(), 1, NULL) ON CONFLICT (code) DO NOTHING RETURNING id, code;\n\
         SAVEPOINT audit;\n\
         INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details, created_at) \
         VALUES (gen_random_uuid(), {server}, {owner}, 'InviteCreate', 'invite', NULL, '{{\"max_uses\": 10}}', now());\n\
         RELEASE SAVEPOINT audit;\n\
         COMMIT;\n"
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
        Scenario::AcceptDistinct => {
            vec![("accept-distinct.sql", format!("{random}{}", accept(RANDOM_CODE)))]
        }
        Scenario::AcceptHot => vec![("accept-hot.sql", accept(&hot))],
        Scenario::Preview => vec![("preview.sql", format!("{random}{}", preview(RANDOM_CODE)))],
        Scenario::Create => vec![("create.sql", create(servers))],
        Scenario::Mixed => vec![
            ("preview.sql@90", format!("{random}{}", preview(RANDOM_CODE))),
            ("accept-distinct.sql@8", format!("{random}{}", accept(RANDOM_CODE))),
            ("create.sql@2", create(servers)),
        ],
        Scenario::AcceptCapped | Scenario::PreviewBigServer => return None,
    })
}
