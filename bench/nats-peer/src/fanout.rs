//! fanout: core NATS publish/subscribe. `--publishers` publishers and `--subscribers` plain
//! (non-queue) subscribers of one subject, each on its own connection. Every subscriber should get
//! every message, in each publisher's order.
//!
//! Core NATS has no acks and no flow control beyond TCP, so the [`Window`] credit is what keeps a
//! subscriber from being overrun, as in `switchyard bench`. A subscriber whose connection dropped
//! messages (async-nats' per-subscription buffer overflowed, or the server cut it off as a slow
//! consumer) counts what it missed as gaps, not loss; one whose connection broke is not counted
//! for loss; either stops holding the publishers back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subscriber;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Start};
use crate::config::Args;
use crate::connection::{Connection, Counters, Events};
use crate::credit::{Credit, Window};
use crate::publish::{Mode, Publishers, Setup, Tally};
use crate::report::Counts;
use crate::tally::Tracker;

const SUBJECT: &str = "bench.fanout";

/// What one subscriber saw.
struct Received {
    tracker: Tracker,
    counters: Arc<Counters>,
    /// Its subscription ended before the run did.
    ended: bool,
}

pub async fn run(args: &Args, events: &Events, start: Start) -> Result<Counts, String> {
    let mut subscriptions = Vec::new();
    for index in 0..args.subscribers {
        let connection =
            Connection::open(&args.server, &format!("subscriber-{index}"), events).await?;
        let subscription = connection
            .client
            .subscribe(SUBJECT)
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        // The server has the subscription once the flush's PONG is back, so the first publish
        // cannot miss it.
        connection
            .client
            .flush()
            .await
            .map_err(|e| format!("flush: {e}"))?;
        subscriptions.push((connection, subscription));
    }
    let publishers = Publishers::connect(&args.server, args.publishers.into(), events).await?;
    let window = Window::new(subscriptions.len(), args.window as usize);

    let clock = start.now();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let mut counters = Vec::new();
    let receivers: Vec<JoinHandle<Received>> = subscriptions
        .into_iter()
        .enumerate()
        .map(|(lane, (connection, subscription))| {
            let tracker = Tracker::new(clock, publishers.issued(), true);
            settled.push(tracker.settled());
            counters.push(Arc::clone(&connection.counters));
            tokio::spawn(receive(
                connection,
                subscription,
                tracker,
                window.lane(lane),
                stop.clone(),
            ))
        })
        .collect();
    let watchdog = tokio::spawn(release_troubled(counters, window.clone(), stop.clone()));
    let setup = Setup {
        subject: SUBJECT,
        mode: Mode::Core,
        payload_bytes: args.payload_bytes as usize,
        window: args.window as usize,
        rate: args.rate,
    };
    let publishing = publishers.start(setup, clock, &window);
    clock::window_over(clock).await;
    let tallies = publishing.stop().await?;
    let accepted: u64 = tallies.iter().map(|tally| tally.accepted).sum();
    clock::drain(|| {
        settled.iter().enumerate().all(|(lane, settled)| {
            !window.is_open(lane) || settled.load(Ordering::Relaxed) >= accepted
        })
    })
    .await;
    stop.cancel();
    let _ = watchdog.await;

    let mut counts = Counts::from_tallies(&tallies);
    for receiver in receivers {
        let received = receiver
            .await
            .map_err(|e| format!("a subscriber failed: {e}"))?;
        count(&mut counts, received, &tallies);
    }
    Ok(counts)
}

/// Adds what one subscriber saw to `counts`.
fn count(counts: &mut Counts, received: Received, tallies: &[Tally]) {
    let Received {
        tracker,
        counters,
        ended,
    } = received;
    let missing: u64 = tracker
        .seen
        .iter()
        .zip(tallies)
        .map(|(seen, tally)| seen.missing(tally.issued, &tally.failed))
        .sum();
    if counters.slow_consumer.load(Ordering::Relaxed) > 0 {
        counts.gaps += missing;
    } else if !ended && counters.disconnects.load(Ordering::Relaxed) == 0 {
        counts.lost += missing;
    }
    counts.delivered += tracker.delivered;
    counts.latency.merge(&tracker.latency);
    counts.duplicates += tracker.duplicates;
    counts.out_of_order += tracker.out_of_order;
    counts.errors += tracker.foreign + u64::from(ended);
    if ended {
        counts
            .first_error
            .get_or_insert_with(|| "a subscription ended early".to_owned());
    }
}

/// Receives until stopped, counting every message and giving credit back.
async fn receive(
    connection: Connection,
    mut subscription: Subscriber,
    mut tracker: Tracker,
    mut credit: Credit,
    stop: CancellationToken,
) -> Received {
    while let Some(message) = credit.next(&mut subscription, &stop).await {
        tracker.record(&message.payload);
        credit.received(1);
    }
    Received {
        tracker,
        counters: connection.counters,
        ended: !stop.is_cancelled(),
    }
}

/// Closes the credit lane of a subscriber whose connection dropped messages or broke: those
/// messages will never come, so the publishers must not wait for them.
async fn release_troubled(counters: Vec<Arc<Counters>>, window: Window, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        for (lane, counters) in counters.iter().enumerate() {
            if counters.troubled() && window.is_open(lane) {
                window.close(lane);
            }
        }
    }
}
