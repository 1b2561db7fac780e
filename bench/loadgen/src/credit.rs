//! The credit that keeps publishers at most `--window` messages ahead of their receivers, so every
//! broker is measured at the rate it sustains without loss rather than at how fast it can drop.
//!
//! A message takes one unit of credit from every lane that must see it (one lane per fan-out
//! subscriber; one lane for a queue's consumers together), and a receiver gives it back as it
//! receives, at least every [`RETURN_EVERY`] messages and whenever it is about to wait. Publishers
//! take credit in chunks of at most [`MAX_CHUNK`], so they touch the semaphores once per chunk.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most credit a publisher takes at once.
pub const MAX_CHUNK: usize = 64;
/// A receiver gives credit back at least this often, and whenever it is about to wait.
pub const RETURN_EVERY: usize = 64;

/// The publishing side of the credit: one lane per receiver that must see every message.
#[derive(Debug, Clone)]
pub struct Window {
    lanes: Vec<Arc<Semaphore>>,
}

impl Window {
    /// `lanes` receivers, each allowing `size` messages not yet received.
    pub fn new(lanes: usize, size: usize) -> Self {
        Self {
            lanes: (0..lanes).map(|_| Arc::new(Semaphore::new(size))).collect(),
        }
    }

    /// The receiving end of lane `index`.
    pub fn lane(&self, index: usize) -> Credit {
        Credit {
            semaphore: Arc::clone(&self.lanes[index]),
            owed: 0,
        }
    }

    /// Whether the receiver of lane `index` still counts (see [`Credit::close`]).
    pub fn is_open(&self, index: usize) -> bool {
        !self.lanes[index].is_closed()
    }

    /// Waits for `count` units on every open lane. A closed lane (a receiver that stopped counting)
    /// no longer holds anyone back.
    pub async fn take(&self, count: usize) {
        // A chunk is at most MAX_CHUNK, so it fits a u32.
        let count = count as u32;
        for lane in &self.lanes {
            if let Ok(permits) = lane.acquire_many(count).await {
                permits.forget();
            }
        }
    }

    /// Stops counting lane `index`, from outside its receiver (see [`Credit::close`]).
    pub fn close(&self, index: usize) {
        self.lanes[index].close();
    }

    /// Whether the receiver of every open lane has `accepted` distinct messages, `received` being
    /// the receivers' counts in lane order.
    pub fn all_received(&self, received: &[Arc<AtomicU64>], accepted: u64) -> bool {
        received.iter().enumerate().all(|(lane, received)| {
            !self.is_open(lane) || received.load(Ordering::Relaxed) >= accepted
        })
    }

    /// Gives back credit for messages that will never arrive (their publish failed).
    pub fn give_back(&self, count: usize) {
        for lane in &self.lanes {
            lane.add_permits(count);
        }
    }
}

/// The receiving side of one lane: credit owed to the publishers for messages received.
#[derive(Debug)]
pub struct Credit {
    semaphore: Arc<Semaphore>,
    owed: usize,
}

impl Credit {
    /// Counts `count` messages as received (or as missed: either way they no longer wait).
    pub fn received(&mut self, count: usize) {
        self.owed += count;
        if self.owed >= RETURN_EVERY {
            self.give();
        }
    }

    /// This receiver stops counting: publishers stop waiting for it.
    pub fn close(&self) {
        self.semaphore.close();
    }

    /// The next item of `stream`, giving back what is owed before waiting for it; `None` once `stop`
    /// is cancelled while waiting. The stop is only watched on that slow path: a receiver with items
    /// ready keeps taking them, and after the drain there are none.
    pub async fn next<S>(&mut self, stream: &mut S, stop: &CancellationToken) -> Option<S::Item>
    where
        S: Stream + Unpin,
    {
        if let Some(item) = stream.next().now_or_never() {
            return item;
        }
        self.give();
        tokio::select! {
            biased;
            () = stop.cancelled() => None,
            item = stream.next() => item,
        }
    }

    /// Gives back everything owed now; a receiver about to wait calls it (so does [`Self::next`]).
    pub fn give(&mut self) {
        if self.owed > 0 {
            self.semaphore.add_permits(self.owed);
            self.owed = 0;
        }
    }
}
