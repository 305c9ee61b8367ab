//! Permissions on join and invites for named users: what creating and editing an invite checks
//! of the grant and the list, with the change's events.

use invite_core::code::CodeRef;
use invite_core::event::Event;
use invite_core::invite::UpdateInviteRequest;
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{code_of, ctx, on_both_backends, owned_server, server_with_invite, settled, t0};

fn edit(json: &str) -> UpdateInviteRequest {
    serde_json::from_str(json).unwrap()
}

/// A member of `server` holding `permissions`, who joined through a fresh invite of `owner`.
fn member_with(
    conn: &mut invite_store::DbConnection,
    server: &invite_store::models::Server,
    owner: Uuid,
    permissions: invite_core::permissions::Permissions,
) -> Uuid {
    let invite = crate::create_invite(conn, server, owner, "{}");
    let member = Uuid::now_v7();
    let code = CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
    conn.redeem(&code, &invite_store::repo::Actor::new(member), t0()).unwrap();
    conn.set_member_permissions(server.id, member, permissions, t0()).unwrap();
    member
}

on_both_backends! {
    fn a_grant_needs_every_bit_and_administrator_needs_the_owner(db: &TestDatabase) {
        use invite_core::permissions::Permissions;
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let creator = member_with(conn, &server, owner, Permissions::CREATE_INVITES | Permissions::KICK_MEMBERS);
        let admin = member_with(conn, &server, owner, Permissions::ADMINISTRATOR);
        let create = |conn: &mut invite_store::DbConnection, who: Uuid, json: &str| {
            let request = serde_json::from_str(json).unwrap();
            let place = invite_ops::invites::Place::Server(server.id);
            invite_ops::invites::create(conn, &ctx(who), place, request, &mut invite_core::code::OsRandom)
        };
        let latest = conn.latest_seq().unwrap();
        assert_eq!(code_of(create(conn, creator, r#"{"grant_permissions": 512}"#)), "MISSING_PERMISSION");
        assert_eq!(code_of(create(conn, admin, r#"{"grant_permissions": 8192}"#)), "OWNER_ONLY");
        assert_eq!(code_of(create(conn, creator, r#"{"grant_permissions": 8704}"#)), "OWNER_ONLY");
        assert_eq!(code_of(create(conn, owner, r#"{"grant_permissions": 32768}"#)), "VALIDATION_ERROR");
        assert_eq!(code_of(create(conn, owner, r#"{"grant_permissions": "256"}"#)), "VALIDATION_ERROR");
        assert_eq!(conn.latest_seq().unwrap(), latest, "a refused create writes no event");

        let outcome = create(conn, creator, r#"{"grant_permissions": 256}"#).unwrap();
        let events = outcome.events().to_vec();
        let invite_store::repo::CreatedInvite::Created(invite) = outcome.settle(&invite_ops::OutboxOnly) else { panic!() };
        assert_eq!((invite.grant_permissions, invite.granted_by), (Permissions::KICK_MEMBERS, Some(creator)));
        let Event::InviteCreate(data) = &events[0].event else { panic!("{events:?}") };
        assert_eq!(data.grant_permissions, Permissions::KICK_MEMBERS);
        let by_owner = settled(create(conn, owner, r#"{"grant_permissions": 8192}"#));
        let invite_store::repo::CreatedInvite::Created(invite_by_owner) = by_owner else { panic!() };
        assert_eq!(invite_by_owner.grant_permissions, Permissions::ADMINISTRATOR);

        // An edit that adds a bit the editor lacks changes nothing; one that removes it, by a
        // moderator holding what it grants, makes the moderator the granter.
        let ids = (server.id, invite.id);
        let refused = invite_ops::invites::update(conn, &ctx(creator), ids, &edit(r#"{"grant_permissions": 768}"#), Ok(None));
        assert_eq!(code_of(refused), "MISSING_PERMISSION");
        assert_eq!(conn.find_invite(invite.id).unwrap().unwrap(), invite, "nothing changed");
        let refused = invite_ops::invites::update(conn, &ctx(admin), ids, &edit(r#"{"grant_permissions": 8448}"#), Ok(None));
        assert_eq!(code_of(refused), "OWNER_ONLY");
        let outcome = invite_ops::invites::update(conn, &ctx(admin), ids, &edit(r#"{"grant_permissions": 512, "allowed_user_ids": null}"#), Ok(None)).unwrap();
        let events = outcome.events().to_vec();
        let edited = outcome.settle(&invite_ops::OutboxOnly);
        assert_eq!((edited.grant_permissions, edited.granted_by, edited.version), (Permissions::BAN_MEMBERS, Some(admin), 2));
        let Event::InviteUpdate(data) = &events[0].event else { panic!("{events:?}") };
        assert_eq!(data.grant_permissions, Permissions::BAN_MEMBERS);
    }

    fn an_edit_names_the_users_an_invite_is_for_and_opens_it_again(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let ids = (server.id, invite.id);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let refused = invite_ops::invites::update(conn, &ctx(owner), ids, &edit(&format!(r#"{{"allowed_user_ids": ["{a}", "{a}"]}}"#)), Ok(None));
        assert_eq!(code_of(refused), "VALIDATION_ERROR");
        let refused = invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"allowed_user_ids": []}"#), Ok(None));
        assert_eq!(code_of(refused), "VALIDATION_ERROR");
        let named = settled(invite_ops::invites::update(conn, &ctx(owner), ids, &edit(&format!(r#"{{"allowed_user_ids": ["{a}", "{b}"]}}"#)), Ok(None)));
        assert_eq!(named.allowed_user_ids, Some(vec![a, b]));
        let open = settled(invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"allowed_user_ids": null}"#), Ok(None)));
        assert_eq!((open.allowed_user_ids, open.version), (None, 3));
    }
}
