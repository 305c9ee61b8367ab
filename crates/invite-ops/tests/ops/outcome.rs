//! Outcomes and the preview's verdict.

use std::cell::RefCell;

use chrono::Duration;
use invite_core::redeem::{InviteStatus, InvitesPause, PreviewRefused, RedemptionRefused};
use invite_ops::EventSink;
use invite_ops::invites::preview_verdict;
use invite_ops::members::VisitorStanding;
use invite_store::repo::StoredEvent;
use invite_store::testing::TestDatabase;

use crate::{ctx, on_both_backends, owned_server, t0};

/// Keeps what it is handed.
#[derive(Default)]
struct Kept(RefCell<Vec<StoredEvent>>);

impl EventSink for Kept {
    fn publish(&self, events: &[StoredEvent]) {
        self.0.borrow_mut().extend_from_slice(events);
    }
}

on_both_backends! {
    fn settling_an_outcome_hands_its_events_to_the_sink(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let pause = invite_core::server::PauseRequest::default();
        let outcome = invite_ops::servers::set_pause(conn, &ctx(owner), server.id, Some(&pause)).unwrap();
        let expected = outcome.events().to_vec();
        let kept = Kept::default();
        let paused = outcome.settle(&kept);
        assert!(paused.invites_paused.is_some());
        assert_eq!(expected.len(), 1);
        assert_eq!(*kept.0.borrow(), expected);
    }
}

fn usable() -> InviteStatus {
    InviteStatus { revoked: false, expires_at: None, max_uses: Some(2), uses: 0 }
}

/// The API shows any invite someone could accept, paused or not; the page says what a join by
/// this visitor would answer, in the join's order.
#[test]
fn the_preview_and_the_page_decide_from_one_verdict() {
    let now = t0();
    let paused = Some(InvitesPause::Indefinitely);
    let expired = InviteStatus { expires_at: Some(now - Duration::minutes(1)), ..usable() };
    let revoked = InviteStatus { revoked: true, ..usable() };

    let open = preview_verdict(Some(&usable()), None, None, now);
    assert_eq!((open.shown, open.join), (Ok(()), Ok(())));
    let verdict = preview_verdict(Some(&usable()), paused, None, now);
    assert_eq!((verdict.shown, verdict.join), (Ok(()), Err(RedemptionRefused::Paused)));
    // Paused and expired: the API says expired, the page says paused (the join's order).
    let verdict = preview_verdict(Some(&expired), paused, None, now);
    assert_eq!(
        (verdict.shown, verdict.join),
        (Err(PreviewRefused::Expired), Err(RedemptionRefused::Paused))
    );
    // A member sees the way in before anything but a revoke.
    let verdict =
        preview_verdict(Some(&expired), paused, Some((VisitorStanding::Member, true)), now);
    assert_eq!(verdict.join, Err(RedemptionRefused::AlreadyMember));
    let verdict = preview_verdict(Some(&revoked), None, Some((VisitorStanding::Member, true)), now);
    assert_eq!(
        (verdict.shown, verdict.join),
        (Err(PreviewRefused::Revoked), Err(RedemptionRefused::Revoked))
    );
    let verdict =
        preview_verdict(Some(&usable()), None, Some((VisitorStanding::Banned, false)), now);
    assert_eq!((verdict.shown, verdict.join), (Ok(()), Err(RedemptionRefused::Banned)));
    // Someone the invite is not for, signed in: told so, after a ban and before a pause; the
    // public preview is shown all the same.
    let verdict =
        preview_verdict(Some(&usable()), paused, Some((VisitorStanding::Stranger, false)), now);
    assert_eq!((verdict.shown, verdict.join), (Ok(()), Err(RedemptionRefused::NotForYou)));
    let verdict = preview_verdict(None, None, Some((VisitorStanding::Stranger, true)), now);
    assert_eq!(
        (verdict.shown, verdict.join),
        (Err(PreviewRefused::NotFound), Err(RedemptionRefused::NotFound))
    );
}
