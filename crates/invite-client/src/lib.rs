#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Declares a string enum of the wire format that keeps values it does not know: a variant per
/// known name and `Other(String)` for the rest, so a newer server never breaks an older client.
/// Generates `as_str`, `From<&str>`, `From<String>`, `Display` and serde as a plain string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// A name this version of the client does not know, kept as it was sent.
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

            /// Whether this is a name the client knows (not [`Self::Other`]).
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

        impl From<String> for $name {
            fn from(name: String) -> Self {
                match Self::from(name.as_str()) {
                    Self::Other(_) => Self::Other(name),
                    known => known,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

mod call;
mod client;
mod endpoints;
mod error;
mod headers;
mod model;
mod permissions;
mod request;
mod retry;

pub use call::{Call, Response};
pub use client::{Client, ClientBuilder, RetryEvent};
pub use error::{ClientError, ErrorCode};
pub use headers::RateLimit;
pub use model::{
    Accepted, AuditAction, AuditEntry, Ban, Channel, ChannelRef, Invite, InviteKind, InvitesPause,
    JoinSource, JoinedVia, Member, Preview, Server, ServerFeature, TargetType, VanityUrl,
};
pub use permissions::Permissions;
pub use request::{
    CreateInvite, CreateServer, ListInvites, PageAfter, PageBefore, Patch, UpdateInvite,
    UpdateServer,
};
pub use retry::RetryPolicy;
