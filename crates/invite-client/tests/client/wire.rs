//! The client's types are the wire format: each response body the real service sends decodes
//! into them and encodes back to exactly the same JSON (field names, `null`s, number and time
//! formats), so no field is missing, misnamed or of the wrong nullability.

use chrono::{TimeDelta, Utc};
use invite_client::{
    Accepted, AuditEntry, Ban, Channel, CreateInvite, Invite, InviteUndone, JoinRequest,
    JoinRequestFiled, Member, Preview, RaidProtection, Server, ServerFeature, UpdateServer,
    VanityUrl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{TestApp, TestUser, both_backends, with_icon};

/// The JSON body of a request made without the client.
async fn raw(app: &TestApp, method: reqwest::Method, path: &str, user: Option<&TestUser>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    if let Some(user) = user {
        request = request.bearer_auth(&user.token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

/// Decodes `body` as `T` and checks that it encodes back to the very same JSON.
#[track_caller]
fn same_on_the_wire<T: DeserializeOwned + Serialize>(body: &Value) -> T {
    let typed: T =
        serde_json::from_value(body.clone()).unwrap_or_else(|error| panic!("{error}: {body:#}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), body);
    typed
}

/// Each element of a JSON array, as `same_on_the_wire`; the array must not be empty.
#[track_caller]
fn each_same_on_the_wire<T: DeserializeOwned + Serialize>(body: &Value) -> Vec<T> {
    let items = body.as_array().expect("an array");
    assert!(!items.is_empty(), "nothing to compare");
    items.iter().map(same_on_the_wire::<T>).collect()
}

both_backends! {
    async fn every_response_shape_matches_the_service(app: &TestApp) {
        use reqwest::Method;

        let owner = app.user_named(Some("owner"));
        let guest = app.user_named(Some("guest"));
        let banned = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&with_icon("Wire", "https://cdn.example/wire.png")).await.unwrap();
        let channel = client.create_channel(server.id, "general").await.unwrap();
        let invite = client
            .create_invite(
                server.id,
                &CreateInvite { max_uses: Some(10), max_age: Some(3600), channel_id: Some(channel.id), ..Default::default() },
            )
            .await
            .unwrap();
        let code = invite.code.clone().unwrap();
        client.create_invite(server.id, &CreateInvite::default()).await.unwrap();

        let body = raw(app, Method::POST, &format!("/invites/{code}/accept"), Some(&guest)).await;
        let accepted: Accepted = same_on_the_wire(&body);
        assert_eq!(accepted.server_id, server.id);
        app.client(&banned).accept(&code).await.unwrap();
        client.ban(server.id, banned.id, Some("wire test")).await.unwrap();
        client.ban(server.id, app.user().id, None).await.unwrap();
        client
            .update_server(server.id, &UpdateServer { features: Some(vec![ServerFeature::VanityUrl]), ..Default::default() })
            .await
            .unwrap();
        client.set_vanity_url(server.id, Some("wire-fans")).await.unwrap();
        let until = Utc::now() + TimeDelta::minutes(5);
        client.pause_invites(server.id, Some(until)).await.unwrap();

        let s = server.id;
        let invites: Vec<Invite> = each_same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/invites"), Some(&owner)).await);
        // Both kinds of invite: with and without channel, limits and expiry.
        assert_eq!(invites.len(), 2);
        each_same_on_the_wire::<Invite>(&raw(app, Method::GET, &format!("/channels/{}/invites", channel.id), Some(&owner)).await);
        let preview: Preview = same_on_the_wire(&raw(app, Method::GET, &format!("/invites/{code}"), None).await);
        assert!(preview.channel.is_some() && preview.invites_paused);
        let counted: Preview = same_on_the_wire(&raw(app, Method::GET, &format!("/invites/{code}?with_counts=true"), None).await);
        assert!(counted.approximate_member_count.is_some());
        same_on_the_wire::<Preview>(&raw(app, Method::GET, "/invites/wire-fans", None).await);
        let paused: Server = same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}"), Some(&owner)).await);
        assert!(paused.invites_paused_until.is_some() && paused.vanity_code.is_some());
        client.pause_invites(server.id, None).await.unwrap();
        same_on_the_wire::<Server>(&raw(app, Method::GET, &format!("/servers/{s}"), Some(&owner)).await);
        let members: Vec<Member> = each_same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/members"), Some(&owner)).await);
        assert_eq!(members.len(), 2);
        each_same_on_the_wire::<Member>(&raw(app, Method::GET, &format!("/servers/{s}/invites/{}/members", invite.id), Some(&owner)).await);
        let bans: Vec<Ban> = each_same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/bans"), Some(&owner)).await);
        assert_eq!(bans.len(), 2);
        each_same_on_the_wire::<Channel>(&raw(app, Method::GET, &format!("/servers/{s}/channels"), Some(&owner)).await);
        let vanity: VanityUrl = same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/vanity-url"), Some(&owner)).await);
        assert_eq!(vanity.code.as_deref(), Some("wire-fans"));
        client.set_vanity_url(server.id, None).await.unwrap();
        same_on_the_wire::<VanityUrl>(&raw(app, Method::GET, &format!("/servers/{s}/vanity-url"), Some(&owner)).await);
        let entries: Vec<AuditEntry> = each_same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/audit-log"), Some(&owner)).await);
        assert!(entries.len() >= 8);

        client.set_raid_protection(server.id, 100, 60, 600).await.unwrap();
        let guarded: RaidProtection = same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/raid-protection"), Some(&owner)).await);
        assert_eq!((guarded.enabled, guarded.joins), (true, Some(100)));
        client.remove_raid_protection(server.id).await.unwrap();
        let off: RaidProtection = same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/raid-protection"), Some(&owner)).await);
        assert!(!off.enabled);

        // Join approval: the 202 of an accept, and the lists of requests (invites running).
        client.resume_invites(server.id).await.unwrap();
        let gated = client.create_invite(server.id, &CreateInvite::default().requiring_approval(true)).await.unwrap();
        let asker = app.user();
        let filed: JoinRequestFiled = same_on_the_wire(&raw(app, Method::POST, &format!("/invites/{}/accept", gated.code.as_deref().unwrap()), Some(&asker)).await);
        assert_eq!(filed.request.user_id, asker.id);
        let requests: Vec<JoinRequest> = each_same_on_the_wire(&raw(app, Method::GET, &format!("/servers/{s}/join-requests"), Some(&owner)).await);
        assert_eq!(requests, [filed.request]);
        each_same_on_the_wire::<JoinRequest>(&raw(app, Method::GET, "/users/@me/join-requests", Some(&asker)).await);

        // And the client's own calls read the same values.
        assert_eq!(client.get_server(server.id).await.unwrap().id, paused.id);
        assert_eq!(client.list_bans(server.id).await.unwrap(), bans);

        // Last, since it removes the guest.
        let undone: InviteUndone = same_on_the_wire(&raw(app, Method::POST, &format!("/servers/{s}/invites/{}/undo", invite.id), Some(&owner)).await);
        assert_eq!((undone.revoked, undone.removed, undone.kept), (true, 1, 0));
    }
}
