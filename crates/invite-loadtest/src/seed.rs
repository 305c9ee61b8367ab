//! Seeding by bulk SQL, straight into a migrated database: 10,000 servers with their owners,
//! 100,000 invites spread over them, a server of 100,000 members and one of 10, and the hot
//! invite. Bulk statements make this seconds instead of the minutes 110,000 API calls would
//! take; the service's own write paths are what the `create` and `accept` scenarios measure.

use anyhow::Context;
use diesel::connection::SimpleConnection;
use invite_store::{Backend, DbConnection};

use crate::ids::{self, prefix};

/// How much to seed (as `seed` and `seed-peer` take it on the command line).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct SeedSize {
    /// Ordinary servers.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) servers: u64,
    /// Distinct invites, spread round-robin over the servers.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) invites: u64,
    /// Members of the big server (besides its owner).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) big_members: u64,
}

/// A special server, seeded with its owner as first member and one invite.
pub(crate) struct Special {
    /// Its number (see `ids`).
    pub(crate) number: u64,
    /// Its name.
    pub(crate) name: &'static str,
    /// Its invite's code.
    pub(crate) code: &'static str,
    /// Its invite's `max_uses`, as SQL.
    pub(crate) max_uses: &'static str,
    /// Members besides the owner, who joined with its invite (its `uses`).
    pub(crate) extra_members: u64,
}

/// The special servers: the big one, the small one, the hot invite's and the capped one's.
pub(crate) fn specials(size: SeedSize) -> [Special; 4] {
    let special = |number, name, code, max_uses, extra_members| Special {
        number,
        name,
        code,
        max_uses,
        extra_members,
    };
    [
        special(ids::BIG_SERVER, "Big server", ids::BIG_CODE, "NULL", size.big_members),
        special(ids::SMALL_SERVER, "Small server", ids::SMALL_CODE, "NULL", 9),
        special(ids::HOT_SERVER, "Hot server", ids::HOT_CODE, "1000000", 0),
        special(ids::CAPPED_SERVER, "Capped server", "capped00", "1", 0),
    ]
}

/// A fixed creation time: seeding must not depend on the clock of the machine it runs on.
pub(crate) const SEEDED_AT: &str = "'2026-01-01T00:00:00.000000Z'";

struct Sql(Backend);

impl Sql {
    /// `INSERT INTO {table} ({columns}) SELECT {values} FROM <1..=count as n>`.
    fn insert(&self, table: &str, columns: &str, values: &str, count: u64) -> String {
        match self.0 {
            Backend::Postgres => format!(
                "INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1, {count}) AS g(n);"
            ),
            Backend::Sqlite => format!(
                "INSERT INTO {table} ({columns}) WITH RECURSIVE g(n) AS \
                 (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count}) SELECT {values} FROM g;"
            ),
        }
    }

    /// `expr` left-padded with zeros to `width` characters.
    fn pad(&self, expr: &str, width: usize) -> String {
        match self.0 {
            Backend::Postgres => format!("lpad(({expr})::text, {width}, '0')"),
            Backend::Sqlite => format!("substr('{}' || ({expr}), -{width})", "0".repeat(width)),
        }
    }

    /// A UUID `prefix` + `expr` padded to 12 digits.
    fn uuid(&self, prefix: &str, expr: &str) -> String {
        let text = format!("'{prefix}' || {}", self.pad(expr, 12));
        match self.0 {
            Backend::Postgres => format!("({text})::uuid"),
            Backend::Sqlite => text,
        }
    }
}

/// Raid protection for every seeded server (`seed --raid-protection joins,window,pause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RaidSetting {
    joins: i64,
    window_seconds: i64,
    pause_seconds: i64,
}

impl std::fmt::Display for RaidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { joins, window_seconds, pause_seconds } = self;
        write!(f, "{joins} joins in {window_seconds} s pause invites for {pause_seconds} s")
    }
}

