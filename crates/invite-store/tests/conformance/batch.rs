//! Joins committed as a batch (`invite_store::batch`): on PostgreSQL one statement decides and
//! writes a batch's plain accepts, and each join must come out exactly as it would alone, in
//! the batch's order, however batches race each other and bans.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use invite_core::code::CodeRef;
use invite_core::event::EventType;
use invite_core::redeem::{InvitesPause, RedemptionRefused};
use invite_store::batch::{BatchWrite, SetOutcome, SetRequest, commit_batch};
use invite_store::models::{Invite, Preview, Server};
use invite_store::repo::{Actor, JoinRequest, Redemption};
use invite_store::testing::TestDatabase;
use invite_store::{DbConnection, StoreResult};

use crate::concurrency::racing_pool;
use crate::{
    code_of, conformance, create_invite, create_server, membership_counts, minutes, named, reload,
    t0, user,
};

/// A join or a preview as the service hands it to a batch: decided by the set statement when
/// the batch has one, or `run` alone.
struct TestSet<T> {
    request: SetRequest,
    run: fn(&mut DbConnection, &SetRequest) -> StoreResult<T>,
    /// Its answer out of the set statement's outcome.
    decided: fn(SetOutcome) -> T,
    outcome: Option<StoreResult<T>>,
    answer: Arc<Mutex<Option<StoreResult<T>>>>,
}

impl<T: Send> BatchWrite for TestSet<T> {
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let outcome = (self.run)(conn, &self.request);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_mins(1)
    }

    fn settle(mut self: Box<Self>, committed: StoreResult<()>) {
        let outcome = committed.and_then(|()| self.outcome.take().unwrap());
        *self.answer.lock().unwrap() = Some(outcome);
    }

    fn set_request(&self) -> Option<&SetRequest> {
        Some(&self.request)
    }

    fn decided(&mut self, outcome: SetOutcome) {
        self.outcome = Some(Ok((self.decided)(outcome)));
    }
}

/// Commits `requests` as one batch; their answers, in order.
fn commit_set<T: Send + 'static>(
    conn: &mut DbConnection,
    requests: Vec<SetRequest>,
    run: fn(&mut DbConnection, &SetRequest) -> StoreResult<T>,
    decided: fn(SetOutcome) -> T,
) -> Vec<T> {
    let answers: Vec<_> = requests.iter().map(|_| Arc::new(Mutex::new(None))).collect();
    let writes = requests
        .into_iter()
        .zip(&answers)
        .map(|(request, answer)| {
            let answer = answer.clone();
            Box::new(TestSet { request, run, decided, outcome: None, answer })
                as Box<dyn BatchWrite>
        })
        .collect();
    commit_batch(conn, writes);
    answers.iter().map(|answer| answer.lock().unwrap().take().unwrap().unwrap()).collect()
}

/// Commits `joins` as one batch; their redemptions, in order.
fn commit(conn: &mut DbConnection, joins: &[(&CodeRef, &Actor)]) -> Vec<Redemption> {
    commit_at(conn, joins, t0())
}

