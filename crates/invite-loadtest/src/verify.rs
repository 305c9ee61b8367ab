//! The invariants that must hold after any load: checked in the database itself.

use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;
use invite_store::DbConnection;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Each invariant, as a query counting its violations. The first two together say "no member
/// without its use": every member who came through an invite names it, and every invite's uses
/// are exactly its members (so also "no use without its member").
pub(crate) const INVARIANTS: [(&str, &str); 4] = [
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
];

/// Checks every invariant; returns the ones violated, with their counts.
pub(crate) fn verify(conn: &mut DbConnection) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut violated = Vec::new();
    for (name, sql) in INVARIANTS {
        let found = diesel::sql_query(sql).get_result::<Count>(conn)?.count;
        println!("{} {name} ({found} violations)", if found == 0 { "ok  " } else { "FAIL" });
        if found > 0 {
            violated.push((name, found));
        }
    }
    Ok(violated)
}
