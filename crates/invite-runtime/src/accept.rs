//! The accept operation as the service runs it, for the API and the invite page alike: the join
//! committed with concurrent ones through the door, its events settled, its outcome counted.
//! Whether the join is admitted is `invite_ops::accept`'s to decide; this only runs it.

use invite_core::code::CodeRef;
use invite_ops::OpError;
use invite_store::batch::SetRequest;
use invite_store::repo::{
    Actor, IdempotencyClaim, JoinRequest, JoinResponseTemplate, Keyed, Redemption,
};

use crate::analytics::Analytics;
use crate::db::{DbResult, Failure, SetSpec};
use crate::door::Door;
use crate::metrics::Metrics;

/// An Idempotency-Key's claim and the response a join records under it (written by the host,
/// which owns the wire format).
pub type Recording = (IdempotencyClaim, &'static JoinResponseTemplate<'static>);

/// Joins `code`'s server as `actor`: through the door in the invite's commit group, with the
/// response recorded under `recording`'s key when there is one, and counted by outcome (a
/// refusal also in the invite's analytics).
pub async fn redeem(
    door: &Door,
    (metrics, analytics): (&Metrics, &Analytics),
    actor: Actor,
    code: CodeRef,
    recording: Option<Recording>,
) -> DbResult<Keyed<Redemption>> {
    let ctx = door.ctx(actor);
    // Kept for the analytics' count of a refusal; the join takes the code.
    let counted = analytics.counting().then(|| code.clone());
    let group =
        invite_ops::accept::commit_group(&code, door.pool().backend(), door.write_groups().accepts);
    // A join without a key may be decided with its batch-mates in one statement; a keyed one
    // looks its key up first.
    let set = recording.is_none().then(|| SetSpec {
        request: SetRequest::Join(JoinRequest {
            code: code.clone(),
            actor: ctx.actor.clone(),
            now: ctx.now,
        }),
        finish: invite_ops::accept::decided,
    });
    let outcome = door
        .change_grouped(group, set, move |conn| {
            invite_ops::accept::accept(
                conn,
                &ctx,
                &code,
                recording.as_ref().map(|(claim, template)| (claim, *template)),
            )
        })
        .await;
    metrics.observe_accept(match &outcome {
        Ok(Keyed::Fresh(Redemption::Joined(_))) => "joined",
        Ok(Keyed::Fresh(Redemption::Filed(_))) => "filed",
        Ok(Keyed::Fresh(Redemption::Refused(reason))) => reason.label(),
        Ok(Keyed::Replay(_)) => "replayed",
        Err(Failure::Overloaded | Failure::Op(OpError::Unavailable(_))) => "unavailable",
        Err(_) => "error",
    });
    if let (Some(code), Ok(Keyed::Fresh(Redemption::Refused(reason)))) = (counted, &outcome) {
        analytics.refused(code.as_str(), *reason);
    }
    outcome
}
