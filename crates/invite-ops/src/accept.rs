//! Accepting an invite: the one write that must never over-admit. The store decides and writes
//! it in one conditional step (on PostgreSQL, one statement: the use, the member, the count, the
//! audit entry, the `MEMBER_JOIN` event and, with an Idempotency-Key, the recorded response).

use invite_core::code::CodeRef;
use invite_store::batch::SetOutcome;
use invite_store::repo::{IdempotencyClaim, JoinResponseTemplate, Keyed, Redemption, keyed};
use invite_store::{Backend, DbConnection};

use crate::{Ctx, OpResult, Outcome};

/// Which accepts may be committed together by one transaction (group commit). On PostgreSQL,
/// every code falls into one of `groups` groups, always the same one, so the accepts of one
/// invite (a viral invite's) share their batches; a batch's plain accepts are one statement.
/// A batch is cheaper per join the more it holds, and a group's batches commit one after
/// another, so the number of groups trades the one for the other (`INVITE_DB_ACCEPT_GROUPS`).
/// On SQLite, every accept is in one group, as all writes queue for its one writer anyway.
/// Accepts of different groups never wait for each other's commits.
pub fn commit_group(code: &CodeRef, backend: Backend, groups: u64) -> String {
    match backend {
        Backend::Postgres => format!("accept/{}", bucket(code.as_str(), groups)),
        Backend::Sqlite => String::new(),
    }
}

/// Which of `groups` groups `key` falls into, always the same one within a process (`SipHash`
/// with fixed keys).
pub(crate) fn bucket(key: impl std::hash::Hash, groups: u64) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish() % groups.max(1)
}

/// The outcome of a join that a set-based batch decided (see `invite_store::repo::redeem_set`):
/// what [`accept`] returns for the same redemption without an Idempotency-Key.
pub fn decided(found: SetOutcome) -> OpResult<Keyed<Outcome<Redemption>>> {
    match found {
        SetOutcome::Joined(redemption) => Ok(Keyed::Fresh(outcome(redemption))),
        SetOutcome::Previewed(_) => {
            Err(crate::OpError::Internal("a join was answered with a preview".into()))
        }
    }
}

/// A redemption and the events it committed.
fn outcome(redemption: Redemption) -> Outcome<Redemption> {
    let events = match &redemption {
        // A join that tripped its server's raid protection also paused its invites.
        Redemption::Joined(joined) => {
            std::iter::once(joined.event.clone()).chain(joined.raid_pause.clone()).collect()
        }
        // A new join request announces itself; one pending already was announced then.
        Redemption::Filed(filed) => filed.event.clone().into_iter().collect(),
        Redemption::Refused(_) => Vec::new(),
    };
    Outcome::new(redemption, events)
}

/// An Idempotency-Key's claim and the response a join records under it.
pub type Recording<'a> = (&'a IdempotencyClaim, &'a JoinResponseTemplate<'a>);

/// Accepts the invite for the caller. With `recording`, a key already answered replays its
/// response, and a join records its own.
pub fn accept(
    conn: &mut DbConnection,
    ctx: &Ctx,
    code: &CodeRef,
    recording: Option<Recording<'_>>,
) -> OpResult<Keyed<Outcome<Redemption>>> {
    let attempt = |conn: &mut DbConnection| -> OpResult<Outcome<Redemption>> {
        let redemption = match recording {
            None => conn.redeem(code, &ctx.actor, ctx.now)?,
            Some((claim, template)) => {
                conn.redeem_recorded(code, &ctx.actor, ctx.now, claim, template)?
            }
        };
        Ok(outcome(redemption))
    };
    match recording {
        None => attempt(conn).map(Keyed::Fresh),
        Some((claim, _)) => keyed(conn, claim, ctx.now, attempt, |done| {
            matches!(done.value(), Redemption::Joined(_))
        }),
    }
}
