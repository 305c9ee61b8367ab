//! Previews, cached: a preview is public, read far more often than invites change, and must stay
//! fast whatever the database is doing.
//!
//! Correctness rules, in order of importance:
//! - Whether an invite can be previewed is never served stale by the instance that changed it:
//!   every change to an invite (a join, an edit, a revoke) drops its entry, and every change to a
//!   server's public face (a pause, a rename, a vanity change) moves a generation that
//!   outdates every entry. Expiry is computed at read time from the cached `expires_at`.
//! - Nor is the member count, which every preview of a server shows, whichever invite changed
//!   it. A join on this instance records the count it produced, and previews of the server
//!   show the larger of that and their own (joins are frequent; dropping every preview of the
//!   server on each would empty the cache under load). A leave, kick or ban lowers the count:
//!   it marks the server, which outdates the entries of all its invites read before the mark.
//! - A read that raced an invalidation cannot put back what was just invalidated: invalidations
//!   leave a tombstone, and an entry read before the tombstone is not stored.
//! - Other instances sharing the database see this instance's changes after at most the TTL
//!   (`INVITE_PREVIEW_CACHE_TTL`); `member_count` is approximate within the same bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use invite_core::code::CodeRef;
use invite_core::invite::InviteKind;
use invite_core::redeem::{InviteStatus, InvitesPause};
use invite_store::models::Preview;
use parking_lot::Mutex;
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, UnitWeighter};
use tokio::sync::watch;
use uuid::Uuid;

use invite_ops::{OpError, OpResult};
use invite_store::batch::{SetOutcome, SetRequest};
use invite_store::{Backend, DbConnection};

use crate::db::{DbResult, SetSpec};
use crate::door::Door;

/// What a preview shows and what deciding it needs, and nothing else: 100,000 of them must fit
/// in a small service's memory (about a third of a full [`Preview`] each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPreview {
    /// The invite (what its previews are counted against).
    pub invite_id: Uuid,
    /// The server.
    pub server_id: Uuid,
    /// Its name.
    pub server_name: Box<str>,
    /// Its icon.
    pub server_icon_url: Option<Box<str>>,
    /// Its member count when read.
    pub member_count: i64,
    /// Its members with a live gateway session when read (approximate within the cache's
    /// lifetime, like the member count).
    pub presence_count: i64,
    /// Its pause.
    pub invites_paused: Option<InvitesPause>,
    /// The channel the invite points at.
    pub channel: Option<(Uuid, Box<str>)>,
    /// Who created the invite (`None` for a vanity URL, which is the server's).
    pub inviter_id: Option<Uuid>,
    /// Their username, when the service has seen one.
    pub inviter_name: Option<Box<str>>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// What deciding whether it can be previewed needs.
    pub status: InviteStatus,
    /// The only users who may accept it (`None`: anyone). Never shown: the invite page tells a
    /// signed-in visitor whether they are one of them, and no more.
    pub allowed_user_ids: Option<Box<[Uuid]>>,
    /// Whether accepting it files a join request instead of joining (shown: a person
    /// deciding to click wants to know they will wait for a moderator).
    pub requires_approval: bool,
}

impl CachedPreview {
    /// The invite's expiry.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.status.expires_at
    }

    /// Whether `user_id` may accept the invite (`allowed_user_ids`).
    pub fn allows(&self, user_id: Uuid) -> bool {
        invite_core::grant::may_accept(self.allowed_user_ids.as_deref(), user_id)
    }
}

impl From<&Preview> for CachedPreview {
    fn from(preview: &Preview) -> Self {
        let vanity = preview.invite.kind == InviteKind::Vanity;
        Self {
            invite_id: preview.invite.id,
            server_id: preview.invite.server_id,
            server_name: preview.server_name.as_str().into(),
            server_icon_url: preview.server_icon_url.as_deref().map(Into::into),
            member_count: preview.member_count,
            presence_count: preview.presence_count,
            invites_paused: preview.invites_paused,
            channel: preview.channel.as_ref().map(|(id, name)| (*id, name.as_str().into())),
            inviter_id: if vanity { None } else { preview.invite.created_by },
            inviter_name: if vanity {
                None
            } else {
                preview.inviter_name.as_deref().map(Into::into)
            },
            // A join that grants permissions is never temporary (`invite_core::grant`).
            temporary: preview.invite.temporary && preview.invite.grant_permissions.is_empty(),
            status: preview.invite.status(),
            allowed_user_ids: preview.invite.allowed_user_ids.as_deref().map(Into::into),
            requires_approval: preview.invite.requires_approval,
        }
    }
}

