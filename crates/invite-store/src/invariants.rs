//! The invariants that must hold after any load or crash, checked in the database itself: the
//! load-test tool checks them after each run, the fault tests after each kill.

use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;

use crate::connection::DbConnection;
use crate::error::StoreResult;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The random invites of the server row named `$server` that count toward its `active_invites`
/// (not revoked, not used up, not lapsed: see the migration `active_invite_count`), as a
/// scalar subquery: one text for the invariant and the recount.
macro_rules! counted_invites {
    ($server:literal) => {
        concat!(
            "(SELECT count(*) FROM invites i WHERE i.server_id = ",
            $server,
            ".id ",
            "AND i.kind = 'random' AND i.revoked_at IS NULL ",
            "AND (i.max_uses IS NULL OR i.uses < i.max_uses) ",
            "AND (i.expires_at IS NULL OR ",
            $server,
            ".invites_lapsed_through IS NULL ",
            "OR i.expires_at > ",
            $server,
            ".invites_lapsed_through))"
        )
    };
}

/// Each invariant, as a query counting its violations. The first two together say "no member
/// without its use": every member who came through an invite names it, and every invite's uses
/// are exactly its members (so also "no use without its member"). They hold as long as nobody
/// left or was removed, which is what a load of joins leaves behind.
pub const INVARIANTS: [(&str, &str); 5] = [
    (
        "every member who joined through an invite names it",
        "SELECT count(*) AS count FROM members \
         WHERE source IN ('invite', 'vanity') AND joined_via_invite_id IS NULL",
    ),
    (
        "every invite's uses equal the members who joined with it",
        "SELECT count(*) AS count FROM invites i WHERE i.uses <> \
         (SELECT count(*) FROM members m WHERE m.joined_via_invite_id = i.id)",
    ),
    (
        "no invite is above its max_uses",
        "SELECT count(*) AS count FROM invites WHERE max_uses IS NOT NULL AND uses > max_uses",
    ),
    (
        "every server's member_count equals its member rows",
        "SELECT count(*) AS count FROM servers s WHERE s.member_count <> \
         (SELECT count(*) FROM members m WHERE m.server_id = s.id)",
    ),
    (
        "every server's active_invites equals its random invites not revoked, used up or lapsed",
        concat!(
            "SELECT count(*) AS count FROM servers s WHERE s.active_invites <> ",
            counted_invites!("s")
        ),
    ),
];

/// Sets every server's `active_invites` from its invites, as the migration `active_invite_count`
/// first did: for bulk loads that leave the counting triggers off (the load tool's seed).
pub const RECOUNT_ACTIVE_INVITES: &str =
    concat!("UPDATE servers SET active_invites = ", counted_invites!("servers"));

/// Counts the violations of each invariant, in [`INVARIANTS`]' order.
pub fn violations(conn: &mut DbConnection) -> StoreResult<Vec<(&'static str, i64)>> {
    INVARIANTS
        .iter()
        .map(|(name, sql)| Ok((*name, diesel::sql_query(*sql).get_result::<Count>(conn)?.count)))
        .collect()
}