/// Commits `joins`, made at `now`, as one batch; their redemptions, in order.
pub(crate) fn commit_at(
    conn: &mut DbConnection,
    joins: &[(&CodeRef, &Actor)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Redemption> {
    let requests = joins
        .iter()
        .map(|(code, actor)| {
            let (code, actor) = ((*code).clone(), (*actor).clone());
            SetRequest::Join(JoinRequest { code, actor, now })
        })
        .collect();
    let run = |conn: &mut DbConnection, request: &SetRequest| {
        let SetRequest::Join(join) = request else { unreachable!() };
        conn.redeem(&join.code, &join.actor, join.now)
    };
    let decided = |outcome: SetOutcome| {
        let SetOutcome::Joined(redemption) = outcome else {
            panic!("a join previewed: {outcome:?}")
        };
        redemption
    };
    commit_set(conn, requests, run, decided)
}

/// The refusal of a redemption; `None` for a join.
fn reason(redemption: &Redemption) -> Option<RedemptionRefused> {
    match redemption {
        Redemption::Refused(reason) => Some(*reason),
        Redemption::Joined(_) | Redemption::Filed(_) => None,
    }
}

/// A new owner's server with a plain invite, its code, and `users` new users to race
/// through it.
fn crowd(conn: &mut DbConnection, users: usize) -> (Actor, Server, Invite, CodeRef, Vec<Actor>) {
    let owner = user();
    let server = create_server(conn, &owner);
    let invite = create_invite(conn, &server, &owner, "{}");
    let code = code_of(&invite);
    let actors = (0..users).map(|_| user()).collect();
    (owner, server, invite, code, actors)
}

conformance! {
    fn a_batch_refuses_who_an_invite_is_not_for_and_grants_what_an_invite_grants(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = user();
        let server = create_server(conn, &owner);
        let (listed, stranger, other_stranger, granted) = (user(), user(), user(), user());
        let json = format!(r#"{{"max_uses": 2, "allowed_user_ids": ["{}"]}}"#, listed.user_id);
        let named_invite = create_invite(conn, &server, &owner, &json);
        let granting = create_invite(conn, &server, &owner, r#"{"grant_permissions": 768, "temporary": true}"#);
        let (named_code, granting_code) = (code_of(&named_invite), code_of(&granting));
        let before = membership_counts(conn, server.id);

        let outcomes = commit(
            conn,
            &[
                (&named_code, &stranger),
                (&named_code, &listed),
                (&granting_code, &granted),
                (&named_code, &other_stranger),
            ],
        );
        let reasons: Vec<_> = outcomes.iter().map(reason).collect();
        let not_for_you = Some(RedemptionRefused::NotForYou);
        assert_eq!(reasons, [not_for_you, None, None, not_for_you]);
        // The refused joins wrote nothing: one use taken of two, two members more.
        assert_eq!(reload(conn, &named_invite).uses, 1);
        assert_eq!(membership_counts(conn, server.id), (before.0 + 2, before.1 + 2));
        for refused in [&stranger, &other_stranger] {
            assert!(conn.find_member(server.id, refused.user_id).unwrap().is_none());
        }
        let Redemption::Joined(joined) = &outcomes[2] else { panic!() };
        let expected = invite_core::permissions::Permissions::from_bits(768).unwrap();
        assert_eq!((joined.member.permissions, joined.member.temporary), (expected, false));
        let stored = conn.find_member(server.id, granted.user_id).unwrap().unwrap();
        assert_eq!((stored.permissions, stored.temporary), (expected, false));
        assert_eq!(crate::stored_payload(conn, joined.event.seq)["temporary"], false);
        let Redemption::Joined(joined) = &outcomes[1] else { panic!() };
        assert_eq!((joined.member.permissions.bits(), joined.member.temporary), (0, false));
    }

    fn a_batch_decides_every_join_as_it_would_alone_in_the_batchs_order(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = user();
        let server = create_server(conn, &owner);
        let capped = create_invite(conn, &server, &owner, r#"{"max_uses": 3, "temporary": true}"#);
        let open = create_invite(conn, &server, &owner, "{}");
        let expired = crate::create_invite_at(conn, &server, &owner, r#"{"max_age": 60}"#, t0() - minutes(2));
        let revoked = create_invite(conn, &server, &owner, "{}");
        crate::revoke(conn, revoked.id, owner.user_id, t0()).unwrap();
        let member = user();
        conn.redeem(&code_of(&open), &member, t0()).unwrap();
        let banned = user();
        conn.ban(server.id, banned.user_id, None, owner.user_id, t0()).unwrap();
        let paused_server = create_server(conn, &owner);
        let paused = create_invite(conn, &paused_server, &owner, "{}");
        conn.set_invites_pause(paused_server.id, Some(InvitesPause::Indefinitely), owner.user_id, t0()).unwrap();

        let guests: Vec<Actor> = (0..5).map(|i| named(&format!("guest{i}"))).collect();
        let twice = user();
        let missing = CodeRef::parse("nonexist").unwrap();
        let (capped_code, open_code) = (code_of(&capped), code_of(&open));
        let (revoked_code, expired_code, paused_code) = (code_of(&revoked), code_of(&expired), code_of(&paused));
        let batch: Vec<(&CodeRef, &Actor)> = vec![
            (&capped_code, &guests[0]),
            (&missing, &guests[1]),
            (&capped_code, &guests[1]),
            (&open_code, &twice),
            (&revoked_code, &guests[2]),
            (&capped_code, &twice),
            (&open_code, &member),
            (&open_code, &banned),
            (&expired_code, &guests[2]),
            (&paused_code, &guests[2]),
            (&capped_code, &guests[2]),
            (&capped_code, &guests[3]),
            (&capped_code, &guests[4]),
        ];
        let outcomes = commit(conn, &batch);
        let reasons: Vec<_> = outcomes.iter().map(reason).collect();
        assert_eq!(reasons, vec![
            None,
            Some(RedemptionRefused::NotFound),
            None,
            None,
            Some(RedemptionRefused::Revoked),
            // The same user, already joined by the batch through another invite.
            Some(RedemptionRefused::AlreadyMember),
            Some(RedemptionRefused::AlreadyMember),
            Some(RedemptionRefused::Banned),
            Some(RedemptionRefused::Expired),
            Some(RedemptionRefused::Paused),
            None,
            // The capped invite's three uses went to the first three, in the batch's order.
            Some(RedemptionRefused::MaxedOut),
            Some(RedemptionRefused::MaxedOut),
        ]);

        // Each join says what it made of the invite and the server, as a join alone would.
        let joined: Vec<_> = outcomes.iter().filter_map(|outcome| match outcome {
            Redemption::Joined(joined) => Some(joined),
            Redemption::Refused(_) | Redemption::Filed(_) => None,
        }).collect();
        let seen: Vec<_> = joined.iter().map(|joined| (joined.member.joined_via_invite_id.unwrap(), joined.uses, joined.member_count)).collect();
        assert_eq!(seen, vec![(capped.id, 1, 3), (capped.id, 2, 4), (open.id, 2, 5), (capped.id, 3, 6)]);
        assert!(joined.iter().all(|joined| joined.member.server_id == server.id));
        assert_eq!(joined[0].member.inviter_id, Some(owner.user_id));
        assert!(joined[0].member.temporary && !joined[2].member.temporary);

        // The database holds exactly that: the uses, the members, their count, the names.
        let (capped_after, open_after) = (reload(conn, &capped), reload(conn, &open));
        assert_eq!((capped_after.uses, open_after.uses), (3, 2));
        assert!(capped_after.version >= capped.version + 3, "{capped_after:?}");
        assert_eq!(membership_counts(conn, server.id), (6, 6));
        assert_eq!(membership_counts(conn, paused_server.id), (1, 1));
        for joined in &joined {
            let stored = conn.find_member(server.id, joined.member.user_id).unwrap().unwrap();
            assert_eq!(stored, joined.member);
        }
        assert_eq!(conn.find_member(server.id, guests[0].user_id).unwrap().unwrap().username.as_deref(), Some("guest0"));
        assert!(conn.find_member(server.id, guests[3].user_id).unwrap().is_none());

        // One MEMBER_JOIN per join, in the batch's order, each as the join returned it and as
        // stored (on PostgreSQL the statement builds the payload in SQL).
        let events: Vec<_> = conn.server_events(server.id, 0, 100).unwrap().into_iter()
            .filter(|event| event.kind() == EventType::MemberJoin)
            .collect();
        let returned: Vec<_> = joined.iter().map(|joined| joined.event.clone()).collect();
        assert_eq!(events[events.len() - 4..], returned[..]);
        for event in &returned {
            assert_eq!(crate::stored_payload(conn, event.seq), event.event.payload());
        }
        let audit = conn.list_audit_entries(server.id, None, invite_core::server::PageLimit::parse(None, 50, 100).unwrap()).unwrap();
        let joins = audit.iter().filter(|entry| entry.action == invite_core::audit::AuditAction::MemberJoin).count();
        // The member's own join before the batch, and the batch's four.
        assert_eq!(joins, 5);
    }

    fn racing_batches_admit_exactly_the_uses(db: &TestDatabase) {
        const THREADS: usize = 8;
        const PER_BATCH: usize = 25;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        for round in 0..5 {
            let owner = user();
            let server = create_server(conn, &owner);
            // Two invites of one server: batches lock both, and the server, in one order.
            let invites = [
                create_invite(conn, &server, &owner, r#"{"max_uses": 25}"#),
                create_invite(conn, &server, &owner, r#"{"max_uses": 25}"#),
            ];
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS).map(|thread| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                let codes: Vec<CodeRef> = invites.iter().map(code_of).collect();
                std::thread::spawn(move || {
                    let actors: Vec<Actor> = (0..PER_BATCH).map(|_| user()).collect();
                    let batch: Vec<(&CodeRef, &Actor)> = actors.iter().enumerate()
                        .map(|(i, actor)| (&codes[(i + thread) % 2], actor))
                        .collect();
                    barrier.wait();
                    let outcomes = pool.run(|conn| Ok(commit(conn, &batch))).unwrap();
                    actors.into_iter().zip(outcomes).collect::<Vec<_>>()
                })
            }).collect();
            let outcomes: Vec<_> = handles.into_iter().flat_map(|handle| handle.join().unwrap()).collect();
            let admitted = outcomes.iter().filter(|(_, outcome)| reason(outcome).is_none()).count();
            let maxed = outcomes.iter().filter(|(_, outcome)| reason(outcome) == Some(RedemptionRefused::MaxedOut)).count();
            assert_eq!((admitted, maxed), (50, THREADS * PER_BATCH - 50), "round {round}");
            for invite in &invites {
                assert_eq!(reload(conn, invite).uses, 25, "round {round}");
            }
            assert_eq!(membership_counts(conn, server.id), (51, 51), "round {round}");
            for (actor, outcome) in &outcomes {
                let stored = conn.find_member(server.id, actor.user_id).unwrap();
                assert_eq!(stored.is_some(), reason(outcome).is_none(), "round {round}: the rows are the ones told they joined");
            }
        }
    }

    fn a_ban_crossing_batches_leaves_no_banned_member(db: &TestDatabase) {
        const USERS: usize = 100;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        let (owner, server, _, code, actors) = crowd(conn, USERS);
        let barrier = Arc::new(Barrier::new(5));
        let joiners: Vec<_> = actors.chunks(25).map(|chunk| {
            let (pool, barrier, code, chunk) = (pool.clone(), barrier.clone(), code.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                barrier.wait();
                // Small batches, many of them, so that bans land between and inside them.
                for few in chunk.chunks(5) {
                    let batch: Vec<(&CodeRef, &Actor)> = few.iter().map(|actor| (&code, actor)).collect();
                    pool.run(|conn| Ok(commit(conn, &batch))).unwrap();
                }
            })
        }).collect();
        let banner = {
            let (pool, barrier, ids) = (pool.clone(), barrier.clone(), actors.iter().map(|actor| actor.user_id).collect::<Vec<_>>());
            let (server_id, by) = (server.id, owner.user_id);
            std::thread::spawn(move || {
                barrier.wait();
                for id in ids.iter().step_by(2) {
                    pool.run(|conn| conn.ban(server_id, *id, None, by, t0())).unwrap();
                }
            })
        };
        for handle in joiners {
            handle.join().unwrap();
        }
        banner.join().unwrap();
        for (i, actor) in actors.iter().enumerate() {
            let member = conn.find_member(server.id, actor.user_id).unwrap();
            if i % 2 == 0 {
                assert!(member.is_none(), "user {i} is banned and still a member");
            } else {
                assert!(member.is_some(), "user {i} was never banned and did not join");
            }
        }
        let (rows, counted) = membership_counts(conn, server.id);
        let half = i64::try_from(USERS / 2).unwrap();
        assert_eq!((rows, counted), (1 + half, 1 + half));
    }

    fn an_undo_crossing_batches_and_single_joins_leaves_nobody_through_the_invite(db: &TestDatabase) {
        const USERS: usize = 50;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        for round in 0..5_u64 {
            let (owner, server, invite, code, actors) = crowd(conn, USERS);
            let barrier = Arc::new(Barrier::new(6));
            // Half the joins in small batches (one statement each on PostgreSQL), half alone.
            let joiners: Vec<_> = actors.chunks(10).enumerate().map(|(i, chunk)| {
                let (pool, barrier, code, chunk) = (pool.clone(), barrier.clone(), code.clone(), chunk.to_vec());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut outcomes = Vec::new();
                    if i % 2 == 0 {
                        for few in chunk.chunks(2) {
                            let batch: Vec<(&CodeRef, &Actor)> = few.iter().map(|actor| (&code, actor)).collect();
                            outcomes.extend(pool.run(|conn| Ok(commit(conn, &batch))).unwrap());
                        }
                    } else {
                        for actor in &chunk {
                            outcomes.push(pool.run(|conn| conn.redeem(&code, actor, t0())).unwrap());
                        }
                    }
                    chunk.into_iter().zip(outcomes).collect::<Vec<_>>()
                })
            }).collect();
            let undoer = {
                let (pool, barrier, invite_id, by) = (pool.clone(), barrier.clone(), invite.id, owner.user_id);
                std::thread::spawn(move || {
                    barrier.wait();
                    std::thread::sleep(Duration::from_millis(2 + 4 * round));
                    pool.run(|conn| crate::undo(conn, invite_id, by, t0())).unwrap()
                })
            };
            let outcomes: Vec<(Actor, Redemption)> = joiners.into_iter().flat_map(|handle| handle.join().unwrap()).collect();
            let removed = undoer.join().unwrap();
            let joined: Vec<_> = outcomes.iter().filter(|(_, outcome)| matches!(outcome, Redemption::Joined(_))).map(|(actor, _)| actor.user_id).collect();
            for (_, outcome) in &outcomes {
                assert!(matches!(outcome, Redemption::Joined(_)) || reason(outcome) == Some(RedemptionRefused::Revoked), "round {round}: {outcome:?}");
            }
            // Whoever joined did so before the undo, and was removed by it.
            let mut removed_sorted = removed.clone();
            removed_sorted.sort();
            let mut joined_sorted = joined.clone();
            joined_sorted.sort();
            assert_eq!(removed_sorted, joined_sorted, "round {round}");
            assert_eq!(membership_counts(conn, server.id), (1, 1), "round {round}");
            let page = invite_core::server::PageLimit::parse(Some(1000), 100, 1000).unwrap();
            assert!(conn.members_joined_with(invite.id, None, page).unwrap().is_empty(), "round {round}");
            assert_eq!(reload(conn, &invite).uses, i64::try_from(joined.len()).unwrap(), "round {round}");
            println!("round {round}: {} of {USERS} joined before the undo", joined.len());
        }
    }

    fn a_batch_of_previews_reads_each_as_it_would_alone(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = named("owner");
        let server = create_server(conn, &owner);
        let other = create_server(conn, &owner);
        let invites = [
            create_invite(conn, &server, &owner, r#"{"max_uses": 5}"#),
            create_invite(conn, &other, &owner, r#"{"temporary": true}"#),
            create_invite(conn, &server, &owner, "{}"),
        ];
        conn.redeem(&code_of(&invites[0]), &user(), t0()).unwrap();
        conn.set_invites_pause(other.id, Some(InvitesPause::Indefinitely), owner.user_id, t0()).unwrap();
        let mut codes: Vec<CodeRef> = invites.iter().map(code_of).collect();
        // An unknown code, and a code asked for twice in one batch.
        codes.push(CodeRef::parse("nonexist").unwrap());
        codes.push(code_of(&invites[1]));
        let requests = codes.iter().map(|code| SetRequest::Preview(code.clone(), t0())).collect();
        for (code, batched) in codes.iter().zip(commit_previews(conn, requests)) {
            assert_eq!(batched, Found(conn.preview(code, t0()).unwrap()), "{code:?}");
        }
        // What the batch read is what the database holds: the join, the pause, the names.
        let found = conn.preview(&codes[0], t0()).unwrap().unwrap();
        assert_eq!((found.invite.uses, found.member_count, found.inviter_name.as_deref()), (1, 2, Some("owner")));
        assert_eq!(conn.preview(&codes[1], t0()).unwrap().unwrap().invites_paused, Some(InvitesPause::Indefinitely));
    }
}

/// On PostgreSQL a batch's plain accepts are one statement, whatever their number: one round
/// trip and one plan for the batch (counted with diesel's instrumentation).
#[test]
fn postgres_decides_a_batch_of_joins_in_one_statement() {
    use diesel::connection::{Instrumentation, InstrumentationEvent};

    struct Queries(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Queries {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                self.0.lock().unwrap().push(query.to_string());
            }
        }
    }

    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let owner = user();
    let server = create_server(conn, &owner);
    let invites: Vec<_> = (0..4).map(|_| create_invite(conn, &server, &owner, "{}")).collect();
    let codes: Vec<_> = invites.iter().map(code_of).collect();
    let actors: Vec<Actor> = (0..40).map(|i| named(&format!("n{i}"))).collect();
    let batch: Vec<(&CodeRef, &Actor)> =
        actors.iter().enumerate().map(|(i, actor)| (&codes[i % 4], actor)).collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    diesel::Connection::set_instrumentation(conn, Queries(seen.clone()));
    let outcomes = commit(conn, &batch);
    assert!(outcomes.iter().all(|outcome| reason(outcome).is_none()), "{outcomes:?}");
    let queries = seen.lock().unwrap().clone();
    let statements: Vec<_> =
        queries.iter().filter(|sql| sql.contains("INSERT INTO members")).collect();
    assert_eq!(statements.len(), 1, "{queries:#?}");
    assert_eq!(membership_counts(conn, server.id), (41, 41));
}

/// A preview read's result: the code's preview, if any invite has it.
#[derive(Debug, PartialEq)]
struct Found(Option<Preview>);

/// Commits the preview `requests` as one batch; what each found, in order.
fn commit_previews(conn: &mut DbConnection, requests: Vec<SetRequest>) -> Vec<Found> {
    let run = |conn: &mut DbConnection, request: &SetRequest| {
        let SetRequest::Preview(code, now) = request else { unreachable!() };
        conn.preview(code, *now).map(Found)
    };
    let decided = |outcome: SetOutcome| {
        let SetOutcome::Previewed(found) = outcome else { panic!("a preview joined: {outcome:?}") };
        Found(found.map(|found| *found))
    };
    commit_set(conn, requests, run, decided)
}
