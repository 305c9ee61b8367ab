//! One method per endpoint of contract sections 5.1-5.3.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use invite_api::{
    AuditEntry, Ban, BanRequest, Channel, CreateChannelRequest, Invite, InviteStats, InviteUndone,
    JoinRequest, JoinRequestFiled, JoinRequestStatus, Member, Patch, PauseRequest, Permissions,
    Preview, RaidProtection, RaidProtectionRequest, Server, ServerInviteStats, UndoInviteRequest,
    UpdateMemberRequest, VanityRequest, VanityUrl,
};
use reqwest::Method;
use uuid::Uuid;

use crate::call::{Call, json, nothing};
use crate::client::Client;
use crate::headers::ResponseHeaders;
use crate::request::{ListInvites, PageAfter, PageBefore, UpdateServer};
use crate::{Accepted, Admission, CreateInvite, CreateServer, UpdateInvite};

/// A path from its segments.
fn path(segments: &[&dyn Display]) -> Vec<String> {
    segments.iter().map(ToString::to_string).collect()
}

fn accepted(headers: &ResponseHeaders, body: &[u8]) -> Result<Accepted, serde_json::Error> {
    let mut accepted: Accepted = serde_json::from_slice(body)?;
    accepted.replayed = headers.replayed;
    accepted.rate_limit.clone_from(&headers.rate_limit);
    Ok(accepted)
}

/// A join (`{"message", "server_id"}`) or a filed join request (`{"message", "request"}`),
/// told apart by the body: both are a success.
fn admission(headers: &ResponseHeaders, body: &[u8]) -> Result<Admission, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if value.get("request").is_some() {
        let mut filed: JoinRequestFiled = serde_json::from_value(value)?;
        filed.replayed = headers.replayed;
        filed.rate_limit.clone_from(&headers.rate_limit);
        Ok(Admission::Filed(filed))
    } else {
        accepted(headers, body).map(Admission::Joined)
    }
}

fn preview(headers: &ResponseHeaders, body: &[u8]) -> Result<Preview, serde_json::Error> {
    let mut preview: Preview = serde_json::from_slice(body)?;
    preview.rate_limit.clone_from(&headers.rate_limit);
    Ok(preview)
}

/// Invites (contract 5.1 and 5.2).
impl Client {
    /// `POST /servers/{server_id}/invites`: creates an invite (`CREATE_INVITES`). With
    /// `unique: Some(false)` the service may return an equal existing invite (status 200, see
    /// [`Call::send_full`]).
    pub fn create_invite(&self, server_id: Uuid, request: &CreateInvite) -> Call<Invite> {
        Call::new(self, Method::POST, path(&[&"servers", &server_id, &"invites"]), json)
            .json(request)
    }

