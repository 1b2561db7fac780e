//! What the committer counts as it goes, for monitoring: frames (one fsync each), records, the log's
//! size, and histograms of fsync latency and records per fsync. Plain atomics, touched once per
//! frame by the committer thread and read by whoever asks.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::log::Usage;

/// Upper bounds of the fsync latency buckets, in seconds: 50 µs (a battery-backed cache) to 1 s (a
/// disk in trouble).
const FSYNC_BOUNDS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// Upper bounds of the records-per-fsync buckets: one lone publisher up to a crowd.
const BATCH_BOUNDS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// A histogram's state now: the count in each bucket (not cumulative) by its upper bound (the last
/// is infinite), the count and the sum.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

/// Fixed buckets of atomic counts. The sum is kept in integer units (`unit` of the value each), so
/// recording is two relaxed adds.
#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// One per bound, then the overflow; not cumulative.
    counts: Vec<AtomicU64>,
    sum_units: AtomicU64,
    unit: f64,
}

impl Buckets {
    fn new(bounds: &'static [f64], unit: f64) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_units: AtomicU64::new(0),
            unit,
        }
    }

    fn record(&self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_units
            .fetch_add((value / self.unit).round() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|(_, count)| count).sum(),
            buckets,
            sum: self.sum_units.load(Ordering::Relaxed) as f64 * self.unit,
        }
    }
}

/// How many fsyncs carried how many records, how long they took, and what the log takes.
#[derive(Debug)]
pub struct CommitStats {
    frames: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    segments: AtomicU64,
    fsync_seconds: Buckets,
    batch_records: Buckets,
}

impl Default for CommitStats {
    fn default() -> Self {
        Self {
            frames: AtomicU64::default(),
            records: AtomicU64::default(),
            bytes: AtomicU64::default(),
            segments: AtomicU64::default(),
            fsync_seconds: Buckets::new(&FSYNC_BOUNDS, 1e-9),
            batch_records: Buckets::new(&BATCH_BOUNDS, 1.0),
        }
    }
}

impl CommitStats {
    /// What the log's files take, as of the last commit or removal.
    pub fn disk_usage(&self) -> Usage {
        Usage {
            bytes: self.bytes.load(Ordering::Relaxed),
            segments: self.segments.load(Ordering::Relaxed),
        }
    }

    pub(super) fn usage(&self, usage: Usage) {
        self.bytes.store(usage.bytes, Ordering::Relaxed);
        self.segments.store(usage.segments, Ordering::Relaxed);
    }

    /// A frame of `records` committed (written and fsynced) in `took`.
    pub(super) fn committed(&self, records: usize, took: Duration) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.fsync_seconds.record(took.as_secs_f64());
        self.batch_records.record(records as f64);
    }

    /// Frames written (one fsync each) and records they carried.
    pub fn frames_and_records(&self) -> (u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.records.load(Ordering::Relaxed),
        )
    }

    /// How long each commit's write and fsync took.
    pub fn fsync_seconds(&self) -> HistogramSnapshot {
        self.fsync_seconds.snapshot()
    }

    /// How many records each fsync carried.
    pub fn batch_records(&self) -> HistogramSnapshot {
        self.batch_records.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_what_falls_in_them_and_end_at_infinity() {
        let stats = CommitStats::default();
        stats.committed(1, Duration::from_micros(40));
        stats.committed(3, Duration::from_millis(3));
        stats.committed(5000, Duration::from_secs(2));
        let batch = stats.batch_records();
        assert_eq!(batch.count, 3);
        assert_eq!(batch.sum, 5004.0);
        assert_eq!(batch.buckets[0], (1.0, 1));
        assert_eq!(batch.buckets[1], (2.0, 0));
        assert_eq!(batch.buckets[2], (4.0, 1));
        assert_eq!(batch.buckets.last(), Some(&(f64::INFINITY, 1)));
        let fsync = stats.fsync_seconds();
        assert_eq!(fsync.buckets[0], (0.000_05, 1));
        assert_eq!(fsync.buckets[6], (0.005, 1));
        assert_eq!(fsync.buckets[13], (1.0, 0));
        assert_eq!(fsync.buckets[14], (f64::INFINITY, 1));
        assert!((fsync.sum - 2.003_04).abs() < 1e-9);
        assert_eq!(stats.frames_and_records(), (3, 5004));
    }
}
