//! The ack deadline as a promise in both directions, and what a stale delivery id may do: a delivery
//! is never redelivered before its deadline and always within a second after it, and once a message
//! has been redelivered only its newest delivery id settles it.

mod common;

use std::{collections::HashMap, time::Duration};

use common::*;
use futures_util::future::join_all;
use switchyard::pb;
use tokio::time::Instant;

/// How late after its deadline a redelivery may arrive.
const LATE: Duration = Duration::from_secs(1);

/// For deadlines of 300 ms, 1 s and 2.5 s (the consumer's own, and a group's), five unacked
/// deliveries each come back no sooner than the deadline after they were published and no later
/// than the deadline plus one second after they were received. A timer that fires early, or one that
/// misses its wake-up and waits for the next event, fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_come_after_the_deadline_and_within_a_second_of_it() {
    let server = TestServer::start().await;
    let cases = [(300, false), (1_000, true), (2_500, false)];
    let outcomes = join_all(
        cases
            .iter()
            .map(|&(deadline_ms, declared)| deadline_case(&server, deadline_ms, declared)),
    )
    .await;
    for ((deadline_ms, declared), redeliveries) in cases.iter().zip(outcomes) {
        let deadline = Duration::from_millis(u64::from(*deadline_ms));
        let lateness = redeliveries
            .iter()
            .map(|(_, _, since_received)| *since_received);
        println!(
            "deadline {deadline:?} (set on the {}): redelivered {:?} to {:?} after receipt",
            if *declared { "group" } else { "consumer" },
            lateness.clone().min().unwrap_or_default(),
            lateness.max().unwrap_or_default(),
        );
        for (number, since_published, since_received) in redeliveries {
            assert!(
                since_published >= deadline,
                "message {number} came back {since_published:?} after it was published, before its {deadline:?} deadline"
            );
            assert!(
                since_received <= deadline + LATE,
                "message {number} came back {since_received:?} after it was received, later than {deadline:?} + {LATE:?}"
            );
        }
    }
}

/// Publishes five messages to a consumer that never acks, and returns, per message, how long after
/// its publication and after its first receipt it came back.
async fn deadline_case(
    server: &TestServer,
    deadline_ms: u32,
    declared: bool,
) -> Vec<(usize, Duration, Duration)> {
    let topic = unique("faults.deadline");
    let mut broker = server.broker().await;
    let request = if declared {
        let mut admin = server.admin().await;
        let declare = pb::DeclareGroupRequest {
            topic: topic.clone(),
            group: "timely".into(),
            ack_deadline_ms: deadline_ms,
            ..Default::default()
        };
        declare_ok(&mut admin, declare).await;
        consume_with(&topic, "timely", 10, 0)
    } else {
        consume_with(&topic, "timely", 10, deadline_ms)
    };
    let mut stream = consume_ok(&mut broker, request).await;
    let published = Instant::now();
    publish_ok(&mut broker, numbered_batch(&topic, 0..5)).await;
    let mut received = HashMap::new();
    let mut redelivered = Vec::new();
    while redelivered.len() < 5 {
        let delivery = next_delivery(&mut stream).await;
        let now = Instant::now();
        let number = delivery_number(&delivery);
        match delivery.attempt {
            1 => {
                received.insert(number, now);
            }
            2 => {
                let first = received[&number];
                redelivered.push((number, now - published, now - first));
                ack_all(&mut broker, &[delivery]).await;
            }
            attempt => panic!("message {number} delivered a third time (attempt {attempt})"),
        }
    }
    redelivered
}

