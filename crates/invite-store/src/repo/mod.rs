//! Repository traits: everything the HTTP API reads and writes, as synchronous calls on a
//! connection. One implementation, on [`DbConnection`], serves both backends.
//!
//! Every write that changes more than one row runs in one transaction: either all of it is
//! committed or none. What stops a change comes back as a fact or a conflict
//! ([`StoreError::Stopped`](crate::StoreError::Stopped),
//! [`StoreError::Conflict`](crate::StoreError::Conflict)), which the operations layer turns into
//! a refusal, and leaves the database unchanged.

mod audit;
mod events;
mod gateway;
mod idempotency;
mod invites;
mod maintenance;
mod members;
mod redeem;
mod servers;
mod vanity;
mod webhooks;

use chrono::{DateTime, Utc};
use invite_core::code::{CodeRef, RandomSource, VanityCode};
use invite_core::event::Event;
use invite_core::invite::{InviteChanges, InviteSettings};
use invite_core::permissions::{Permissions, Standing};
use invite_core::redeem::{InvitesPause, RedemptionRefused};
use invite_core::server::{ChannelName, NewServerSettings, PageLimit, ServerChanges};
use uuid::Uuid;

pub use audit::audit_write_failures;
pub use events::{EventHorizon, HorizonSample, StoredEvent};
pub use gateway::{MemberServer, NewSession};
pub use idempotency::{
    IDEMPOTENCY_WINDOW, IdempotencyClaim, JoinResponseTemplate, Keyed, PriorResponse,
    RecordedResponse, keyed, recorded,
};
pub use invites::create_statement_sql;
pub use maintenance::MaintenanceState;
pub use redeem::accept_statement_sql;
pub use webhooks::{AttemptOutcome, Delivery, NewWebhook, Webhook};

#[cfg(doc)]
use crate::connection::DbConnection;
use crate::error::StoreResult;
use crate::models::{AuditEntry, Ban, Channel, Invite, Member, Preview, Server};

/// A `before`/`after` cursor that names nothing in the list it pages through; `what` says what
/// it should name.
fn unknown_cursor(what: &'static str) -> crate::error::StoreError {
    crate::error::Fact::UnknownCursor(what).into()
}

/// The user doing something, as their token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub`.
    pub user_id: Uuid,
    /// The token's `username` claim, remembered when present.
    pub username: Option<String>,
}

impl Actor {
    /// An actor known only by id.
    pub fn new(user_id: Uuid) -> Self {
        Self { user_id, username: None }
    }
}

/// Users, remembered by the name their tokens carry.
pub trait UserRepository {
    /// Stores the actor's `username` claim, if any (a missing claim keeps the known name).
    fn remember_user(&mut self, actor: &Actor, now: DateTime<Utc>) -> StoreResult<()>;
}

/// Servers and their settings.
pub trait ServerRepository {
    /// Creates a server owned by `owner`, who becomes its first member.
    fn create_server(
        &mut self,
        owner: &Actor,
        settings: &NewServerSettings,
        now: DateTime<Utc>,
    ) -> StoreResult<Server>;

    /// The server, or `None`.
    fn find_server(&mut self, server_id: Uuid) -> StoreResult<Option<Server>>;

