//! Values the unit tests build, written once so that a new field is added in one place.

use chrono::Utc;
use invite_core::invite::InviteKind;
use invite_store::models::Invite;
use uuid::Uuid;

/// A fresh random invite with `code` to `server_id`: no limits, not used, made now.
pub(crate) fn invite(server_id: Uuid, code: &str) -> Invite {
    let now = Utc::now();
    Invite {
        id: Uuid::now_v7(),
        server_id,
        channel_id: None,
        code: Some(code.to_owned()),
        kind: InviteKind::Random,
        created_by: None,
        max_uses: None,
        uses: 0,
        max_age: 0,
        expires_at: None,
        temporary: false,
        created_at: now,
        updated_at: now,
        version: 1,
        revoked_at: None,
        grant_permissions: invite_core::permissions::Permissions::empty(),
        granted_by: None,
        allowed_user_ids: None,
        requires_approval: false,
    }
}
