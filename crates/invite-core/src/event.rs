//! The events the service publishes (contract sections 9 and 10): what changed, what each
//! carries, and who may hear of it. Every change writes its events to the outbox in its own
//! transaction; the gateway, the webhooks, the events endpoint and every instance's preview cache
//! read them from there.
//!
//! [`Event`] is the one description of every event: its type and its typed payload, stored as a
//! type name and the payload's JSON (the shape the gateway, the webhooks and the events endpoint
//! send), and read back into the same type. [`Audience::may_hear`] is the one rule of who hears
//! what.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::approval::JoinRequest;
use crate::invite::InviteKind;
use crate::permissions::{Permissions, Standing};
use crate::server::{JoinSource, ServerFeature};

/// Declares the events: the [`Event`] enum, with one typed payload per variant, and the
/// [`EventType`] naming each, kept in step by construction.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident ($payload:ty) = $name:literal,)+) => {
        /// An event: what changed, with what it carries (the variant's payload).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($(#[$doc])* $variant($payload),)+
        }

        /// What an event reports, without its payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl EventType {
            /// Every type.
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The wire and stored name (`"INVITE_CREATE"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl Event {
            /// Its type.
            pub const fn kind(&self) -> EventType {
                match self {
                    $(Self::$variant(_) => EventType::$variant,)+
                }
            }

            /// The payload as it is stored and sent.
            ///
            /// # Panics
            /// Never: every payload is plain data that serialises to JSON.
            pub fn payload(&self) -> serde_json::Value {
                let value = match self {
                    $(Self::$variant(payload) => serde_json::to_value(payload),)+
                };
                value.expect("event payloads are plain data")
            }

            /// An event from its stored type and payload; an error when the payload is not the
            /// type's shape.
            pub fn from_parts(
                kind: EventType,
                payload: serde_json::Value,
            ) -> Result<Self, serde_json::Error> {
                Ok(match kind {
                    $(EventType::$variant => Self::$variant(serde_json::from_value(payload)?),)+
                })
            }
        }
    };
}

events! {
    /// An invite was created (payload: the invite).
    InviteCreate(InviteData) = "INVITE_CREATE",
    /// An invite's limits or uses changed (payload: the invite).
    InviteUpdate(InviteData) = "INVITE_UPDATE",
    /// An invite was revoked.
    InviteDelete(InviteDeleted) = "INVITE_DELETE",
    /// Someone joined.
    MemberJoin(MemberJoined) = "MEMBER_JOIN",
    /// A member's permissions changed (payload: the member).
    MemberUpdate(MemberData) = "MEMBER_UPDATE",
    /// A member left or was removed.
    MemberRemove(MemberRemoved) = "MEMBER_REMOVE",
    /// A user was banned.
    BanAdd(BanAdded) = "BAN_ADD",
    /// A ban was lifted.
    BanRemove(BanRemoved) = "BAN_REMOVE",
    /// The server's invites were paused.
    InvitesPause(InvitesPaused) = "INVITES_PAUSE",
    /// The server's invites were resumed.
    InvitesResume(InvitesResumed) = "INVITES_RESUME",
    /// The vanity code was set, changed or released.
    VanityUpdate(VanityUpdated) = "VANITY_UPDATE",
    /// The server's name, icon, default permissions or features changed (payload: the server).
    ServerUpdate(ServerData) = "SERVER_UPDATE",
    /// A channel was created (payload: the channel).
    ChannelCreate(ChannelData) = "CHANNEL_CREATE",
    /// Someone filed a join request through an invite that requires approval (payload: the
    /// request).
    JoinRequestCreate(JoinRequest) = "JOIN_REQUEST_CREATE",
    /// A join request was approved, denied or withdrawn (payload: the request).
    JoinRequestUpdate(JoinRequest) = "JOIN_REQUEST_UPDATE",
}

impl Event {
    /// The server it is about.
    pub const fn server_id(&self) -> Uuid {
        match self {
            Self::InviteCreate(invite) | Self::InviteUpdate(invite) => invite.server_id,
            Self::InviteDelete(deleted) => deleted.server_id,
            Self::MemberJoin(joined) => joined.server_id,
            Self::MemberUpdate(member) => member.server_id,
            Self::MemberRemove(removed) => removed.server_id,
            Self::BanAdd(ban) => ban.server_id,
            Self::BanRemove(ban) => ban.server_id,
            Self::InvitesPause(pause) => pause.server_id,
            Self::InvitesResume(resumed) => resumed.server_id,
            Self::VanityUpdate(vanity) => vanity.server_id,
            Self::ServerUpdate(server) => server.id,
            Self::ChannelCreate(channel) => channel.server_id,
            Self::JoinRequestCreate(request) | Self::JoinRequestUpdate(request) => {
                request.server_id
            }
        }
    }

    /// Who may hear of it.
    pub const fn audience(&self) -> Audience {
        self.kind().audience()
    }

    /// The user it is about, when it is about one (a join, a member's change, a removal, a
    /// ban): the gateway follows who hears what by it.
    pub const fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::MemberJoin(joined) => Some(joined.user_id),
            Self::MemberUpdate(member) => Some(member.user_id),
            Self::MemberRemove(removed) => Some(removed.user_id),
            Self::BanAdd(ban) => Some(ban.user_id),
            Self::BanRemove(ban) => Some(ban.user_id),
            _ => None,
        }
    }

    /// Who asked to join, for an event about a join request: the gateway sends it to their
    /// sessions too, though they are not (yet) a member of the server. Nobody else outside
    /// the server hears any event.
    pub const fn requester(&self) -> Option<Uuid> {
        match self {
            Self::JoinRequestCreate(request) | Self::JoinRequestUpdate(request) => {
                Some(request.user_id)
            }
            _ => None,
        }
    }

    /// The invite code whose preview it outdates, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::InviteUpdate(invite) => invite.code.as_deref(),
            Self::InviteDelete(deleted) => deleted.code.as_deref(),
            Self::MemberJoin(joined) => joined.code.as_deref(),
            _ => None,
        }
    }
}

crate::invite_struct! {
    /// An invite, as `INVITE_CREATE` and `INVITE_UPDATE` carry it: the API's invite without its
    /// link, whose base only the HTTP layer knows.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct InviteData {
        kind: InviteKind,
        /// What a join through it grants (permission bits). Read as 0 from an event stored
        /// before invites could grant permissions.
        #[serde(default)]
        pub grant_permissions: Permissions,
        /// Whether accepting it files a join request instead of joining. Read as false from
        /// an event stored before invites could require approval.
        #[serde(default)]
        pub requires_approval: bool,
    }
}

/// `INVITE_DELETE`: the invite revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteDeleted {
    /// The server.
    pub server_id: Uuid,
    /// The invite.
    pub invite_id: Uuid,
    /// Its code.
    pub code: Option<String>,
}

/// `MEMBER_JOIN`: the member, how they joined, and the server's new member count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    /// The server.
    pub server_id: Uuid,
    /// Who joined.
    pub user_id: Uuid,
    /// The invite they joined with.
    pub invite_id: Option<Uuid>,
    /// Its code.
    pub code: Option<String>,
    /// Through a random invite or the vanity URL.
    pub source: JoinSource,
    /// Who created the invite (none for the vanity URL).
    pub inviter_id: Option<Uuid>,
    /// Whether the membership is temporary.
    pub temporary: bool,
    /// The server's members after the join.
    pub member_count: i64,
}

/// A member, as `MEMBER_UPDATE` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberData {
    /// The server.
    pub server_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// Their permissions on top of the server's defaults.
    pub permissions: Permissions,
    /// Whether the membership is temporary.
    pub temporary: bool,
}

/// Why a member is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovalReason {
    /// They left.
    Leave,
    /// They were kicked.
    Kick,
    /// They were banned.
    Ban,
    /// Their temporary membership ended with their last gateway session.
    Temporary,
    /// They joined through an invite a moderator undid (a leaked link).
    #[serde(rename = "invite_undo")]
    InviteUndo,
}

/// `MEMBER_REMOVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemoved {
    /// The server.
    pub server_id: Uuid,
    /// Who is gone.
    pub user_id: Uuid,
    /// Why.
    pub reason: RemovalReason,
    /// The invite they had joined through (`null` for the owner, and in events stored before
    /// departures named it): what per-invite analytics count their departure against.
    #[serde(default)]
    pub invite_id: Option<Uuid>,
}

/// `BAN_ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanAdded {
    /// The server.
    pub server_id: Uuid,
    /// Who is banned.
    pub user_id: Uuid,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// `BAN_REMOVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRemoved {
    /// The server.
    pub server_id: Uuid,
    /// Whose ban was lifted.
    pub user_id: Uuid,
}

