//! Join approval (contract section 11): an accept of an invite that requires approval files a
//! request (one pending per user and server, at most a thousand per server) and takes no use,
//! by every path an accept takes (a single accept, a set-based batch, SQLite's); an approval
//! joins through the invite with its conditional use, never past `max_uses` however many race;
//! a denial, a withdrawal and a ban move a pending request on, once.

use std::sync::{Arc, Barrier};

use invite_core::approval::{JoinRequestStatus, MAX_PENDING_PER_SERVER};
use invite_core::audit::AuditAction;
use invite_core::event::Event;
use invite_core::redeem::RedemptionRefused;
use invite_core::server::PageLimit;
use invite_store::models::StoredJoinRequest;
use invite_store::repo::{Actor, Approval, Redemption, insert_join_request_unchecked};
use invite_store::testing::TestDatabase;
use invite_store::{DbConnection, Entity, Fact, StoreError};
use uuid::Uuid;

use crate::batch::commit_at;
use crate::concurrency::racing_pool;
use crate::{
    code_of, conformance, create_invite, membership_counts, reload, server_with_invite, t0, user,
};

/// Accepts `code` as `who`, expecting a filed request.
fn file(
    conn: &mut DbConnection,
    code: &invite_core::code::CodeRef,
    who: &Actor,
) -> (StoredJoinRequest, bool) {
    match conn.redeem(code, who, t0()).unwrap() {
        Redemption::Filed(filed) => (filed.request, filed.event.is_some()),
        other => panic!("expected a filing, got {other:?}"),
    }
}

fn status_of(conn: &mut DbConnection, id: Uuid) -> JoinRequestStatus {
    conn.find_join_request(id).unwrap().unwrap().status
}

