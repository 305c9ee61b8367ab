//! Embedding the store: another Rust service keeps its invites in its own SQLite file (or
//! PostgreSQL database) through `invite-store`, with the same atomic accept the service uses.
//!
//! `cargo run --example embed_store [DATABASE_URL]` (default: a SQLite file in the temporary
//! directory, removed afterwards).

use chrono::Utc;
use invite_service::core::code::{CodeRef, OsRandom};
use invite_service::core::invite::CreateInviteRequest;
use invite_service::core::server::CreateServerRequest;
use invite_service::store::migrations::run_pending_migrations;
use invite_service::store::pool::{DatabaseUrl, DbPool, PoolConfig};
use invite_service::store::repo::{Actor, CreatedInvite, NewInvite, Redemption};
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = std::env::temp_dir().join(format!("invite-example-{}.db", Uuid::now_v7()));
    let url = std::env::args().nth(1).unwrap_or_else(|| format!("sqlite://{}", scratch.display()));
    let pool = DbPool::new(&PoolConfig::new(DatabaseUrl::parse(&url)?));
    let applied =
        pool.run(|conn| Ok(run_pending_migrations(conn).map_err(|e| e.to_string())))??;
    println!("{url}: {} migration(s) applied", applied.len());

    let now = Utc::now();
    let owner = Actor { user_id: Uuid::now_v7(), username: Some("alice".into()) };
    let request = CreateServerRequest {
        name: "Rustaceans".into(),
        icon_url: None,
        default_permissions: None,
    };
    let settings = request.validate().map_err(|problem| problem.message)?;
    let server = pool.run(|conn| conn.create_server(&owner, &settings, now))?;

    let rules: CreateInviteRequest = serde_json::from_str(r#"{"max_uses": 2}"#)?;
    let settings = rules.validate(now).map_err(|problem| problem.message)?;
    let new = NewInvite {
        server_id: server.id,
        creator: &owner,
        settings: &settings,
        now,
        server_locked: false,
    };
    let CreatedInvite::Created(invite) =
        pool.run(|conn| conn.create_invite(&new, &mut OsRandom))?
    else {
        unreachable!("a unique invite is always created");
    };
    let code = CodeRef::parse(invite.code.as_deref().unwrap_or_default()).ok_or("no code")?;
    println!("invite {code} to {:?}, 2 uses", server.name);

    // Three people try; the invite admits two, and the third is told why.
    for n in 1..=3 {
        let guest = Actor::new(Uuid::now_v7());
        match pool.run(|conn| conn.redeem(&code, &guest, now))? {
            Redemption::Joined(joined) => println!("guest {n}: joined (uses now {})", joined.uses),
            // Only an invite made with `requires_approval` files a join request.
            Redemption::Filed(filed) => println!("guest {n}: asked to join ({})", filed.request.id),
            Redemption::Refused(reason) => {
                let problem = invite_service::core::Problem::from(reason);
                println!("guest {n}: {} \"{}\"", problem.code.as_str(), problem.message);
            }
        }
    }
    let server = pool.run(|conn| conn.find_server(server.id))?.ok_or("server gone")?;
    println!("{:?} has {} members", server.name, server.member_count);
    assert_eq!(server.member_count, 3);

    drop(pool);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    Ok(())
}
