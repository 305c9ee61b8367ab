//! Per-invite analytics: who may read them (membership, then permission, then the invite's
//! server), and the departures the member operations announce counted against the invite the
//! member had joined through, once folded in.

use invite_core::event::Event;
use invite_core::stats::first_shown_day;
use invite_ops::accept::accept;
use invite_store::repo::{Actor, Keyed};
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{code_of, ctx, on_both_backends, owned_server, server_with_invite, settled, t0};

on_both_backends! {
    fn stats_are_for_managers_of_the_invites_server(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let (other_owner, other) = owned_server(conn);
        let member = Uuid::now_v7();
        let code = invite_core::code::CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        let joined = accept(conn, &invite_ops::Ctx { actor: Actor::new(member), now: t0() }, &code, None).unwrap();
        assert!(matches!(joined, Keyed::Fresh(_)));
        let stranger = ctx(Uuid::now_v7());
        assert_eq!(code_of(invite_ops::stats::invite_stats(conn, &stranger, (server.id, invite.id))), "SERVER_NOT_FOUND");
        assert_eq!(code_of(invite_ops::stats::server_stats(conn, &stranger, server.id)), "SERVER_NOT_FOUND");
        assert_eq!(code_of(invite_ops::stats::invite_stats(conn, &ctx(member), (server.id, invite.id))), "MISSING_PERMISSION");
        assert_eq!(code_of(invite_ops::stats::server_stats(conn, &ctx(member), server.id)), "MISSING_PERMISSION");
        // An invite of another server is not found through this one, even by its own owner.
        assert_eq!(code_of(invite_ops::stats::invite_stats(conn, &ctx(other_owner), (other.id, invite.id))), "INVITE_NOT_FOUND");
        assert!(invite_ops::stats::invite_stats(conn, &ctx(owner), (server.id, invite.id)).is_ok());
    }

    fn departures_announced_by_the_operations_name_the_invite_and_count_once_folded(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let code = invite_core::code::CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        let joiners: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        for joiner in &joiners {
            accept(conn, &invite_ops::Ctx { actor: Actor::new(*joiner), now: t0() }, &code, None).unwrap();
        }
        // One leaves, one is kicked, one is banned: each departure names the invite.
        settled(invite_ops::members::remove(conn, &ctx(joiners[0]), (server.id, joiners[0])));
        settled(invite_ops::members::remove(conn, &ctx(owner), (server.id, joiners[1])));
        let request: invite_core::server::BanRequest = serde_json::from_str("{}").unwrap();
        settled(invite_ops::members::ban(conn, &ctx(owner), (server.id, joiners[2]), &request));
        let removals: Vec<Option<Uuid>> = conn
            .events_between(0, i64::MAX, 1000)
            .unwrap()
            .into_iter()
            .filter_map(|stored| match stored.event {
                Event::MemberRemove(removed) => Some(removed.invite_id),
                _ => None,
            })
            .collect();
        assert_eq!(removals, vec![Some(invite.id); 3]);

        let latest = conn.latest_seq().unwrap();
        conn.fold_stats(latest, 1000).unwrap();
        let stats = invite_ops::stats::invite_stats(conn, &ctx(owner), (server.id, invite.id)).unwrap();
        assert_eq!((stats.accepts, stats.retained), (4, 1));
        assert_eq!(stats.joins_per_day, vec![(t0().date_naive(), 4)]);
        let totals = invite_ops::stats::server_stats(conn, &ctx(owner), server.id).unwrap();
        assert_eq!((totals.totals.accepts, totals.totals.retained, totals.invites.len()), (4, 1, 1));
        assert_eq!(conn.server_stats(server.id, first_shown_day(t0()), 100).unwrap(), totals);
    }
}
