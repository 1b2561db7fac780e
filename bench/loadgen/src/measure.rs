//! What every scenario measures with: the window that counts, the stamp a payload carries (who sent
//! it, its sequence number, when), and what a receiver makes of the stamps it gets.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};

use crate::{latency::Latency, sequence::SequenceSet};

/// Bytes of a payload the stamp takes: 8 for the source and sequence number, 8 for the send time.
pub const STAMP_BYTES: usize = 16;

/// Bits of the stamp's first word that hold the sequence number; the source (publisher) index is in
/// the 16 bits above them, so one word says who sent what.
const SEQUENCE_BITS: u32 = 48;

/// When a run started, and the part of it that is measured (after the warmup).
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// What send times in a stamp count from: one `Instant` shared by every task of the run.
    pub origin: Instant,
    /// The end of the warmup.
    pub start: Instant,
    pub end: Instant,
}

impl Timeline {
    /// A timeline starting now.
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        let origin = Instant::now();
        let start = origin + warmup;
        Self {
            origin,
            start,
            end: start + duration,
        }
    }

    /// Whether `at` falls in the measured window.
    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }

    /// `at` as nanoseconds since the origin (a `u64` of nanoseconds lasts 584 years).
    pub fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The head of every payload: 8 bytes of source index and sequence number, then 8 bytes of send time
/// in nanoseconds since the run's origin, both big-endian; zeros pad the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publisher (or request loop) that sent it.
    pub source: u16,
    /// Counts from 0 per source; only the low 48 bits travel.
    pub sequence: u64,
    pub sent_ns: u64,
}

impl Stamp {
    /// The payload: the stamp, padded with zeros to `payload_bytes` (at least [`STAMP_BYTES`]).
    pub fn encode(&self, payload_bytes: usize) -> Bytes {
        let mut payload = BytesMut::with_capacity(payload_bytes.max(STAMP_BYTES));
        self.write(&mut payload, payload_bytes);
        payload.freeze()
    }

    /// Appends the payload to `buf`.
    fn write(&self, buf: &mut BytesMut, payload_bytes: usize) {
        let sequence = self.sequence & ((1 << SEQUENCE_BITS) - 1);
        buf.put_u64((u64::from(self.source) << SEQUENCE_BITS) | sequence);
        buf.put_u64(self.sent_ns);
        buf.put_bytes(0, payload_bytes.saturating_sub(STAMP_BYTES));
    }

    /// The stamp at the head of `payload`; `None` if it is too short to hold one.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let head = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
        let sent_ns = u64::from_be_bytes(payload.get(8..STAMP_BYTES)?.try_into().ok()?);
        Some(Self {
            // The shift leaves 16 bits, so the cast loses nothing.
            source: (head >> SEQUENCE_BITS) as u16,
            sequence: head & ((1 << SEQUENCE_BITS) - 1),
            sent_ns,
        })
    }
}

/// Writes stamped payloads of one size, carving them out of one buffer allocated for many: a
/// publisher at a million messages a second should not allocate for each.
#[derive(Debug)]
pub struct StampWriter {
    payload_bytes: usize,
    buf: BytesMut,
}

impl StampWriter {
    /// Payloads allocated together.
    const CHUNK: usize = 512;

    pub fn new(payload_bytes: usize) -> Self {
        let payload_bytes = payload_bytes.max(STAMP_BYTES);
        Self {
            payload_bytes,
            buf: BytesMut::with_capacity(payload_bytes * Self::CHUNK),
        }
    }

    pub fn write(&mut self, stamp: Stamp) -> Bytes {
        if self.buf.capacity() < self.payload_bytes {
            self.buf.reserve(self.payload_bytes * Self::CHUNK);
        }
        stamp.write(&mut self.buf, self.payload_bytes);
        self.buf.split().freeze()
    }
}

/// What one receiver (subscriber or consumer) saw of the stamped messages.
#[derive(Debug)]
pub struct Tracker {
    timeline: Timeline,
    /// Per source, how many sequence numbers it has issued; a stamp beyond that is not ours.
    issued: Arc<[AtomicU64]>,
    /// Per source, the sequence numbers received.
    pub seen: Vec<SequenceSet>,
    /// Per source, the highest sequence received so far; only when order is checked.
    highest: Option<Vec<Option<u64>>>,
    /// Distinct messages received plus those reported missed; read by the drain to know when this
    /// receiver has everything.
    settled: Arc<AtomicU64>,
    distinct: u64,
    missed: u64,
    pub latency: Latency,
    /// Deliveries received within the measured window (duplicates included).
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Payloads that carry no stamp of this run.
    pub foreign: u64,
}