/// Reads `joins,window_seconds,pause_seconds`: three positive integers.
pub(crate) fn parse_raid_protection(text: &str) -> Result<RaidSetting, String> {
    let numbers: Vec<i64> = text
        .split(',')
        .map(|part| part.trim().parse::<i64>().ok().filter(|n| *n > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("expected joins,window_seconds,pause_seconds, found {text:?}"))?;
    match numbers[..] {
        [joins, window_seconds, pause_seconds] => {
            Ok(RaidSetting { joins, window_seconds, pause_seconds })
        }
        _ => Err(format!("expected three numbers, joins,window_seconds,pause_seconds: {text:?}")),
    }
}

/// Turns raid protection on for every server, with its windows closed (as
/// `PUT /servers/{id}/raid-protection` leaves them).
pub(crate) fn protect_from_raids(
    conn: &mut DbConnection,
    setting: RaidSetting,
) -> anyhow::Result<()> {
    let RaidSetting { joins, window_seconds, pause_seconds } = setting;
    conn.batch_execute(&format!(
        "UPDATE servers SET raid_joins = {joins}, raid_window_seconds = {window_seconds}, \
         raid_pause_seconds = {pause_seconds}, raid_window_started_at = NULL, raid_window_joins = 0;"
    ))
    .context("turning raid protection on failed")
}

/// Seeds an empty, migrated database.
pub(crate) fn seed(conn: &mut DbConnection, size: SeedSize) -> anyhow::Result<()> {
    let sql = Sql(conn.backend());
    let server_columns =
        "id, name, owner_id, default_permissions, features, member_count, created_at, updated_at";
    let member_columns = "server_id, user_id, permissions, joined_at, temporary, source";
    let invite_columns = "id, server_id, code, kind, created_by, max_uses, uses, max_age, temporary, created_at, updated_at, version";
    let server_of = |n: &str| format!("(({n}) - 1) % {} + 1", size.servers);
    // The `n`th ordinary server and its owner, for the rows written one per server.
    let (nth_server, nth_owner) = (sql.uuid(prefix::SERVER, "n"), sql.uuid(prefix::OWNER, "n"));
    let mut statements = vec![
        sql.insert(
            "servers",
            server_columns,
            &format!(
                "{nth_server}, 'Bench server ' || n, {nth_owner}, 115, '[]', 1, {SEEDED_AT}, {SEEDED_AT}"
            ),
            size.servers,
        ),
        sql.insert(
            "members",
            member_columns,
            &format!("{nth_server}, {nth_owner}, 0, {SEEDED_AT}, FALSE, 'owner'"),
            size.servers,
        ),
        sql.insert(
            "invites",
            invite_columns,
            &format!(
                "{}, {}, 'd' || {}, 'random', {}, NULL, 0, 0, FALSE, {SEEDED_AT}, {SEEDED_AT}, 1",
                sql.uuid(prefix::INVITE, "n"),
                sql.uuid(prefix::SERVER, &server_of("n")),
                sql.pad("n", 7),
                sql.uuid(prefix::OWNER, &server_of("n")),
            ),
            size.invites,
        ),
    ];
    for Special { number, name, code, max_uses, extra_members } in specials(size) {
        let (server, owner) = (ids::server(number), ids::owner(number));
        let quote = |id: uuid::Uuid| match sql.0 {
            Backend::Postgres => format!("'{id}'::uuid"),
            Backend::Sqlite => format!("'{id}'"),
        };
        statements.push(format!(
            "INSERT INTO servers ({server_columns}) VALUES ({}, '{name}', {}, 115, '[]', {}, {SEEDED_AT}, {SEEDED_AT});",
            quote(server),
            quote(owner),
            extra_members + 1
        ));
        statements.push(format!(
            "INSERT INTO members ({member_columns}) VALUES ({}, {}, 0, {SEEDED_AT}, FALSE, 'owner');",
            quote(server),
            quote(owner)
        ));
        let invite = quote(ids::special_invite(number));
        statements.push(format!(
            "INSERT INTO invites ({invite_columns}) VALUES ({invite}, {}, '{code}', 'random', {}, {max_uses}, {extra_members}, 0, FALSE, {SEEDED_AT}, {SEEDED_AT}, 1);",
            quote(server),
            quote(owner)
        ));
        if extra_members > 0 {
            // They joined with the server's invite, as its `uses` says: the invariants hold.
            statements.push(sql.insert(
                "members",
                &format!("{member_columns}, joined_via_invite_id, joined_via_code, inviter_id"),
                &format!(
                    "{}, {}, 0, {SEEDED_AT}, FALSE, 'invite', {invite}, '{code}', {}",
                    quote(server),
                    sql.uuid(prefix::MEMBER, &format!("n + {}", number * 1_000_000)),
                    quote(owner)
                ),
                extra_members,
            ));
        }
    }
    // The trigger that counts each server's active invites would run once per seeded invite
    // (seconds of plpgsql on PostgreSQL): it stays off while seeding, and one statement counts
    // them all at the end. SQLite's triggers are plain SQL and stay on.
    let (counting_off, counting_on) = match sql.0 {
        Backend::Postgres => (
            "ALTER TABLE invites DISABLE TRIGGER invites_counted_on_insert;",
            "ALTER TABLE invites ENABLE TRIGGER invites_counted_on_insert;",
        ),
        Backend::Sqlite => ("", ""),
    };
    // One transaction: seeding is all or nothing.
    let script = format!(
        "BEGIN;\n{counting_off}\n{}\n{counting_on}\n{};\nCOMMIT;",
        statements.join("\n"),
        invite_store::invariants::RECOUNT_ACTIVE_INVITES
    );
    conn.batch_execute(&script).context("seeding failed (is the database empty and migrated?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raid_setting_is_three_positive_numbers() {
        let setting = parse_raid_protection("10000, 10,60").unwrap();
        assert_eq!(setting, RaidSetting { joins: 10_000, window_seconds: 10, pause_seconds: 60 });
        assert_eq!(setting.to_string(), "10000 joins in 10 s pause invites for 60 s");
        for bad in ["", "10,10", "10,10,60,1", "0,10,60", "-1,10,60", "a,10,60"] {
            assert!(parse_raid_protection(bad).is_err(), "{bad:?}");
        }
    }
}