    /// The caller's standing in the server: `None` when the server does not exist or the caller
    /// is not a member (the API answers both with the same 404).
    fn standing(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<Option<Standing>>;

    /// Applies the changes; `NotFound` when the server does not exist.
    fn update_server(
        &mut self,
        server_id: Uuid,
        changes: &ServerChanges,
        now: DateTime<Utc>,
    ) -> StoreResult<Server>;

    /// Takes the server's row lock for the rest of the transaction: writes that must not
    /// interleave for one server (counting against a limit, numbering its events) take turns.
    /// `NotFound` when there is no such server.
    fn lock_server(&mut self, server_id: Uuid) -> StoreResult<()>;

    /// Pauses (`Some`) or resumes (`None`) the server's invites, with its audit entry.
    fn set_invites_pause(
        &mut self,
        server_id: Uuid,
        pause: Option<InvitesPause>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Server>;
}

/// Channels.
pub trait ChannelRepository {
    /// Creates a channel in the server.
    fn create_channel(
        &mut self,
        server_id: Uuid,
        name: &ChannelName,
        now: DateTime<Utc>,
    ) -> StoreResult<Channel>;

    /// The server's channels, oldest first.
    fn list_channels(&mut self, server_id: Uuid) -> StoreResult<Vec<Channel>>;

    /// The channel, or `None`.
    fn find_channel(&mut self, channel_id: Uuid) -> StoreResult<Option<Channel>>;
}

/// Why a member leaves a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// They left on their own.
    Leave,
    /// A moderator removed them (audited as `MemberKick`).
    Kick {
        /// The moderator.
        by: Uuid,
    },
    /// A temporary member whose last gateway session has been gone for the grace period
    /// (audited as `MemberRemoveTemporary`, with themselves as the actor).
    Temporary,
}

/// Members and how they joined.
pub trait MemberRepository {
    /// Members ordered by user id, after the given one.
    fn list_members(
        &mut self,
        server_id: Uuid,
        after: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Member>>;

    /// The membership, or `None`.
    fn find_member(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<Option<Member>>;

    /// Replaces the member's extra permissions; being given permissions ends a temporary
    /// membership. `NotFound` when not a member.
    fn set_member_permissions(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        permissions: Permissions,
    ) -> StoreResult<Member>;

    /// Removes the member and keeps the member count; `NotFound` when not a member.
    fn remove_member(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        removal: Removal,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Members who joined with the invite, in join order, after the given user.
    fn members_joined_with(
        &mut self,
        invite_id: Uuid,
        after: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Member>>;
}

/// Bans.
pub trait BanRepository {
    /// Bans the user (again, updating the reason) and removes their membership, if any.
    fn ban(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        reason: Option<String>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Ban>;

    /// Lifts the ban; `NotFound` when there is none.
    fn unban(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The server's bans, newest first.
    fn list_bans(&mut self, server_id: Uuid) -> StoreResult<Vec<Ban>>;

    /// Whether the user is banned from the server.
    fn is_banned(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<bool>;
}

/// An invite to create.
#[derive(Debug)]
pub struct NewInvite<'a> {
    /// The server.
    pub server_id: Uuid,
    /// The creator.
    pub creator: &'a Actor,
    /// The validated request.
    pub settings: &'a InviteSettings,
    /// The creation time, from which the expiry was computed.
    pub now: DateTime<Utc>,
}

/// The result of a create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedInvite {
    /// A new invite.
    Created(Invite),
    /// `unique: false` found an active invite with the same settings and returned it.
    Reused(Invite),
}

/// Which invites a list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteScope {
    /// Every invite of the server.
    Server(Uuid),
    /// The invites pointing at the channel.
    Channel(Uuid),
}

/// A successful join.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The new membership.
    pub member: Member,
    /// The invite's uses after this join.
    pub uses: i64,
    /// The invite's version after this join.
    pub version: i64,
    /// The server's member count after this join (this one included).
    pub member_count: i64,
    /// The `MEMBER_JOIN` event the join wrote to the outbox.
    pub event: StoredEvent,
}

/// The outcome of an accept.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// The user joined (boxed: a join carries its member and event, a refusal one byte).
    Joined(Box<Joined>),
    /// The user may not join, for the reason given; nothing changed.
    Refused(RedemptionRefused),
}

/// Invites: creation with code reservation, listing, editing, revoking, previews and joins.
pub trait InviteRepository {
    /// Creates an invite (or, with `unique: false`, reuses an equal active one), with its audit
    /// entry. Refuses an unknown channel and a server at its active-invite limit; draws codes
    /// from `random` with the core's collision retry.
    fn create_invite(
        &mut self,
        new: &NewInvite<'_>,
        random: &mut dyn RandomSource,
    ) -> StoreResult<CreatedInvite>;

    /// [`Self::create_invite`], with a new invite's event (made by `announce`) written in the
    /// same transaction; returns the event. On PostgreSQL the count of active invites, the
    /// invite, its audit entry and its event are one statement after the server's lock.
    fn create_invite_announced(
        &mut self,
        new: &NewInvite<'_>,
        random: &mut dyn RandomSource,
        announce: fn(&Invite) -> Event,
    ) -> StoreResult<(CreatedInvite, Vec<StoredEvent>)>;

    /// Random invites that are not revoked, newest first, older than `before`.
    fn list_invites(
        &mut self,
        scope: InviteScope,
        before: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Invite>>;

    /// The invite, whatever its state, or `None`.
    fn find_invite(&mut self, invite_id: Uuid) -> StoreResult<Option<Invite>>;

    /// The invite holding the code, whatever its state, or `None`.
    fn find_invite_by_code(&mut self, code: &CodeRef) -> StoreResult<Option<Invite>>;

    /// Counts the server's active random invites (not revoked, not expired, not used up).
    fn count_active_invites(&mut self, server_id: Uuid, now: DateTime<Utc>) -> StoreResult<i64>;

    /// Takes the invite row's write lock for the rest of the transaction and reads it as it is
    /// then, whatever its state: what an edit or a revoke is checked against, so that a
    /// concurrent join cannot slip under a lowered limit, and a version checked is the version
    /// bumped. `NotFound` when there is no such invite.
    fn lock_invite(&mut self, invite_id: Uuid) -> StoreResult<Invite>;

    /// Applies `changes` to an invite locked by [`InviteRepository::lock_invite`] in this
    /// transaction, with its audit entry; the invite as it is after.
    fn update_invite(
        &mut self,
        invite: &Invite,
        changes: &InviteChanges,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite>;

    /// Revokes (soft-deletes) an invite locked by [`InviteRepository::lock_invite`] in this
    /// transaction, with its audit entry; the invite as it is after.
    fn revoke_invite(
        &mut self,
        invite: &Invite,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite>;

    /// The invite, its server's public face and the server's members with a live gateway
    /// session on any instance at `now`, in one read; `None` for an unknown code. Without live
    /// sessions its cost does not depend on the server's size; with them, the presence count's
    /// plan may read a big server's members (see BENCHMARKS.md, "Preview cache misses").
    fn preview(&mut self, code: &CodeRef, now: DateTime<Utc>) -> StoreResult<Option<Preview>>;

    /// Accepts the invite for `user`, atomically: the member row, the use, the version bump,
    /// the member count and the `MemberJoin` audit entry commit together or not at all, and a
    /// refused attempt consumes nothing.
    fn redeem(
        &mut self,
        code: &CodeRef,
        user: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Redemption>;

    /// [`InviteRepository::redeem`] for a request with an `Idempotency-Key`: a join also records
    /// its response (`response`, with the server's id) under the claim, in the same transaction
    /// (on PostgreSQL, in the same statement). A refusal records nothing. A conflict on
    /// [`Constraint::IdempotencyKey`](crate::Constraint) means a twin joined first.
    fn redeem_recorded(
        &mut self,
        code: &CodeRef,
        user: &Actor,
        now: DateTime<Utc>,
        claim: &IdempotencyClaim,
        response: &JoinResponseTemplate<'_>,
    ) -> StoreResult<Redemption>;
}

/// Vanity URLs.
pub trait VanityRepository {
    /// The server's active vanity invite, or `None`.
    fn vanity_invite(&mut self, server_id: Uuid) -> StoreResult<Option<Invite>>;

    /// Sets (`Some`) or releases (`None`) the server's vanity code, with its audit entry,
    /// following the core's claim rules (shared namespace, 30-day cooldown). Returns the active
    /// vanity invite afterwards.
    fn set_vanity_code(
        &mut self,
        server_id: Uuid,
        code: Option<&VanityCode>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invite>>;
}

/// The audit log.
pub trait AuditRepository {
    /// Entries newest first, older than `before`.
    fn list_audit_entries(
        &mut self,
        server_id: Uuid,
        before: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<AuditEntry>>;
}

/// Responses recorded for `Idempotency-Key` replays.
pub trait IdempotencyRepository {
    /// What the claim's key already stands for. A record older than
    /// [`IDEMPOTENCY_WINDOW`] stands for nothing, and is deleted on the way.
    fn prior_response(
        &mut self,
        claim: &IdempotencyClaim,
        now: DateTime<Utc>,
    ) -> StoreResult<PriorResponse>;

    /// Records the response to the claim's request; call it inside the transaction of the change
    /// it describes. A conflict on [`Constraint::IdempotencyKey`](crate::Constraint) means a
    /// twin recorded first, and the caller's transaction must roll back.
    fn record_response(
        &mut self,
        claim: &IdempotencyClaim,
        response: &RecordedResponse,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Deletes up to about `batch` records older than [`IDEMPOTENCY_WINDOW`]; returns how many
    /// went.
    fn purge_idempotency_records(&mut self, now: DateTime<Utc>, batch: i64) -> StoreResult<usize>;
}

/// The outbox (contract section 9); see the `events` module for how it is read safely.
pub trait EventRepository {
    /// Appends events inside the caller's transaction, after taking their servers' row locks (so
    /// that one server's events are numbered in commit order); returns them as stored.
    fn append_events(
        &mut self,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// One server's events after `after`, oldest first: safe to page through with `after`,
    /// since a server's events commit in `seq` order.
    fn server_events(
        &mut self,
        server_id: Uuid,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// Every server's events after `after` and up to `up_to` (an [`EventHorizon`]), oldest
    /// first.
    fn events_between(
        &mut self,
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// What an [`EventHorizon`] needs to know now.
    fn horizon_sample(&mut self) -> StoreResult<HorizonSample>;

    /// The largest `seq` committed so far (0 when none).
    fn latest_seq(&mut self) -> StoreResult<i64>;

    /// Deletes up to about `batch` events written before `before`; returns how many went.
    fn purge_events(&mut self, before: DateTime<Utc>, batch: i64) -> StoreResult<usize>;

    /// The smallest `seq` the outbox still holds (`None` when it is empty): a reader that last
    /// saw a `seq` below the one before it may have missed purged events.
    fn oldest_seq(&mut self) -> StoreResult<Option<i64>>;

    /// The events of `servers` after `after` and up to `up_to`, oldest first (a gateway
    /// session's replay).
    fn servers_events_between(
        &mut self,
        servers: &[Uuid],
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
}

/// Gateway sessions (contract section 10): presence, and the removal of temporary members.
pub trait GatewayRepository {
    /// Records a session unless the user already has `per_user` live ones; whether it was
    /// recorded.
    fn open_session(
        &mut self,
        session: NewSession,
        now: DateTime<Utc>,
        per_user: i64,
    ) -> StoreResult<bool>;

    /// Ends a session now (its row stays, saying when it ended).
    fn close_session(&mut self, session_id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;

    /// Keeps an instance's live sessions live until `until`; returns how many.
    fn renew_sessions(
        &mut self,
        instance_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<usize>;

    /// Ends every live session of an instance now (it is stopping).
    fn end_instance_sessions(
        &mut self,
        instance_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<usize>;

    /// Temporary members (server, user) who joined more than `grace` ago and have had no
    /// session for at least `grace`, oldest first.
    fn lapsed_temporary_members(
        &mut self,
        now: DateTime<Utc>,
        grace: chrono::TimeDelta,
        limit: i64,
    ) -> StoreResult<Vec<(Uuid, Uuid)>>;

    /// Whether the user is still a temporary member of the server, gone for at least `grace`
    /// (checked again inside the removal's transaction).
    fn is_lapsed_temporary_member(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
        grace: chrono::TimeDelta,
    ) -> StoreResult<bool>;

    /// Deletes the rows of sessions that ended before `before`.
    fn purge_sessions(&mut self, before: DateTime<Utc>) -> StoreResult<usize>;

    /// The servers each of `users` belongs to, with where they stand in each, as (user,
    /// server) by user and server id: one query for a burst of new sessions.
    fn member_servers(&mut self, users: &[Uuid]) -> StoreResult<Vec<(Uuid, MemberServer)>>;
}

/// Webhooks and their deliveries (contract section 9).
pub trait WebhookRepository {
    /// Registers a webhook whose deliveries start after event `cursor`.
    fn create_webhook(&mut self, new: &NewWebhook<'_>, cursor: i64) -> StoreResult<Webhook>;

    /// How many webhooks the server has.
    fn count_webhooks(&mut self, server_id: Uuid) -> StoreResult<i64>;

    /// The server's webhooks, oldest first.
    fn list_webhooks(&mut self, server_id: Uuid) -> StoreResult<Vec<Webhook>>;

    /// The webhook, or `None`.
    fn find_webhook(&mut self, webhook_id: Uuid) -> StoreResult<Option<Webhook>>;

    /// Deletes the server's webhook, with its deliveries; `false` when there was none.
    fn delete_webhook(&mut self, server_id: Uuid, webhook_id: Uuid) -> StoreResult<bool>;

    /// The webhook's latest deliveries, newest first.
    fn deliveries(&mut self, webhook_id: Uuid, limit: i64) -> StoreResult<Vec<Delivery>>;

    /// Takes (or renews) the lease of every enabled webhook that is due (not waiting for a
    /// retry) and not leased by another instance, until `until`.
    fn lease_due_webhooks(
        &mut self,
        owner: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Webhook>>;

    /// Gives up every lease `owner` holds, so that another instance takes over at once (an
    /// instance stopping gracefully; a crashed one's leases run out by themselves).
    fn release_leases(&mut self, owner: Uuid) -> StoreResult<usize>;

    /// Records an attempt (if any) and its outcome, if `owner` still holds the lease; `false`
    /// when it no longer does (nothing is written then).
    fn record_attempt(
        &mut self,
        owner: Uuid,
        delivery: Option<&Delivery>,
        webhook_id: Uuid,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Deletes deliveries logged before `before`.
    fn purge_deliveries(&mut self, before: DateTime<Utc>) -> StoreResult<usize>;
}

/// The maintenance switch (contract section 6), shared by every instance on the database.
pub trait MaintenanceRepository {
    /// The switch as last set; `None` if it never was (maintenance is off).
    fn maintenance(&mut self) -> StoreResult<Option<MaintenanceState>>;

    /// Sets the switch. Switching it on while it is on, or off while off, keeps `since`.
    fn set_maintenance(
        &mut self,
        enabled: bool,
        message: Option<&str>,
        ends_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<MaintenanceState>;
}
