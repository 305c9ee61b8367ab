use invite_core::audit::AuditAction;
use invite_core::permissions::Permissions;
use invite_core::redeem::RedemptionRefused;
use invite_core::server::PageLimit;
use invite_core::undo::Joiner;
use invite_store::repo::{Redemption, Removal};
use invite_store::testing::TestDatabase;
use invite_store::{StoreError, write_transaction};
use uuid::Uuid;

use crate::{
    code_of, conformance, create_invite, membership_counts, minutes, reload, server_with_invite,
    t0, user,
};

fn page(limit: i64) -> PageLimit {
    PageLimit::parse(Some(limit), 100, 1000).unwrap()
}

conformance! {
    fn members_page_by_user_id(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, server, invite) = server_with_invite(conn, "{}");
        for _ in 0..4 {
            conn.redeem(&code_of(&invite), &user(), t0()).unwrap();
        }
        let all = conn.list_members(server.id, None, page(100)).unwrap();
        assert_eq!(all.len(), 5);
        let mut ids: Vec<_> = all.iter().map(|m| m.user_id).collect();
        let sorted = { let mut s = ids.clone(); s.sort(); s };
        assert_eq!(ids, sorted);
        let first = conn.list_members(server.id, None, page(2)).unwrap();
        let rest = conn.list_members(server.id, Some(first[1].user_id), page(100)).unwrap();
        ids.drain(..2);
        assert_eq!(rest.iter().map(|m| m.user_id).collect::<Vec<_>>(), ids);
    }

    fn permissions_replace_and_end_a_temporary_membership(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, server, invite) = server_with_invite(conn, r#"{"temporary": true}"#);
        let guest = user();
        conn.redeem(&code_of(&invite), &guest, t0()).unwrap();
        assert!(conn.find_member(server.id, guest.user_id).unwrap().unwrap().temporary);
        let member = conn.set_member_permissions(server.id, guest.user_id, Permissions::CREATE_INVITES, t0()).unwrap();
        assert_eq!(member.permissions, Permissions::CREATE_INVITES);
        assert!(!member.temporary);
        let standing = conn.standing(server.id, guest.user_id).unwrap().unwrap();
        assert!(standing.has(Permissions::CREATE_INVITES));
        let missing = conn.set_member_permissions(server.id, Uuid::now_v7(), Permissions::empty(), t0());
        assert!(matches!(missing, Err(StoreError::NotFound(_))));
    }

    fn leaving_and_kicking_keep_the_count_and_kicks_are_audited(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let (leaver, kicked) = (user(), user());
        for who in [&leaver, &kicked] {
            conn.redeem(&code_of(&invite), who, t0()).unwrap();
        }
        assert_eq!(membership_counts(conn, server.id), (3, 3));
        conn.remove_member(server.id, leaver.user_id, Removal::Leave, t0()).unwrap();
        conn.remove_member(server.id, kicked.user_id, Removal::Kick { by: owner.user_id }, t0()).unwrap();
        assert_eq!(membership_counts(conn, server.id), (1, 1));
        assert!(matches!(
            conn.remove_member(server.id, kicked.user_id, Removal::Leave, t0()),
            Err(StoreError::NotFound(_))
        ));
        let entries = conn.list_audit_entries(server.id, None, page(10)).unwrap();
        assert_eq!(entries[0].action, AuditAction::MemberKick);
        assert_eq!((entries[0].actor_id, entries[0].target_id), (Some(owner.user_id), Some(kicked.user_id)));
        assert!(!entries.iter().skip(1).any(|e| e.action == AuditAction::MemberKick), "leaving is not a kick");
        // Someone who left may come back.
        assert!(matches!(conn.redeem(&code_of(&invite), &leaver, t0()).unwrap(), Redemption::Joined(_)));
    }

    fn a_ban_removes_the_member_and_blocks_joins_until_lifted(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let troll = user();
        conn.redeem(&code_of(&invite), &troll, t0()).unwrap();
        let ban = conn.ban(server.id, troll.user_id, Some("spam".into()), owner.user_id, t0()).unwrap();
        assert_eq!((ban.reason.as_deref(), ban.banned_by, ban.created_at), (Some("spam"), owner.user_id, t0()));
        assert_eq!(membership_counts(conn, server.id), (1, 1));
        assert_eq!(conn.find_member(server.id, troll.user_id).unwrap(), None);
        assert_eq!(conn.redeem(&code_of(&invite), &troll, t0()).unwrap(), Redemption::Refused(RedemptionRefused::Banned));

        // Banning again updates the reason; the ban keeps its time.
        let again = conn.ban(server.id, troll.user_id, Some("more spam".into()), owner.user_id, t0() + minutes(1)).unwrap();
        assert_eq!((again.reason.as_deref(), again.created_at), (Some("more spam"), t0()));
        // A user who never joined can be banned too.
        let stranger = user();
        conn.ban(server.id, stranger.user_id, None, owner.user_id, t0() + minutes(2)).unwrap();
        let bans = conn.list_bans(server.id).unwrap();
        assert_eq!(bans.iter().map(|b| b.user_id).collect::<Vec<_>>(), [stranger.user_id, troll.user_id]);
        assert_eq!(membership_counts(conn, server.id), (1, 1));

        let later = t0() + minutes(3);
        conn.unban(server.id, troll.user_id, owner.user_id, later).unwrap();
        assert!(matches!(conn.unban(server.id, troll.user_id, owner.user_id, later), Err(StoreError::NotFound(_))));
        assert!(matches!(conn.redeem(&code_of(&invite), &troll, later).unwrap(), Redemption::Joined(_)));
        let actions: Vec<_> = conn.list_audit_entries(server.id, None, page(3)).unwrap().iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::MemberJoin, AuditAction::MemberUnban, AuditAction::MemberBan]);
    }

    fn joins_are_tracked_per_invite(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, first) = server_with_invite(conn, "{}");
        let second = create_invite(conn, &server, &owner, "{}");
        let (a, b, c) = (user(), user(), user());
        conn.redeem(&code_of(&first), &a, t0()).unwrap();
        conn.redeem(&code_of(&second), &b, t0() + minutes(1)).unwrap();
        conn.redeem(&code_of(&first), &c, t0() + minutes(2)).unwrap();
        let via_first = conn.members_joined_with(first.id, None, page(100)).unwrap();
        assert_eq!(via_first.iter().map(|m| m.user_id).collect::<Vec<_>>(), [a.user_id, c.user_id]);
        assert!(via_first.iter().all(|m| m.joined_via_code == first.code && m.inviter_id == Some(owner.user_id)));
        let after_a = conn.members_joined_with(first.id, Some(a.user_id), page(100)).unwrap();
        assert_eq!(after_a.iter().map(|m| m.user_id).collect::<Vec<_>>(), [c.user_id]);
        let via_second = conn.members_joined_with(second.id, None, page(100)).unwrap();
        assert_eq!(via_second.iter().map(|m| m.user_id).collect::<Vec<_>>(), [b.user_id]);
        // Revoking the invite keeps the record of who joined with it.
        crate::revoke(conn, first.id, owner.user_id, t0()).unwrap();
        assert_eq!(conn.members_joined_with(first.id, None, page(100)).unwrap().len(), 2);
    }

    fn joiners_are_read_with_when_their_permissions_were_set(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let other = create_invite(conn, &server, &owner, "{}");
        let (a, b, c) = (user(), user(), user());
        conn.redeem(&code_of(&invite), &a, t0()).unwrap();
        conn.redeem(&code_of(&invite), &b, t0() + minutes(1)).unwrap();
        conn.redeem(&code_of(&other), &c, t0()).unwrap();
        // Any PATCH of the permissions is recorded, even one that sets none.
        let set = conn.set_member_permissions(server.id, b.user_id, Permissions::empty(), t0() + minutes(2)).unwrap();
        assert_eq!(set.permissions, Permissions::empty());
        conn.set_member_permissions(server.id, c.user_id, Permissions::CREATE_INVITES, t0() + minutes(2)).unwrap();

        let mut expected = vec![
            Joiner { user_id: a.user_id, joined_at: t0(), permissions_set_at: None },
            Joiner { user_id: b.user_id, joined_at: t0() + minutes(1), permissions_set_at: Some(t0() + minutes(2)) },
        ];
        expected.sort_by_key(|joiner| joiner.user_id);
        let joiners = write_transaction(conn, |conn| conn.lock_joiners(invite.id)).unwrap();
        assert_eq!(joiners, expected);
        assert!(write_transaction(conn, |conn| conn.lock_joiners(uuid::Uuid::now_v7())).unwrap().is_empty());

        // Someone who leaves and comes back is a new membership: nobody has vouched for it.
        conn.remove_member(server.id, b.user_id, Removal::Leave, t0() + minutes(3)).unwrap();
        conn.redeem(&code_of(&invite), &b, t0() + minutes(4)).unwrap();
        let joiners = write_transaction(conn, |conn| conn.lock_joiners(invite.id)).unwrap();
        let back = joiners.iter().find(|joiner| joiner.user_id == b.user_id).unwrap();
        assert_eq!((back.joined_at, back.permissions_set_at), (t0() + minutes(4), None));
    }

    fn removing_joiners_keeps_the_count_and_audits_each_as_an_undo(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let other = create_invite(conn, &server, &owner, "{}");
        let (a, b, c, stranger) = (user(), user(), user(), user());
        for who in [&a, &b] {
            conn.redeem(&code_of(&invite), who, t0()).unwrap();
        }
        conn.redeem(&code_of(&other), &c, t0()).unwrap();
        assert_eq!(membership_counts(conn, server.id), (4, 4));

        // Only members through this invite go, in the order asked; the rest are skipped.
        let asked = [b.user_id, c.user_id, stranger.user_id, a.user_id, owner.user_id];
        let removed = write_transaction(conn, |conn| conn.remove_joiners(&invite, &asked, owner.user_id, t0() + minutes(1))).unwrap();
        assert_eq!(removed, [b.user_id, a.user_id]);
        assert_eq!(membership_counts(conn, server.id), (2, 2));
        assert!(conn.find_member(server.id, c.user_id).unwrap().is_some());
        // The invite keeps its uses: they count the joins that happened.
        assert_eq!(reload(conn, &invite).uses, 2);

        let entries = conn.list_audit_entries(server.id, None, page(10)).unwrap();
        let kicks: Vec<_> = entries.iter().filter(|entry| entry.action == AuditAction::MemberKick).collect();
        assert_eq!(kicks.len(), 2);
        for kick in &kicks {
            assert_eq!(kick.actor_id, Some(owner.user_id));
            assert_eq!(kick.created_at, t0() + minutes(1));
            assert_eq!(kick.details, serde_json::json!({"reason": "invite_undo", "code": invite.code}));
        }
        let mut targets: Vec<_> = kicks.iter().map(|kick| kick.target_id.unwrap()).collect();
        targets.sort();
        let mut expected = vec![a.user_id, b.user_id];
        expected.sort();
        assert_eq!(targets, expected);

        // Again: nobody left to remove, nothing written.
        let again = write_transaction(conn, |conn| conn.remove_joiners(&invite, &asked, owner.user_id, t0() + minutes(2))).unwrap();
        assert!(again.is_empty());
        assert_eq!(conn.list_audit_entries(server.id, None, page(10)).unwrap().len(), entries.len());
        assert_eq!(membership_counts(conn, server.id), (2, 2));
    }

    fn an_undo_revokes_once_and_removes_who_joined(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let joined: Vec<_> = (0..3).map(|_| user()).collect();
        for who in &joined {
            conn.redeem(&code_of(&invite), who, t0()).unwrap();
        }
        let mut removed = crate::undo(conn, invite.id, owner.user_id, t0() + minutes(1)).unwrap();
        removed.sort();
        let mut expected: Vec<_> = joined.iter().map(|who| who.user_id).collect();
        expected.sort();
        assert_eq!(removed, expected);
        let revoked = reload(conn, &invite);
        assert_eq!((revoked.revoked_at, revoked.version), (Some(t0() + minutes(1)), invite.version + 4));
        assert_eq!(conn.redeem(&code_of(&invite), &user(), t0() + minutes(2)).unwrap(), Redemption::Refused(RedemptionRefused::Revoked));
        // Repeated: the invite stays as it was, nobody else goes.
        assert!(crate::undo(conn, invite.id, owner.user_id, t0() + minutes(3)).unwrap().is_empty());
        let again = reload(conn, &invite);
        assert_eq!(again.revoked_at, Some(t0() + minutes(1)));
        assert_eq!(membership_counts(conn, server.id), (1, 1));
        let revokes = conn.list_audit_entries(server.id, None, page(20)).unwrap().iter().filter(|e| e.action == AuditAction::InviteRevoke).count();
        assert_eq!(revokes, 1);
    }
}
