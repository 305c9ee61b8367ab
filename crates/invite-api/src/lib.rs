#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Declares a string enum of the wire format that keeps values it does not know: a variant per
/// known name and `Other(String)` for the rest, so a newer service never breaks an older reader.
/// Generates `as_str`, `is_known`, `From<&str>`, `From<String>`, `Display` and serde as a plain
/// string; with `pub enum Name: path::To::Rule`, also `From<Rule>` for the rules' closed enum of
/// the same names (through its `as_str`).
///
/// Exported for `invite-client`'s error codes, which read the same way; not otherwise part of
/// this crate's API.
#[doc(hidden)]
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $(: $rule:path)? {
            $($(#[$variant_meta:meta])* $variant:ident => $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// A name this version does not know, kept as it was sent.
            Other(String),
        }

        impl $name {
            /// The name as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(other) => other,
                }
            }

            /// Whether this is a name this version knows (not [`Self::Other`]).
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                match name {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        $(
            impl From<$rule> for $name {
                fn from(rule: $rule) -> Self {
                    Self::from(rule.as_str())
                }
            }
        )?

        impl From<String> for $name {
            fn from(name: String) -> Self {
                match Self::from(name.as_str()) {
                    Self::Other(_) => Self::Other(name),
                    known => known,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                <String as $crate::__private::serde::Deserialize>::deserialize(deserializer)
                    .map(Self::from)
            }
        }
    };
}

/// What [`string_enum!`] needs from this crate's dependencies, so its users need not name them.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

mod errors;
pub mod events;
mod headers;
mod invites;
mod operations;
mod servers;
mod stats;
mod webhooks;

pub use errors::{ErrorBody, RateLimitedBody};
pub use events::Event;
pub use headers::RateLimit;
pub use invites::{
    ChannelRef, Invite, InviteKind, InviteUndone, JoinRequest, JoinRequestFiled, JoinRequestStatus,
    Joined, Preview, VanityUrl,
};
pub use operations::{Component, Level, Maintenance, Status, Window};
pub use servers::{
    AuditAction, AuditEntry, Channel, JoinSource, JoinedVia, Member, RaidProtection, Server,
    ServerFeature, TargetType,
};
pub use stats::{InviteStats, InviteStatsSummary, JoinsOnDay, ServerInviteStats};
pub use webhooks::{Deliveries, Delivery, Webhook};

// The rules' own types, which are the wire's too: the error catalogue, the permission bits, the
// pause, and the request bodies, defined beside the rules that validate them.
pub use invite_core::invite::{CreateInviteRequest, UpdateInviteRequest};
pub use invite_core::maintenance::MaintenanceRequest;
pub use invite_core::permissions::Permissions;
pub use invite_core::raid::RaidProtectionRequest;
pub use invite_core::redeem::InvitesPause;
pub use invite_core::server::{
    Ban, BanRequest, CreateChannelRequest, CreateServerRequest, PauseRequest, UpdateMemberRequest,
    UpdateServerRequest, VanityRequest,
};
pub use invite_core::undo::UndoInviteRequest;
pub use invite_core::webhook::CreateWebhookRequest;
pub use invite_core::{ErrorCode, Patch};
