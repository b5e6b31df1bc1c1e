//! Work shared between service instances running the same reactors, whatever
//! the backend: [`WorkSharing`] is what a log that can share work offers
//! (JetStream does, through durable consumers: `jetstream::shared`); a log
//! that cannot (the embedded one, KurrentDB) answers `None` from
//! [`crate::EventStore::work_sharing`], and its one process does all the work
//! from its own checkpoint.
//!
//! - a [`SharedFeed`] hands each of the log's events to one member
//!   ([`Sharing::Spread`]: any member, many in flight; [`Sharing::Ordered`]:
//!   one in flight, in log order); one a member took and never acknowledged
//!   (it died) goes to another member after the ack wait;
//! - a [`DueQueue`] holds due timers: every member offers the timers it sees
//!   due under the timer's own id, the queue keeps one copy, one member fires it.
//!
//! Delivery is at least once, so the actions stay idempotent.

use std::time::Duration;

use crate::{Position, RecordedEvent, Result};

/// How a shared feed's events are shared by its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Any member takes any event, many in flight.
    Spread,
    /// One event in flight at a time, in log order, whichever member takes it.
    Ordered,
}

/// A log through which instances share reactor work.
#[async_trait::async_trait]
pub trait WorkSharing: Send + Sync {
    /// Joins (creating if needed) the shared feed of work `name`. A new feed
    /// starts after `start_after`; an existing one goes on from where its
    /// members acknowledged.
    async fn join_feed(
        &self,
        name: &str,
        sharing: Sharing,
        start_after: Position,
    ) -> Result<Box<dyn SharedFeed>>;

    /// Opens (creating if needed) the queue of due items `name` and joins it.
    async fn join_due_queue(&self, name: &str) -> Result<Box<dyn DueQueue>>;
}

/// A reactor's share of the log's events.
#[async_trait::async_trait]
pub trait SharedFeed: Send {
    /// The next event for this member. Waits while there is none; ends in an
    /// error only for an event that cannot be decoded.
    async fn next(&mut self) -> Result<Delivery>;
}

/// A work queue of due items shared by the members.
#[async_trait::async_trait]
pub trait DueQueue: Send + Sync {
    /// Offers an item under its own `id`: offers of the same id within the
    /// duplicate window are dropped.
    async fn offer(&self, id: &str, payload: Vec<u8>) -> Result<()>;
    /// The next item for this member; waits while there is none.
    async fn next(&mut self) -> DueItem;
    /// How long the queue remembers an offered id.
    fn duplicate_window(&self) -> Duration;
}

/// How often a member still at work on an item says so: well inside any
/// ack wait, so what it holds never goes to another member meanwhile.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// Runs `work` to its end, telling `handle` every [`HEARTBEAT`] that it is
/// still at it.
pub async fn with_heartbeat<T>(
    handle: &dyn Acknowledge,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tokio::time::sleep(HEARTBEAT) => handle.in_progress().await,
        }
    }
}

/// How a member tells the log what became of what it was handed.
#[async_trait::async_trait]
pub trait Acknowledge: Send + Sync {
    /// Marks it handled; waits until the log has recorded that.
    async fn ack(&self) -> Result<()>;
    /// Says the handler is still at work (restarts the ack wait).
    async fn in_progress(&self);
}

/// One event handed to this member; acknowledge it once handled.
pub struct Delivery {
    pub event: RecordedEvent,
    /// How many times it was delivered (more than 1: another member, or this
    /// one before a restart, took it and did not acknowledge it).
    pub attempt: i64,
    pub handle: Box<dyn Acknowledge>,
}

impl Delivery {
    pub async fn ack(&self) -> Result<()> {
        self.handle.ack().await
    }

    pub async fn in_progress(&self) {
        self.handle.in_progress().await
    }
}

/// One due item handed to this member.
pub struct DueItem {
    pub payload: Vec<u8>,
    pub handle: Box<dyn Acknowledge>,
}

impl DueItem {
    pub async fn ack(&self) -> Result<()> {
        self.handle.ack().await
    }

    pub async fn in_progress(&self) {
        self.handle.in_progress().await
    }
}
