//! fanout, the part every broker shares: `--publishers` publishers and `--subscribers`
//! subscribers of one subject, each on its own connection. Every subscriber should get every
//! message, in each publisher's order.
//!
//! The brokers' pub/sub have no acks and no flow control beyond TCP, so the [`Window`] credit,
//! one lane per subscriber, is what keeps a subscriber from being overrun, as in
//! `switchyard bench`. A subscriber that can no longer get everything (its subscription ended, or
//! its broker says it dropped messages) stops holding the publishers back, and what it missed
//! counts as its broker says ([`Missing`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Start;
use crate::config::Args;
use crate::publish::{Load, Publisher, Publishers, Tally};
use crate::report::Counts;
use switchyard_loadgen::credit::Window;
use switchyard_loadgen::measure::Tracker;

/// How often subscribers' trouble is checked.
const TROUBLE_CHECK: Duration = Duration::from_millis(20);

/// A check that a subscriber's messages may have gone missing for reasons of its own connection.
pub type Trouble = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the messages a subscriber missed count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Lost,
    /// Its broker said it dropped them (NATS: a slow consumer).
    Gaps,
    /// Nothing: its connection broke or its subscription ended, so they say nothing about the
    /// broker's delivery to subscribers that keep up.
    Uncounted,
}

/// One subscriber, subscribed and ready.
pub trait Subscription: Send + 'static {
    type Messages: Stream + Unpin + Send;
    /// Said (as an error) of a subscription that ended before the run did.
    const ENDED_EARLY: &'static str;

    fn messages(&mut self) -> &mut Self::Messages;

    fn payload(message: &<Self::Messages as Stream>::Item) -> &[u8];

    /// A check, polled while the run lasts, whose `true` closes this subscriber's credit lane;
    /// `None` when its broker never says.
    fn trouble(&self) -> Option<Trouble>;

    /// What the messages it missed count as, once it stopped; `ended` if it stopped early.
    fn missing(&self, ended: bool) -> Missing;
}

/// What one subscriber saw.
struct Received {
    tracker: Tracker,
    missing: Missing,
    /// Its subscription ended before the run did.
    ended: bool,
}

/// Runs the scenario with `subscriptions` and `publishers`, connected beforehand.
pub async fn deliver<S: Subscription, P: Publisher>(
    args: &Args,
    start: Start,
    subscriptions: Vec<S>,
    publishers: Publishers<P>,
) -> Result<Counts, String> {
    let window = Window::new(subscriptions.len(), args.window as usize);

    let clock = start.now();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let mut troubles = Vec::new();
    let receivers: Vec<JoinHandle<Received>> = subscriptions
        .into_iter()
        .enumerate()
        .map(|(lane, subscription)| {
            let tracker = Tracker::new(clock.timeline(), publishers.issued(), true);
            settled.push(tracker.settled());
            if let Some(trouble) = subscription.trouble() {
                troubles.push((lane, trouble));
            }
            tokio::spawn(receive(
                subscription,
                tracker,
                window.clone(),
                lane,
                stop.clone(),
            ))
        })
        .collect();
    let watchdog = (!troubles.is_empty())
        .then(|| tokio::spawn(release_troubled(troubles, window.clone(), stop.clone())));
    let publishing = publishers.start(Load::of(args), clock, &window);
    let tallies = publishing
        .until_drained(clock, |accepted| window.all_received(&settled, accepted))
        .await?;
    stop.cancel();
    if let Some(watchdog) = watchdog {
        let _ = watchdog.await;
    }

    let mut counts = Counts::from_tallies(&tallies);
    for receiver in receivers {
        let received = receiver
            .await
            .map_err(|e| format!("a subscriber failed: {e}"))?;
        count(&mut counts, received, &tallies, S::ENDED_EARLY);
    }
    Ok(counts)
}

/// Adds what one subscriber saw to `counts`.
fn count(counts: &mut Counts, received: Received, tallies: &[Tally], ended_early: &str) {
    let Received {
        tracker,
        missing,
        ended,
    } = received;
    let missed: u64 = tracker
        .seen
        .iter()
        .zip(tallies)
        .map(|(seen, tally)| seen.missing(tally.issued, &tally.failed))
        .sum();
    match missing {
        Missing::Lost => counts.lost += missed,
        Missing::Gaps => counts.gaps += missed,
        Missing::Uncounted => {}
    }
    counts.delivered += tracker.delivered;
    counts.latency.merge(&tracker.latency);
    counts.duplicates += tracker.duplicates;
    counts.out_of_order += tracker.out_of_order;
    counts.errors += tracker.foreign;
    if ended {
        counts.error(|| ended_early.to_owned());
    }
}

/// Receives until stopped, counting every message and giving credit back on lane `lane`.
async fn receive<S: Subscription>(
    mut subscription: S,
    mut tracker: Tracker,
    window: Window,
    lane: usize,
    stop: CancellationToken,
) -> Received {
    let mut credit = window.lane(lane);
    while let Some(message) = credit.next(subscription.messages(), &stop).await {
        tracker.record(S::payload(&message));
        credit.received(1);
    }
    let ended = !stop.is_cancelled();
    if ended {
        // What it would have received will never come: hold no publisher back for it.
        window.close(lane);
    }
    Received {
        tracker,
        missing: subscription.missing(ended),
        ended,
    }
}

/// Closes the credit lane of a subscriber in trouble: the messages it missed will never come, so
/// the publishers must not wait for them.
async fn release_troubled(
    troubles: Vec<(usize, Trouble)>,
    window: Window,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TROUBLE_CHECK);
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        for (lane, trouble) in &troubles {
            if trouble() && window.is_open(*lane) {
                window.close(*lane);
            }
        }
    }
}
