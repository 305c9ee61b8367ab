//! The invariants that must hold after any load, checked in the database itself (see
//! `invite_store::invariants`).

use invite_store::DbConnection;

/// Checks every invariant; returns the ones violated, with their counts.
pub(crate) fn verify(conn: &mut DbConnection) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut violated = Vec::new();
    for (name, found) in invite_store::invariants::violations(conn)? {
        println!("{} {name} ({found} violations)", if found == 0 { "ok  " } else { "FAIL" });
        if found > 0 {
            violated.push((name, found));
        }
    }
    Ok(violated)
}
