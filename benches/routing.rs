//! Criterion micro-benchmarks of the routing hot paths: matching topics against the subscription
//! trie, a queue group's state machine, publishing, consuming and settling through the `Broker` seam,
//! fan-out to many subscribers, and the wire conversion of a delivered message.
//!
//! Run with `cargo bench --bench routing`; `benches/RESULTS.md` holds the last recorded figures.
//! Asynchronous paths run on a single-threaded Tokio runtime, one `block_on` per sample, timing only
//! the operation itself: filling and draining queues between timed sections is left out.

// The parts live in `benches/routing/`, a folder Cargo does not take for benchmark targets of its own.
#[path = "routing/broker.rs"]
mod broker;
#[path = "routing/fixtures.rs"]
mod fixtures;
#[path = "routing/group_state.rs"]
mod group_state;
#[path = "routing/sublist.rs"]
mod sublist;
#[path = "routing/wire.rs"]
mod wire;

use std::time::Duration;

use criterion::{criterion_group, criterion_main};

use self::fixtures::CHUNK;

/// Runs `iters` timed operations in chunks of at most [`CHUNK`]: `chunk(n)` does `n` of them and
/// returns how long they took, leaving out the untimed set-up and clean-up it does around them.
fn chunked(iters: u64, mut chunk: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        total += chunk(n);
        left -= n;
    }
    total
}

/// [`chunked`] for asynchronous operations, in chunks of at most `size`.
async fn chunked_async(
    iters: u64,
    size: u64,
    mut chunk: impl AsyncFnMut(u64) -> Duration,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(size);
        total += chunk(n).await;
        left -= n;
    }
    total
}

criterion_group!(
    benches,
    sublist::benches,
    group_state::benches,
    broker::benches,
    wire::benches
);
criterion_main!(benches);