/// `INVITES_PAUSE`: until when (`None`: until resumed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitesPaused {
    /// The server.
    pub server_id: Uuid,
    /// When invites work again by themselves.
    pub until: Option<DateTime<Utc>>,
}

/// `INVITES_RESUME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitesResumed {
    /// The server.
    pub server_id: Uuid,
}

/// `VANITY_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VanityUpdated {
    /// The server.
    pub server_id: Uuid,
    /// The vanity code now (`None`: released).
    pub code: Option<String>,
    /// The one before.
    pub previous_code: Option<String>,
}

/// A server, as `SERVER_UPDATE` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerData {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its icon.
    pub icon_url: Option<String>,
    /// The permissions every member has.
    pub default_permissions: Permissions,
    /// Its features.
    pub features: Vec<ServerFeature>,
}

/// A channel, as `CHANNEL_CREATE` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelData {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// Its name.
    pub name: String,
}

impl EventType {
    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
    }

    /// Who may hear of it: a new invite carries its code, which only members allowed to list
    /// invites may see (Together sends every code to every member); a join request names
    /// someone who is not a member yet, which only those who may decide it need to know;
    /// everything else goes to every member.
    pub const fn audience(self) -> Audience {
        match self {
            Self::InviteCreate => Audience::InviteManagers,
            Self::JoinRequestCreate | Self::JoinRequestUpdate => Audience::JoinRequestDeciders,
            _ => Audience::Members,
        }
    }
}

