//! The events of the outbox, delivered to what listens on this instance (contract sections 9
//! and 10): the preview cache, the webhook deliverer, and the gateway's sessions.
//!
//! - Events this instance writes are applied the moment their operation returns, before its
//!   response leaves ([`EventBus::published`]): the instance that made a change never shows it
//!   stale. They wake the webhook deliverer, and are announced to the other instances.
//! - Every instance reads the outbox in `seq` order, up to the horizon where nothing can still
//!   commit below (see `invite_store::repo::EventHorizon`): nothing committed is lost or
//!   reordered. It reads when another instance announces events, and at least every
//!   [`POLL_INTERVAL`]; not for its own events, which it has applied already (reading them
//!   back as they came would cost a query per burst of joins, taken from the joins'
//!   throughput; applying one twice is harmless, so the poll does not skip them).
//! - On PostgreSQL, an instance that wrote events announces them with `NOTIFY invite_events,
//!   '<its id>'`, sent right after its commit on a connection of its own, and every instance
//!   `LISTEN`s on such a connection (ignoring its own announcements) (`tokio-postgres`; diesel cannot listen), reconnecting with backoff and
//!   catching up from its last `seq`. The `NOTIFY` is not part of the writing transaction:
//!   PostgreSQL serialises the commits of transactions that notify, which would make every join
//!   wait for the one before it, fsync included. A lost notification only delays delivery to
//!   the next poll. On SQLite everything is in this process: the wake-up is enough.
//! - Gateway sessions hear events only from the reader, so that each hears them in `seq` order
//!   whichever instance wrote them. While sessions are open here, this instance's own events
//!   wake the reader too (at most once per `READ_GAP`), instead of waiting for the poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use invite_core::event::{Event, InviteData, InviteDeleted};
use invite_store::DbConnection;
use invite_store::repo::{EventHorizon, StoredEvent};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Notify;

use crate::door::Door;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::preview_cache::PreviewCache;

/// Longest an instance goes without reading the outbox: what another instance's change takes
/// to show here when its notification is lost.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How soon to read again while drawn `seq`s wait for transactions to end.
const HORIZON_RETRY: Duration = Duration::from_millis(10);

/// The shortest time between two reads of the outbox, and between two announcements: under a
/// stream of joins, each would otherwise run once per join (two queries, a `NOTIFY`); one read
/// or announcement serves every event since the last. What other instances see is delayed by
/// at most twice this.
const READ_GAP: Duration = Duration::from_millis(25);

/// Passes the reader may put off seeding new gateway sessions while its horizon waits.
const MAX_SEED_DEFERRALS: u32 = 8;

/// Events read at a time.
const BATCH: i64 = 500;

/// The channel of `LISTEN`/`NOTIFY`.
pub const CHANNEL: &str = "invite_events";

/// This instance's reader of the outbox, and the wake-ups between it and the writers.
#[derive(Debug)]
pub struct EventBus {
    /// This instance, as its announcements name it.
    origin: String,
    /// Wakes the reader.
    wake: Notify,
    /// Wakes the webhook deliverer: there are new events.
    delivered: Notify,
    /// Asks the listener to announce this instance's commits.
    announce: Notify,
    announce_pending: AtomicBool,
    /// Gateway sessions open here: while there are any, this instance's own events are read
    /// back at once, since sessions hear every event from the reader, in `seq` order.
    sessions: AtomicUsize,
    /// The last `seq` read.
    cursor: AtomicI64,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            origin: uuid::Uuid::now_v7().simple().to_string(),
            wake: Notify::new(),
            delivered: Notify::new(),
            announce: Notify::new(),
            announce_pending: AtomicBool::new(false),
            sessions: AtomicUsize::new(0),
            cursor: AtomicI64::new(0),
        }
    }
}

