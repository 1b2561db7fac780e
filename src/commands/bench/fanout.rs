//! The fan-out scenario: `--publishers` publishers and `--subscribers` subscribers of one topic, each
//! on its own connection. Every subscriber should get every message, in each publisher's order. A
//! subscriber the broker dropped messages for (a Gap) or whose connection dropped is not counted for
//! loss, and no longer holds the publishers back.

use switchyard_client::{Event, Subscription};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Counts, Failure, Session, drain,
    publish::{Credit, Publishers, Tally, Window},
};
use crate::commands::describe;
use switchyard_loadgen::measure::Tracker;

/// What one subscriber saw.
struct Subscriber {
    tracker: Tracker,
    /// It lost its connection or its stream ended: what it missed says nothing about the broker's
    /// guarantees to subscribers that keep up.
    broken: bool,
    error: Option<String>,
}

pub async fn run(session: &Session) -> Result<Counts, Failure> {
    let args = &session.args;
    let topic = session.topic.as_str();
    let mut subscriptions = Vec::new();
    for _ in 0..args.subscribers {
        let client = session.connect().await?;
        // Active once this returns: every message published from now on reaches it.
        let subscription = client
            .subscribe(topic)
            .await
            .map_err(|error| Failure::client(format!("cannot subscribe to {topic}"), error))?;
        subscriptions.push(subscription);
    }
    let publishers = Publishers::connect(session, args.publishers.into()).await?;
    let window = Window::new(subscriptions.len(), args.window as usize);
    let timeline = session.timeline();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let receivers: Vec<JoinHandle<Subscriber>> = subscriptions
        .into_iter()
        .enumerate()
        .map(|(lane, subscription)| {
            let tracker = Tracker::new(timeline, publishers.issued(), true);
            settled.push(tracker.settled());
            tokio::spawn(receive(
                subscription,
                tracker,
                window.lane(lane),
                stop.clone(),
            ))
        })
        .collect();
    let publishing = publishers.start(session, topic, timeline, &window);
    let cpu = session.measure(timeline, &settled).await;
    let tallies = publishing.stop().await?;
    let accepted: u64 = tallies.iter().map(|tally| tally.accepted).sum();
    drain(|| window.all_received(&settled, accepted)).await;
    stop.cancel();
    let mut counts = Counts {
        cpu,
        ..Counts::from_tallies(&tallies)
    };
    for receiver in receivers {
        let subscriber = receiver
            .await
            .map_err(|error| Failure::new(format!("a subscriber failed: {error}")))?;
        count(&mut counts, subscriber, &tallies);
    }
    Ok(counts)
}

/// Adds what one subscriber saw to `counts`.
fn count(counts: &mut Counts, subscriber: Subscriber, tallies: &[Tally]) {
    let Subscriber {
        tracker,
        broken,
        error,
    } = subscriber;
    if !broken && tracker.missed() == 0 {
        counts.lost += tracker
            .seen
            .iter()
            .zip(tallies)
            .map(|(seen, tally)| seen.missing(tally.issued, &tally.failed))
            .sum::<u64>();
    }
    counts.delivered += tracker.delivered;
    counts.latency.merge(&tracker.latency);
    counts.duplicates += tracker.duplicates;
    counts.out_of_order += tracker.out_of_order;
    counts.gaps += tracker.missed();
    counts.errors += tracker.foreign + u64::from(error.is_some());
    if let Some(error) = error {
        counts.first_error.get_or_insert(error);
    }
}

/// Receives until stopped, counting every message and giving credit back.
async fn receive(
    mut subscription: Subscription,
    mut tracker: Tracker,
    mut credit: Credit,
    stop: CancellationToken,
) -> Subscriber {
    let mut broken = false;
    let mut error = None;
    while let Some(event) = credit.next(&mut subscription, &stop).await {
        match event {
            Ok(Event::Message(message)) => {
                tracker.record(&message.payload);
                credit.received(1);
            }
            Ok(Event::Gap { missed }) => {
                tracker.record_missed(missed);
                credit.received(usize::try_from(missed).unwrap_or(usize::MAX));
            }
            // It resubscribes by itself, but what was published meanwhile is gone for it.
            Ok(Event::Disconnected { .. }) => {
                broken = true;
                credit.close();
            }
            Err(other) => {
                error = Some(format!("a subscription failed: {}", describe(&other)));
                break;
            }
        }
    }
    // Ended by the broker, not by the stop.
    if error.is_some() || !stop.is_cancelled() {
        broken = true;
        credit.close();
    }
    Subscriber {
        tracker,
        broken,
        error,
    }
}
