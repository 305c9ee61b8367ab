//! Real commits racing on real connections: the invite must admit exactly as many people as it
//! allows, however the requests interleave.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use invite_core::code::CodeRef;
use invite_core::redeem::RedemptionRefused;
use invite_core::server::PageLimit;
use invite_store::repo::{Actor, Redemption};
use invite_store::testing::TestDatabase;
use invite_store::{Backend, DbPool, PoolConfig};

use crate::{code_of, conformance, membership_counts, reload, server_with_invite, t0, user};

const RACERS: usize = 200;
const MAX_USES: i64 = 25;
const ROUNDS: usize = 20;

pub(crate) fn racing_pool(db: &TestDatabase) -> DbPool {
    let mut config = PoolConfig::new(db.url().clone());
    // PostgreSQL takes real parallel connections; SQLite has one writer whatever the pool.
    config.max_size = if db.backend() == Backend::Postgres { 32 } else { 8 };
    config.checkout_timeout = Duration::from_mins(1);
    DbPool::new(&config)
}

/// Runs `who(i)` accepting `code` on `RACERS` threads released at once; returns the outcomes.
fn race(pool: &DbPool, code: &CodeRef, who: impl Fn(usize) -> Actor) -> Vec<(Actor, Redemption)> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|i| {
            let (pool, code, barrier, actor) =
                (pool.clone(), code.clone(), barrier.clone(), who(i));
            std::thread::spawn(move || {
                barrier.wait();
                let outcome = pool.run(|conn| conn.redeem(&code, &actor, t0())).unwrap();
                (actor, outcome)
            })
        })
        .collect();
    handles.into_iter().map(|handle| handle.join().unwrap()).collect()
}

conformance! {
    fn two_hundred_users_racing_for_25_uses_admit_exactly_25(db: &TestDatabase) {
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        for round in 0..ROUNDS {
            let (_, server, invite) = server_with_invite(conn, &format!(r#"{{"max_uses": {MAX_USES}}}"#));
            let outcomes = race(&pool, &code_of(&invite), |_| user());

            let admitted: HashSet<_> = outcomes
                .iter()
                .filter(|(_, outcome)| matches!(outcome, Redemption::Joined(_)))
                .map(|(actor, _)| actor.user_id)
                .collect();
            let refused = outcomes
                .iter()
                .filter(|(_, outcome)| *outcome == Redemption::Refused(RedemptionRefused::MaxedOut))
                .count();
            assert_eq!((admitted.len(), refused), (25, RACERS - 25), "round {round}");
            assert_eq!(reload(conn, &invite).uses, MAX_USES, "round {round}");
            assert_eq!(membership_counts(conn, server.id), (26, 26), "round {round}");
            let joined: HashSet<_> = conn
                .members_joined_with(invite.id, None, PageLimit::parse(Some(1000), 100, 1000).unwrap())
                .unwrap()
                .into_iter()
                .map(|member| member.user_id)
                .collect();
            assert_eq!(joined, admitted, "round {round}: the rows are the ones told they joined");
        }
    }

    fn one_user_racing_against_itself_joins_once(db: &TestDatabase) {
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        let (_, server, invite) = server_with_invite(conn, r#"{"max_uses": 10}"#);
        let same = user();
        let outcomes = race(&pool, &code_of(&invite), |_| same.clone());
        let joined = outcomes.iter().filter(|(_, o)| matches!(o, Redemption::Joined(_))).count();
        let already = outcomes
            .iter()
            .filter(|(_, o)| *o == Redemption::Refused(RedemptionRefused::AlreadyMember))
            .count();
        assert_eq!((joined, already), (1, RACERS - 1));
        assert_eq!(reload(conn, &invite).uses, 1);
        assert_eq!(membership_counts(conn, server.id), (2, 2));
    }

    fn a_ban_racing_an_accept_never_leaves_a_banned_member(db: &TestDatabase) {
        const PAIRS: usize = 40;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        for round in 0..5 {
            let (owner, server, invite) = server_with_invite(conn, "{}");
            let code = code_of(&invite);
            let users: Vec<Actor> = (0..PAIRS).map(|_| user()).collect();
            let barrier = Arc::new(Barrier::new(2 * PAIRS));
            let mut accepts = Vec::new();
            let mut bans = Vec::new();
            for actor in &users {
                let (banned, by, server_id) = (actor.user_id, owner.user_id, server.id);
                let (pool_a, code, barrier_a, actor) =
                    (pool.clone(), code.clone(), barrier.clone(), actor.clone());
                accepts.push(std::thread::spawn(move || {
                    barrier_a.wait();
                    pool_a.run(|conn| conn.redeem(&code, &actor, t0())).unwrap()
                }));
                let (pool_b, barrier_b) = (pool.clone(), barrier.clone());
                bans.push(std::thread::spawn(move || {
                    barrier_b.wait();
                    pool_b.run(|conn| conn.ban(server_id, banned, None, by, t0())).unwrap();
                }));
            }
            let outcomes: Vec<Redemption> =
                accepts.into_iter().map(|handle| handle.join().unwrap()).collect();
            for handle in bans {
                handle.join().unwrap();
            }

            // Every ban stands, so nobody may be left a member, whichever of the two came first.
            for (actor, outcome) in users.iter().zip(&outcomes) {
                assert!(
                    matches!(outcome, Redemption::Joined(_))
                        || *outcome == Redemption::Refused(RedemptionRefused::Banned),
                    "round {round}: {outcome:?}"
                );
                assert_eq!(conn.find_member(server.id, actor.user_id).unwrap(), None, "round {round}");
            }
            assert_eq!(membership_counts(conn, server.id), (1, 1), "round {round}");
            let joined = outcomes.iter().filter(|o| matches!(o, Redemption::Joined(_))).count();
            assert_eq!(reload(conn, &invite).uses, i64::try_from(joined).unwrap(), "round {round}");
        }
    }
}
