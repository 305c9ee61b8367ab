//! The service's refusals arrive typed: status, machine code and message.

use invite_client::{
    ClientError, CreateInvite, CreateServer, ErrorCode, ListInvites, Patch, UpdateInvite,
};

use crate::support::both_backends;

/// The refusal's status, code and message; panics on success or on any other kind of error.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (u16, ErrorCode, String) {
    match result {
        Err(ClientError::Api { status, code, message, .. }) => (status, code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn expected(status: u16, code: ErrorCode, message: &str) -> (u16, ErrorCode, String) {
    (status, code, message.to_owned())
}

both_backends! {
    async fn a_second_accept_is_refused_as_already_member(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Twice")).await.unwrap();
        let code = client.create_invite(server.id, &CreateInvite::default()).await.unwrap().code.unwrap();
        let guest = app.client(&app.user());
        guest.accept(&code).await.unwrap();
        let error = guest.accept(&code).await.unwrap_err();
        assert_eq!(error.code(), Some(&ErrorCode::AlreadyMember));
        assert_eq!(refusal(Err::<(), _>(error)), expected(409, ErrorCode::AlreadyMember, "Already a member of this server"));
        // The refused attempt consumed no use.
        let invites = client.list_invites(server.id, ListInvites::default()).await.unwrap();
        assert_eq!(invites[0].uses, 1);
    }

    async fn an_unknown_code_is_invite_not_found(app: &TestApp) {
        let preview = app.anonymous().preview("NoSuchAb").await;
        assert_eq!(refusal(preview), expected(404, ErrorCode::InviteNotFound, "Invite not found or has expired"));
        let accept = app.client(&app.user()).accept("NoSuchAb").await;
        assert_eq!(refusal(accept), expected(404, ErrorCode::InviteNotFound, "Invite not found"));
    }

    async fn expired_and_used_up_invites_say_which(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Limits")).await.unwrap();
        let code_of_new = async |request: CreateInvite| {
            client.create_invite(server.id, &request).await.unwrap().code.unwrap()
        };
        let brief = code_of_new(CreateInvite { max_age: Some(60), ..Default::default() }).await;
        let single = code_of_new(CreateInvite { max_uses: Some(1), ..Default::default() }).await;
        app.client(&app.user()).accept(&single).await.unwrap();
        let maxed = app.client(&app.user()).accept(&single).await;
        assert_eq!(refusal(maxed), expected(400, ErrorCode::InviteMaxedOut, "This invite has reached its maximum uses"));

        app.clock.advance(chrono::TimeDelta::seconds(61));
        let expired = app.client(&app.user()).accept(&brief).await;
        assert_eq!(refusal(expired), expected(400, ErrorCode::InviteExpired, "This invite has expired"));
        let preview = app.anonymous().preview(&brief).await;
        assert_eq!(refusal(preview), expected(404, ErrorCode::InviteExpired, "Invite not found or has expired"));
    }

    async fn a_stale_version_is_precondition_failed(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Versions")).await.unwrap();
        let invite = client.create_invite(server.id, &CreateInvite::default()).await.unwrap();
        app.client(&app.user()).accept(invite.code.as_deref().unwrap()).await.unwrap();
        let stale = client
            .update_invite(server.id, invite.id, &UpdateInvite { max_uses: Patch::Set(3), ..Default::default() })
            .if_match(invite.version)
            .await;
        let (status, code, _) = refusal(stale);
        assert_eq!((status, code), (412, ErrorCode::PreconditionFailed));
        let stale_revoke = client.revoke_invite(server.id, invite.id).if_match(invite.version).await;
        assert_eq!(refusal(stale_revoke).1, ErrorCode::PreconditionFailed);
        // Still there, unchanged.
        let listed = client.list_invites(server.id, ListInvites::default()).await.unwrap();
        assert_eq!((listed.len(), listed[0].max_uses), (1, None));
    }

    async fn tokens_and_membership_are_checked(app: &TestApp) {
        let owner = app.user();
        let client = app.client(&owner);
        let server = client.create_server(&CreateServer::named("Private")).await.unwrap();
        let anonymous = app.anonymous().list_invites(server.id, ListInvites::default()).await;
        assert_eq!(refusal(anonymous).0, 401);
        let no_token = client.get_server(server.id).without_token().await;
        assert_eq!(refusal(no_token).1, ErrorCode::Unauthorized);
        let bad_token = client.get_server(server.id).token("not-a-jwt").await;
        assert_eq!(refusal(bad_token).1, ErrorCode::Unauthorized);
        let stranger = app.client(&app.user()).get_server(server.id).await;
        assert_eq!(refusal(stranger), expected(404, ErrorCode::ServerNotFound, "Server not found"));
        let invalid = client
            .create_invite(server.id, &CreateInvite { max_uses: Some(0), ..Default::default() })
            .await;
        assert_eq!(refusal(invalid), expected(400, ErrorCode::ValidationError, "max_uses must be greater than 0"));
        let owner_leaves = client.remove_member(server.id, owner.id).await;
        assert_eq!(refusal(owner_leaves).1, ErrorCode::OwnerImmune);
    }
}
