use invite_core::audit::AuditAction;
use invite_core::server::PageLimit;
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{conformance, create_invite_at, create_server, minutes, owned_server, t0};

conformance! {
    fn the_audit_log_pages_newest_first(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        for m in 0..5 {
            create_invite_at(conn, &server, &owner, "{}", t0() + minutes(m));
        }
        let limit = |n| PageLimit::parse(Some(n), 50, 100).unwrap();
        let all = conn.list_audit_entries(server.id, None, limit(100)).unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|e| e.action == AuditAction::InviteCreate && e.server_id == server.id));
        assert!(all.windows(2).all(|w| w[0].created_at > w[1].created_at));
        let first = conn.list_audit_entries(server.id, None, limit(2)).unwrap();
        assert_eq!(first, all[..2]);
        let rest = conn.list_audit_entries(server.id, Some(first[1].id), limit(100)).unwrap();
        assert_eq!(rest, all[2..]);
        let other = create_server(conn, &owner);
        assert!(conn.list_audit_entries(other.id, None, limit(100)).unwrap().is_empty());
        assert!(conn.list_audit_entries(server.id, Some(Uuid::now_v7()), limit(100)).is_err());
    }
}
