//! Small pieces the fault tests share: a seeded random source (the seed is printed, so a failing run
//! can be replayed) and a connection to any address, such as a proxy in front of the server.

use std::{net::SocketAddr, time::Duration};

use tonic::transport::{Channel, Endpoint};

use super::within;

/// SplitMix64: enough randomness to vary timings and choices, with no dependency. Not for anything
/// that needs unpredictability.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `SWITCHYARD_TEST_SEED` when set, else from the clock; prints the seed.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("SWITCHYARD_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        println!("{what}: seed {seed} (set SWITCHYARD_TEST_SEED={seed} to replay)");
        Self(seed)
    }

    /// A generator of its own, for a task, drawn from a seeded one so a run stays replayable.
    pub fn from_seed(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A duration in `low..=high`, to the millisecond.
    pub fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        Duration::from_millis(self.between(low.as_millis() as u64, high.as_millis() as u64))
    }
}

/// A new HTTP/2 connection to `addr`, with tonic's defaults.
pub async fn connect(addr: SocketAddr) -> Channel {
    within(
        "a connection",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid endpoint URI")
            .connect(),
    )
    .await
    .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"))
}