impl EventBus {
    /// Events this instance just committed: applied here at once, handed to the webhook
    /// deliverer, announced to the others.
    pub fn published(&self, previews: &PreviewCache, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        for event in events {
            apply(previews, event);
        }
        self.delivered.notify_one();
        self.announce_pending.store(true, Ordering::Release);
        self.announce.notify_one();
        if self.sessions.load(Ordering::Acquire) > 0 {
            self.wake.notify_one();
        }
    }

    /// Wakes the reader now (a gateway session waits to be seeded).
    pub fn wake_reader(&self) {
        self.wake.notify_one();
    }

    /// A gateway session opened here (`true`) or closed: while any is open, the reader reads
    /// this instance's own events back at once rather than at the next poll.
    pub fn gateway_session(&self, opened: bool) {
        if opened {
            self.sessions.fetch_add(1, Ordering::AcqRel);
        } else {
            self.sessions.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The last `seq` this instance has read.
    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Waits until there are new events for the webhook deliverer.
    pub async fn new_events(&self) {
        self.delivered.notified().await;
    }
}

/// Where this instance's changes' events go: its preview cache at once, its gateway sessions
/// and webhook deliverer through the bus, and the other instances by announcement.
#[derive(Debug)]
pub struct Publisher {
    bus: Arc<EventBus>,
    previews: Arc<PreviewCache>,
}

impl Publisher {
    /// Publishes on `bus`, keeping `previews` current.
    pub fn new(bus: Arc<EventBus>, previews: Arc<PreviewCache>) -> Self {
        Self { bus, previews }
    }
}

impl invite_ops::EventSink for Publisher {
    fn publish(&self, events: &[StoredEvent]) {
        self.bus.published(&self.previews, events);
    }
}

/// What an event outdates in this instance's preview cache.
pub fn apply(previews: &PreviewCache, stored: &StoredEvent) {
    match &stored.event {
        Event::InviteUpdate(InviteData { code, .. })
        | Event::InviteDelete(InviteDeleted { code, .. }) => {
            if let Some(code) = code {
                previews.invalidate(code);
            }
        }
        Event::MemberJoin(joined) => {
            // The invite's uses changed (it may be used up now), and the server's count.
            if let Some(code) = &joined.code {
                previews.invalidate(code);
            }
            previews.member_joined(joined.server_id, joined.member_count, stored.seq);
        }
        Event::MemberRemove(removed) => previews.member_left(removed.server_id, stored.seq),
        // What every preview of the server shows: its pause, name, icon, vanity code.
        Event::InvitesPause(_)
        | Event::InvitesResume(_)
        | Event::ServerUpdate(_)
        | Event::VanityUpdate(_) => previews.invalidate_all(),
        Event::InviteCreate(_)
        | Event::MemberUpdate(_)
        | Event::BanAdd(_)
        | Event::BanRemove(_)
        | Event::ChannelCreate(_)
        // A request takes no use (its approval's MEMBER_JOIN does).
        | Event::JoinRequestCreate(_)
        | Event::JoinRequestUpdate(_) => {}
    }
}

/// What the outbox's reader delivers to, on this instance.
#[derive(Debug, Clone)]
pub struct Consumers {
    /// The bus the reader's cursor and wake-ups live on.
    pub bus: Arc<EventBus>,
    /// The preview cache, kept current.
    pub previews: Arc<PreviewCache>,
    /// The gateway's sessions.
    pub gateway: Arc<Gateway>,
    /// How far the outbox is read, for the metrics.
    pub metrics: Arc<Metrics>,
}

/// The outbox's reader: runs as long as the service does. Spawn it on the server's runtime
/// (and, on PostgreSQL, [`listen`] beside it).
pub async fn read(door: Door, consumers: Consumers) {
    let Consumers { bus, previews, gateway, metrics } = consumers;
    // Start from what is committed now: what came before is not news to this instance.
    let start = loop {
        match door.read(DbConnection::latest_seq).await {
            Ok(seq) => break seq,
            Err(error) => {
                tracing::debug!(%error, "the event reader waits for the database");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    };
    bus.cursor.store(start, Ordering::Release);
    metrics.set_events_read(start);
    let mut horizon = EventHorizon::starting_at(start);
    let mut last_read = Instant::now();
    let mut deferred = 0;
    loop {
        let wait = if horizon.is_waiting() { HORIZON_RETRY } else { POLL_INTERVAL };
        let _ = tokio::time::timeout(wait, bus.wake.notified()).await;
        tokio::time::sleep(READ_GAP.saturating_sub(last_read.elapsed())).await;
        last_read = Instant::now();
        // Sessions registered before this pass's first sample: everything committed before
        // they connected is read by the end of the pass, unless the horizon still waits.
        let joining = gateway.hub.take_pending();
        loop {
            let cursor = bus.cursor();
            let sample = match door.read(DbConnection::horizon_sample).await {
                Ok(sample) => sample,
                Err(error) => {
                    tracing::debug!(%error, "cannot read the event horizon");
                    break;
                }
            };
            let safe = horizon.advance(sample);
            if safe <= cursor {
                break;
            }
            let batch = match door.read(move |conn| conn.events_between(cursor, safe, BATCH)).await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::debug!(%error, "cannot read the outbox");
                    break;
                }
            };
            // A full batch leaves more to read; otherwise everything up to `safe` is read.
            let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
            let last = if full { batch.last().map_or(safe, |event| event.seq) } else { safe };
            for event in &batch {
                apply(&previews, event);
                gateway.hub.dispatch(&door, &metrics, event).await;
            }
            bus.cursor.store(last, Ordering::Release);
            metrics.set_events_read(last);
            if !batch.is_empty() {
                bus.delivered.notify_one();
            }
            if !full {
                break;
            }
        }
        // New gateway sessions start at the cursor, between deliveries, once it has passed what
        // was committed before they connected. Under a steady stream of writes the horizon may
        // wait at the end of many passes in a row: after a few, they start where the reader is
        // (they then hear a little of what came before they connected, never less of what came
        // after).
        if horizon.is_waiting() && deferred < MAX_SEED_DEFERRALS && !joining.is_empty() {
            deferred += 1;
            gateway.hub.defer(joining);
        } else {
            deferred = 0;
            gateway.hub.seed(&door, joining, bus.cursor()).await;
        }
    }
}

/// The `LISTEN` connection (PostgreSQL only): wakes the reader on every notification and on
/// every (re)connection (to catch up with what was missed), and sends this instance's
/// announcements. Runs as long as the service does.
pub async fn listen(bus: Arc<EventBus>, url: SecretString) {
    let mut delays = backoff();
    loop {
        match listen_once(&bus, url.expose_secret()).await {
            // Closed after working: the next connection starts with short waits again.
            Ok(()) => delays = backoff(),
            Err(error) => tracing::warn!(%error, "the event listener lost its connection"),
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(30));
        tokio::time::sleep(delay).await;
    }
}

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

async fn listen_once(bus: &EventBus, url: &str) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (notices, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    // The connection yields the notifications; it must be polled for the client to work.
    let driver = tokio::task::spawn_local(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(notice)) => {
                    let _ = notices.send(notice.payload().to_owned());
                }
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::info!("listening for events from the other instances");
    // Whatever happened while not listening is caught up now.
    bus.wake.notify_one();
    loop {
        tokio::select! {
            notice = notifications.recv() => {
                match notice {
                    None => break,
                    // This instance's own events are applied already.
                    Some(origin) if origin == bus.origin => {}
                    Some(_) => bus.wake.notify_one(),
                }
            }
            () = bus.announce.notified() => {
                if bus.announce_pending.swap(false, Ordering::AcqRel) {
                    let started = Instant::now();
                    client.batch_execute(&format!("NOTIFY {CHANNEL}, '{}'", bus.origin)).await?;
                    // Notifications received meanwhile wait in their channel.
                    tokio::time::sleep(READ_GAP.saturating_sub(started.elapsed())).await;
                }
            }
        }
    }
    match driver.await {
        Ok(Err(error)) => Err(error),
        _ => Ok(()),
    }
}
