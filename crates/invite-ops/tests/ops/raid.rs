//! Raid protection: who may set it (membership, then permission, then the body's rules), and
//! an accept that trips it returning the pause's event with its join's.

use invite_core::event::Event;
use invite_core::raid::{RaidProtection, RaidProtectionRequest};
use invite_ops::accept::accept;
use invite_store::repo::{Actor, Keyed, Redemption};
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{code_of, ctx, on_both_backends, server_with_invite, settled, t0};

on_both_backends! {
    fn raid_protection_is_set_by_a_manager_and_checked_in_order(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, _) = server_with_invite(conn, "{}");
        let request = RaidProtectionRequest::new(5, 60, 600);
        let bad = RaidProtectionRequest::new(1, 60, 600);
        let stranger = ctx(Uuid::now_v7());
        // A stranger learns nothing from a bad body: membership first.
        assert_eq!(code_of(invite_ops::servers::set_raid_protection(conn, &stranger, server.id, Some(&bad))), "SERVER_NOT_FOUND");
        assert_eq!(code_of(invite_ops::servers::raid_protection(conn, &stranger, server.id)), "SERVER_NOT_FOUND");
        assert_eq!(code_of(invite_ops::servers::set_raid_protection(conn, &ctx(owner), server.id, Some(&bad))), "VALIDATION_ERROR");
        assert_eq!(invite_ops::servers::raid_protection(conn, &ctx(owner), server.id).unwrap(), None);

        let set = invite_ops::servers::set_raid_protection(conn, &ctx(owner), server.id, Some(&request)).unwrap();
        assert!(set.events().is_empty(), "a setting is no event");
        let expected = RaidProtection::new(5, 60, 600).unwrap();
        assert_eq!(set.settle(&invite_ops::OutboxOnly), Some(expected));
        assert_eq!(invite_ops::servers::raid_protection(conn, &ctx(owner), server.id).unwrap(), Some(expected));
        settled(invite_ops::servers::set_raid_protection(conn, &ctx(owner), server.id, None));
        assert_eq!(conn.raid_protection(server.id).unwrap().0, None);
    }

    fn the_accept_that_trips_the_protection_returns_the_pause_with_its_join(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let code = invite_core::code::CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        settled(invite_ops::servers::set_raid_protection(conn, &ctx(owner), server.id, Some(&RaidProtectionRequest::new(2, 60, 600))));
        let join = |conn: &mut invite_store::DbConnection| {
            let joiner = invite_ops::Ctx { actor: Actor::new(Uuid::now_v7()), now: t0() };
            let Keyed::Fresh(outcome) = accept(conn, &joiner, &code, None).unwrap() else { panic!("not keyed") };
            outcome
        };
        let first = join(conn);
        assert_eq!(first.events().len(), 1);
        let second = join(conn);
        let kinds: Vec<&str> = second.events().iter().map(|event| event.event.kind().as_str()).collect();
        assert_eq!(kinds, ["MEMBER_JOIN", "INVITES_PAUSE"]);
        let Event::InvitesPause(pause) = &second.events()[1].event else { unreachable!() };
        assert_eq!((pause.server_id, pause.until), (server.id, Some(t0() + chrono::Duration::seconds(600))));
        assert!(matches!(second.value(), Redemption::Joined(_)));
        let third = join(conn);
        assert!(matches!(third.value(), Redemption::Refused(invite_core::redeem::RedemptionRefused::Paused)));
        assert!(third.events().is_empty());
    }
}
