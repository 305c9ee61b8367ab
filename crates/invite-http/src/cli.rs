//! The commands of `invite-server`. Every failure a user can cause (a missing secret, a bad URL,
//! an unreachable database) ends with a message saying what to fix, never a panic.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use invite_core::clock::SystemClock;
use invite_core::code::{InviteCode, OsRandom};
use invite_core::invite::CreateInviteRequest;
use invite_core::server::CreateServerRequest;
use invite_store::migrations::{migration_status, run_pending_migrations};
use invite_store::repo::{Actor, CreatedInvite};
use invite_store::{DbPool, PoolConfig};
use uuid::Uuid;

use crate::server::config::{Cli, Command, Config};

use crate::server::startup::{self, ServerOptions, Service};
use crate::server::telemetry;

/// Runs the command the command line names (`serve` by default).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    telemetry::init(config.log_format, &config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Migrate => migrate(&config),
        Command::Token { user, username, ttl } => token(&config, user, username, ttl),
        Command::Demo => demo(&config),
        Command::Check => check(&config),
    }
}

/// The pool, with the database reached and migrated: the service refuses to start on a database
/// it cannot use rather than answering 503 to everything.
fn migrated_pool(config: &Config) -> anyhow::Result<DbPool> {
    let mut pool_config: PoolConfig = config.pool();
    // The service runs for long: SQLite's checkpoints go to a thread of their own.
    pool_config.checkpoint_thread = true;
    let pool = DbPool::new(&pool_config);
    let applied = pool
        .run(|conn| Ok(run_pending_migrations(conn)))
        .with_context(|| format!("cannot reach the database at {:?}", pool_config.url))?
        .context("cannot migrate the database")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    Ok(pool)
}

fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(&config.bind).with_context(|| format!("cannot listen on {}", config.bind))
}

fn serve_until_stopped(
    listener: TcpListener,
    service: Service,
    options: ServerOptions,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "listening");
    actix_web::rt::System::new().block_on(async move {
        let (door, deliverer) = (service.door.clone(), Arc::clone(&service.deliverer));
        let analytics = Arc::clone(&service.analytics);
        startup::run(listener, service, options)?.await.context("the HTTP server failed")?;
        invite_runtime::webhooks::release_leases(&door, &deliverer).await;
        // What this instance counted since its last flush, which a crash would lose.
        invite_runtime::analytics::finish(&door, &analytics).await;
        anyhow::Ok(())
    })?;
    tracing::info!("stopped");
    Ok(())
}

fn serve(config: &Config) -> anyhow::Result<()> {
    let auth = config.authenticator()?;
    // Refused before the database is touched.
    config.read_pool(config.database_url.backend())?;
    let pool = migrated_pool(config)?;
    let listener = bind(config)?;
    let public_url = config.public_url(listener.local_addr()?);
    let (service, options) =
        startup::prepare(config, pool, auth, public_url, Arc::new(SystemClock))?;
    serve_until_stopped(listener, service, options)
}

fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = DbPool::new(&config.pool());
    let applied = pool
        .run(|conn| Ok(run_pending_migrations(conn)))
        .context("cannot reach the database")??;
    if applied.is_empty() {
        println!("the database is up to date");
    } else {
        println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
    }
    Ok(())
}

fn token(
    config: &Config,
    user: Uuid,
    username: Option<String>,
    ttl: Duration,
) -> anyhow::Result<()> {
    let auth = config.authenticator()?;
    let token = auth.mint_for(user, username, ttl).ok_or_else(|| {
        anyhow!("tokens can only be minted with INVITE_JWT_SECRET, not with a public key")
    })?;
    println!("{token}");
    Ok(())
}

