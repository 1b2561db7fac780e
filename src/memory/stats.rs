//! What the broker counts for monitoring beyond its groups' own counters: publishes, requests, and
//! the subscriptions open per pattern. Counters are plain atomics bumped once per batch or request,
//! never looked up by key on the publish path; subscriptions keep their counts in their own buffers,
//! and this registry only finds them when someone asks.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;

use super::{
    sublist::EntryId,
    subscriber::{SubscriberCounts, SubscriberQueue},
};
use crate::{
    broker::{RequestStats, SubscriptionInfo},
    topic::Pattern,
};

/// Broker-wide counters.
#[derive(Debug, Default)]
pub struct Traffic {
    published: AtomicU64,
    published_bytes: AtomicU64,
    answered: AtomicU64,
    no_responders: AtomicU64,
    timed_out: AtomicU64,
}

/// How a request ended, for [`Traffic::request_ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    Answered,
    NoResponders,
    TimedOut,
}

impl Traffic {
    /// A batch of `messages` carrying `bytes` of payload was accepted.
    pub fn published(&self, messages: usize, bytes: usize) {
        self.published.fetch_add(messages as u64, Ordering::Relaxed);
        self.published_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn request_ended(&self, end: RequestEnd) {
        let counter = match end {
            RequestEnd::Answered => &self.answered,
            RequestEnd::NoResponders => &self.no_responders,
            RequestEnd::TimedOut => &self.timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages and payload bytes published.
    pub fn publishes(&self) -> (u64, u64) {
        (
            self.published.load(Ordering::Relaxed),
            self.published_bytes.load(Ordering::Relaxed),
        )
    }

    /// Requests by outcome; `late_replies` comes from the reply router.
    pub fn requests(&self, late_replies: u64) -> RequestStats {
        RequestStats {
            answered: self.answered.load(Ordering::Relaxed),
            no_responders: self.no_responders.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            late_replies,
        }
    }
}

/// The subscriptions open, by pattern, with the counts of those already closed so that a pattern's
/// counters only grow while it has subscribers.
#[derive(Debug, Default)]
pub struct Subscriptions {
    patterns: Mutex<HashMap<Pattern, PatternSubscriptions>>,
}

#[derive(Debug, Default)]
struct PatternSubscriptions {
    open: HashMap<EntryId, Arc<SubscriberQueue>>,
    /// What the pattern's closed subscriptions counted.
    closed: SubscriberCounts,
}

impl Subscriptions {
    pub fn opened(&self, pattern: &Pattern, entry: EntryId, queue: Arc<SubscriberQueue>) {
        self.patterns
            .lock()
            .entry(pattern.clone())
            .or_default()
            .open
            .insert(entry, queue);
    }

    /// Forgets a subscription, keeping its counts with its pattern's while others remain.
    pub fn closed(&self, pattern: &Pattern, entry: EntryId) {
        let mut patterns = self.patterns.lock();
        let Some(subscriptions) = patterns.get_mut(pattern) else {
            return;
        };
        if let Some(queue) = subscriptions.open.remove(&entry) {
            subscriptions.closed.add(&queue.counts());
        }
        if subscriptions.open.is_empty() {
            patterns.remove(pattern);
        }
    }

    /// One entry per pattern with subscribers, sorted by pattern.
    pub fn list(&self) -> Vec<SubscriptionInfo> {
        let patterns = self.patterns.lock();
        let mut listed: Vec<SubscriptionInfo> = patterns
            .iter()
            .map(|(pattern, subscriptions)| {
                let mut counts = subscriptions.closed;
                // The closed ones buffer nothing any more.
                counts.buffered = 0;
                for queue in subscriptions.open.values() {
                    counts.add(&queue.counts());
                }
                SubscriptionInfo {
                    pattern: pattern.clone(),
                    subscribers: u32::try_from(subscriptions.open.len()).unwrap_or(u32::MAX),
                    buffered: counts.buffered,
                    delivered: counts.delivered,
                    gaps: counts.gaps,
                    slow_events: counts.slow_events,
                }
            })
            .collect();
        listed.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        listed
    }
}