impl Tracker {
    /// A tracker of the sources behind `issued`, checking per-source order if `check_order`.
    pub fn new(timeline: Timeline, issued: Arc<[AtomicU64]>, check_order: bool) -> Self {
        let sources = issued.len();
        Self {
            timeline,
            issued,
            seen: vec![SequenceSet::default(); sources],
            highest: check_order.then(|| vec![None; sources]),
            settled: Arc::default(),
            distinct: 0,
            missed: 0,
            latency: Latency::default(),
            delivered: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
        }
    }

    /// The counter of settled messages (distinct plus missed), for the drain and the progress bar.
    pub fn settled(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.settled)
    }

    /// Counts a message received now.
    pub fn record(&mut self, payload: &[u8]) {
        let received_at = Instant::now();
        let Some(stamp) = Stamp::decode(payload) else {
            self.foreign += 1;
            return;
        };
        let source = usize::from(stamp.source);
        let issued = self
            .issued
            .get(source)
            .map_or(0, |issued| issued.load(Ordering::Relaxed));
        if stamp.sequence >= issued {
            self.foreign += 1;
            return;
        }
        if self.seen[source].insert(stamp.sequence) {
            self.distinct += 1;
        } else {
            self.duplicates += 1;
        }
        if let Some(highest) = &mut self.highest {
            match highest[source] {
                Some(top) if stamp.sequence < top => self.out_of_order += 1,
                _ => highest[source] = Some(stamp.sequence),
            }
        }
        if self.timeline.contains(received_at) {
            self.delivered += 1;
            let sent_at = self.timeline.origin + Duration::from_nanos(stamp.sent_ns);
            self.latency
                .record(received_at.saturating_duration_since(sent_at));
        }
        self.publish_settled();
    }

    /// Counts `missed` messages the broker dropped for this receiver (a Gap).
    pub fn record_missed(&mut self, missed: u64) {
        self.missed += missed;
        self.publish_settled();
    }

    pub fn missed(&self) -> u64 {
        self.missed
    }

    fn publish_settled(&self) {
        self.settled
            .store(self.distinct + self.missed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_payload() {
        let stamp = Stamp {
            source: 3,
            sequence: 123_456_789,
            sent_ns: 987_654_321_000,
        };
        let payload = stamp.encode(128);
        assert_eq!(payload.len(), 128);
        assert_eq!(Stamp::decode(&payload), Some(stamp));
        assert_eq!(stamp.encode(4).len(), STAMP_BYTES);
        assert_eq!(Stamp::decode(&payload[..15]), None);
    }

    #[test]
    fn a_writer_writes_what_encode_does() {
        let mut writer = StampWriter::new(128);
        let stamp = Stamp {
            source: 3,
            sequence: 123_456_789,
            sent_ns: 987_654_321,
        };
        let first = writer.write(stamp);
        assert_eq!(first, stamp.encode(128));
        let next = Stamp {
            sequence: 1,
            ..stamp
        };
        assert_eq!(Stamp::decode(&writer.write(next)), Some(next));
        assert_eq!(
            Stamp::decode(&first),
            Some(stamp),
            "earlier payloads stay as written"
        );
    }

    #[test]
    fn a_tracker_counts_duplicates_order_and_foreign_payloads() {
        let issued: Arc<[AtomicU64]> = Arc::from([AtomicU64::new(10)]);
        let timeline = Timeline::new(Duration::ZERO, Duration::from_secs(60));
        let mut tracker = Tracker::new(timeline, issued, true);
        let payload = |sequence| {
            Stamp {
                source: 0,
                sequence,
                sent_ns: timeline.nanos(Instant::now()),
            }
            .encode(16)
        };
        for sequence in [0, 2, 1, 2] {
            tracker.record(&payload(sequence));
        }
        tracker.record(&payload(10)); // never issued
        tracker.record(b"short");
        assert_eq!(tracker.duplicates, 1);
        assert_eq!(tracker.out_of_order, 1);
        assert_eq!(tracker.foreign, 2);
        assert_eq!(tracker.delivered, 4);
        assert!(tracker.latency.quantile_us(0.5).is_some());
        assert_eq!(tracker.settled().load(Ordering::Relaxed), 3);
    }
}
