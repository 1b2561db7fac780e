//! The seam between the routers and persistence: what happens to queue groups and their messages,
//! told as [`Event`]s to a [`Journal`] that records them in the order it is told.
//!
//! The routers stay plain Rust: they call [`Journal::record`] under the lock that makes a change, so
//! the order of the records is the order of the changes, and await the [`Receipt`] after letting go
//! of the lock, before they acknowledge the change to anyone. What a journal does with an event
//! (encode it, write it, fsync it) is its own business (`crate::durable`); [`replay`] rebuilds the
//! groups from the events it gives back.
//!
//! Only what queue groups hold is journaled. Fan-out subscriptions and request/reply are live-only,
//! as in NATS core: a message that reaches no group is never written.

pub mod replay;

use std::{fmt, pin::Pin, time::SystemTime};

use crate::{
    broker::JournalStats,
    error::BrokerError,
    memory::group_state::GroupSettings,
    message::Message,
    storage::{Pending, Usage},
    topic::{GroupName, Pattern},
};

pub use replay::Held;

/// What a journal answers later.
pub type Answer<T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send>>;

/// A group's number, broker-wide and kept across restarts.
pub type GroupId = u64;
/// A message's position in its group (publish order), kept across restarts.
pub type Position = u64;

/// One stored copy: message `message` of the event's batch, at `position` in `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCopy {
    pub message: u32,
    pub group: GroupId,
    pub position: Position,
}

/// Something that happened to the groups, in the words of the routers.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A broker run began on this journal. Delivery ids of the run carry the epoch, so an id from an
    /// earlier run never settles a message of this one.
    Epoch(u64),
    GroupCreated {
        id: GroupId,
        pattern: Pattern,
        name: GroupName,
        settings: GroupSettings,
        declared: bool,
    },
    /// A group made by Consume was declared: it no longer expires when idle.
    GroupDeclared { id: GroupId },
    /// Deleted, or removed when idle: its messages go with it.
    GroupDeleted { id: GroupId },
    /// Messages stored in groups; a message that reached no group is not in `messages`.
    Published {
        messages: Vec<Message>,
        copies: Vec<GroupCopy>,
    },
    /// Handed to a consumer: each counts as an attempt, even if the broker dies before the consumer
    /// sees it, so `max_deliveries` catches a message that kills its consumers or the broker.
    Delivered {
        group: GroupId,
        positions: Vec<Position>,
    },
    /// Acked: one record for the acks of one call to one group.
    Acked {
        group: GroupId,
        positions: Vec<Position>,
    },
    /// Back to the group, to be delivered again from `until` (wall-clock time, so the delay outlives
    /// a restart), or at once.
    Nacked {
        group: GroupId,
        position: Position,
        until: Option<SystemTime>,
    },
    /// Left its group without an ack (rejected, or out of deliveries): discarded, or forwarded as
    /// `letter` to the copies listed, all in this one record, so a crash can neither lose a dead
    /// letter nor leave it in both places.
    DeadLettered {
        group: GroupId,
        position: Position,
        forwarded: Option<(Message, Vec<GroupCopy>)>,
    },
    /// A restatement begins: once what follows is durable, every frame before `before` may go.
    /// Recovery tells removed segments from lost ones by it.
    Reclaiming { before: u64 },
    /// A group as it is, restated so that older records can go. Replay takes it over whatever it
    /// knew of the group.
    GroupRestated {
        id: GroupId,
        pattern: Pattern,
        name: GroupName,
        settings: GroupSettings,
        declared: bool,
        next_position: Position,
    },
    /// Messages a group holds, restated with their attempts and delays.
    Restated {
        group: GroupId,
        held: Vec<(Position, Held)>,
    },
}

/// Records events in order. Every method is cheap and never blocks: the journal does its work
/// elsewhere and answers through the [`Receipt`].
pub trait Journal: Send + Sync + fmt::Debug {
    /// Takes `event` after every event recorded before it (by any thread that called earlier).
    fn record(&self, event: Event) -> Receipt;

    /// Resolves with the reason once the journal takes no more writes (a write or fsync failed).
    fn failed(&self) -> Pin<Box<dyn Future<Output = String> + Send>>;

    /// What the journal's files take now.
    fn usage(&self) -> Usage;

    /// What the journal did and takes, for monitoring. A journal that counts nothing reports its
    /// usage.
    fn stats(&self) -> JournalStats {
        let usage = self.usage();
        JournalStats {
            bytes: usage.bytes,
            segments: usage.segments,
            ..JournalStats::default()
        }
    }

    /// Starts a new part of the journal after every event recorded so far, and answers the mark
    /// that [`Journal::remove_before`] takes once the live state is restated after it.
    fn rotate(&self) -> Answer<u64>;

    /// Removes what was recorded before `mark`: only once everything live is restated after it.
    fn remove_before(&self, mark: u64) -> Answer<()>;
}

/// The answer to a recorded event: durable, or why not.
#[must_use = "a change is acknowledged only once its receipt is Ok"]
pub struct Receipt(Outcome);

enum Outcome {
    /// Nothing to wait for: no journal, or nothing written.
    Done,
    Refused(BrokerError),
    Waiting(Pending),
}

impl Receipt {
    /// For changes that need no record.
    pub fn done() -> Self {
        Self(Outcome::Done)
    }

    pub fn refused(error: BrokerError) -> Self {
        Self(Outcome::Refused(error))
    }

    pub fn waiting(pending: Pending) -> Self {
        Self(Outcome::Waiting(pending))
    }

    /// Resolves once the event is durable (at once without a journal).
    ///
    /// A journal writes in order and stops at its first failed write or fsync, so the receipt of
    /// the last of several events stands for all of them. (A record too large for the log is
    /// refused on its own, at once; the broker keeps its records far under that size: Publish
    /// requests are bounded in durable mode, restatements are cut in chunks.)
    pub async fn durable(self) -> Result<(), BrokerError> {
        match self.0 {
            Outcome::Done => Ok(()),
            Outcome::Refused(error) => Err(error),
            Outcome::Waiting(pending) => pending.wait().await.map(drop).map_err(BrokerError::from),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.0, Outcome::Done)
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Outcome::Done => "Receipt::Done",
            Outcome::Refused(_) => "Receipt::Refused",
            Outcome::Waiting(_) => "Receipt::Waiting",
        })
    }
}

/// Records into the journal if there is one.
pub fn record(
    journal: Option<&std::sync::Arc<dyn Journal>>,
    event: impl FnOnce() -> Event,
) -> Receipt {
    match journal {
        Some(journal) => journal.record(event()),
        None => Receipt::done(),
    }
}