/// Who may receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every member of the server.
    Members,
    /// Members allowed to list invites (`CREATE_INVITES` or `MANAGE_SERVER`).
    InviteManagers,
    /// Members allowed to decide join requests (`KICK_MEMBERS` or `MANAGE_SERVER`).
    JoinRequestDeciders,
}

impl Audience {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Members => "members",
            Self::InviteManagers => "invite_managers",
            Self::JoinRequestDeciders => "join_request_deciders",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Members, Self::InviteManagers, Self::JoinRequestDeciders]
            .into_iter()
            .find(|a| a.as_str() == name)
    }

    /// Whether a member standing so in the event's server hears it: the one rule of who hears
    /// what, for the gateway's live deliveries and its replays alike.
    /// (The requester of a join request, who is not a member, hears of it through
    /// [`Event::requester`].)
    pub fn may_hear(self, standing: &Standing) -> bool {
        match self {
            Self::Members => true,
            Self::InviteManagers => standing.may_see_invites().is_ok(),
            Self::JoinRequestDeciders => standing.may_decide_join_requests().is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for &kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(serde_json::from_value::<EventType>(kind.as_str().into()).unwrap(), kind);
        }
        assert_eq!(EventType::parse("invite_create"), None);
        let names: Vec<_> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(
            names.join(" "),
            "INVITE_CREATE INVITE_UPDATE INVITE_DELETE MEMBER_JOIN MEMBER_UPDATE MEMBER_REMOVE \
             BAN_ADD BAN_REMOVE INVITES_PAUSE INVITES_RESUME VANITY_UPDATE SERVER_UPDATE \
             CHANNEL_CREATE JOIN_REQUEST_CREATE JOIN_REQUEST_UPDATE"
        );
        assert_eq!(EventType::InviteCreate.audience(), Audience::InviteManagers);
        assert_eq!(EventType::InviteDelete.audience(), Audience::Members);
        assert_eq!(Audience::parse("invite_managers"), Some(Audience::InviteManagers));
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// One event of every type, with the payload each sends on the wire, key for key.
    #[expect(clippy::too_many_lines, reason = "one event and its wire form per type, side by side")]
    fn every_event() -> Vec<(Event, serde_json::Value)> {
        use serde_json::json;
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().to_utc();
        let invite = InviteData {
            id: id(1),
            server_id: id(2),
            channel_id: None,
            code: Some("aBcD1234".into()),
            kind: InviteKind::Random,
            grant_permissions: Permissions::KICK_MEMBERS,
            requires_approval: true,
            created_by: Some(id(3)),
            max_uses: Some(5),
            uses: 1,
            max_age: 0,
            expires_at: Some(at),
            temporary: false,
            created_at: at,
            version: 2,
        };
        let invite_json = json!({
            "id": id(1), "server_id": id(2), "channel_id": null, "code": "aBcD1234",
            "kind": "random", "grant_permissions": 256, "requires_approval": true, "created_by": id(3), "max_uses": 5, "uses": 1, "max_age": 0,
            "expires_at": "2026-12-06T10:00:00Z", "temporary": false,
            "created_at": "2026-12-06T10:00:00Z", "version": 2,
        });
        let request = JoinRequest {
            id: id(6),
            server_id: id(2),
            invite_id: id(1),
            user_id: id(4),
            status: crate::approval::JoinRequestStatus::Pending,
            created_at: at,
            decided_at: None,
            decided_by: None,
        };
        let request_json = json!({
            "id": id(6), "server_id": id(2), "invite_id": id(1), "user_id": id(4),
            "status": "pending", "created_at": "2026-12-06T10:00:00Z", "decided_at": null,
            "decided_by": null,
        });
        vec![
            (Event::InviteCreate(invite.clone()), invite_json.clone()),
            (Event::InviteUpdate(invite), invite_json),
            (
                Event::InviteDelete(InviteDeleted {
                    server_id: id(2),
                    invite_id: id(1),
                    code: Some("aBcD1234".into()),
                }),
                json!({"server_id": id(2), "invite_id": id(1), "code": "aBcD1234"}),
            ),
            (
                Event::MemberJoin(MemberJoined {
                    server_id: id(2),
                    user_id: id(4),
                    invite_id: Some(id(1)),
                    code: Some("aBcD1234".into()),
                    source: JoinSource::Invite,
                    inviter_id: Some(id(3)),
                    temporary: true,
                    member_count: 7,
                }),
                json!({
                    "server_id": id(2), "user_id": id(4), "invite_id": id(1), "code": "aBcD1234",
                    "source": "invite", "inviter_id": id(3), "temporary": true, "member_count": 7,
                }),
            ),
            (
                Event::MemberUpdate(MemberData {
                    server_id: id(2),
                    user_id: id(4),
                    permissions: Permissions::CREATE_INVITES,
                    temporary: false,
                }),
                json!({"server_id": id(2), "user_id": id(4), "permissions": 16384, "temporary": false}),
            ),
            (
                Event::MemberRemove(MemberRemoved {
                    server_id: id(2),
                    user_id: id(4),
                    reason: RemovalReason::Temporary,
                    invite_id: Some(id(1)),
                }),
                json!({"server_id": id(2), "user_id": id(4), "reason": "temporary", "invite_id": id(1)}),
            ),
            (
                Event::BanAdd(BanAdded { server_id: id(2), user_id: id(4), reason: None }),
                json!({"server_id": id(2), "user_id": id(4), "reason": null}),
            ),
            (
                Event::BanRemove(BanRemoved { server_id: id(2), user_id: id(4) }),
                json!({"server_id": id(2), "user_id": id(4)}),
            ),
            (
                Event::InvitesPause(InvitesPaused { server_id: id(2), until: Some(at) }),
                json!({"server_id": id(2), "until": "2026-12-06T10:00:00Z"}),
            ),
            (
                Event::InvitesResume(InvitesResumed { server_id: id(2) }),
                json!({"server_id": id(2)}),
            ),
            (
                Event::VanityUpdate(VanityUpdated {
                    server_id: id(2),
                    code: Some("rust".into()),
                    previous_code: None,
                }),
                json!({"server_id": id(2), "code": "rust", "previous_code": null}),
            ),
            (
                Event::ServerUpdate(ServerData {
                    id: id(2),
                    name: "Rust".into(),
                    icon_url: None,
                    default_permissions: Permissions::VIEW_CHANNEL,
                    features: vec![ServerFeature::VanityUrl],
                }),
                json!({
                    "id": id(2), "name": "Rust", "icon_url": null, "default_permissions": 1,
                    "features": ["VANITY_URL"],
                }),
            ),
            (
                Event::ChannelCreate(ChannelData {
                    id: id(5),
                    server_id: id(2),
                    name: "general".into(),
                }),
                json!({"id": id(5), "server_id": id(2), "name": "general"}),
            ),
            (Event::JoinRequestCreate(request.clone()), request_json.clone()),
            (Event::JoinRequestUpdate(request), request_json),
        ]
    }

    /// Every type's payload is the shape the wire has always carried, and reads back as the
    /// same event.
    #[test]
    fn payloads_have_their_wire_shape_and_read_back() {
        let events = every_event();
        assert_eq!(events.len(), EventType::ALL.len(), "every type is covered");
        for (event, wire) in events {
            assert_eq!(event.payload(), wire, "{:?}", event.kind());
            assert_eq!(Event::from_parts(event.kind(), wire).unwrap(), event);
            assert_eq!(event.server_id(), id(2));
        }
        assert!(Event::from_parts(EventType::BanRemove, serde_json::json!({"user": 1})).is_err());
    }

    /// The reasons a `MEMBER_REMOVE` gives, as the wire spells them.
    #[test]
    fn removal_reasons_have_their_wire_names() {
        let reasons = [
            (RemovalReason::Leave, "leave"),
            (RemovalReason::Kick, "kick"),
            (RemovalReason::Ban, "ban"),
            (RemovalReason::Temporary, "temporary"),
            (RemovalReason::InviteUndo, "invite_undo"),
        ];
        for (reason, wire) in reasons {
            assert_eq!(serde_json::to_value(reason).unwrap(), wire);
            assert_eq!(serde_json::from_value::<RemovalReason>(wire.into()).unwrap(), reason);
        }
    }

    #[test]
    fn a_new_code_is_heard_by_invite_managers_only() {
        let standing = |permissions| Standing {
            user_id: id(9),
            is_owner: false,
            default_permissions: Permissions::VIEW_CHANNEL,
            member_permissions: permissions,
        };
        let member = standing(Permissions::empty());
        let manager = standing(Permissions::CREATE_INVITES);
        assert!(!EventType::InviteCreate.audience().may_hear(&member));
        assert!(EventType::InviteCreate.audience().may_hear(&manager));
        let narrow =
            [EventType::InviteCreate, EventType::JoinRequestCreate, EventType::JoinRequestUpdate];
        for &kind in EventType::ALL.iter().filter(|kind| !narrow.contains(kind)) {
            assert!(kind.audience().may_hear(&member), "{kind:?}");
        }
    }

    #[test]
    fn a_join_request_is_heard_by_who_may_decide_it_and_its_requester() {
        let standing = |permissions| Standing {
            user_id: id(9),
            is_owner: false,
            default_permissions: Permissions::VIEW_CHANNEL,
            member_permissions: permissions,
        };
        for kind in [EventType::JoinRequestCreate, EventType::JoinRequestUpdate] {
            let audience = kind.audience();
            assert_eq!(audience, Audience::JoinRequestDeciders);
            assert!(!audience.may_hear(&standing(Permissions::empty())));
            // Listing invites is not deciding who joins.
            assert!(!audience.may_hear(&standing(Permissions::CREATE_INVITES)));
            assert!(audience.may_hear(&standing(Permissions::KICK_MEMBERS)));
            assert!(audience.may_hear(&standing(Permissions::MANAGE_SERVER)));
            assert!(
                audience.may_hear(&Standing { is_owner: true, ..standing(Permissions::empty()) })
            );
        }
        assert_eq!(Audience::parse("join_request_deciders"), Some(Audience::JoinRequestDeciders));
        let (event, _) = every_event().pop().unwrap();
        assert_eq!(event.requester(), Some(id(4)));
        assert_eq!(every_event()[0].0.requester(), None);
    }
}
