//! What a receiver saw: which sequence numbers of each publisher arrived (loss and duplicates),
//! whether they came in order, how many within the measured window, and their latency. The same
//! counting rules as `switchyard bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

pub use switchyard_loadgen::{latency::Latency, sequence::SequenceSet};

use crate::clock::Clock;
use crate::payload;

/// What one receiver (subscriber or worker) saw of the stamped messages.
pub struct Tracker {
    clock: Clock,
    /// Per publisher, how many sequence numbers it has issued; a stamp beyond that is not ours.
    issued: Arc<[AtomicU64]>,
    /// Per publisher, the sequence numbers received.
    pub seen: Vec<SequenceSet>,
    /// Per publisher, the highest sequence so far; only when order is checked.
    highest: Option<Vec<Option<u64>>>,
    /// Distinct messages received, for the drain.
    settled: Arc<AtomicU64>,
    distinct: u64,
    pub latency: Latency,
    /// Deliveries received within the measured window, duplicates included.
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Payloads that carry no stamp of this run.
    pub foreign: u64,
}

impl Tracker {
    pub fn new(clock: Clock, issued: Arc<[AtomicU64]>, check_order: bool) -> Self {
        let publishers = issued.len();
        Self {
            clock,
            issued,
            seen: vec![SequenceSet::default(); publishers],
            highest: check_order.then(|| vec![None; publishers]),
            settled: Arc::default(),
            distinct: 0,
            latency: Latency::default(),
            delivered: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
        }
    }

    /// The count of distinct messages received, read by the drain.
    pub fn settled(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.settled)
    }

    /// Counts a message received now.
    pub fn record(&mut self, payload: &[u8]) {
        let received_at = self.clock.now();
        let Some(stamp) = payload::read(payload) else {
            self.foreign += 1;
            return;
        };
        let publisher = usize::from(stamp.publisher);
        let issued = self
            .issued
            .get(publisher)
            .map_or(0, |issued| issued.load(Ordering::Relaxed));
        if stamp.seq >= issued {
            self.foreign += 1;
            return;
        }
        if self.seen[publisher].insert(stamp.seq) {
            self.distinct += 1;
            self.settled.store(self.distinct, Ordering::Relaxed);
        } else {
            self.duplicates += 1;
        }
        if let Some(highest) = &mut self.highest {
            match highest[publisher] {
                Some(top) if stamp.seq < top => self.out_of_order += 1,
                _ => highest[publisher] = Some(stamp.seq),
            }
        }
        if self.clock.in_window(received_at) {
            self.delivered += 1;
            self.latency.record(Duration::from_nanos(
                received_at.saturating_sub(stamp.sent_ns),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A tracker counts duplicates, arrivals out of order, and payloads that are not this run's.
    #[test]
    fn tracker() {
        let issued: Arc<[AtomicU64]> = Arc::from([AtomicU64::new(10)]);
        let (start, _) = crate::clock::Start::new(Duration::ZERO, Duration::from_secs(60));
        let clock = start.now();
        let mut tracker = Tracker::new(clock, issued, true);
        let mut writer = payload::PayloadWriter::new(16);
        let mut stamp = |seq| {
            writer.write(payload::Stamp {
                publisher: 0,
                seq,
                sent_ns: clock.now(),
            })
        };
        for seq in [0, 2, 1, 2, 10] {
            tracker.record(&stamp(seq));
        }
        tracker.record(b"short");
        assert_eq!(tracker.duplicates, 1);
        assert_eq!(tracker.out_of_order, 1);
        assert_eq!(tracker.foreign, 2);
        assert_eq!(tracker.delivered, 4);
        assert!(tracker.latency.quantile_us(0.5).is_some());
        assert_eq!(tracker.settled().load(Ordering::Relaxed), 3);
    }
}
