//! `client-joins`: users joining through `invite-client`, whose retries (with the same
//! `Idempotency-Key` on every attempt) must complete each join exactly once, whatever the
//! service went through meanwhile (a failover of its database).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use invite_client::{Client, CreateInvite, RetryPolicy};
use uuid::Uuid;

use crate::ids;
use crate::scenario::Target;

/// What `client-joins` does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joins {
    /// Users joining at once.
    pub(crate) concurrency: usize,
    /// For how long new joins start.
    pub(crate) duration: Duration,
}

/// How the joins ended.
#[derive(Debug, Default)]
struct Tally {
    joined: AtomicU64,
    retried: AtomicU64,
    replayed: AtomicU64,
    failed: AtomicU64,
}

/// Patient enough for a failover: the service answers 503 with `Retry-After` while its
/// database is away, and each attempt is bounded by the client's timeout.
fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(40)
        .with_base_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_deadline(Some(Duration::from_mins(2)))
}

/// Creates an invite of its own (unlimited uses, in the server `accept-capped` uses), then has
/// a new user join it, `concurrency` at a time, for `duration`; writes a line per join into
/// `out` (`joined <code> <user> <attempts> <replayed>`, or `failed <code> <user> <error>`), and
/// prints the tally. An error when a join failed.
pub(crate) async fn run(
    target: &Target,
    joins: Joins,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let base = Client::builder(&target.base)
        .retry_policy(policy())
        .timeout(Duration::from_secs(10))
        .build()?;
    let owner = ids::owner(ids::CAPPED_SERVER);
    let invite = base
        .create_invite(ids::server(ids::CAPPED_SERVER), &CreateInvite::default())
        .token(target.token(owner, ids::owner_name(ids::CAPPED_SERVER)))
        .await
        .context("creating the invite to join")?;
    let code = invite.code.context("a new invite has a code")?;
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let lines = Arc::new(std::sync::Mutex::new(std::io::BufWriter::new(file)));
    let tally = Arc::new(Tally::default());
    let stop_at = Instant::now() + joins.duration;
    let workers: Vec<_> = (0..joins.concurrency.max(1))
        .map(|_| {
            let (base, code, lines, tally) =
                (base.clone(), code.clone(), lines.clone(), tally.clone());
            let target = target.clone();
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let user = Uuid::now_v7();
                    let token = target.token(user, format!("u{}", user.simple()));
                    let line = match base.accept(&code).token(token).send_full().await {
                        Ok(response) => {
                            tally.joined.fetch_add(1, Ordering::Relaxed);
                            if response.attempts > 1 {
                                tally.retried.fetch_add(1, Ordering::Relaxed);
                            }
                            if response.replayed {
                                tally.replayed.fetch_add(1, Ordering::Relaxed);
                            }
                            format!(
                                "joined {code} {user} {} {}",
                                response.attempts, response.replayed
                            )
                        }
                        Err(error) => {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            format!("failed {code} {user} {error}")
                        }
                    };
                    if let Ok(mut lines) = lines.lock() {
                        let _ = writeln!(lines, "{line}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    lines
        .lock()
        .map_err(|_| anyhow::anyhow!("the record's lock is poisoned"))?
        .flush()
        .context("cannot write the record")?;
    let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
    println!(
        "client-joins on {code}: {} joined ({} after a retry, {} of them answered by a replay), {} failed",
        count(&tally.joined),
        count(&tally.retried),
        count(&tally.replayed),
        count(&tally.failed)
    );
    if count(&tally.failed) > 0 {
        bail!("{} joins failed", count(&tally.failed));
    }
    Ok(())
}
