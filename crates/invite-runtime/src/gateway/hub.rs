//! This instance's gateway sessions, and the fan-out of events to them.
//!
//! The outbox's reader is the only one that changes who hears what: it seeds new sessions with
//! their servers and applies membership events, in `seq` order, between deliveries. Whatever a
//! session is told is therefore decided at the event's place in the order: a member removed by
//! event `n` receives `n` (so the client learns why) and nothing after it, and a member who
//! joins with `n` receives `n` and what follows. A new session's servers are read from the
//! database at the reader's cursor `c`; events after `c` carry absolute values (the member, the
//! server) and are applied on top, so a snapshot a little newer than `c` converges to the truth.
//!
//! Each session has a bounded queue. Delivery never waits: a session whose queue is full is a
//! slow consumer, closed with [`CloseCode::SlowConsumer`], and told to resume from where it got.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use invite_core::event::Event;
use invite_core::permissions::{Permissions, Standing};
use invite_store::StoreResult;
use invite_store::repo::{MemberServer, StoredEvent};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::protocol::{CloseCode, dispatch_frame};
use crate::door::Door;
use crate::metrics::Metrics;

/// Users whose servers one statement reads when seeding sessions.
const SEED_BATCH: usize = 1000;

/// A frame on its way to a session, with when its event was written (for the latency metric).
/// Queued behind an [`Arc`]: a queue's slots are then a pointer each, and every session keeps
/// a block of them for its life.
#[derive(Debug)]
pub struct Outgoing {
    /// The serialized frame, shared by every session it goes to.
    pub text: ByteString,
    /// The event's `seq` and when it was written; `None` for frames that are not events.
    pub event: Option<(i64, DateTime<Utc>)>,
}

/// How the hub ends a session it can no longer serve: the close code, and a wake-up.
#[derive(Debug, Default)]
pub struct Kick {
    code: AtomicU16,
    notify: Notify,
}

impl Kick {
    /// Asks the session to close with `code` (the first reason given wins).
    pub fn close(&self, code: CloseCode) {
        if self.code.compare_exchange(0, code as u16, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Why the session was asked to close, if it was.
    pub fn code(&self) -> Option<CloseCode> {
        CloseCode::from_u16(self.code.load(Ordering::Acquire))
    }

    /// Waits until the session is asked to close; returns why.
    pub async fn wait(&self) -> CloseCode {
        loop {
            if let Some(code) = self.code() {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

/// What a session learns when the reader has seeded it.
#[derive(Debug)]
pub struct Seeded {
    /// The session's servers, as the database had them.
    pub servers: Vec<MemberServer>,
    /// The reader's cursor then: events after it are delivered live.
    pub seq: i64,
}

/// A session of this instance, as the hub knows it.
#[derive(Debug)]
struct Entry {
    user_id: Uuid,
    queue: mpsc::Sender<Arc<Outgoing>>,
    kick: Arc<Kick>,
    /// Its servers, with where the user stands in each; empty until seeded.
    standings: HashMap<Uuid, Standing>,
    /// Told when the reader has seeded it.
    seeded: Option<oneshot::Sender<Seeded>>,
}

#[derive(Debug, Default)]
struct Registry {
    sessions: HashMap<u64, Entry>,
    /// Sessions subscribed to each server.
    servers: HashMap<Uuid, HashSet<u64>>,
    /// Sessions of each user.
    users: HashMap<Uuid, Vec<u64>>,
}

impl Registry {
    fn subscribe(&mut self, id: u64, server_id: Uuid, standing: Standing) {
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.standings.insert(server_id, standing);
            self.servers.entry(server_id).or_default().insert(id);
        }
    }

    fn unsubscribe(&mut self, id: u64, server_id: Uuid) {
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.standings.remove(&server_id);
        }
        if let Some(subscribers) = self.servers.get_mut(&server_id) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                self.servers.remove(&server_id);
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.sessions.remove(&id)?;
        for server_id in entry.standings.keys() {
            if let Some(subscribers) = self.servers.get_mut(server_id) {
                subscribers.remove(&id);
                if subscribers.is_empty() {
                    self.servers.remove(server_id);
                }
            }
        }
        if let Some(ids) = self.users.get_mut(&entry.user_id) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.users.remove(&entry.user_id);
            }
        }
        Some(entry)
    }

    fn user_sessions(&self, user_id: Uuid) -> Vec<u64> {
        self.users.get(&user_id).cloned().unwrap_or_default()
    }
}

/// A session's handle on the hub: its queue's receiving end, and how it is told to close.
#[derive(Debug)]
pub struct Registration {
    /// The hub's id of the session.
    pub id: u64,
    /// Frames to send.
    pub queue: mpsc::Receiver<Arc<Outgoing>>,
    /// Set when the hub closes the session.
    pub kick: Arc<Kick>,
    /// Resolves once the reader has seeded the session.
    pub seeded: oneshot::Receiver<Seeded>,
}

/// The sessions of this instance.
#[derive(Debug)]
pub struct Hub {
    registry: RwLock<Registry>,
    /// Sessions waiting for the reader to seed them.
    pending: Mutex<Vec<u64>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
    queue_len: usize,
}

impl Hub {
    /// A hub whose sessions queue at most `queue_len` frames each.
    pub fn new(queue_len: usize) -> Self {
        Self {
            registry: RwLock::default(),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            queue_len: queue_len.max(1),
        }
    }

    /// Sessions open on this instance.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Adds a session of `user_id`; the reader seeds it at its next pass.
    pub fn register(&self, user_id: Uuid) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, queue) = mpsc::channel(self.queue_len);
        let (seeded_sender, seeded) = oneshot::channel();
        let kick = Arc::new(Kick::default());
        {
            let mut registry = self.registry.write();
            registry.sessions.insert(
                id,
                Entry {
                    user_id,
                    queue: sender,
                    kick: Arc::clone(&kick),
                    standings: HashMap::new(),
                    seeded: Some(seeded_sender),
                },
            );
            registry.users.entry(user_id).or_default().push(id);
        }
        self.pending.lock().push(id);
        self.connections.fetch_add(1, Ordering::AcqRel);
        Registration { id, queue, kick, seeded }
    }