#[derive(Clone)]
struct Entry {
    preview: Arc<CachedPreview>,
    fetched: Instant,
    generation: u64,
}

/// Slots allocated up front; the table grows from there up to the capacity, so an idle service
/// holds little memory for a cache it has not filled.
const INITIAL_SLOTS: usize = 1024;

/// A table of records about recent changes, a tenth the size of the previews' (at least 1024).
/// Tombstones only need to outlive the reads in flight when they were laid, and membership
/// records the entries read before them (at most the TTL): one evicted early leaves a preview
/// stale for at most the TTL, the bound every instance but this one lives with anyway.
fn bookkeeping<K: Eq + std::hash::Hash, V: Clone>(capacity: usize) -> Cache<K, V> {
    Cache::with(
        INITIAL_SLOTS,
        (capacity / 10).max(1024) as u64,
        UnitWeighter,
        DefaultHashBuilder::default(),
        DefaultLifecycle::default(),
    )
}

/// A bounded, time-limited cache of previews by code.
pub struct PreviewCache {
    entries: Cache<Box<str>, Entry>,
    /// When each recently changed code was invalidated.
    tombstones: Cache<Box<str>, Instant>,
    /// When each server last lost a member.
    members_left: Cache<Uuid, Instant>,
    /// Per server, the latest membership event applied here (by outbox `seq`): the count a
    /// join produced, or none after a departure.
    joined_counts: Cache<Uuid, MemberCount>,
    generation: AtomicU64,
    /// When the generation last moved, in nanoseconds since `created`, plus one (zero: never).
    last_bump: AtomicU64,
    created: Instant,
    ttl: Duration,
    /// The codes being read after a miss, each with a handle on its reader (see [`Flight`]).
    flights: Mutex<HashMap<Box<str>, watch::Receiver<()>>>,
}

/// A read of one code after a miss, which the misses of the same code that arrive meanwhile
/// wait for instead of reading again: when a popular invite's entry expires under load, its
/// clients would otherwise all go to the database at once for the same row (on SQLite, each
/// holding a connection: a viral server's expiry emptied the pool). Dropping it, when the read
/// is over or its request gone, wakes them.
struct Flight<'a> {
    cache: &'a PreviewCache,
    code: &'a str,
    _done: watch::Sender<()>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        // Out of the map before the sender goes, so no miss can begin waiting on a read that
        // is over.
        self.cache.flights.lock().remove(self.code);
    }
}

impl std::fmt::Debug for PreviewCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewCache")
            .field("entries", &self.entries.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The latest membership event of a server applied to the cache.
#[derive(Debug, Clone, Copy)]
struct MemberCount {
    /// The count a join produced; `None` after a departure (previews read afresh are exact).
    count: Option<i64>,
    /// The event's outbox `seq`: one server's `seq`s follow its commits, so the larger is the
    /// newer, whatever order the events are applied in (the instance's own at once, the same
    /// again when its poll reads them back).
    seq: i64,
    recorded: Instant,
}

/// When a read began: what it may be stored against.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket {
    started: Instant,
    generation: u64,
}

