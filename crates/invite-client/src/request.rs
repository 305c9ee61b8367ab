//! The request body the client types more strictly than the service reads it, and the list
//! parameters. The other bodies are [`invite_api`]'s, the service's own.

use invite_api::{Patch, Permissions, ServerFeature};
use serde::Serialize;
use uuid::Uuid;

/// The body of a server edit: only what is set changes. The service reads the same body as
/// [`invite_api::UpdateServerRequest`], whose `features` are plain names (an unknown one is its
/// `VALIDATION_ERROR`); here they are [`ServerFeature`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateServer {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new icon, or `Clear` for none.
    #[serde(skip_serializing_if = "Patch::is_unchanged")]
    pub icon_url: Patch<String>,
    /// New default permissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Permissions>,
    /// The new set of features (only the owner may change them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<ServerFeature>>,
}

/// Which of a server's invites to list: newest first, revoked ones left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListInvites {
    /// Only invites to this channel.
    pub channel_id: Option<Uuid>,
    /// Page size, 1-1000 (default 1000).
    pub limit: Option<u32>,
    /// Only invites older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
}

/// A page of a list that runs newest first (channel invites, the audit log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageBefore {
    /// Page size (the audit log: 1-100, default 50; invites: 1-1000, default 1000).
    pub limit: Option<u32>,
    /// Only entries older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
}

/// A page of a list ordered by user id (members).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageAfter {
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// Only users after this user id (the last one of the previous page).
    pub after: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{CreateInvite, CreateServer, UpdateInvite};

    #[test]
    fn left_out_null_and_set_are_three_bodies() {
        let body = |update: &UpdateInvite| serde_json::to_value(update).unwrap();
        assert_eq!(body(&UpdateInvite::default()), json!({}));
        let clear = UpdateInvite { max_uses: Patch::Clear, ..Default::default() };
        assert_eq!(body(&clear), json!({ "max_uses": null }));
        let set = UpdateInvite { max_uses: Patch::Set(5), max_age: Some(0), ..Default::default() };
        assert_eq!(body(&set), json!({ "max_uses": 5, "max_age": 0 }));
    }

    #[test]
    fn grants_and_allowed_users_are_typed_on_the_way_out() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let create = CreateInvite::default().granting(Permissions::KICK_MEMBERS).for_users(&[a, b]);
        assert_eq!(
            serde_json::to_value(create).unwrap(),
            json!({"grant_permissions": 256, "allowed_user_ids": [a, b]})
        );
        let update = UpdateInvite::default().granting(Permissions::empty()).for_anyone();
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({"grant_permissions": 0, "allowed_user_ids": null})
        );
        let named = UpdateInvite::default().for_users(&[b]);
        assert_eq!(serde_json::to_value(named).unwrap(), json!({"allowed_user_ids": [b]}));
    }

    #[test]
    fn defaults_leave_every_field_to_the_service() {
        assert_eq!(serde_json::to_value(CreateInvite::default()).unwrap(), json!({}));
        assert_eq!(
            serde_json::to_value(CreateServer::named("Rust")).unwrap(),
            json!({"name": "Rust"})
        );
        let update = UpdateServer {
            icon_url: Patch::Clear,
            features: Some(vec![ServerFeature::VanityUrl]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({ "icon_url": null, "features": ["VANITY_URL"] })
        );
        let release = invite_api::VanityRequest { code: Patch::Clear };
        assert_eq!(serde_json::to_value(release).unwrap(), json!({"code": null}));
    }
}
