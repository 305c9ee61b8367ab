//! Permissions on join and invites for named users (contract section 11), in the store: what a
//! join grants (both accept statements compute it in SQL, as `invite_core::grant` does on the
//! facts the SQLite path reads), and whom an invite for named users admits, refusing anyone
//! else before any write.

use invite_core::event::{Event, EventType};
use invite_core::grant::granted_on_join;
use invite_core::permissions::Permissions;
use invite_core::redeem::RedemptionRefused;
use invite_store::models::Invite;
use invite_store::repo::{CreatedInvite, NewInvite, Redemption};
use invite_store::testing::TestDatabase;

use crate::{
    code_of, conformance, create_invite, membership_counts, owned_server, reload, t0, user,
};

const KICK: Permissions = Permissions::KICK_MEMBERS;
const BAN: Permissions = Permissions::BAN_MEMBERS;

conformance! {
    fn a_join_grants_only_what_the_granter_still_holds(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let open = create_invite(conn, &server, &owner, "{}");
        // (what the granter holds when the invite is made, when the join happens (`None`:
        // banned, so no longer a member), what the invite grants, what the join must grant)
        let cases = [
            (Some(KICK | BAN), Some(KICK | BAN), KICK | BAN, KICK | BAN),
            (Some(KICK | BAN), Some(KICK), KICK | BAN, KICK),
            (Some(KICK | BAN), Some(Permissions::empty()), KICK | BAN, Permissions::empty()),
            (Some(KICK | BAN), None, KICK | BAN, Permissions::empty()),
            // An administrator holds every bit but may not pass on administrator.
            (
                Some(Permissions::ADMINISTRATOR),
                Some(Permissions::ADMINISTRATOR),
                Permissions::all(),
                Permissions::all() - Permissions::ADMINISTRATOR,
            ),
        ];
        for (before, after, grant, expected) in cases {
            let granter = user();
            conn.redeem(&code_of(&open), &granter, t0()).unwrap();
            conn.set_member_permissions(server.id, granter.user_id, before.unwrap(), t0()).unwrap();
            let json = format!(r#"{{"grant_permissions": {}, "temporary": true}}"#, grant.bits());
            let invite = create_invite(conn, &server, &granter, &json);
            assert_eq!((invite.grant_permissions, invite.granted_by), (grant, Some(granter.user_id)));
            match after {
                Some(bits) => {
                    conn.set_member_permissions(server.id, granter.user_id, bits, t0()).unwrap();
                }
                None => {
                    conn.ban(server.id, granter.user_id, None, owner.user_id, t0()).unwrap();
                }
            }
            let standing = conn.standing(server.id, granter.user_id).unwrap();
            assert_eq!(granted_on_join(grant, standing.as_ref()), expected, "the rule");

            let guest = user();
            let Redemption::Joined(joined) = conn.redeem(&code_of(&invite), &guest, t0()).unwrap() else { panic!() };
            assert_eq!(joined.member.permissions, expected, "{before:?} {after:?} {grant:?}");
            // Granted permissions make a member who stays; none, a temporary one.
            assert_eq!(joined.member.temporary, expected.is_empty());
            let stored = conn.find_member(server.id, guest.user_id).unwrap().unwrap();
            assert_eq!((stored.permissions, stored.temporary), (expected, expected.is_empty()));
            let Event::MemberJoin(event) = joined.event.event else { panic!() };
            assert_eq!(event.temporary, expected.is_empty());
            assert_eq!(crate::stored_payload(conn, joined.event.seq)["temporary"], expected.is_empty());
        }

        // The owner grants anything, administrator included.
        let invite = create_invite(conn, &server, &owner, r#"{"grant_permissions": 8192}"#);
        let guest = user();
        let Redemption::Joined(joined) = conn.redeem(&code_of(&invite), &guest, t0()).unwrap() else { panic!() };
        assert_eq!(joined.member.permissions, Permissions::ADMINISTRATOR);
        // An invite that grants nothing needs no granter.
        let plain = create_invite(conn, &server, &owner, "{}");
        assert_eq!((plain.grant_permissions, plain.granted_by), (Permissions::empty(), None));
    }

    fn an_invite_for_named_users_refuses_anyone_else_before_any_write(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let (listed, also_listed, stranger) = (user(), user(), user());
        let json = format!(
            r#"{{"max_uses": 1, "allowed_user_ids": ["{}", "{}"]}}"#,
            listed.user_id, also_listed.user_id
        );
        let invite = create_invite(conn, &server, &owner, &json);
        assert_eq!(invite.allowed_user_ids, Some(vec![listed.user_id, also_listed.user_id]));
        assert_eq!(reload(conn, &invite).allowed_user_ids, invite.allowed_user_ids);

        let before = membership_counts(conn, server.id);
        let latest = conn.latest_seq().unwrap();
        let refused = conn.redeem(&code_of(&invite), &stranger, t0()).unwrap();
        assert_eq!(refused, Redemption::Refused(RedemptionRefused::NotForYou));
        assert_eq!(membership_counts(conn, server.id), before);
        assert!(conn.find_member(server.id, stranger.user_id).unwrap().is_none());
        let unchanged = reload(conn, &invite);
        assert_eq!((unchanged.uses, unchanged.version), (0, 1));
        assert_eq!(conn.latest_seq().unwrap(), latest, "no event");

        let Redemption::Joined(_) = conn.redeem(&code_of(&invite), &listed, t0()).unwrap() else { panic!() };
        // Refused for someone else before used up, in the contract's order.
        let refused = conn.redeem(&code_of(&invite), &stranger, t0()).unwrap();
        assert_eq!(refused, Redemption::Refused(RedemptionRefused::NotForYou));
        let refused = conn.redeem(&code_of(&invite), &also_listed, t0()).unwrap();
        assert_eq!(refused, Redemption::Refused(RedemptionRefused::MaxedOut));
        // And after a ban.
        conn.ban(server.id, stranger.user_id, None, owner.user_id, t0()).unwrap();
        let refused = conn.redeem(&code_of(&invite), &stranger, t0()).unwrap();
        assert_eq!(refused, Redemption::Refused(RedemptionRefused::Banned));
    }

    fn the_create_statement_stores_grants_and_named_users_as_the_generic_path_does(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let named = user();
        let json = format!(r#"{{"grant_permissions": 768, "allowed_user_ids": ["{}"]}}"#, named.user_id);
        let settings = crate::settings(&json);
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &settings, now: t0(), server_locked: false };
        let announce = |invite: &Invite| Event::InviteCreate(invite.into());
        let (created, events) =
            conn.create_invite_announced(&new, &mut invite_core::code::OsRandom, announce).unwrap();
        let CreatedInvite::Created(invite) = created else { panic!() };
        assert_eq!(invite.grant_permissions, KICK | BAN);
        assert_eq!(invite.granted_by, Some(owner.user_id));
        assert_eq!(invite.allowed_user_ids, Some(vec![named.user_id]));
        assert_eq!(reload(conn, &invite), invite);
        // The event carries what it grants, not whom it is for (INVITE_UPDATE goes to every
        // member; the list is for those who may list invites).
        assert_eq!(events[0].event.kind(), EventType::InviteCreate);
        let payload = crate::stored_payload(conn, events[0].seq);
        assert_eq!(payload["grant_permissions"], 768);
        assert!(payload.get("allowed_user_ids").is_none(), "{payload}");
        // The audit entry says both.
        let page = invite_core::server::PageLimit::parse(Some(10), 10, 10).unwrap();
        let entry = conn.list_audit_entries(server.id, None, page).unwrap().into_iter().find(|e| e.target_id == Some(invite.id)).unwrap();
        assert_eq!(entry.details["grant_permissions"], 768);
        assert_eq!(entry.details["allowed_user_ids"], serde_json::json!([named.user_id]));
    }
}