    /// Removes a session that ended.
    pub fn unregister(&self, id: u64) {
        if self.registry.write().remove(id).is_some() {
            self.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Asks every session to close with `code` (the instance is stopping).
    pub fn close_all(&self, code: CloseCode) {
        for entry in self.registry.read().sessions.values() {
            entry.kick.close(code);
        }
    }

    /// The sessions waiting to be seeded, taken by the reader before it reads: it seeds them
    /// once it has read everything committed before then ([`Hub::seed`]), or hands them back
    /// ([`Hub::defer`]).
    pub fn take_pending(&self) -> Vec<u64> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Sessions to seed at the reader's next pass.
    pub fn defer(&self, ids: Vec<u64>) {
        if !ids.is_empty() {
            self.pending.lock().extend(ids);
        }
    }

    /// Seeds sessions with their servers at the reader's `cursor` (called by the reader,
    /// between deliveries). On a database error they wait for the next pass.
    pub async fn seed(&self, door: &Door, ids: Vec<u64>, cursor: i64) {
        if ids.is_empty() {
            return;
        }
        let users: Vec<(u64, Uuid)> = {
            let registry = self.registry.read();
            ids.iter()
                .filter_map(|id| registry.sessions.get(id).map(|entry| (*id, entry.user_id)))
                .collect()
        };
        let mut wanted: Vec<Uuid> = users.iter().map(|(_, user_id)| *user_id).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let found = door
            .read(move |conn| -> StoreResult<_> {
                let mut servers_of: HashMap<Uuid, Vec<MemberServer>> = HashMap::new();
                // A bounded list of bound values per statement (SQLite allows 32,766).
                for users in wanted.chunks(SEED_BATCH) {
                    for (user_id, server) in conn.member_servers(users)? {
                        servers_of.entry(user_id).or_default().push(server);
                    }
                }
                Ok(servers_of)
            })
            .await;
        let mut servers_of = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(%error, "cannot read the servers of new gateway sessions");
                self.defer(ids);
                return;
            }
        };
        let mut registry = self.registry.write();
        for (id, user_id) in users {
            let servers = servers_of.get_mut(&user_id).map(std::mem::take).unwrap_or_default();
            for server in &servers {
                registry.subscribe(id, server.id, server.standing);
            }
            // A session that ended meanwhile is simply not told.
            if let Some(tell) = registry.sessions.get_mut(&id).and_then(|entry| entry.seeded.take())
            {
                let _ = tell.send(Seeded { servers, seq: cursor });
            }
        }
    }