/// An extension restarts the deadline from when the broker got it: the delivery does not come back
/// before a full deadline after the extension was sent, and comes back within a second after that.
#[tokio::test]
async fn an_extended_delivery_comes_back_a_deadline_after_the_extension() {
    let server = TestServer::start().await;
    let topic = unique("faults.extend");
    // Extended half-way: a second for the extension to arrive in time, on a loaded machine too.
    let deadline = Duration::from_secs(2);
    let mut broker = server.broker().await;
    let deadline_ms = deadline.as_millis() as u32;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "slow", 1, deadline_ms)).await;
    publish_one(&mut broker, &topic, "long job").await;
    let first = next_delivery(&mut stream).await;
    tokio::time::sleep(deadline / 2).await;
    let extend_sent = Instant::now();
    let unknown = settle(
        &mut broker,
        pb::AckRequest {
            extend_ids: vec![first.delivery_id.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("Ack with an extension succeeds");
    let extended = Instant::now();
    assert!(
        unknown.is_empty(),
        "the delivery was outstanding: {unknown:?}"
    );
    let again = next_delivery(&mut stream).await;
    let back = Instant::now();
    assert_eq!((again.attempt, &again.message), (2, &first.message));
    assert!(
        back - extend_sent >= deadline,
        "came back {:?} after the extension was sent, before the {deadline:?} deadline",
        back - extend_sent
    );
    assert!(
        back - extended <= deadline + LATE,
        "came back {:?} after the extension, later than {deadline:?} + {LATE:?}",
        back - extended
    );
    ack_all(&mut broker, &[again]).await;
}

/// After a redelivery, old delivery ids are unknown to every kind of settlement and change nothing:
/// acking, nacking, rejecting or extending them leaves the message in flight with its new holder (no
/// ack counted, no redelivery, no dead letter), and the new ids then settle the messages as asked.
/// Covers both ways a message is redelivered: its consumer left, and its deadline passed.
#[tokio::test]
async fn after_a_redelivery_only_the_newest_delivery_id_settles() {
    let server = TestServer::start().await;
    let topic = unique("faults.stale");
    let dead_topic = unique("faults.stale-dead");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "stale".into(),
        dead_letter_topic: dead_topic.clone(),
        ..Default::default()
    };
    declare_ok(&mut admin, declare).await;
    let mut dead = subscribe_ok(&mut broker, &dead_topic).await;

    // Redelivered because its consumer left.
    let mut leaving = consume_ok(&mut broker, consume_with(&topic, "stale", 10, 60_000)).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..3)).await;
    let old = next_deliveries(&mut leaving, 3).await;
    drop(leaving);
    let mut staying = consume_ok(&mut broker, consume_with(&topic, "stale", 10, 60_000)).await;
    let mut new = next_deliveries(&mut staying, 3).await;
    new.sort_by_key(delivery_number);
    let mut old_ids: Vec<String> = old.iter().map(|d| d.delivery_id.clone()).collect();
    assert!(
        new.iter()
            .all(|d| d.attempt == 2 && !old_ids.contains(&d.delivery_id))
    );

    let mut unknown = settle(
        &mut broker,
        pb::AckRequest {
            ack_ids: vec![old_ids[0].clone()],
            nack_ids: vec![old_ids[1].clone()],
            reject_ids: vec![old_ids[2].clone()],
            extend_ids: vec![old_ids[0].clone()],
            ..Default::default()
        },
    )
    .await
    .expect("Ack with stale ids succeeds");
    unknown.sort();
    old_ids.push(old_ids[0].clone());
    old_ids.sort();
    assert_eq!(unknown, old_ids, "every stale id is reported unknown");
    assert_quiet(&mut staying, QUIET, "the consumer after stale settlements").await;
    assert_quiet(
        &mut dead,
        QUIET,
        "the dead-letter topic after a stale reject",
    )
    .await;
    wait_for_group(
        &mut admin,
        &topic,
        "stale",
        "3 still in flight, none settled",
        |g| (g.in_flight, g.ready, g.acked, g.dead_lettered) == (3, 0, 0, 0),
    )
    .await;

    // The new ids do what they say.
    let unknown = settle(
        &mut broker,
        pb::AckRequest {
            ack_ids: vec![new[0].delivery_id.clone()],
            nack_ids: vec![new[1].delivery_id.clone()],
            reject_ids: vec![new[2].delivery_id.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("Ack with current ids succeeds");
    assert!(unknown.is_empty(), "current ids are known: {unknown:?}");
    let third = next_delivery(&mut staying).await;
    assert_eq!((delivery_number(&third), third.attempt), (1, 3));
    let letter = next_message(&mut dead).await;
    assert_eq!(number_of(&letter), 2);

    // Redelivered because its deadline passed: the same consumer holds the old and the new id.
    let mut late = consume_ok(&mut broker, consume_with(&topic, "stale", 1, 300)).await;
    drop(staying); // its message 1 (attempt 3) goes to `late`, which lets it expire once more
    let expired = next_delivery(&mut late).await;
    let current = next_delivery(&mut late).await;
    assert_eq!(
        (delivery_number(&expired), delivery_number(&current)),
        (1, 1)
    );
    assert_eq!((expired.attempt + 1, current.attempt), (current.attempt, 5));
    let stale = ack_ids(&mut broker, &[expired.delivery_id.as_str()]).await;
    assert_eq!(stale, vec![expired.delivery_id.clone()]);
    wait_for_group(
        &mut admin,
        &topic,
        "stale",
        "message 1 still in flight",
        |g| (g.in_flight, g.acked) == (1, 1),
    )
    .await;
    ack_all(&mut broker, &[current]).await;
    wait_for_group(&mut admin, &topic, "stale", "everything settled", |g| {
        (g.in_flight, g.ready, g.acked, g.dead_lettered) == (0, 0, 2, 1)
    })
    .await;
    assert_quiet(&mut late, QUIET, "the consumer once everything is settled").await;
}
