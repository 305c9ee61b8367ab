#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod call;
mod client;
mod endpoints;
mod error;
mod headers;
mod request;
mod retry;

pub use call::{Call, Response};
pub use client::{Client, ClientBuilder, RetryEvent};
pub use error::{ClientError, ErrorCode};
pub use request::{ListInvites, PageAfter, PageBefore, UpdateServer};
pub use retry::RetryPolicy;

/// The wire types, shared with the service: every response body below is one of them.
pub use invite_api;
/// The body of an invite creation (server- or channel-scoped). `CreateInvite::default()` makes
/// a permanent invite with unlimited uses; fields left at `None` are left out, so the service
/// applies its defaults.
pub use invite_api::CreateInviteRequest as CreateInvite;
/// The body of a server creation; [`CreateServer::named`] leaves the rest to the service.
pub use invite_api::CreateServerRequest as CreateServer;
/// A successful accept: the caller is now a member, with whether the answer is a replay.
pub use invite_api::Joined as Accepted;
/// The body of an invite edit: only what is set changes. A new lifetime counts from now.
pub use invite_api::UpdateInviteRequest as UpdateInvite;
pub use invite_api::{
    AuditAction, AuditEntry, Ban, Channel, ChannelRef, Invite, InviteKind, InviteStats,
    InviteStatsSummary, InviteUndone, InvitesPause, JoinRequest, JoinRequestFiled,
    JoinRequestStatus, JoinSource, JoinedVia, JoinsOnDay, Member, Patch, Permissions, Preview,
    RaidProtection, RateLimit, Server, ServerFeature, ServerInviteStats, TargetType, VanityUrl,
};

/// What an accept did ([`Client::accept_or_request`]): joined, or, for an invite that requires
/// approval, filed a join request (202) that a moderator decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Joined the server (201).
    Joined(Accepted),
    /// Asked to join (202): the caller's pending request, filed now or before. No use taken.
    Filed(JoinRequestFiled),
}
