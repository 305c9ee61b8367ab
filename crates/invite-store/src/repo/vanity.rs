//! Vanity URLs: a vanity invite row per claimed code, in the same code namespace as random
//! invites. The store finds who holds a code; the core decides whether it may be claimed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, Reservation, VanityCode};
use invite_core::invite::InviteKind;
use invite_core::vanity::{CodeHolder, VanityClaim, VanityRefused, decide_vanity_claim};

use crate::Fact;
use uuid::Uuid;

use super::audit::{self, NewAuditEntry};
use super::invites::{insert_unless_code_taken, load_invite, mark_revoked};
use super::servers::lock_server;
use crate::connection::{DbConnection, write_transaction};
use crate::error::{Entity, StoreError, StoreResult};
use crate::models::{Invite, InviteRow};
use crate::schema::invites;
use crate::sql_types::{Id, Ts};

fn active_vanity(conn: &mut DbConnection, server_id: Uuid) -> StoreResult<Option<Invite>> {
    invites::table
        .filter(invites::server_id.eq(Id(server_id)))
        .filter(invites::kind.eq(InviteKind::Vanity.as_str()))
        .filter(invites::revoked_at.is_null())
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()?
        .map(Invite::try_from)
        .transpose()
}

/// Vanity URLs.
impl DbConnection {
    /// The server's active vanity invite, or `None`.
    pub fn vanity_invite(&mut self, server_id: Uuid) -> StoreResult<Option<Invite>> {
        active_vanity(self, server_id)
    }

    /// Sets (`Some`) or releases (`None`) the server's vanity code, with its audit entry,
    /// following the core's claim rules (shared namespace, 30-day cooldown). Returns the active
    /// vanity invite afterwards.
    pub fn set_vanity_code(
        &mut self,
        server_id: Uuid,
        code: Option<&VanityCode>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invite>> {
        write_transaction(self, |conn| {
            // One claim per server at a time: the partial unique index would refuse the second
            // active vanity row anyway, but as an error rather than a clean answer.
            lock_server(conn, server_id)?;
            let current = active_vanity(conn, server_id)?;
            let old_code = current.as_ref().and_then(|invite| invite.code.clone());
            let claimed = match code {
                None => {
                    if let Some(current) = &current {
                        mark_revoked(conn, current.id, now)?;
                    }
                    None
                }
                Some(code) => {
                    let holder = conn.find_invite_by_code(&CodeRef::from(code))?;
                    let found = holder.as_ref().map(|invite| CodeHolder {
                        server_id: invite.server_id,
                        kind: invite.kind,
                        revoked_at: invite.revoked_at,
                    });
                    let claim = decide_vanity_claim(server_id, found.as_ref(), now)
                        .map_err(Fact::VanityCode)?;
                    if claim == VanityClaim::AlreadyHeld {
                        return Ok(current);
                    }
                    if let Some(current) = &current {
                        mark_revoked(conn, current.id, now)?;
                    }
                    Some(claim_code(conn, server_id, code, claim, holder, actor, now)?)
                }
            };
            let new_code = claimed.as_ref().and_then(|invite| invite.code.clone());
            if old_code != new_code {
                audit::record(
                    conn,
                    NewAuditEntry {
                        server_id,
                        actor_id: Some(actor),
                        action: AuditAction::VanityUpdate,
                        target_id: claimed.as_ref().or(current.as_ref()).map(|invite| invite.id),
                        details: serde_json::json!({ "old_code": old_code, "new_code": new_code }),
                        now,
                    },
                )?;
            }
            Ok(claimed)
        })
    }
}

/// Makes `code` the server's active vanity invite, as the core's claim decision says.
fn claim_code(
    conn: &mut DbConnection,
    server_id: Uuid,
    code: &VanityCode,
    claim: VanityClaim,
    holder: Option<Invite>,
    actor: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Invite> {
    // Both updates below apply only to the row as it was read (its version): the claim was
    // decided on it, and the two servers involved lock different server rows, so a reclaim and
    // a takeover of the same released code can run at once. The second to reach the row finds
    // its version moved on and is told the code is taken.
    match (claim, holder) {
        (VanityClaim::Reclaim, Some(own)) => {
            let reclaimed = diesel::update(unchanged(&own))
                .set((
                    invites::revoked_at.eq(None::<Ts>),
                    invites::created_by.eq(Id(actor)),
                    invites::version.eq(invites::version + 1),
                    invites::updated_at.eq(Ts(now)),
                ))
                .execute(conn)?;
            if reclaimed == 0 {
                return Err(Fact::VanityCode(VanityRefused::Taken).into());
            }
            load_invite(conn, own.id)?.ok_or(StoreError::NotFound(Entity::Invite))
        }
        (VanityClaim::TakeOver, Some(previous)) => {
            // The old row keeps its history (uses, members who joined with it) but gives up
            // the code, which is the one thing two rows may not share.
            let given_up = diesel::update(unchanged(&previous))
                .set((
                    invites::code.eq(None::<String>),
                    invites::version.eq(invites::version + 1),
                    invites::updated_at.eq(Ts(now)),
                ))
                .execute(conn)?;
            if given_up == 0 {
                return Err(Fact::VanityCode(VanityRefused::Taken).into());
            }
            insert_vanity(conn, server_id, code, actor, now)
        }
        _ => insert_vanity(conn, server_id, code, actor, now),
    }
}

/// The invite's row, if it is still at the version it was read at.
#[diesel::dsl::auto_type(no_type_alias)]
fn unchanged(invite: &Invite) -> _ {
    let id: Id = Id(invite.id);
    let version: i64 = invite.version;
    invites::table.filter(invites::id.eq(id)).filter(invites::version.eq(version))
}

fn insert_vanity(
    conn: &mut DbConnection,
    server_id: Uuid,
    code: &VanityCode,
    actor: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Invite> {
    let row = InviteRow {
        id: Id(Uuid::now_v7()),
        server_id: Id(server_id),
        channel_id: None,
        code: Some(code.as_str().to_owned()),
        kind: InviteKind::Vanity.as_str().to_owned(),
        created_by: Some(Id(actor)),
        max_uses: None,
        uses: 0,
        max_age: 0,
        expires_at: None,
        temporary: false,
        created_at: Ts(now),
        updated_at: Ts(now),
        version: 1,
        revoked_at: None,
        // The server's standing link grants nothing and is for anyone.
        grant_permissions: 0,
        granted_by: None,
        allowed_user_ids: None,
        // The server's public link joins at once: approval is for invites a moderator made so.
        requires_approval: false,
    };
    match insert_unless_code_taken(conn, &row)? {
        Reservation::Reserved(invite) => Ok(invite),
        // Another server's transaction took the code since we looked.
        Reservation::Taken => Err(Fact::VanityCode(VanityRefused::Taken).into()),
    }
}