impl PreviewCache {
    /// A cache of at most `capacity` previews, each kept at most `ttl`; a zero TTL or capacity
    /// disables caching.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Cache::with(
                INITIAL_SLOTS,
                capacity.max(1) as u64,
                UnitWeighter,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
            tombstones: bookkeeping(capacity),
            members_left: bookkeeping(capacity),
            joined_counts: bookkeeping(capacity),
            generation: AtomicU64::new(0),
            last_bump: AtomicU64::new(0),
            created: Instant::now(),
            ttl: if capacity == 0 { Duration::ZERO } else { ttl },
            flights: Mutex::default(),
        }
    }

    /// Takes the read of `code` on, or waits until the read in flight for it is over, and
    /// then says so with `None`: the caller looks in the cache again.
    async fn fly<'a>(&'a self, code: &'a str) -> Option<Flight<'a>> {
        let mut waiting = {
            let mut flights = self.flights.lock();
            if let Some(reader) = flights.get(code) {
                reader.clone()
            } else {
                let (done, reader) = watch::channel(());
                flights.insert(code.into(), reader);
                return Some(Flight { cache: self, code, _done: done });
            }
        };
        // Nothing is ever sent: this ends when the reader is dropped.
        while waiting.changed().await.is_ok() {}
        None
    }

    /// Whether caching is on.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The cached preview, if fresh.
    pub fn get(&self, code: &str) -> Option<Arc<CachedPreview>> {
        if !self.enabled() {
            return None;
        }
        let entry = self.entries.get(code)?;
        let fresh = entry.fetched.elapsed() < self.ttl
            && entry.generation == self.generation.load(Ordering::Acquire)
            && !self.members_left_since(entry.preview.server_id, entry.fetched);
        fresh.then_some(entry.preview)
    }

    fn members_left_since(&self, server_id: Uuid, read: Instant) -> bool {
        self.members_left.get(&server_id).is_some_and(|left| left >= read)
    }

    /// The member count to show with `preview`: its own, or the count a later join produced.
    /// Since the latest departure counts only grow, so the larger is the newer.
    pub fn member_count(&self, preview: &CachedPreview) -> i64 {
        self.joined_counts
            .get(&preview.server_id)
            .filter(|latest| latest.recorded.elapsed() < self.ttl)
            .and_then(|latest| latest.count)
            .map_or(preview.member_count, |count| count.max(preview.member_count))
    }

    /// Records a membership event unless a newer one of the server is recorded already.
    fn record_members(&self, server_id: Uuid, count: Option<i64>, seq: i64) {
        let newer_known = self
            .joined_counts
            .get(&server_id)
            .is_some_and(|latest| latest.recorded.elapsed() < self.ttl && latest.seq > seq);
        if !newer_known {
            self.joined_counts
                .insert(server_id, MemberCount { count, seq, recorded: Instant::now() });
        }
    }

    /// How long an entry is served (zero when the cache is off): what a shared cache may keep
    /// the anonymous invite page for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Call before reading the database for `code`.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket { started: Instant::now(), generation: self.generation.load(Ordering::Acquire) }
    }

    /// Stores what a read found, unless something was invalidated since it began.
    pub fn put(&self, code: &str, preview: Arc<CachedPreview>, ticket: ReadTicket) {
        if !self.enabled()
            || ticket.generation != self.generation.load(Ordering::Acquire)
            || self.members_left_since(preview.server_id, ticket.started)
        {
            return;
        }
        if self.tombstones.get(code).is_some_and(|laid| laid >= ticket.started) {
            return;
        }
        self.entries.insert(
            code.into(),
            Entry { preview, fetched: ticket.started, generation: ticket.generation },
        );
        // An invalidation may have landed between the check above and the insert; it lays its
        // tombstone before removing the entry, so looking again closes the window.
        if self.tombstones.get(code).is_some_and(|laid| laid >= ticket.started) {
            self.entries.remove(code);
        }
    }

    /// The invite with this code changed. Its tombstone is laid even with the cache off: it
    /// also says which codes this instance changed lately (see [`PreviewCache::changed_within`]).
    pub fn invalidate(&self, code: &str) {
        self.tombstones.insert(code.into(), Instant::now());
        if self.enabled() {
            self.entries.remove(code);
        }
    }

    /// Whether this instance changed what a preview of `code` shows within `window`: the
    /// invite itself, or something every preview of a server shows. A standby within
    /// `window` of the primary may not have it yet. A tombstone evicted early (more codes
    /// changed within the window than a tenth of the cache's capacity) answers no.
    pub fn changed_within(&self, code: &str, window: Duration) -> bool {
        let recent = |moment: Instant| moment.elapsed() <= window;
        self.tombstones.get(code).is_some_and(recent)
            || self.last_bump_nanos().is_some_and(|nanos| recent(self.created + nanos))
    }

    /// When [`PreviewCache::invalidate_all`] last ran, since the cache was made.
    fn last_bump_nanos(&self) -> Option<Duration> {
        match self.last_bump.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos - 1)),
        }
    }

    /// Someone joined the server (event `seq`), making it `member_count` strong.
    pub fn member_joined(&self, server_id: Uuid, member_count: i64, seq: i64) {
        if self.enabled() {
            self.record_members(server_id, Some(member_count), seq);
        }
    }

    /// Someone left the server, or was kicked or banned (event `seq`): every preview of it read
    /// before now shows too many members, and so does any join recorded before it, even one
    /// applied after it (an instance's poll reads back its own events).
    pub fn member_left(&self, server_id: Uuid, seq: i64) {
        if self.enabled() {
            self.record_members(server_id, None, seq);
            self.members_left.insert(server_id, Instant::now());
        }
    }

    /// Something every preview of a server shows changed (its name, icon, pause, vanity code):
    /// all entries are outdated at once; such changes are rare.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let since = u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.last_bump.store(since + 1, Ordering::Release);
    }
}

