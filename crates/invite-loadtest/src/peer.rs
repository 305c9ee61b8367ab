//! Seeding a peer implementation of the invite API with the same data as this service, so that
//! `compare` addresses the same servers, invites and users on both sides. Only the rows are
//! written here, as SQL against the peer's own schema (which the peer migrates itself); nothing
//! of the peer's code is needed.

use std::ops::Range;

use crate::ids::{self, prefix};
use crate::seed::{self, SEEDED_AT, SeedSize, Special};

/// A peer implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Peer {
    /// Together (github.com/jtjenkins/Together): tables `users`, `servers`, `server_members`
    /// and `server_invites`. Every user that a member row or a token names must exist in
    /// `users`, the accepting users included.
    Together,
}

/// `prefix` + `expr` padded to 12 digits, as a UUID.
fn uuid(prefix: &str, expr: &str) -> String {
    format!("('{prefix}' || lpad(({expr})::text, 12, '0'))::uuid")
}

/// A psql script seeding `peer`'s migrated, empty database with what `seed` writes for `size`,
/// and with the accepting users numbered `users`.
pub(crate) fn seed_sql(peer: Peer, size: SeedSize, users: Range<u64>) -> String {
    match peer {
        Peer::Together => together(size, users),
    }
}

fn together(size: SeedSize, users: Range<u64>) -> String {
    let specials = seed::specials(size);
    let special_numbers: Vec<String> = specials.iter().map(|s| s.number.to_string()).collect();
    let owner_numbers = format!(
        "SELECT generate_series(1, {}) AS n UNION ALL SELECT unnest(ARRAY[{}]::bigint[])",
        size.servers,
        special_numbers.join(", ")
    );
    let server_of = |n: &str| format!("(({n}) - 1) % {} + 1", size.servers);
    let mut sql = String::from(
        "-- Written by `invite-loadtest seed-peer --peer together`: the rows `invite-loadtest seed`\n\
         -- writes, in Together's tables, and the accepting users of the numbered range.\n\
         \\set ON_ERROR_STOP on\nBEGIN;\n",
    );
    let mut add = |statement: String| {
        sql.push_str(&statement);
        sql.push_str(";\n");
    };
    // Owners: of the ordinary servers and of the special ones.
    add(format!(
        "INSERT INTO users (id, username, password_hash, created_at, updated_at) \
         SELECT {}, 'owner' || n, 'x', {SEEDED_AT}, {SEEDED_AT} FROM ({owner_numbers}) AS g(n)",
        uuid(prefix::OWNER, "n")
    ));
    add(format!(
        "INSERT INTO servers (id, name, owner_id, created_at, updated_at) \
         SELECT {}, 'Bench server ' || n, {}, {SEEDED_AT}, {SEEDED_AT} \
         FROM generate_series(1, {}) AS g(n)",
        uuid(prefix::SERVER, "n"),
        uuid(prefix::OWNER, "n"),
        size.servers
    ));
    for Special { number, name, .. } in &specials {
        add(format!(
            "INSERT INTO servers (id, name, owner_id, created_at, updated_at) \
             VALUES ('{}', '{name}', '{}', {SEEDED_AT}, {SEEDED_AT})",
            ids::server(*number),
            ids::owner(*number)
        ));
    }
    // Each owner is its server's first member.
    add(format!(
        "INSERT INTO server_members (user_id, server_id, joined_at) \
         SELECT {}, {}, {SEEDED_AT} FROM ({owner_numbers}) AS g(n)",
        uuid(prefix::OWNER, "n"),
        uuid(prefix::SERVER, "n")
    ));
    add(format!(
        "INSERT INTO server_invites (id, server_id, code, created_by, max_uses, uses, expires_at, created_at) \
         SELECT {}, {}, 'd' || lpad(n::text, 7, '0'), {}, NULL, 0, NULL, {SEEDED_AT} \
         FROM generate_series(1, {}) AS g(n)",
        uuid(prefix::INVITE, "n"),
        uuid(prefix::SERVER, &server_of("n")),
        uuid(prefix::OWNER, &server_of("n")),
        size.invites
    ));
    for Special { number, code, max_uses, extra_members, .. } in &specials {
        add(format!(
            "INSERT INTO server_invites (id, server_id, code, created_by, max_uses, uses, expires_at, created_at) \
             VALUES ('{}', '{}', '{code}', '{}', {max_uses}, {extra_members}, NULL, {SEEDED_AT})",
            ids::special_invite(*number),
            ids::server(*number),
            ids::owner(*number)
        ));
        if *extra_members > 0 {
            // The members who joined with it, numbered as `seed` numbers them.
            let member = uuid(prefix::MEMBER, &format!("n + {}", number * 1_000_000));
            add(format!(
                "INSERT INTO users (id, username, password_hash, created_at, updated_at) \
                 SELECT {member}, 'm' || (n + {}), 'x', {SEEDED_AT}, {SEEDED_AT} \
                 FROM generate_series(1, {extra_members}) AS g(n)",
                number * 1_000_000
            ));
            add(format!(
                "INSERT INTO server_members (user_id, server_id, joined_at) \
                 SELECT {member}, '{}', {SEEDED_AT} FROM generate_series(1, {extra_members}) AS g(n)",
                ids::server(*number)
            ));
        }
    }
    if !users.is_empty() {
        add(format!(
            "-- The accepting users {}..{} (`--users-from`): one per accept.\n\
             INSERT INTO users (id, username, password_hash, created_at, updated_at) \
             SELECT {}, 'a' || n, 'x', {SEEDED_AT}, {SEEDED_AT} \
             FROM generate_series({}, {}) AS g(n)",
            users.start,
            users.end,
            uuid(prefix::ACCEPTER, "n"),
            users.start,
            users.end - 1
        ));
    }
    sql.push_str("COMMIT;\n");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_together_script_names_the_same_rows_as_the_tokens() {
        let size = SeedSize { servers: 10, invites: 30, big_members: 5 };
        let sql = seed_sql(Peer::Together, size, 100..200);
        assert!(sql.starts_with("-- Written by"));
        assert!(sql.trim_end().ends_with("COMMIT;"));
        for expected in [
            // owners and accepting users under the names their tokens carry
            "'owner' || n",
            "'a' || n",
            "generate_series(100, 199)",
            // the special servers and their invites, with the uses `seed` gives them
            &format!(
                "'{}', '{}', 'pbig0001', '{}', NULL, 5,",
                ids::special_invite(ids::BIG_SERVER),
                ids::server(ids::BIG_SERVER),
                ids::owner(ids::BIG_SERVER)
            ),
            "'hot00001'",
            "1000000, 0, NULL",
            "generate_series(1, 30)",
        ] {
            assert!(sql.contains(expected), "{expected} missing from\n{sql}");
        }
        assert_eq!(ids::accepter_name(100), "a100");
        assert!(uuid(prefix::ACCEPTER, "n").starts_with("('ac000000-0000-4000-8000-'"));
        assert!(!seed_sql(Peer::Together, size, 1..1).contains("'a' || n"));
    }
}
