//! What a change returns: its outcome, and the events it committed with it.

use invite_store::repo::StoredEvent;

/// Where the events of a change go once it has committed: the consumers of the instance that
/// made it (its caches, its gateway sessions, its webhook deliverer), before the answer leaves.
pub trait EventSink {
    /// Takes the events a change just committed, in `seq` order.
    fn publish(&self, events: &[StoredEvent]);
}

/// The sink of a caller with no consumers of its own (a command-line tool, a start-up step
/// before the service runs, an embedder without caches): the events are in the outbox, where
/// every instance reads them.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxOnly;

impl EventSink for OutboxOnly {
    fn publish(&self, _events: &[StoredEvent]) {}
}

/// What a change produced, and the events it wrote to the outbox (committed with it).
///
/// The value is reached only through [`Outcome::settle`], which hands the events to a sink on
/// the way: a caller cannot use what a change did and forget to tell the instance about it.
#[must_use = "a change's events must reach the instance's consumers: settle the outcome"]
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    value: T,
    events: Vec<StoredEvent>,
}

impl<T> Outcome<T> {
    /// An outcome with the events committed with it.
    pub(crate) fn new(value: T, events: Vec<StoredEvent>) -> Self {
        Self { value, events }
    }

    /// An outcome that changed nothing worth an event.
    pub(crate) fn quiet(value: T) -> Self {
        Self { value, events: Vec::new() }
    }

    /// The outcome, to look at before it is settled (to render a response recorded with the
    /// change, say).
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The events, as stored (with their `seq`).
    pub fn events(&self) -> &[StoredEvent] {
        &self.events
    }

    /// Hands the events to `sink` and returns the outcome.
    pub fn settle(self, sink: &dyn EventSink) -> T {
        if !self.events.is_empty() {
            sink.publish(&self.events);
        }
        self.value
    }
}
