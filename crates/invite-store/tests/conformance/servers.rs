use invite_core::audit::AuditAction;
use invite_core::permissions::Permissions;
use invite_core::redeem::InvitesPause;
use invite_core::server::{
    ChannelName, CreateServerRequest, PageLimit, ServerFeature, UpdateServerRequest,
};
use invite_store::models::JoinSource;
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{
    conformance, create_server, membership_counts, minutes, named, owned_server, t0, user,
};

conformance! {
    fn a_new_server_has_its_owner_as_only_member(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = named("alice");
        let request = CreateServerRequest {
            name: "  Rustaceans ".into(),
            icon_url: Some("https://cdn.example.com/r.png".into()),
            default_permissions: None,
        };
        let server = conn.create_server(&owner, &request.validate().unwrap(), t0()).unwrap();
        assert_eq!(server.name, "Rustaceans");
        assert_eq!(server.icon_url.as_deref(), Some("https://cdn.example.com/r.png"));
        assert_eq!(server.owner_id, owner.user_id);
        assert_eq!(server.default_permissions, Permissions::DEFAULT_MEMBER);
        assert_eq!(server.member_count, 1);
        assert_eq!((server.created_at, server.updated_at), (t0(), t0()));
        assert_eq!((server.features.clone(), server.vanity_code.clone(), server.invites_paused), (vec![], None, None));
        assert_eq!(conn.find_server(server.id).unwrap(), Some(server.clone()));

        let members = conn.list_members(server.id, None, PageLimit::parse(None, 100, 1000).unwrap()).unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].user_id, owner.user_id);
        assert_eq!(members[0].source, JoinSource::Owner);
        assert_eq!(members[0].username.as_deref(), Some("alice"));
        assert_eq!(membership_counts(conn, server.id), (1, 1));
    }

    fn standing_is_none_for_strangers_and_unknown_servers(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let standing = conn.standing(server.id, owner.user_id).unwrap().unwrap();
        assert!(standing.is_owner);
        assert_eq!(standing.effective(), Permissions::all());
        assert_eq!(conn.standing(server.id, Uuid::now_v7()).unwrap(), None);
        assert_eq!(conn.standing(Uuid::now_v7(), owner.user_id).unwrap(), None);
        assert_eq!(conn.find_server(Uuid::now_v7()).unwrap(), None);
    }

    fn updates_change_only_what_is_given(db: &TestDatabase) {
        let conn = &mut db.connect();
        let server = create_server(conn, &user());
        let request: UpdateServerRequest = serde_json::from_str(
            r#"{"name": "Renamed", "icon_url": "https://x.example/i.png", "default_permissions": 1, "features": ["VANITY_URL"]}"#,
        ).unwrap();
        let later = t0() + minutes(5);
        let updated = conn.update_server(server.id, &request.validate().unwrap(), later).unwrap();
        assert_eq!(updated.name, "Renamed");
        assert_eq!(updated.icon_url.as_deref(), Some("https://x.example/i.png"));
        assert_eq!(updated.default_permissions, Permissions::VIEW_CHANNEL);
        assert_eq!(updated.features, vec![ServerFeature::VanityUrl]);
        assert_eq!(updated.updated_at, later);
        assert_eq!(updated.created_at, t0());

        let clear_icon: UpdateServerRequest = serde_json::from_str(r#"{"icon_url": null}"#).unwrap();
        let cleared = conn.update_server(server.id, &clear_icon.validate().unwrap(), later).unwrap();
        assert_eq!(cleared.icon_url, None);
        assert_eq!(cleared.name, "Renamed");
        assert_eq!(cleared.features, vec![ServerFeature::VanityUrl]);

        let missing = conn.update_server(Uuid::now_v7(), &clear_icon.validate().unwrap(), later);
        assert!(matches!(missing, Err(invite_store::StoreError::NotFound(_))), "{missing:?}");
    }

    fn pause_and_resume_are_stored_and_audited(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let until = t0() + minutes(60);
        let paused = conn.set_invites_pause(server.id, Some(InvitesPause::Until(until)), owner.user_id, t0()).unwrap();
        assert_eq!(paused.invites_paused, Some(InvitesPause::Until(until)));
        let forever = conn.set_invites_pause(server.id, Some(InvitesPause::Indefinitely), owner.user_id, t0()).unwrap();
        assert_eq!(forever.invites_paused, Some(InvitesPause::Indefinitely));
        let resumed = conn.set_invites_pause(server.id, None, owner.user_id, t0()).unwrap();
        assert_eq!(resumed.invites_paused, None);

        let limit = PageLimit::parse(None, 50, 100).unwrap();
        let entries = conn.list_audit_entries(server.id, None, limit).unwrap();
        let actions: Vec<_> = entries.iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::InvitesResume, AuditAction::InvitesPause, AuditAction::InvitesPause]);
        assert_eq!(entries[2].details, serde_json::json!({ "until": "2026-11-22T13:00:00Z" }));
        assert_eq!(entries[1].details, serde_json::json!({ "until": "indefinitely" }));
        assert!(entries.iter().all(|e| e.actor_id == Some(owner.user_id) && e.target_id == Some(server.id)));
    }

    fn channels_belong_to_their_server(db: &TestDatabase) {
        let conn = &mut db.connect();
        let server = create_server(conn, &user());
        let general = conn.create_channel(server.id, &ChannelName::parse("general").unwrap(), t0()).unwrap();
        let random = conn.create_channel(server.id, &ChannelName::parse("random").unwrap(), t0() + minutes(1)).unwrap();
        assert_eq!(conn.list_channels(server.id).unwrap(), vec![general.clone(), random]);
        assert_eq!(conn.find_channel(general.id).unwrap(), Some(general));
        assert_eq!(conn.find_channel(Uuid::now_v7()).unwrap(), None);
        assert_eq!(conn.list_channels(Uuid::now_v7()).unwrap(), vec![]);
    }

    fn usernames_are_remembered_and_kept_when_a_token_has_none(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = named("old-name");
        let server = create_server(conn, &owner);
        let renamed = invite_store::repo::Actor { username: Some("new-name".into()), ..owner.clone() };
        conn.remember_user(&renamed, t0()).unwrap();
        conn.remember_user(&invite_store::repo::Actor::new(owner.user_id), t0()).unwrap();
        let member = conn.find_member(server.id, owner.user_id).unwrap().unwrap();
        assert_eq!(member.username.as_deref(), Some("new-name"));
    }
}