    /// `GET /servers/{server_id}/invites`: the server's invites, newest first, expired and
    /// used-up ones included, revoked ones left out.
    pub fn list_invites(&self, server_id: Uuid, filter: ListInvites) -> Call<Vec<Invite>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"invites"]), json)
            .query("channel_id", filter.channel_id)
            .query("limit", filter.limit)
            .query("before", filter.before)
    }

    /// `DELETE /servers/{server_id}/invites/{invite_id}`: revokes an invite. Honours
    /// [`Call::if_match`].
    pub fn revoke_invite(&self, server_id: Uuid, invite_id: Uuid) -> Call<()> {
        Call::new(
            self,
            Method::DELETE,
            path(&[&"servers", &server_id, &"invites", &invite_id]),
            nothing,
        )
    }

    /// `POST /servers/{server_id}/invites/{invite_id}/undo`: undoes a leaked link
    /// (`MANAGE_SERVER` and `KICK_MEMBERS`): revokes the invite, if it is not already, and
    /// removes everyone who joined through it (at or after `since`, when given), except the
    /// owner and members whose permissions were set after they joined (counted in `kept`).
    /// Safe to repeat: a second undo removes nobody more. The vanity invite: 400
    /// `VANITY_INVITE`.
    pub fn undo_invite(
        &self,
        server_id: Uuid,
        invite_id: Uuid,
        since: Option<DateTime<Utc>>,
    ) -> Call<InviteUndone> {
        Call::new(
            self,
            Method::POST,
            path(&[&"servers", &server_id, &"invites", &invite_id, &"undo"]),
            json,
        )
        .json(&UndoInviteRequest::since(since))
    }

    /// `PATCH /servers/{server_id}/invites/{invite_id}`: edits an invite's limits. Honours
    /// [`Call::if_match`].
    pub fn update_invite(
        &self,
        server_id: Uuid,
        invite_id: Uuid,
        request: &UpdateInvite,
    ) -> Call<Invite> {
        Call::new(
            self,
            Method::PATCH,
            path(&[&"servers", &server_id, &"invites", &invite_id]),
            json,
        )
        .json(request)
    }

    /// `GET /invites/{code}`: what anyone may see of an invite; no token needed. A refusal is
    /// 404 with the precise code (`INVITE_NOT_FOUND`, `INVITE_REVOKED`, `INVITE_EXPIRED`,
    /// `INVITE_MAXED_OUT`).
    pub fn preview(&self, code: &str) -> Call<Preview> {
        Call::new(self, Method::GET, path(&[&"invites", &code]), preview)
    }

    /// `GET /invites/{code}?with_counts=true`: the preview with the approximate member and
    /// presence counts.
    pub fn preview_with_counts(&self, code: &str) -> Call<Preview> {
        self.preview(code).query("with_counts", Some(true))
    }

    /// `POST /invites/{code}/accept`: joins the invite's server. Safe to retry: the same
    /// idempotency key goes with every attempt, and [`Accepted::replayed`] says whether the
    /// answer is the stored one of an earlier attempt.
    /// An invite that requires approval answers 202 with a join request, which this call
    /// cannot read (a decode error): use [`Client::accept_or_request`] where that may happen.
    pub fn accept(&self, code: &str) -> Call<Accepted> {
        Call::new(self, Method::POST, path(&[&"invites", &code, &"accept"]), accepted)
    }

    /// `POST /invites/{code}/accept`, for any invite: [`Admission::Joined`] as
    /// [`Client::accept`] would answer, or [`Admission::Filed`] for an invite that requires
    /// approval (202: the caller's pending join request, filed now or by an earlier accept).
    /// Safe to retry, as [`Client::accept`] is.
    pub fn accept_or_request(&self, code: &str) -> Call<Admission> {
        Call::new(self, Method::POST, path(&[&"invites", &code, &"accept"]), admission)
    }

    /// `DELETE /invites/{code}`: revokes an invite by its code (its creator, or
    /// `MANAGE_SERVER`). Honours [`Call::if_match`].
    pub fn delete_invite(&self, code: &str) -> Call<()> {
        Call::new(self, Method::DELETE, path(&[&"invites", &code]), nothing)
    }

    /// `POST /channels/{channel_id}/invites`: creates an invite to a channel.
    pub fn create_channel_invite(&self, channel_id: Uuid, request: &CreateInvite) -> Call<Invite> {
        Call::new(self, Method::POST, path(&[&"channels", &channel_id, &"invites"]), json)
            .json(request)
    }

    /// `GET /channels/{channel_id}/invites`: the channel's invites, newest first.
    pub fn list_channel_invites(&self, channel_id: Uuid, page: PageBefore) -> Call<Vec<Invite>> {
        Call::new(self, Method::GET, path(&[&"channels", &channel_id, &"invites"]), json)
            .page_before(page)
    }

    /// `GET /servers/{server_id}/vanity-url`: the vanity code and its uses (`MANAGE_SERVER`).
    pub fn get_vanity_url(&self, server_id: Uuid) -> Call<VanityUrl> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"vanity-url"]), json)
    }

    /// `PATCH /servers/{server_id}/vanity-url`: sets the vanity code, or releases it with
    /// `None` (`MANAGE_SERVER` and the `VANITY_URL` feature); taken: 409 `VANITY_TAKEN`.
    pub fn set_vanity_url(&self, server_id: Uuid, code: Option<&str>) -> Call<VanityUrl> {
        Call::new(self, Method::PATCH, path(&[&"servers", &server_id, &"vanity-url"]), json).json(
            &VanityRequest { code: code.map_or(Patch::Clear, |code| Patch::Set(code.to_owned())) },
        )
    }
}

/// Servers, members, bans, channels, pause, audit (contract 5.3).
impl Client {
    /// `POST /servers`: creates a server; the caller becomes its owner and first member.
    pub fn create_server(&self, request: &CreateServer) -> Call<Server> {
        Call::new(self, Method::POST, path(&[&"servers"]), json).json(request)
    }