/// The commit group of preview reads (see [`Door::read_grouped`]).
const PREVIEW_GROUP: &str = "preview";

/// What a batch of preview reads found for one code, as the cache holds it.
fn cached(found: SetOutcome) -> OpResult<Option<CachedPreview>> {
    match found {
        SetOutcome::Previewed(found) => Ok(found.map(|found| CachedPreview::from(&*found))),
        SetOutcome::Joined(_) => {
            Err(OpError::Internal("a preview was answered with a join".into()))
        }
    }
}

/// The preview of `code` from `cache`, or read through `door` and cached; `None` when no
/// invite has the code. The JSON preview and the invite page both read it here.
pub async fn lookup(
    door: &Door,
    cache: &PreviewCache,
    code: &CodeRef,
) -> DbResult<Option<Arc<CachedPreview>>> {
    if let Some(cached) = cache.get(code.as_str()) {
        return Ok(Some(cached));
    }
    let _flight = if cache.enabled() {
        match cache.fly(code.as_str()).await {
            Some(flight) => Some(flight),
            // The read this miss waited for stored its find, unless it failed, found no
            // invite, or raced a change: then this one reads for itself.
            None => match cache.get(code.as_str()) {
                Some(cached) => return Ok(Some(cached)),
                None => None,
            },
        }
    } else {
        None
    };
    let ticket = cache.ticket();
    let key = code.clone();
    let now = door.now();
    let read = move |conn: &mut DbConnection| {
        invite_ops::invites::preview(conn, &key, now)
            .map(|found| found.map(|found| CachedPreview::from(&found)))
    };
    let found = match door.pool().backend() {
        // Misses that arrive together are read together, one statement for the batch.
        // A standby may serve them (see `Door::read_grouped_stale`); a code it does not know
        // may only be new, and one this instance changed within the standby's bound may not
        // have reached it: the primary answers those.
        Backend::Postgres => {
            let set = SetSpec { request: SetRequest::Preview(code.clone(), now), finish: cached };
            let changed_here = door
                .replica()
                .is_some_and(|replica| cache.changed_within(code.as_str(), replica.max_lag()));
            door.read_grouped_stale(
                PREVIEW_GROUP.to_owned(),
                set,
                read,
                Option::is_some,
                changed_here,
            )
            .await?
        }
        // SQLite's readers run side by side; a batch would queue them behind one.
        Backend::Sqlite => door.read(read).await?,
    }
    .map(Arc::new);
    if let Some(found) = &found {
        cache.put(code.as_str(), Arc::clone(found), ticket);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn preview(code: &str) -> Preview {
        Preview {
            invite: crate::fixtures::invite(Uuid::now_v7(), code),
            server_name: "s".into(),
            server_icon_url: None,
            member_count: 1,
            invites_paused: None,
            channel: None,
            inviter_name: None,
            presence_count: 0,
        }
    }

    /// Misses of one code wait for the read in flight, and look again once it is over;
    /// another code's miss reads at once.
    #[tokio::test]
    async fn misses_of_one_code_wait_for_the_read_in_flight() {
        use futures_util::FutureExt as _;

        let cache = PreviewCache::new(10, Duration::from_mins(1));
        let reading = cache.fly("abc").await.expect("the first miss reads");
        assert!(cache.fly("xyz").now_or_never().expect("another code's miss").is_some());
        let mut waiting = Box::pin(cache.fly("abc"));
        assert!((&mut waiting).now_or_never().is_none(), "a second miss must wait");
        drop(reading);
        assert!(waiting.await.is_none(), "woken to look in the cache again");
        assert!(cache.fly("abc").await.is_some(), "the next miss reads again");
        assert!(cache.flights.lock().is_empty());
    }

    #[test]
    fn stores_and_serves_until_invalidated() {
        let cache = PreviewCache::new(10, Duration::from_mins(1));
        let ticket = cache.ticket();
        cache.put("abc", Arc::new(CachedPreview::from(&preview("abc"))), ticket);
        assert!(cache.get("abc").is_some());
        cache.invalidate("abc");
        assert!(cache.get("abc").is_none());
        let ticket = cache.ticket();
        cache.put("abc", Arc::new(CachedPreview::from(&preview("abc"))), ticket);
        cache.invalidate_all();
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let cache = PreviewCache::new(10, Duration::from_mins(1));
        let before = cache.ticket();
        std::thread::sleep(Duration::from_millis(2));
        cache.invalidate("abc");
        cache.put("abc", Arc::new(CachedPreview::from(&preview("abc"))), before);
        assert!(cache.get("abc").is_none());
        let before_bump = cache.ticket();
        cache.invalidate_all();
        cache.put("xyz", Arc::new(CachedPreview::from(&preview("xyz"))), before_bump);
        assert!(cache.get("xyz").is_none());
    }

    /// Previews `abc` and `def` of one server (its id first), and `xyz` of another.
    fn two_servers() -> (Uuid, CachedPreview, CachedPreview, CachedPreview) {
        let first = CachedPreview::from(&preview("abc"));
        let sibling =
            CachedPreview { server_id: first.server_id, ..CachedPreview::from(&preview("def")) };
        (first.server_id, first, sibling, CachedPreview::from(&preview("xyz")))
    }

    /// A cache of a minute holding `previews`, each under its code.
    fn cache_with<const N: usize>(previews: [(&str, CachedPreview); N]) -> PreviewCache {
        let cache = PreviewCache::new(10, Duration::from_mins(1));
        for (code, preview) in previews {
            cache.put(code, Arc::new(preview), cache.ticket());
        }
        cache
    }

    #[test]
    fn a_join_raises_the_count_of_every_preview_of_the_server() {
        let (server_id, first, sibling, other) = two_servers();
        let cache = cache_with([("def", sibling), ("xyz", other)]);
        cache.member_joined(server_id, 3, 11);
        cache.member_joined(server_id, 2, 10); // committed first, applied second
        let sibling = cache.get("def").expect("a join keeps the previews");
        assert_eq!(cache.member_count(&sibling), 3);
        assert_eq!(cache.member_count(&cache.get("xyz").unwrap()), 1, "another server's");
        assert_eq!(cache.member_count(&first), 3);
    }

    #[test]
    fn a_departure_outdates_every_preview_of_the_server() {
        let (server_id, first, sibling, other) = two_servers();
        let cache = cache_with([("abc", first), ("def", sibling.clone()), ("xyz", other)]);
        cache.member_joined(server_id, 5, 20);
        let before = cache.ticket();
        std::thread::sleep(Duration::from_millis(2));
        cache.member_left(server_id, 21);
        // The join read back from the outbox after the departure was applied changes nothing.
        cache.member_joined(server_id, 5, 20);
        assert!(cache.get("abc").is_none() && cache.get("def").is_none());
        assert!(cache.get("xyz").is_some(), "another server's preview stays");
        assert_eq!(cache.member_count(&sibling), 1, "the join's count went with the departure");
        // A read that began before the departure is not stored; one that began after it is.
        cache.put("def", Arc::new(sibling.clone()), before);
        assert!(cache.get("def").is_none());
        cache.put("def", Arc::new(sibling), cache.ticket());
        assert!(cache.get("def").is_some());
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_disables_caching() {
        let cache = PreviewCache::new(10, Duration::from_millis(20));
        cache.put("abc", Arc::new(CachedPreview::from(&preview("abc"))), cache.ticket());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get("abc").is_none());
        let off = PreviewCache::new(10, Duration::ZERO);
        off.put("abc", Arc::new(CachedPreview::from(&preview("abc"))), off.ticket());
        assert!(!off.enabled() && off.get("abc").is_none());
    }
}