    /// Delivers one event, in `seq` order (called by the reader), after applying what it
    /// changes in who hears what.
    pub async fn dispatch(&self, door: &Door, metrics: &Metrics, event: &StoredEvent) {
        if self.connections() == 0 {
            return;
        }
        let server_id = event.server_id();
        match &event.event {
            Event::MemberJoin(joined) => self.joined(door, server_id, joined.user_id).await,
            Event::MemberUpdate(member) => {
                let mut registry = self.registry.write();
                for id in registry.user_sessions(member.user_id) {
                    if let Some(standing) = registry
                        .sessions
                        .get_mut(&id)
                        .and_then(|entry| entry.standings.get_mut(&server_id))
                    {
                        standing.member_permissions = member.permissions;
                    }
                }
            }
            Event::ServerUpdate(server) => {
                let mut guard = self.registry.write();
                let registry = &mut *guard;
                for id in registry.servers.get(&server_id).into_iter().flatten() {
                    if let Some(standing) = registry
                        .sessions
                        .get_mut(id)
                        .and_then(|entry| entry.standings.get_mut(&server_id))
                    {
                        standing.default_permissions = server.default_permissions;
                    }
                }
            }
            _ => {}
        }
        self.deliver(metrics, event);
        // Told of their removal, and of nothing after it.
        if let Event::MemberRemove(removed) = &event.event {
            let user_id = removed.user_id;
            let mut registry = self.registry.write();
            for id in registry.user_sessions(user_id) {
                registry.unsubscribe(id, server_id);
            }
        }
    }

    /// A user with sessions here joined: their standing is read (the event carries the
    /// member, not the server's default permissions), and their sessions subscribed.
    async fn joined(&self, door: &Door, server_id: Uuid, user_id: Uuid) {
        if self.registry.read().user_sessions(user_id).is_empty() {
            return;
        }
        let standing = door.read(move |conn| conn.standing(server_id, user_id)).await;
        let standing = match standing {
            Ok(Some(standing)) => standing,
            // Gone again already: the removal's event follows.
            Ok(None) => return,
            Err(error) => {
                // Without the server's permissions, the narrowest standing: every member's
                // events, none of the invite managers'.
                tracing::debug!(%error, "cannot read a joining member's standing");
                Standing {
                    user_id,
                    is_owner: false,
                    default_permissions: Permissions::empty(),
                    member_permissions: Permissions::empty(),
                }
            }
        };
        let mut registry = self.registry.write();
        for id in registry.user_sessions(user_id) {
            registry.subscribe(id, server_id, standing);
        }
    }

