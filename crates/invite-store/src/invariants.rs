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

/// Whether invite row `i` counts toward the `active_invites` of its server, the row named
/// `$server` (a random invite not revoked, not used up, not lapsed: see the migration
/// `active_invite_count`): one text for the invariant and the recount.
macro_rules! counts_as_active {
    ($server:literal) => {
        concat!(
            "i.kind = 'random' AND i.revoked_at IS NULL ",
            "AND (i.max_uses IS NULL OR i.uses < i.max_uses) ",
            "AND (i.expires_at IS NULL OR ",
            $server,
            ".invites_lapsed_through IS NULL ",
            "OR i.expires_at > ",
            $server,
            ".invites_lapsed_through)"
        )
    };
}

/// The invites of the server row named `$server` that count toward its `active_invites`, as a
/// scalar subquery.
macro_rules! counted_invites {
    ($server:literal) => {
        concat!(
            "(SELECT count(*) FROM invites i WHERE i.server_id = ",
            $server,
            ".id AND ",
            counts_as_active!($server),
            ")"
        )
    };
}

/// Each invariant, as a query counting its violations. The first two together say "no member
/// without its use": every member who came through an invite names it, and every invite's uses
/// are exactly its members (so also "no use without its member"). They hold as long as nobody
/// left or was removed, which is what a load of joins leaves behind.
///
/// The counts are written as sets (each table grouped once, then joined), not as a count per
/// row: on a grown database a correlated count per invite or server runs once per row, and
/// takes minutes where one pass over the members takes a second.
pub const INVARIANTS: [(&str, &str); 5] = [
    (
        "every member who joined through an invite names it",
        "SELECT count(*) AS count FROM members \
         WHERE source IN ('invite', 'vanity') AND joined_via_invite_id IS NULL",
    ),
    (
        "every invite's uses equal the members who joined with it",
        "SELECT count(*) AS count FROM invites i LEFT JOIN \
         (SELECT joined_via_invite_id AS id, count(*) AS joined FROM members \
          WHERE joined_via_invite_id IS NOT NULL GROUP BY joined_via_invite_id) m ON m.id = i.id \
         WHERE i.uses <> coalesce(m.joined, 0)",
    ),
    (
        "no invite is above its max_uses",
        "SELECT count(*) AS count FROM invites WHERE max_uses IS NOT NULL AND uses > max_uses",
    ),
    (
        "every server's member_count equals its member rows",
        "SELECT count(*) AS count FROM servers s LEFT JOIN \
         (SELECT server_id, count(*) AS members FROM members GROUP BY server_id) m \
         ON m.server_id = s.id WHERE s.member_count <> coalesce(m.members, 0)",
    ),
    (
        "every server's active_invites equals its random invites not revoked, used up or lapsed",
        concat!(
            "SELECT count(*) AS count FROM servers s LEFT JOIN \
             (SELECT i.server_id, count(*) AS counted FROM invites i \
              JOIN servers o ON o.id = i.server_id WHERE ",
            counts_as_active!("o"),
            " GROUP BY i.server_id) c ON c.server_id = s.id \
             WHERE s.active_invites <> coalesce(c.counted, 0)"
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