conformance! {
    fn an_approval_invite_files_a_request_once_and_takes_no_use(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true, "max_uses": 2}"#);
        assert!(invite.requires_approval);
        let other = create_invite(conn, &server, &owner, r#"{"requires_approval": true}"#);
        let guest = user();
        let (request, new) = file(conn, &code_of(&invite), &guest);
        assert!(new);
        assert_eq!(
            (request.server_id, request.invite_id, request.user_id, request.status, request.created_at, request.decided_at, request.decided_by),
            (server.id, invite.id, guest.user_id, JoinRequestStatus::Pending, t0(), None, None)
        );
        // Another approval invite of the same server answers the same pending request.
        let (again, new) = file(conn, &code_of(&other), &guest);
        assert_eq!((again, new), (request.clone(), false));
        assert_eq!(reload(conn, &invite).uses, 0);
        assert_eq!(membership_counts(conn, server.id), (1, 1));
        assert_eq!(conn.list_join_requests(server.id, JoinRequestStatus::Pending).unwrap(), vec![request.clone()]);
        assert_eq!(conn.user_join_requests(guest.user_id).unwrap(), vec![request.clone()]);
        let events = conn.server_events(server.id, 0, 100).unwrap();
        let filed: Vec<_> = events.iter().filter(|event| matches!(event.event, Event::JoinRequestCreate(_))).collect();
        assert_eq!(filed.len(), 1);
        assert_eq!(filed[0].event, Event::JoinRequestCreate(request));
    }

    fn a_refused_filing_files_nothing(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let banned = user();
        conn.ban(server.id, banned.user_id, None, owner.user_id, t0()).unwrap();
        let refused = |conn: &mut DbConnection, who: &Actor| match conn.redeem(&code_of(&invite), who, t0()).unwrap() {
            Redemption::Refused(reason) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(conn, &banned), RedemptionRefused::Banned);
        assert_eq!(refused(conn, &owner), RedemptionRefused::AlreadyMember);
        let revoked = create_invite(conn, &server, &owner, r#"{"requires_approval": true}"#);
        crate::revoke(conn, revoked.id, owner.user_id, t0()).unwrap();
        assert!(matches!(conn.redeem(&code_of(&revoked), &user(), t0()).unwrap(), Redemption::Refused(RedemptionRefused::Revoked)));
        assert_eq!(conn.count_pending_join_requests(server.id).unwrap(), 0);
    }

    fn the_set_based_batch_leaves_approval_accepts_to_file_alone(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, approval) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let plain = create_invite(conn, &server, &owner, "{}");
        let (a, b, c) = (user(), user(), user());
        let outcomes = commit_at(conn, &[(&code_of(&approval), &a), (&code_of(&plain), &b), (&code_of(&approval), &c)], t0());
        assert!(matches!(&outcomes[0], Redemption::Filed(filed) if filed.request.user_id == a.user_id));
        assert!(matches!(&outcomes[1], Redemption::Joined(_)));
        assert!(matches!(&outcomes[2], Redemption::Filed(filed) if filed.request.user_id == c.user_id));
        assert_eq!((reload(conn, &approval).uses, reload(conn, &plain).uses), (0, 1));
        assert_eq!(conn.count_pending_join_requests(server.id).unwrap(), 2);
    }

    fn a_server_holds_at_most_a_thousand_pending_requests(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, server, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        for _ in 0..MAX_PENDING_PER_SERVER {
            let request = pending(server.id, invite.id, Uuid::now_v7());
            insert_join_request_unchecked(conn, &request).unwrap();
        }
        let error = conn.redeem(&code_of(&invite), &user(), t0()).unwrap_err();
        assert!(matches!(error, StoreError::Stopped(Fact::JoinRequestsFull)), "{error:?}");
        assert_eq!(conn.count_pending_join_requests(server.id).unwrap(), MAX_PENDING_PER_SERVER);
    }

    fn an_approval_joins_through_the_invite_with_its_grant(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true, "max_uses": 5, "grant_permissions": 256}"#);
        let guest = user();
        let (request, _) = file(conn, &code_of(&invite), &guest);
        let later = t0() + chrono::Duration::minutes(1);
        let Approval::Approved(approved) = conn.approve_join_request(server.id, request.id, owner.user_id, later).unwrap() else { panic!() };
        assert_eq!((approved.request.status, approved.request.decided_at, approved.request.decided_by), (JoinRequestStatus::Approved, Some(later), Some(owner.user_id)));
        assert_eq!(approved.joined.uses, 1);
        let member = conn.find_member(server.id, guest.user_id).unwrap().unwrap();
        assert_eq!((member.joined_via_invite_id, member.permissions.bits()), (Some(invite.id), 256));
        assert_eq!(reload(conn, &invite).uses, 1);
        assert_eq!(membership_counts(conn, server.id), (2, 2));
        assert_eq!(status_of(conn, request.id), JoinRequestStatus::Approved);
        let actions: Vec<AuditAction> = conn.list_audit_entries(server.id, None, PageLimit::parse(Some(100), 100, 100).unwrap()).unwrap().into_iter().map(|entry| entry.action).collect();
        assert!(actions.contains(&AuditAction::JoinRequestApprove) && actions.contains(&AuditAction::MemberJoin), "{actions:?}");
        // Deciding it again, or denying it now: not pending.
        let again = conn.approve_join_request(server.id, request.id, owner.user_id, later).unwrap_err();
        assert!(matches!(again, StoreError::Stopped(Fact::JoinRequestNotPending)), "{again:?}");
        let deny = conn.deny_join_request(server.id, request.id, owner.user_id, later).unwrap_err();
        assert!(matches!(deny, StoreError::Stopped(Fact::JoinRequestNotPending)), "{deny:?}");
        // Another server's request is unknown here.
        let (other_owner, other_server, _) = server_with_invite(conn, "{}");
        let unknown = conn.approve_join_request(other_server.id, request.id, other_owner.user_id, later).unwrap_err();
        assert!(matches!(unknown, StoreError::NotFound(Entity::JoinRequest)), "{unknown:?}");
    }

    fn an_approval_the_accept_would_refuse_leaves_the_request_pending(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true, "max_uses": 1}"#);
        let (first, second) = (user(), user());
        let (a, _) = file(conn, &code_of(&invite), &first);
        let (b, _) = file(conn, &code_of(&invite), &second);
        assert!(matches!(conn.approve_join_request(server.id, a.id, owner.user_id, t0()).unwrap(), Approval::Approved(_)));
        assert_eq!(conn.approve_join_request(server.id, b.id, owner.user_id, t0()).unwrap(), Approval::Refused(RedemptionRefused::MaxedOut));
        assert_eq!(status_of(conn, b.id), JoinRequestStatus::Pending);
        assert_eq!(membership_counts(conn, server.id), (2, 2));
        crate::revoke(conn, invite.id, owner.user_id, t0()).unwrap();
        assert_eq!(conn.approve_join_request(server.id, b.id, owner.user_id, t0()).unwrap(), Approval::Refused(RedemptionRefused::Revoked));
        assert_eq!(status_of(conn, b.id), JoinRequestStatus::Pending);
    }

    fn deny_withdraw_and_ban_move_pending_requests_on(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let (denied, withdrawn, banned) = (user(), user(), user());
        let (d, _) = file(conn, &code_of(&invite), &denied);
        let (w, _) = file(conn, &code_of(&invite), &withdrawn);
        let (b, _) = file(conn, &code_of(&invite), &banned);
        let decided = conn.deny_join_request(server.id, d.id, owner.user_id, t0()).unwrap();
        assert_eq!((decided.request.status, decided.request.decided_by), (JoinRequestStatus::Denied, Some(owner.user_id)));
        // Only its user may withdraw it.
        let stranger = conn.withdraw_join_request(denied.user_id, w.id, t0()).unwrap_err();
        assert!(matches!(stranger, StoreError::NotFound(Entity::JoinRequest)), "{stranger:?}");
        let decided = conn.withdraw_join_request(withdrawn.user_id, w.id, t0()).unwrap();
        assert_eq!((decided.request.status, decided.request.decided_by), (JoinRequestStatus::Withdrawn, None));
        let denied_by_ban = conn.deny_pending_join_requests(server.id, banned.user_id, owner.user_id, t0()).unwrap();
        assert_eq!(denied_by_ban.iter().map(|request| (request.id, request.status)).collect::<Vec<_>>(), [(b.id, JoinRequestStatus::Denied)]);
        assert_eq!(status_of(conn, b.id), JoinRequestStatus::Denied);
        assert_eq!(conn.count_pending_join_requests(server.id).unwrap(), 0);
        // A user whose request was decided may file again.
        let (again, new) = file(conn, &code_of(&invite), &denied);
        assert!(new && again.id != d.id);
        let listed: Vec<_> = conn.list_join_requests(server.id, JoinRequestStatus::Denied).unwrap().into_iter().map(|request| request.id).collect();
        assert_eq!(listed, [d.id, b.id]);
    }

    fn racing_approvals_take_no_more_than_the_uses_left(db: &TestDatabase) {
        const REQUESTS: usize = 20;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true, "max_uses": 3}"#);
        let requests: Vec<StoredJoinRequest> = (0..REQUESTS).map(|_| file(conn, &code_of(&invite), &user()).0).collect();
        let barrier = Arc::new(Barrier::new(REQUESTS));
        let handles: Vec<_> = requests.iter().map(|request| {
            let (pool, barrier, id, moderator, server_id) = (pool.clone(), barrier.clone(), request.id, owner.user_id, server.id);
            std::thread::spawn(move || {
                barrier.wait();
                pool.run(|conn| conn.approve_join_request(server_id, id, moderator, t0())).unwrap()
            })
        }).collect();
        let outcomes: Vec<Approval> = handles.into_iter().map(|handle| handle.join().unwrap()).collect();
        let approved = outcomes.iter().filter(|outcome| matches!(outcome, Approval::Approved(_))).count();
        let maxed = outcomes.iter().filter(|outcome| **outcome == Approval::Refused(RedemptionRefused::MaxedOut)).count();
        assert_eq!((approved, maxed), (3, REQUESTS - 3));
        assert_eq!(reload(conn, &invite).uses, 3);
        assert_eq!(membership_counts(conn, server.id), (4, 4));
        assert_eq!(conn.count_pending_join_requests(server.id).unwrap(), i64::try_from(REQUESTS - 3).unwrap());
        assert_eq!(conn.list_join_requests(server.id, JoinRequestStatus::Approved).unwrap().len(), 3);
    }
}

/// A pending request of a new user, as the filing writes it.
fn pending(server_id: Uuid, invite_id: Uuid, user_id: Uuid) -> StoredJoinRequest {
    StoredJoinRequest {
        id: Uuid::now_v7(),
        server_id,
        invite_id,
        user_id,
        status: JoinRequestStatus::Pending,
        created_at: t0(),
        decided_at: None,
        decided_by: None,
    }
}
