//! Whether this node's copy of the groups can be trusted to say that no group reads a topic.
//!
//! A message that no group's filter matches is published on core NATS, outside the stream
//! (`mod.rs`), which spares it a replicated write. That is safe only while this node knows every
//! group: a group made on another node is told to this one before its declaration returns
//! (`census::changed`), but a notice can be missed. So the copy is trusted only from a full read
//! of the groups that began after the last time a notice may have been missed:
//!
//! - the NATS connection was lost (a notice sent meanwhile never arrives);
//! - the client dropped messages for a slow subscription (one may have been a notice);
//! - this node stalled for longer than another node waits for its answer to a notice;
//! - this node has only just started: until every other node has heard of it (`census::greet`),
//!   a change made on one of them is not told to it.
//!
//! Until then every message goes through the stream, which captures every topic: a group that
//! this node does not know still gets what it publishes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Never read: the first full read makes the copy trusted.
const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub struct View {
    /// How many times a notice may have been missed.
    losses: AtomicU64,
    /// `losses` as it was when the last full read that succeeded began.
    read_at: AtomicU64,
    /// Wakes the refresh loop to read the groups at once.
    stale: Notify,
    /// Whether every other node has heard of this one.
    introduced: AtomicBool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            losses: AtomicU64::new(0),
            read_at: AtomicU64::new(NEVER),
            stale: Notify::new(),
            introduced: AtomicBool::new(false),
        }
    }
}

impl View {
    /// A notice may have been missed: distrust the copy until the next full read.
    pub fn lost(&self) {
        self.losses.fetch_add(1, Ordering::SeqCst);
        self.stale.notify_one();
    }

    /// Every other node has heard of this one: from the next full read on, the copy can be
    /// trusted.
    pub fn introduced(&self) {
        self.introduced.store(true, Ordering::SeqCst);
        self.lost();
    }

    /// Asks for a full read soon, without distrusting the copy (the connection is back).
    pub fn wake(&self) {
        self.stale.notify_one();
    }

    /// Waits until a read is asked for.
    pub async fn woken(&self) {
        self.stale.notified().await
    }

    /// A full read begins: what to pass to [`View::read`] once it has succeeded.
    pub fn begin_read(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }

    /// A full read that began at `began` succeeded.
    pub fn read(&self, began: u64) {
        self.read_at.store(began, Ordering::SeqCst);
    }

    /// Whether no notice may have been missed since the last full read began.
    pub fn trusted(&self) -> bool {
        self.introduced.load(Ordering::SeqCst)
            && self.read_at.load(Ordering::SeqCst) == self.losses.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_begun_after_the_last_loss_makes_the_copy_trusted() {
        let view = View::default();
        assert!(!view.trusted(), "never read");
        let began = view.begin_read();
        view.read(began);
        assert!(
            !view.trusted(),
            "read before the other nodes knew of this one"
        );
        view.introduced();
        assert!(!view.trusted(), "the read began before the introduction");
        let began = view.begin_read();
        view.read(began);
        assert!(view.trusted());
        // A loss during a read: that read does not count.
        let began = view.begin_read();
        view.lost();
        assert!(!view.trusted());
        view.read(began);
        assert!(!view.trusted(), "the read began before the loss");
        let began = view.begin_read();
        view.read(began);
        assert!(view.trusted());
    }
}
