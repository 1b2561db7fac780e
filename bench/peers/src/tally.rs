//! What a receiver saw: which sequence numbers of each publisher arrived (loss and duplicates),
//! whether they came in order, how many within the measured window, and their latency. The same
//! counting rules as `switchyard bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::payload;

/// Longest latency the histogram holds (60 s, in ns); a longer one is recorded as this.
const LATENCY_CEILING_NS: u64 = 60_000_000_000;

/// The sequence numbers of one publisher that arrived, one bit each.
#[derive(Debug, Default, Clone)]
pub struct SequenceSet {
    words: Vec<u64>,
}

impl SequenceSet {
    /// Adds `seq`; false if it was there already.
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = Self::position(seq);
        if word >= self.words.len() {
            self.words.resize((word + 1).next_power_of_two(), 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    pub fn contains(&self, seq: u64) -> bool {
        let (word, bit) = Self::position(seq);
        self.words.get(word).is_some_and(|word| word & bit != 0)
    }

    /// Adds every member of `other`; returns how many were here already (duplicates across
    /// receivers of one group).
    pub fn merge(&mut self, other: &Self) -> u64 {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        let mut overlap = 0;
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            overlap += u64::from((*mine & theirs).count_ones());
            *mine |= theirs;
        }
        overlap
    }

    /// How many of `0..issued` are missing, not counting `excused` (publishes that failed, so
    /// the messages were never in the broker).
    pub fn missing(&self, issued: u64, excused: &[u64]) -> u64 {
        let present = (0..issued).filter(|&seq| self.contains(seq)).count() as u64;
        let excused = excused
            .iter()
            .filter(|&&seq| seq < issued && !self.contains(seq))
            .count() as u64;
        issued.saturating_sub(present + excused)
    }

    fn position(seq: u64) -> (usize, u64) {
        // Receivers check a sequence against what was issued before inserting it, so the bitmap
        // stays within one bit per message sent.
        ((seq / 64) as usize, 1 << (seq % 64))
    }
}

/// A latency histogram in nanoseconds, three significant figures, up to 60 s.
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
        Self(Histogram::new_with_bounds(1, LATENCY_CEILING_NS, 3).expect("valid constant bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, nanos: u64) {
        self.0.saturating_record(nanos.max(1));
    }

    pub fn merge(&mut self, other: &Self) {
        // Same bounds on both, and saturating records keep every value inside them.
        let _ = self.0.add(&other.0);
    }

    /// The latency at `quantile` in microseconds; `None` when nothing was recorded.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(quantile) as f64 / 1_000.0)
    }
}

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
            self.latency
                .record(received_at.saturating_sub(stamp.sent_ns));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Duplicates, overlaps between receivers and holes are told apart; failed publishes are
    /// excused.
    #[test]
    fn sequence_sets() {
        let mut a = SequenceSet::default();
        assert!(a.insert(0));
        assert!(a.insert(70));
        assert!(!a.insert(70));
        let mut b = SequenceSet::default();
        b.insert(70);
        b.insert(1);
        assert_eq!(a.merge(&b), 1);
        assert_eq!(a.missing(100, &[5]), 96);
        assert_eq!(a.missing(2, &[]), 0);
        assert_eq!(a.missing(0, &[]), 0);
    }

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
