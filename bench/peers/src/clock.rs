//! The run's timeline (warmup, then the measured window), and the bounded drain after it.
//!
//! Every timestamp is nanoseconds since one `Instant`, the origin, shared by every task.

use std::time::{Duration, Instant};

use switchyard_loadgen::measure::Timeline;
use tokio::sync::oneshot;

/// How long the drain waits, after the last publish was answered, for receivers to get everything:
/// the same limit as `switchyard bench`.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How often the drain checks.
const POLL: Duration = Duration::from_millis(10);

/// Warmup from the origin, then the measured window `[measure_start, measure_end)`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    measure_start: u64,
    measure_end: u64,
}

impl Clock {
    fn start(warmup: Duration, duration: Duration) -> Self {
        let measure_start = nanos(warmup);
        Self {
            origin: Instant::now(),
            measure_start,
            measure_end: measure_start.saturating_add(nanos(duration)),
        }
    }

    /// The same run as the shared crate's `Timeline`, which its receivers' counting takes.
    pub fn timeline(&self) -> Timeline {
        Timeline {
            origin: self.origin,
            start: self.instant(self.measure_start),
            end: self.instant(self.measure_end),
        }
    }

    /// Nanoseconds since the origin.
    pub fn now(&self) -> u64 {
        nanos(self.origin.elapsed())
    }

    pub fn in_window(&self, at: u64) -> bool {
        (self.measure_start..self.measure_end).contains(&at)
    }

    /// The instant `at` nanoseconds after the origin.
    pub fn instant(&self, at: u64) -> Instant {
        self.origin + Duration::from_nanos(at)
    }

    pub fn measure_start(&self) -> Instant {
        self.origin + Duration::from_nanos(self.measure_start)
    }

    pub fn measure_end(&self) -> Instant {
        self.origin + Duration::from_nanos(self.measure_end)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Handed to a scenario, which starts the clock once its connections are up, so that connecting
/// does not eat into the warmup. The CPU sampler, at the other end, learns the timeline then.
#[derive(Debug)]
pub struct Start {
    warmup: Duration,
    duration: Duration,
    started: oneshot::Sender<Clock>,
}

impl Start {
    pub fn new(warmup: Duration, duration: Duration) -> (Self, oneshot::Receiver<Clock>) {
        let (started, receiver) = oneshot::channel();
        (
            Self {
                warmup,
                duration,
                started,
            },
            receiver,
        )
    }

    /// Starts the clock: the warmup begins now.
    pub fn now(self) -> Clock {
        let clock = Clock::start(self.warmup, self.duration);
        // Nobody waiting for the timeline is no reason to stop the run.
        let _ = self.started.send(clock);
        clock
    }
}

/// Waits until the measured window is over.
pub async fn window_over(clock: Clock) {
    tokio::time::sleep_until(clock.measure_end().into()).await;
}

/// Waits until `done` holds, for at most [`DRAIN_LIMIT`]; returns whether it did.
pub async fn drain(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}