fn check(config: &Config) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    match config.authenticator() {
        Ok(auth) => println!("tokens:     ok ({auth:?})"),
        Err(error) => {
            println!("tokens:     FAILED: {error}");
            failed.push("tokens");
        }
    }
    let pool_config = config.pool();
    println!("database:   {:?}", pool_config.url);
    match DbPool::new(&pool_config).run(|conn| Ok(migration_status(conn))) {
        Err(error) => {
            println!("            FAILED: unreachable: {error}");
            failed.push("database");
        }
        Ok(Err(error)) => {
            println!("migrations: FAILED: {error}");
            failed.push("migrations");
        }
        Ok(Ok(status)) if status.pending.is_empty() => {
            println!("            reachable");
            println!("migrations: ok ({} applied)", status.applied.len());
        }
        Ok(Ok(status)) => {
            println!("            reachable");
            println!(
                "migrations: pending: {} (run `invite-server migrate`)",
                status.pending.join(", ")
            );
            failed.push("migrations");
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(anyhow!("check failed: {}", failed.join(", "))) }
}

/// Serves with demo data: a server owned by `alice`, a guest `bob`, an invite, and the commands
/// to try them, printed before serving. Without a configured secret, one is drawn for the run.
fn demo(config: &Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    if config.jwt_secret.is_none() && config.jwt_public_key_file.is_none() {
        // Four codes: 32 characters of a 62-letter alphabet, about 190 random bits.
        let secret: String =
            (0..4).map(|_| InviteCode::generate(&mut OsRandom).to_string()).collect();
        config.jwt_secret = Some(secret.into());
    }
    let auth = config.authenticator()?;
    let pool = migrated_pool(&config)?;
    let listener = bind(&config)?;
    let public_url = config.public_url(listener.local_addr()?);
    let (service, options) =
        startup::prepare(&config, pool.clone(), auth, public_url, Arc::new(SystemClock))?;

    let (owner, guest) = (Uuid::now_v7(), Uuid::now_v7());
    // Through the operations, as any change: audited, and its events in the outbox.
    let ctx = service.door.ctx(Actor { user_id: owner, username: Some("alice".to_owned()) });
    let server_request = CreateServerRequest {
        name: "Demo server".to_owned(),
        icon_url: None,
        default_permissions: None,
    };
    let invite_request = CreateInviteRequest {
        max_uses: Some(100),
        expires_in_hours: Some(24),
        ..Default::default()
    };
    let invite = pool
        .run_by(Instant::now() + Duration::from_secs(10), |conn| {
            let server = invite_ops::servers::create(conn, &ctx, &server_request)?
                .settle(service.door.sink());
            let place = invite_ops::invites::Place::Server(server.id);
            Ok::<_, invite_ops::OpError>(
                invite_ops::invites::create(conn, &ctx, place, invite_request, &mut OsRandom)?
                    .settle(service.door.sink()),
            )
        })
        .context("cannot create the demo data")?;
    let (CreatedInvite::Created(invite) | CreatedInvite::Reused(invite)) = invite;
    let code = invite.code.unwrap_or_default();
    let day = Duration::from_hours(24);
    let owner_token = service.auth.mint_for(owner, Some("alice".into()), day).unwrap_or_default();
    let guest_token = service.auth.mint_for(guest, Some("bob".into()), day).unwrap_or_default();
    let base = service.links.public_url().to_owned();
    println!(
        "\nInvite link (open it in a browser): {}\n\n\
         Invite service demo on {base} (database {:?})\n\n\
         OWNER={owner_token}\n\
         GUEST={guest_token}\n\n\
         To accept on the page, sign in as the guest: set the cookie {}=$GUEST for this host\n\
         (the browser's developer tools), then reload the page.\n\n\
         Preview it (no token needed):\n  curl -s {base}/invites/{code}\n\
         Accept it as the guest:\n  curl -s -X POST -H \"Authorization: Bearer $GUEST\" {base}/invites/{code}/accept\n\
         List the server's invites as the owner:\n  curl -s -H \"Authorization: Bearer $OWNER\" {base}/servers/{}/invites\n\n\
         Tokens are valid for 24 hours. Ctrl-C stops the demo.\n",
        service.links.invite_url(&code),
        config.database_url,
        service.page.session_cookie,
        invite.server_id,
    );
    serve_until_stopped(listener, service, options)
}
