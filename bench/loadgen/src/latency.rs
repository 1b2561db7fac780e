//! Latency as the load generators record it: an HDR histogram in nanoseconds, three significant
//! figures, reported in microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Longest latency the histogram holds; a longer one is recorded as this.
const LATENCY_CEILING: Duration = Duration::from_secs(60);

/// A latency histogram in nanoseconds, three significant figures, up to [`LATENCY_CEILING`].
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        let ceiling = u64::try_from(LATENCY_CEILING.as_nanos()).unwrap_or(u64::MAX);
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
        let histogram =
            Histogram::new_with_bounds(1, ceiling, 3).expect("valid constant histogram bounds");
        Self(histogram)
    }
}

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.0.saturating_record(nanos.max(1));
    }

    pub fn merge(&mut self, other: &Self) {
        // Both have the same bounds, and saturating recording keeps every value within them, so the
        // addition cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// The latency at `quantile` (0.5 is the median) in microseconds; `None` if nothing was recorded.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(quantile) as f64 / 1_000.0)
    }
}
