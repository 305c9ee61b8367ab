use diesel::prelude::*;
use invite_store::migrations::{migration_status, revert_all_migrations, run_pending_migrations};
use invite_store::testing::TestDatabase;

use crate::{conformance, create_server, user};

conformance! {
    fn every_migration_runs_up_down_and_up_again(db: &TestDatabase) {
        let conn = &mut db.connect();
        let status = migration_status(conn).unwrap();
        assert!(status.pending.is_empty(), "{status:?}");
        assert!(!status.applied.is_empty());

        let reverted = revert_all_migrations(conn).unwrap();
        assert_eq!(reverted.len(), status.applied.len());
        let gone = diesel::sql_query("SELECT 1 FROM servers").execute(conn);
        assert!(gone.is_err(), "the tables must be gone after reverting");
        let status_down = migration_status(conn).unwrap();
        assert_eq!((status_down.applied.len(), status_down.pending.len()), (0, status.applied.len()));

        let applied = run_pending_migrations(conn).unwrap();
        assert_eq!(applied.len(), status.applied.len());
        assert!(run_pending_migrations(conn).unwrap().is_empty(), "a second run applies nothing");
        let server = create_server(conn, &user());
        assert_eq!(conn.find_server(server.id).unwrap(), Some(server));
    }
}