    fn deliver(&self, metrics: &Metrics, event: &StoredEvent) {
        let mut slow = Vec::new();
        {
            let registry = self.registry.read();
            let subscribers = registry.servers.get(&event.server_id());
            // The user a join request is about hears of it on their own sessions, member of
            // the server or not (a session of a member who may decide hears it once).
            let requester = event.event.requester().map(|user| registry.user_sessions(user));
            if subscribers.is_none() && requester.is_none() {
                return;
            }
            let frame = Arc::new(Outgoing {
                text: dispatch_frame(event),
                event: Some((event.seq, event.created_at)),
            });
            let mut send = |id: u64| {
                let Some(entry) = registry.sessions.get(&id) else { return };
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    entry.queue.try_send(Arc::clone(&frame))
                {
                    slow.push(id);
                }
            };
            let requester = requester.unwrap_or_default();
            for id in subscribers.into_iter().flatten() {
                let Some(entry) = registry.sessions.get(id) else { continue };
                let may_hear = |standing: &Standing| event.audience().may_hear(standing);
                if requester.contains(id)
                    || !entry.standings.get(&event.server_id()).is_some_and(may_hear)
                {
                    continue;
                }
                send(*id);
            }
            for id in requester {
                send(id);
            }
        }
        for id in slow {
            let entry = self.registry.write().remove(id);
            if let Some(entry) = entry {
                self.connections.fetch_sub(1, Ordering::AcqRel);
                metrics.gateway_slow_consumer();
                entry.kick.close(CloseCode::SlowConsumer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use invite_core::event::{Audience, EventType, InviteData, InviteDeleted};

    use super::*;

    /// An event of `kind` about `server_id`.
    fn event(seq: i64, server_id: Uuid, kind: EventType) -> StoredEvent {
        let invite = InviteData::from(&crate::fixtures::invite(server_id, "aBcD1234"));
        let event = match kind {
            EventType::InviteCreate => Event::InviteCreate(invite),
            EventType::InviteDelete => Event::InviteDelete(InviteDeleted {
                server_id,
                invite_id: invite.id,
                code: invite.code,
            }),
            other => unreachable!("no test event of type {other:?}"),
        };
        StoredEvent { seq, event, created_at: Utc::now() }
    }

    fn standing(user_id: Uuid, member_permissions: Permissions) -> Standing {
        Standing {
            user_id,
            is_owner: false,
            default_permissions: Permissions::DEFAULT_MEMBER,
            member_permissions,
        }
    }

    #[test]
    fn a_session_whose_queue_is_full_is_closed_as_a_slow_consumer_and_others_go_on() {
        let (hub, metrics, server) = (Hub::new(2), Metrics::default(), Uuid::now_v7());
        let mut slow = hub.register(Uuid::now_v7());
        let mut quick = hub.register(Uuid::now_v7());
        for registration in [&slow, &quick] {
            hub.registry.write().subscribe(
                registration.id,
                server,
                standing(Uuid::nil(), Permissions::empty()),
            );
        }
        for seq in 1..=2 {
            hub.deliver(&metrics, &event(seq, server, EventType::InviteDelete));
        }
        // The quick one reads; the slow one does not, and the third event finds it full.
        assert_eq!(quick.queue.try_recv().unwrap().event.map(|(seq, _)| seq), Some(1));
        hub.deliver(&metrics, &event(3, server, EventType::InviteDelete));
        assert_eq!(
            CloseCode::from_u16(slow.kick.code.load(Ordering::Acquire)),
            Some(CloseCode::SlowConsumer)
        );
        assert_eq!(CloseCode::from_u16(quick.kick.code.load(Ordering::Acquire)), None);
        assert_eq!(hub.connections(), 1, "the slow one is gone from the hub");
        // The quick one drains its queue and goes on; the slow one keeps what was queued
        // before, and nothing more.
        let drain = |registration: &mut Registration| -> Vec<i64> {
            std::iter::from_fn(|| registration.queue.try_recv().ok())
                .filter_map(|frame| frame.event.map(|(seq, _)| seq))
                .collect()
        };
        assert_eq!(drain(&mut quick), [2, 3]);
        hub.deliver(&metrics, &event(4, server, EventType::InviteDelete));
        assert_eq!(drain(&mut quick), [4]);
        assert_eq!(drain(&mut slow), [1, 2]);
        hub.unregister(slow.id);
        assert_eq!(hub.connections(), 1, "unregistering a kicked session counts it once");
    }

    #[test]
    fn invite_codes_reach_invite_managers_only_and_removals_end_subscriptions() {
        let (hub, metrics, server) = (Hub::new(16), Metrics::default(), Uuid::now_v7());
        let mut member = hub.register(Uuid::now_v7());
        let mut manager = hub.register(Uuid::now_v7());
        hub.registry.write().subscribe(
            member.id,
            server,
            standing(Uuid::nil(), Permissions::empty()),
        );
        hub.registry.write().subscribe(
            manager.id,
            server,
            standing(Uuid::nil(), Permissions::CREATE_INVITES),
        );
        let created = event(1, server, EventType::InviteCreate);
        assert_eq!(created.audience(), Audience::InviteManagers);
        hub.deliver(&metrics, &created);
        assert!(member.queue.try_recv().is_err());
        assert_eq!(manager.queue.try_recv().unwrap().event.map(|(seq, _)| seq), Some(1));
        hub.registry.write().unsubscribe(member.id, server);
        hub.deliver(&metrics, &event(2, server, EventType::InviteDelete));
        assert!(member.queue.try_recv().is_err());
        assert_eq!(manager.queue.try_recv().unwrap().event.map(|(seq, _)| seq), Some(2));
    }
}
