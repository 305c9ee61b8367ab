//! The seeded data's ids and codes are computed, not stored: the tool, pgbench scripts and any
//! external load generator address the same rows by number.

use uuid::Uuid;

/// The big server (100,000 members), for `preview-big-server`.
pub(crate) const BIG_SERVER: u64 = 900_001;
/// The small server (10 members), its counterpart.
pub(crate) const SMALL_SERVER: u64 = 900_002;
/// The server of the hot invite.
pub(crate) const HOT_SERVER: u64 = 900_003;
/// The server `accept-capped` creates its invites in.
pub(crate) const CAPPED_SERVER: u64 = 900_004;

/// The invite every `accept-hot` request accepts.
pub(crate) const HOT_CODE: &str = "hot00001";
/// The big server's invite.
pub(crate) const BIG_CODE: &str = "pbig0001";
/// The small server's invite.
pub(crate) const SMALL_CODE: &str = "psmall01";

fn numbered(prefix: &str, n: u64) -> Uuid {
    Uuid::parse_str(&format!("{prefix}-0000-4000-8000-{n:012}")).expect("a well-formed UUID")
}

/// The id of server `k`.
pub(crate) fn server(k: u64) -> Uuid {
    numbered("5e000000", k)
}

/// The owner of server `k`.
pub(crate) fn owner(k: u64) -> Uuid {
    numbered("0e000000", k)
}

/// The id of the invite of special server `number`.
pub(crate) fn special_invite(number: u64) -> Uuid {
    numbered("1e000000", number)
}

/// Accepting user `n`, of the numbered range `--users-from` draws from: a peer that keeps a
/// user table (Together) holds these rows too, written by `seed-peer`.
pub(crate) fn accepter(n: u64) -> Uuid {
    numbered("ac000000", n)
}

/// The name in accepting user `n`'s token and in a peer's user table.
pub(crate) fn accepter_name(n: u64) -> String {
    format!("a{n}")
}

/// The name in the token of server `k`'s owner and in a peer's user table.
pub(crate) fn owner_name(k: u64) -> String {
    format!("owner{k}")
}

/// The code of distinct invite `n` (1-based): `d0000001`...
pub(crate) fn distinct_code(n: u64) -> String {
    format!("d{n:07}")
}

/// The UUID prefixes above, for the SQL that seeds them.
pub(crate) mod prefix {
    /// Servers.
    pub(crate) const SERVER: &str = "5e000000-0000-4000-8000-";
    /// Owners.
    pub(crate) const OWNER: &str = "0e000000-0000-4000-8000-";
    /// Distinct invites.
    pub(crate) const INVITE: &str = "1e000000-0000-4000-8000-";
    /// Members of the big and small servers.
    pub(crate) const MEMBER: &str = "ae000000-0000-4000-8000-";
    /// Accepting users of the numbered range.
    pub(crate) const ACCEPTER: &str = "ac000000-0000-4000-8000-";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_codes_are_well_formed() {
        assert_eq!(server(7).to_string(), "5e000000-0000-4000-8000-000000000007");
        assert_eq!(owner(900_001).to_string(), "0e000000-0000-4000-8000-000000900001");
        assert_eq!(distinct_code(100_000), "d0100000");
        assert_eq!(accepter(12).to_string(), format!("{}000000000012", prefix::ACCEPTER));
        assert_eq!((accepter_name(12), owner_name(3)), ("a12".to_owned(), "owner3".to_owned()));
        for code in
            [distinct_code(1), HOT_CODE.to_owned(), BIG_CODE.to_owned(), SMALL_CODE.to_owned()]
        {
            assert!(invite_core::code::InviteCode::parse(&code).is_ok(), "{code}");
        }
    }
}