    /// `GET /servers/{server_id}`: a server the caller belongs to.
    pub fn get_server(&self, server_id: Uuid) -> Call<Server> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id]), json)
    }

    /// `PATCH /servers/{server_id}`: edits a server (`MANAGE_SERVER`; features: the owner).
    pub fn update_server(&self, server_id: Uuid, request: &UpdateServer) -> Call<Server> {
        Call::new(self, Method::PATCH, path(&[&"servers", &server_id]), json).json(request)
    }

    /// `GET /servers/{server_id}/members`: members ordered by user id, with how each joined.
    pub fn list_members(&self, server_id: Uuid, page: PageAfter) -> Call<Vec<Member>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"members"]), json)
            .page_after(page)
    }

    /// `PATCH /servers/{server_id}/members/{user_id}`: replaces a member's extra permissions
    /// (`ADMINISTRATOR`); ends a temporary membership.
    pub fn update_member(
        &self,
        server_id: Uuid,
        user_id: Uuid,
        permissions: Permissions,
    ) -> Call<Member> {
        Call::new(self, Method::PATCH, path(&[&"servers", &server_id, &"members", &user_id]), json)
            .json(&UpdateMemberRequest { permissions })
    }

    /// `DELETE /servers/{server_id}/members/{user_id}`: leaves the server (the caller's own
    /// id) or kicks a member (`KICK_MEMBERS`). The owner can do neither (`OWNER_IMMUNE`).
    pub fn remove_member(&self, server_id: Uuid, user_id: Uuid) -> Call<()> {
        Call::new(
            self,
            Method::DELETE,
            path(&[&"servers", &server_id, &"members", &user_id]),
            nothing,
        )
    }

    /// `PUT /servers/{server_id}/bans/{user_id}`: bans a user and removes their membership
    /// (`BAN_MEMBERS`); banning again updates the reason.
    pub fn ban(&self, server_id: Uuid, user_id: Uuid, reason: Option<&str>) -> Call<()> {
        Call::new(self, Method::PUT, path(&[&"servers", &server_id, &"bans", &user_id]), nothing)
            .json(&BanRequest { reason: reason.map(str::to_owned) })
    }

    /// `DELETE /servers/{server_id}/bans/{user_id}`: lifts a ban (`BAN_MEMBERS`).
    pub fn unban(&self, server_id: Uuid, user_id: Uuid) -> Call<()> {
        Call::new(self, Method::DELETE, path(&[&"servers", &server_id, &"bans", &user_id]), nothing)
    }

    /// `GET /servers/{server_id}/bans`: the server's bans, newest first (`BAN_MEMBERS`).
    pub fn list_bans(&self, server_id: Uuid) -> Call<Vec<Ban>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"bans"]), json)
    }

    /// `POST /servers/{server_id}/channels`: creates a channel (`MANAGE_CHANNELS`).
    pub fn create_channel(&self, server_id: Uuid, name: &str) -> Call<Channel> {
        Call::new(self, Method::POST, path(&[&"servers", &server_id, &"channels"]), json)
            .json(&CreateChannelRequest { name: name.to_owned() })
    }

    /// `GET /servers/{server_id}/channels`: the server's channels, oldest first.
    pub fn list_channels(&self, server_id: Uuid) -> Call<Vec<Channel>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"channels"]), json)
    }

    /// `PUT /servers/{server_id}/invites-pause`: pauses the server's invites until `until`, or
    /// until resumed (`MANAGE_SERVER`). Accepting then answers 403 `INVITES_PAUSED`.
    pub fn pause_invites(&self, server_id: Uuid, until: Option<DateTime<Utc>>) -> Call<()> {
        Call::new(self, Method::PUT, path(&[&"servers", &server_id, &"invites-pause"]), nothing)
            .json(&PauseRequest { until })
    }

    /// `DELETE /servers/{server_id}/invites-pause`: resumes the server's invites.
    pub fn resume_invites(&self, server_id: Uuid) -> Call<()> {
        Call::new(self, Method::DELETE, path(&[&"servers", &server_id, &"invites-pause"]), nothing)
    }

    /// `GET /servers/{server_id}/raid-protection`: the server's raid protection, `enabled:
    /// false` when it is off (`MANAGE_SERVER`).
    pub fn raid_protection(&self, server_id: Uuid) -> Call<RaidProtection> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"raid-protection"]), json)
    }

    /// `PUT /servers/{server_id}/raid-protection`: once `joins` people have joined within
    /// `window_seconds`, the server's invites pause for `pause_seconds` by themselves
    /// (`MANAGE_SERVER`; bounds 2-10000, 10-86400 and 60-604800, else 400
    /// `VALIDATION_ERROR`). The count starts afresh.
    pub fn set_raid_protection(
        &self,
        server_id: Uuid,
        joins: i64,
        window_seconds: i64,
        pause_seconds: i64,
    ) -> Call<RaidProtection> {
        Call::new(self, Method::PUT, path(&[&"servers", &server_id, &"raid-protection"]), json)
            .json(&RaidProtectionRequest::new(joins, window_seconds, pause_seconds))
    }

    /// `GET /servers/{server_id}/invites/{invite_id}/stats`: the invite's analytics
    /// (`MANAGE_SERVER`): previews, accepts, refusals by error code, joins per day over the
    /// last 30 days and who is still a member. They lag by up to the service's
    /// `INVITE_ANALYTICS_FLUSH_INTERVAL`. Another server's invite: 404 `INVITE_NOT_FOUND`.
    pub fn invite_stats(&self, server_id: Uuid, invite_id: Uuid) -> Call<InviteStats> {
        Call::new(
            self,
            Method::GET,
            path(&[&"servers", &server_id, &"invites", &invite_id, &"stats"]),
            json,
        )
    }

    /// `GET /servers/{server_id}/invite-stats`: the server's analytics, totals over its
    /// invites and its top 100 invites by accepts (`MANAGE_SERVER`).
    pub fn server_invite_stats(&self, server_id: Uuid) -> Call<ServerInviteStats> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"invite-stats"]), json)
    }

    /// `DELETE /servers/{server_id}/raid-protection`: turns raid protection off
    /// (`MANAGE_SERVER`); a pause it set stays until it ends or is lifted
    /// ([`Client::resume_invites`]).
    pub fn remove_raid_protection(&self, server_id: Uuid) -> Call<()> {
        Call::new(
            self,
            Method::DELETE,
            path(&[&"servers", &server_id, &"raid-protection"]),
            nothing,
        )
    }

    /// `GET /servers/{server_id}/join-requests`: the server's join requests in `status`
    /// (`None`: pending), oldest first (`KICK_MEMBERS` or `MANAGE_SERVER`).
    pub fn join_requests(
        &self,
        server_id: Uuid,
        status: Option<JoinRequestStatus>,
    ) -> Call<Vec<JoinRequest>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"join-requests"]), json)
            .query("status", status.map(JoinRequestStatus::as_str))
    }

    /// `POST /servers/{server_id}/join-requests/{request_id}/approve`: the user joins through
    /// the request's invite (`KICK_MEMBERS` or `MANAGE_SERVER`). The accept's refusal
    /// (`INVITE_MAXED_OUT`, `INVITE_EXPIRED`, `INVITE_REVOKED`...) leaves it pending; one
    /// decided already is 409 `JOIN_REQUEST_NOT_PENDING`.
    pub fn approve_join_request(&self, server_id: Uuid, request_id: Uuid) -> Call<JoinRequest> {
        Call::new(
            self,
            Method::POST,
            path(&[&"servers", &server_id, &"join-requests", &request_id, &"approve"]),
            json,
        )
    }

    /// `POST /servers/{server_id}/join-requests/{request_id}/deny` (`KICK_MEMBERS` or
    /// `MANAGE_SERVER`).
    pub fn deny_join_request(&self, server_id: Uuid, request_id: Uuid) -> Call<JoinRequest> {
        Call::new(
            self,
            Method::POST,
            path(&[&"servers", &server_id, &"join-requests", &request_id, &"deny"]),
            json,
        )
    }

    /// `GET /users/@me/join-requests`: the caller's own join requests, of every server and
    /// status, oldest first.
    pub fn my_join_requests(&self) -> Call<Vec<JoinRequest>> {
        Call::new(self, Method::GET, path(&[&"users", &"@me", &"join-requests"]), json)
    }

    /// `DELETE /users/@me/join-requests/{request_id}`: withdraws one of the caller's pending
    /// join requests.
    pub fn withdraw_join_request(&self, request_id: Uuid) -> Call<()> {
        Call::new(
            self,
            Method::DELETE,
            path(&[&"users", &"@me", &"join-requests", &request_id]),
            nothing,
        )
    }

    /// `GET /servers/{server_id}/invites/{invite_id}/members`: the members who joined with an
    /// invite, revoked ones included (`MANAGE_SERVER`).
    pub fn list_invite_members(
        &self,
        server_id: Uuid,
        invite_id: Uuid,
        page: PageAfter,
    ) -> Call<Vec<Member>> {
        Call::new(
            self,
            Method::GET,
            path(&[&"servers", &server_id, &"invites", &invite_id, &"members"]),
            json,
        )
        .page_after(page)
    }

    /// `GET /servers/{server_id}/audit-log`: the audit log, newest first (`ADMINISTRATOR`).
    pub fn audit_log(&self, server_id: Uuid, page: PageBefore) -> Call<Vec<AuditEntry>> {
        Call::new(self, Method::GET, path(&[&"servers", &server_id, &"audit-log"]), json)
            .page_before(page)
    }
}
