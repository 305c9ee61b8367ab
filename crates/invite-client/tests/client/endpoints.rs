//! Every endpoint, called through the client against the real service, with what a user would
//! check of each answer.

use chrono::{DurationRound, TimeDelta, Utc};
use invite_client::{
    Admission, AuditAction, ChannelRef, CreateInvite, CreateServer, ErrorCode, InviteKind,
    InvitesPause, JoinRequestStatus, JoinSource, ListInvites, PageAfter, PageBefore, Patch,
    Permissions, ServerFeature, TargetType, UpdateInvite, UpdateServer,
};

use crate::support::{both_backends, with_icon};

both_backends! {
    async fn invites_are_created_previewed_accepted_edited_and_revoked(app: &TestApp) {
        let owner = app.user_named(Some("alice"));
        let guest = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Rustaceans")).await.unwrap();

        let created = client
            .create_invite(
                server.id,
                &CreateInvite { max_uses: Some(2), expires_in_hours: Some(24), ..Default::default() },
            )
            .send_full()
            .await
            .unwrap();
        assert_eq!((created.status, created.version, created.replayed), (201, Some(1), false));
        let key = created.idempotency_key.as_deref().expect("a POST carries an Idempotency-Key");
        assert_eq!(uuid::Uuid::parse_str(key).unwrap().get_version_num(), 4);
        let invite = created.value;
        let code = invite.code.clone().unwrap();
        assert_eq!(code.len(), 8);
        assert_eq!(invite.url.as_deref(), Some(format!("https://chat.example/invite/{code}").as_str()));
        assert_eq!((invite.server_id, invite.created_by), (server.id, Some(owner.id)));
        assert_eq!((invite.kind, invite.max_uses, invite.uses), (InviteKind::Random, Some(2), 0));
        assert_eq!((invite.max_age, invite.temporary, invite.version), (86_400, false, 1));
        assert_eq!(invite.expires_at, Some(invite.created_at + TimeDelta::hours(24)));

        // Anyone may preview, without a token.
        let preview = app.anonymous().preview(&code).await.unwrap();
        assert_eq!((preview.code.as_str(), preview.server_id), (code.as_str(), server.id));
        assert_eq!((preview.server_name.as_str(), preview.member_count), ("Rustaceans", 1));
        assert_eq!((preview.inviter_id, preview.channel), (Some(owner.id), None));
        assert_eq!((preview.invites_paused, preview.expires_at), (false, invite.expires_at));
        assert_eq!((preview.approximate_member_count, preview.approximate_presence_count), (None, None));
        let counted = app.anonymous().preview_with_counts(&code).await.unwrap();
        assert_eq!((counted.approximate_member_count, counted.approximate_presence_count), (Some(1), Some(0)));

        let joined = app.client(&guest).accept(&code).await.unwrap();
        assert_eq!((joined.server_id, joined.message.as_str(), joined.replayed), (server.id, "Joined server", false));
        assert_eq!(app.anonymous().preview(&code).await.unwrap().member_count, 2);

        let listed = client.list_invites(server.id, ListInvites::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].id, listed[0].uses, listed[0].version), (invite.id, 1, 2));

        // An edit conditional on the version the list showed.
        let edited = client
            .update_invite(server.id, invite.id, &UpdateInvite { max_uses: Patch::Set(5), ..Default::default() })
            .if_match(2)
            .send_full()
            .await
            .unwrap();
        assert_eq!((edited.value.max_uses, edited.value.version, edited.version), (Some(5), 3, Some(3)));
        let unlimited = client
            .update_invite(server.id, invite.id, &UpdateInvite { max_uses: Patch::Clear, max_age: Some(0), ..Default::default() })
            .await
            .unwrap();
        assert_eq!((unlimited.max_uses, unlimited.max_age, unlimited.expires_at), (None, 0, None));

        let joined_with = client.list_invite_members(server.id, invite.id, PageAfter::default()).await.unwrap();
        assert_eq!(joined_with.len(), 1);
        assert_eq!(joined_with[0].user_id, guest.id);
        assert_eq!(joined_with[0].joined_via.source, JoinSource::Invite);
        assert_eq!(joined_with[0].joined_via.invite_code.as_deref(), Some(code.as_str()));
        assert_eq!(joined_with[0].joined_via.inviter_id, Some(owner.id));

        // Revoked by id, conditionally, and by code: both gone from the list and the previews.
        let second = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        let third = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        client.revoke_invite(server.id, second.id).if_match(1).await.unwrap();
        client.delete_invite(third.code.as_deref().unwrap()).await.unwrap();
        let listed = client.list_invites(server.id, ListInvites::default()).await.unwrap();
        assert_eq!(listed.iter().map(|invite| invite.id).collect::<Vec<_>>(), [invite.id]);
        for gone in [&second, &third] {
            let error = app.anonymous().preview(gone.code.as_deref().unwrap()).await.unwrap_err();
            assert_eq!((error.status(), error.code()), (Some(404), Some(&ErrorCode::InviteRevoked)));
        }
    }

    async fn a_leaked_link_is_undone_and_an_undo_is_safe_to_repeat(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Leaky")).await.unwrap();
        let invite = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        let code = invite.code.clone().unwrap();
        let (early, late, vouched) = (app.user(), app.user(), app.user());
        app.client(&early).accept(&code).await.unwrap();
        let since = Utc::now().duration_trunc(TimeDelta::milliseconds(1)).unwrap() + TimeDelta::milliseconds(1);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for user in [&late, &vouched] {
            app.client(user).accept(&code).await.unwrap();
        }
        client.update_member(server.id, vouched.id, Permissions::empty()).await.unwrap();

        let undone = client.undo_invite(server.id, invite.id, Some(since)).send_full().await.unwrap();
        assert_eq!(undone.status, 200);
        assert!(undone.idempotency_key.is_some(), "a POST carries an Idempotency-Key");
        assert_eq!((undone.value.revoked, undone.value.removed, undone.value.kept), (true, 1, 1));
        let left: Vec<_> = client.list_members(server.id, PageAfter::default()).await.unwrap().into_iter().map(|m| m.user_id).collect();
        let mut expected = vec![owner.id, early.id, vouched.id];
        expected.sort_unstable();
        assert_eq!(left, expected);
        let refused = app.client(&app.user()).accept(&code).await.unwrap_err();
        assert_eq!(refused.code(), Some(&ErrorCode::InviteRevoked));

        // Again, for everyone who joined: the early joiner now, the vouched one still kept.
        let again = client.undo_invite(server.id, invite.id, None).await.unwrap();
        assert_eq!((again.revoked, again.removed, again.kept), (true, 1, 1));
        let error = client.undo_invite(server.id, uuid::Uuid::now_v7(), None).await.unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(404), Some(&ErrorCode::InviteNotFound)));
        let error = app.client(&vouched).undo_invite(server.id, invite.id, None).await.unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(403), Some(&ErrorCode::MissingPermission)));
    }

    async fn raid_protection_is_set_read_and_removed_and_a_raid_pauses_invites(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Guarded")).await.unwrap();
        let off = client.raid_protection(server.id).await.unwrap();
        assert_eq!((off.enabled, off.joins, off.window_seconds, off.pause_seconds), (false, None, None, None));

        let set = client.set_raid_protection(server.id, 2, 60, 600).await.unwrap();
        assert_eq!((set.enabled, set.joins, set.window_seconds, set.pause_seconds), (true, Some(2), Some(60), Some(600)));
        assert_eq!(client.raid_protection(server.id).await.unwrap(), set);
        let refused = client.set_raid_protection(server.id, 1, 60, 600).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(400), Some(&ErrorCode::ValidationError)));
        assert_eq!(client.raid_protection(server.id).await.unwrap(), set);

        // The second join reaches the threshold: admitted, and the invites pause.
        let invite = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        let code = invite.code.unwrap();
        for _ in 0..2 {
            app.client(&app.user()).accept(&code).await.unwrap();
        }
        let refused = app.client(&app.user()).accept(&code).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(403), Some(&ErrorCode::InvitesPaused)));
        assert!(app.anonymous().preview(&code).await.unwrap().invites_paused);
        let paused = client.audit_log(server.id, PageBefore::default()).await.unwrap();
        assert_eq!((paused[0].action.clone(), paused[0].actor_id), (AuditAction::InvitesPause, None));
        assert_eq!(paused[0].details, serde_json::json!({"reason": "raid", "joins": 2, "window_seconds": 60}));

        // Lifted early, the count starts afresh; turned off, nothing is counted.
        client.resume_invites(server.id).await.unwrap();
        app.client(&app.user()).accept(&code).await.unwrap();
        client.remove_raid_protection(server.id).await.unwrap();
        assert!(!client.raid_protection(server.id).await.unwrap().enabled);
        for _ in 0..3 {
            app.client(&app.user()).accept(&code).await.unwrap();
        }
        let error = app.client(&app.user()).raid_protection(server.id).await.unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(404), Some(&ErrorCode::ServerNotFound)));
    }

    async fn invite_analytics_are_read_for_an_invite_and_its_server(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Counted")).await.unwrap();
        let invite = client
            .create_invite(server.id, &CreateInvite { max_uses: Some(1), ..Default::default() })
            .await
            .unwrap();
        let code = invite.code.clone().unwrap();
        app.anonymous().preview(&code).await.unwrap();
        app.client(&app.user()).accept(&code).await.unwrap();
        let refused = app.client(&app.user()).accept(&code).await.unwrap_err();
        assert_eq!(refused.code(), Some(&ErrorCode::InviteMaxedOut));
        // Written and folded within the flush interval.
        let mut stats = client.invite_stats(server.id, invite.id).await.unwrap();
        for _ in 0..500 {
            if stats.accepts == 1 && stats.previews == 1 && !stats.refusals.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            stats = client.invite_stats(server.id, invite.id).await.unwrap();
        }
        assert_eq!((stats.previews, stats.accepts, stats.retained), (1, 1, 1));
        assert_eq!(stats.refusals.get("INVITE_MAXED_OUT"), Some(&1));
        assert_eq!(stats.joins_per_day.len(), 1);
        assert_eq!(stats.joins_per_day[0].joins, 1);
        let totals = client.server_invite_stats(server.id).await.unwrap();
        assert_eq!((totals.accepts, totals.invites.len()), (1, 1));
        assert_eq!((totals.invites[0].invite_id, totals.invites[0].code.as_deref()), (invite.id, Some(code.as_str())));

        let other = client.create_server(&CreateServer::named("Elsewhere")).await.unwrap();
        let error = client.invite_stats(other.id, invite.id).await.unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(404), Some(&ErrorCode::InviteNotFound)));
    }

    async fn an_invite_grants_permissions_to_the_users_it_names(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Named")).await.unwrap();
        let (invited, stranger) = (app.user(), app.user());
        let request = CreateInvite { temporary: Some(true), ..Default::default() }
            .granting(Permissions::KICK_MEMBERS)
            .for_users(&[invited.id]);
        let invite = client.create_invite(server.id, &request).await.unwrap();
        assert_eq!(invite.grant_permissions, Permissions::KICK_MEMBERS);
        assert_eq!(invite.allowed_user_ids, Some(vec![invited.id]));
        let code = invite.code.clone().unwrap();
        let listed = client.list_invites(server.id, ListInvites::default()).await.unwrap();
        assert_eq!((listed[0].grant_permissions, listed[0].allowed_user_ids.clone()), (Permissions::KICK_MEMBERS, Some(vec![invited.id])));

        let refused = app.client(&stranger).accept(&code).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(403), Some(&ErrorCode::InviteNotForYou)));
        assert_eq!(refused.message(), Some("This invite is for someone else"));
        app.client(&invited).accept(&code).await.unwrap();
        let members = client.list_members(server.id, PageAfter::default()).await.unwrap();
        let member = members.iter().find(|member| member.user_id == invited.id).unwrap();
        // Granted permissions make a member who stays, though the invite is temporary.
        assert_eq!((member.permissions, member.temporary), (Permissions::KICK_MEMBERS, false));

        let edit = UpdateInvite::default().granting(Permissions::empty()).for_anyone();
        let edited = client.update_invite(server.id, invite.id, &edit).await.unwrap();
        assert_eq!((edited.grant_permissions, edited.allowed_user_ids), (Permissions::empty(), None));
        app.client(&stranger).accept(&code).await.unwrap();

        let error = app
            .client(&invited)
            .create_invite(server.id, &CreateInvite::default().granting(Permissions::ADMINISTRATOR))
            .await
            .unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(403), Some(&ErrorCode::MissingPermission)));
        let error = client
            .create_invite(server.id, &CreateInvite::default().for_users(&[invited.id, invited.id]))
            .await
            .unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(400), Some(&ErrorCode::ValidationError)));
    }

    async fn channel_invites_are_created_and_listed_newest_first(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Channels")).await.unwrap();
        let channel = client.create_channel(server.id, "general").await.unwrap();
        assert_eq!((channel.name.as_str(), channel.server_id), ("general", server.id));
        let other = client.create_channel(server.id, "random").await.unwrap();
        let channels = client.list_channels(server.id).await.unwrap();
        assert_eq!(channels.iter().map(|c| c.id).collect::<Vec<_>>(), [channel.id, other.id]);

        let mut created = Vec::new();
        for _ in 0..3 {
            let invite = client.create_channel_invite(channel.id, &CreateInvite::default()).await.unwrap();
            assert_eq!(invite.channel_id, Some(channel.id));
            created.push(invite.id);
        }
        client.create_invite(server.id, &CreateInvite { channel_id: Some(other.id), ..Default::default() }).await.unwrap();

        let listed = client.list_channel_invites(channel.id, PageBefore::default()).await.unwrap();
        let newest_first: Vec<_> = created.iter().rev().copied().collect();
        assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), newest_first);
        let page = client
            .list_channel_invites(channel.id, PageBefore { limit: Some(1), before: Some(created[2]) })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|i| i.id).collect::<Vec<_>>(), [created[1]]);
        let filtered = client
            .list_invites(server.id, ListInvites { channel_id: Some(channel.id), limit: Some(2), before: None })
            .await
            .unwrap();
        assert_eq!(filtered.iter().map(|i| i.id).collect::<Vec<_>>(), newest_first[..2]);

        let code = listed[0].code.clone().unwrap();
        let preview = app.anonymous().preview(&code).await.unwrap();
        assert_eq!(preview.channel, Some(ChannelRef { id: channel.id, name: "general".to_owned() }));
    }

    async fn servers_members_and_bans_are_managed(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&with_icon("Moderated", "https://cdn.example/icon.png")).await.unwrap();
        assert_eq!((server.owner_id, server.member_count), (owner.id, 1));
        assert_eq!(server.default_permissions, Permissions::DEFAULT_MEMBER);
        assert_eq!((server.features.len(), server.vanity_code.as_deref(), server.invites_paused_until), (0, None, None));
        assert_eq!(client.get_server(server.id).await.unwrap(), server);

        let edited = client
            .update_server(
                server.id,
                &UpdateServer {
                    name: Some("Moderated well".to_owned()),
                    icon_url: Patch::Clear,
                    default_permissions: Some(Permissions::VIEW_CHANNEL),
                    features: None,
                },
            )
            .await
            .unwrap();
        assert_eq!((edited.name.as_str(), edited.icon_url.as_deref()), ("Moderated well", None));
        assert_eq!(edited.default_permissions, Permissions::VIEW_CHANNEL);

        let code = client.create_invite(server.id, &CreateInvite::default()).await.unwrap().code.unwrap();
        let (first, second, third) = (app.user(), app.user(), app.user());
        for user in [&first, &second, &third] {
            app.client(user).accept(&code).await.unwrap();
        }
        let members = client.list_members(server.id, PageAfter::default()).await.unwrap();
        let mut expected = vec![owner.id, first.id, second.id, third.id];
        expected.sort_unstable();
        assert_eq!(members.iter().map(|m| m.user_id).collect::<Vec<_>>(), expected);
        let page = client
            .list_members(server.id, PageAfter { limit: Some(2), after: Some(expected[0]) })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|m| m.user_id).collect::<Vec<_>>(), expected[1..3]);

        let promoted = client.update_member(server.id, first.id, Permissions::CREATE_INVITES).await.unwrap();
        assert_eq!((promoted.user_id, promoted.permissions), (first.id, Permissions::CREATE_INVITES));

        // Leave, kick, ban: each takes one member out.
        app.client(&first).remove_member(server.id, first.id).await.unwrap();
        client.remove_member(server.id, second.id).await.unwrap();
        client.ban(server.id, third.id, Some("spam")).await.unwrap();
        let left = client.list_members(server.id, PageAfter::default()).await.unwrap();
        assert_eq!(left.iter().map(|m| m.user_id).collect::<Vec<_>>(), [owner.id]);
        let bans = client.list_bans(server.id).await.unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].user_id, bans[0].reason.as_deref(), bans[0].banned_by), (third.id, Some("spam"), owner.id));
        let refused = app.client(&third).accept(&code).await.unwrap_err();
        assert_eq!(refused.code(), Some(&ErrorCode::Banned));

        client.unban(server.id, third.id).await.unwrap();
        assert!(client.list_bans(server.id).await.unwrap().is_empty());
        app.client(&third).accept(&code).await.unwrap();
    }

    async fn pauses_vanity_urls_and_the_audit_log(app: &TestApp) {
        let owner = app.user();
        let guest = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Paused")).await.unwrap();
        let code = client.create_invite(server.id, &CreateInvite::default()).await.unwrap().code.unwrap();

        // Whole seconds: the time comes back exactly as sent.
        let until = (Utc::now() + TimeDelta::hours(1)).duration_trunc(TimeDelta::seconds(1)).unwrap();
        client.pause_invites(server.id, Some(until)).await.unwrap();
        assert_eq!(client.get_server(server.id).await.unwrap().invites_paused_until, Some(InvitesPause::Until(until)));
        assert!(app.anonymous().preview(&code).await.unwrap().invites_paused);
        let refused = app.client(&guest).accept(&code).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(403), Some(&ErrorCode::InvitesPaused)));
        client.pause_invites(server.id, None).await.unwrap();
        assert_eq!(client.get_server(server.id).await.unwrap().invites_paused_until, Some(InvitesPause::Indefinitely));
        client.resume_invites(server.id).await.unwrap();
        assert_eq!(client.get_server(server.id).await.unwrap().invites_paused_until, None);
        app.client(&guest).accept(&code).await.unwrap();

        // A vanity URL needs the feature, which only the owner may give.
        assert_eq!(client.get_vanity_url(server.id).await.unwrap(), invite_client::VanityUrl { code: None, uses: 0 });
        let refused = client.set_vanity_url(server.id, Some("paused-fans")).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(403), Some(&ErrorCode::MissingFeature)));
        let featured = client
            .update_server(server.id, &UpdateServer { features: Some(vec![ServerFeature::VanityUrl]), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(featured.features, [ServerFeature::VanityUrl]);
        let vanity = client.set_vanity_url(server.id, Some("Paused-Fans")).await.unwrap();
        assert_eq!(vanity.code.as_deref(), Some("paused-fans"));
        let preview = app.anonymous().preview("paused-fans").await.unwrap();
        assert_eq!((preview.server_id, preview.inviter_id), (server.id, None));
        let fan = app.user();
        app.client(&fan).accept("paused-fans").await.unwrap();
        assert_eq!(client.get_vanity_url(server.id).await.unwrap().uses, 1);
        assert_eq!(client.set_vanity_url(server.id, None).await.unwrap().code, None);

        let entries = client.audit_log(server.id, PageBefore::default()).await.unwrap();
        let actions: Vec<_> = entries.iter().map(|entry| entry.action.clone()).collect();
        assert_eq!(
            actions,
            [
                AuditAction::VanityUpdate,
                AuditAction::MemberJoin,
                AuditAction::VanityUpdate,
                AuditAction::MemberJoin,
                AuditAction::InvitesResume,
                AuditAction::InvitesPause,
                AuditAction::InvitesPause,
                AuditAction::InviteCreate,
            ]
        );
        assert!(entries.iter().all(|entry| entry.server_id == server.id));
        assert_eq!((entries[1].target_type.clone(), entries[1].target_id), (TargetType::User, Some(fan.id)));
        assert_eq!(entries[7].details["code"], code.as_str());
        let page = client
            .audit_log(server.id, PageBefore { limit: Some(2), before: Some(entries[3].id) })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [entries[4].id, entries[5].id]);
    }

    async fn join_requests_are_filed_listed_decided_and_withdrawn(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Gated")).await.unwrap();
        let request = CreateInvite { max_uses: Some(1), ..Default::default() }.requiring_approval(true);
        let invite = client.create_invite(server.id, &request).await.unwrap();
        assert!(invite.requires_approval);
        let code = invite.code.clone().unwrap();
        assert!(app.anonymous().preview(&code).await.unwrap().requires_approval);
        let (first, second, third) = (app.user(), app.user(), app.user());

        let Admission::Filed(filed) = app.client(&first).accept_or_request(&code).await.unwrap() else { panic!("not filed") };
        assert_eq!((filed.message.as_str(), filed.request.status, filed.request.user_id), ("Join request filed", JoinRequestStatus::Pending, first.id));
        // Asking again answers the same request; the plain accept cannot read it.
        let Admission::Filed(again) = app.client(&first).accept_or_request(&code).await.unwrap() else { panic!("not filed") };
        assert_eq!(again.request, filed.request);
        assert!(app.client(&first).accept(&code).await.is_err());
        let Admission::Filed(second_filed) = app.client(&second).accept_or_request(&code).await.unwrap() else { panic!() };
        let Admission::Filed(third_filed) = app.client(&third).accept_or_request(&code).await.unwrap() else { panic!() };

        let pending = client.join_requests(server.id, None).await.unwrap();
        assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), [filed.request.id, second_filed.request.id, third_filed.request.id]);
        let approved = client.approve_join_request(server.id, filed.request.id).await.unwrap();
        assert_eq!((approved.status, approved.decided_by), (JoinRequestStatus::Approved, Some(owner.id)));
        let refused = client.approve_join_request(server.id, second_filed.request.id).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(400), Some(&ErrorCode::InviteMaxedOut)));
        let twice = client.approve_join_request(server.id, filed.request.id).await.unwrap_err();
        assert_eq!((twice.status(), twice.code()), (Some(409), Some(&ErrorCode::JoinRequestNotPending)));
        let denied = client.deny_join_request(server.id, second_filed.request.id).await.unwrap();
        assert_eq!(denied.status, JoinRequestStatus::Denied);
        app.client(&third).withdraw_join_request(third_filed.request.id).await.unwrap();
        let mine = app.client(&third).my_join_requests().await.unwrap();
        assert_eq!(mine.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(), [(third_filed.request.id, JoinRequestStatus::Withdrawn)]);
        let withdrawn = client.join_requests(server.id, Some(JoinRequestStatus::Withdrawn)).await.unwrap();
        assert_eq!(withdrawn.len(), 1);
        let members = client.list_members(server.id, PageAfter::default()).await.unwrap();
        assert!(members.iter().any(|member| member.user_id == first.id));
        let stranger = app.client(&app.user()).join_requests(server.id, None).await.unwrap_err();
        assert_eq!((stranger.status(), stranger.code()), (Some(404), Some(&ErrorCode::ServerNotFound)));
        // A plain invite answers Joined through the same call.
        let plain = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        let joined = app.client(&app.user()).accept_or_request(&plain.code.unwrap()).await.unwrap();
        assert!(matches!(joined, Admission::Joined(joined) if joined.server_id == server.id));
    }
}
