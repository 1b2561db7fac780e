//! The queue and exclusive scenarios: `--publishers` publishers into one group, consumed by
//! `--consumers` competing consumers (shared) or by one exclusive consumer, each on its own
//! connection. Every delivery is acked through the client's batched settlement as soon as it is
//! counted. Each message should be delivered once across the group, and in publish order to an
//! exclusive consumer.
//!
//! The group is declared before anything is published and deleted at the end, so a run leaves
//! nothing behind on a shared broker.

use switchyard_client::{ConsumeMode, Consumer, GroupConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Counts, Failure, Session, drain,
    publish::{Credit, Publishers, Window},
    total,
};
use crate::commands::describe;
use switchyard_loadgen::{measure::Tracker, sequence::SequenceSet};

/// What one consumer saw.
struct Member {
    tracker: Tracker,
    error: Option<String>,
}

pub async fn run(session: &Session, mode: ConsumeMode) -> Result<Counts, Failure> {
    let (topic, group) = (session.topic.as_str(), session.group.as_str());
    let admin = session.connect().await?.admin();
    admin
        .declare_group(GroupConfig::new(topic, group).mode(mode))
        .await
        .map_err(|error| Failure::client(format!("cannot declare group {group}"), error))?;
    let counts = consume(session, mode).await;
    // Best effort: the run's result does not depend on it.
    let _ = admin.delete_group(topic, group).await;
    counts
}

async fn consume(session: &Session, mode: ConsumeMode) -> Result<Counts, Failure> {
    let args = &session.args;
    let (topic, group) = (session.topic.as_str(), session.group.as_str());
    let members = match mode {
        ConsumeMode::Exclusive => 1,
        ConsumeMode::Shared => args.consumers,
    };
    let mut consumers = Vec::new();
    for _ in 0..members {
        let client = session.connect().await?;
        let consumer = client
            .consume(topic, group)
            .mode(mode)
            .prefetch(args.prefetch)
            .subscribe()
            .await
            .map_err(|error| Failure::client(format!("cannot join group {group}"), error))?;
        consumers.push(consumer);
    }
    let publishers = Publishers::connect(session, args.publishers.into()).await?;
    // One lane: the group as a whole gives credit back, whichever consumer got the message.
    let window = Window::new(1, args.window as usize);
    let timeline = session.timeline();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let tasks: Vec<JoinHandle<Member>> = consumers
        .into_iter()
        .map(|consumer| {
            let in_order = mode == ConsumeMode::Exclusive;
            let tracker = Tracker::new(timeline, publishers.issued(), in_order);
            settled.push(tracker.settled());
            tokio::spawn(receive(consumer, tracker, window.lane(0), stop.clone()))
        })
        .collect();
    let publishing = publishers.start(session, topic, timeline, &window);
    let cpu = session.measure(timeline, &settled).await;
    let tallies = publishing.stop().await?;
    let accepted: u64 = tallies.iter().map(|tally| tally.accepted).sum();
    drain(|| total(&settled) >= accepted).await;
    stop.cancel();
    let mut counts = Counts {
        cpu,
        ..Counts::from_tallies(&tallies)
    };
    // Every message once across the group: a message two consumers both got is a duplicate too.
    let mut group_seen = vec![SequenceSet::default(); tallies.len()];
    for task in tasks {
        let Member { tracker, error } = task
            .await
            .map_err(|error| Failure::new(format!("a consumer failed: {error}")))?;
        for (all, seen) in group_seen.iter_mut().zip(&tracker.seen) {
            counts.duplicates += all.merge(seen);
        }
        counts.delivered += tracker.delivered;
        counts.latency.merge(&tracker.latency);
        counts.duplicates += tracker.duplicates;
        counts.out_of_order += tracker.out_of_order;
        counts.errors += tracker.foreign + u64::from(error.is_some());
        if let Some(error) = error {
            counts.first_error.get_or_insert(error);
        }
    }
    counts.lost = group_seen
        .iter()
        .zip(&tallies)
        .map(|(seen, tally)| seen.missing(tally.issued, &tally.failed))
        .sum();
    Ok(counts)
}

/// Receives and acks until stopped, then leaves the group once its acks are sent.
async fn receive(
    mut consumer: Consumer,
    mut tracker: Tracker,
    mut credit: Credit,
    stop: CancellationToken,
) -> Member {
    let mut error = None;
    while let Some(delivery) = credit.next(&mut consumer, &stop).await {
        match delivery {
            Ok(delivery) => {
                tracker.record(&delivery.message().payload);
                delivery.ack();
                credit.received(1);
            }
            Err(other) => {
                error = Some(format!("a consumer failed: {}", describe(&other)));
                break;
            }
        }
    }
    consumer.close().await;
    Member { tracker, error }
}
