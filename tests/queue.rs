//! Work queues: shared groups, prefetch, ack deadlines and redelivery, hand-over when a consumer goes
//! away, nack delays, dead-lettering, waiting messages and the group length limit.

mod common;

use std::{collections::HashMap, time::Duration};

use common::*;
use switchyard::pb;
use tokio::time::Instant;
use tonic::Code;

/// A consume request with an explicit prefetch and ack deadline.
fn consumer(topic: &str, group: &str, prefetch: u32, ack_deadline_ms: u32) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        prefetch,
        ack_deadline_ms,
        ..consume_request(topic, group)
    }
}

/// The sorted numbers carried by `deliveries`.
fn sorted_numbers(deliveries: &[pb::Delivery]) -> Vec<usize> {
    let mut numbers: Vec<usize> = deliveries.iter().map(delivery_number).collect();
    numbers.sort_unstable();
    numbers
}

/// Each message goes to exactly one consumer of a group, and the group gets every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_goes_to_exactly_one_consumer_of_a_group() {
    const TOTAL: usize = 300;
    let server = TestServer::start().await;
    let topic = unique("queue.share");
    let (sink, mut deliveries) = tokio::sync::mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let mut client = server.broker().await;
        let mut stream = consume_ok(&mut client, consumer(&topic, "workers", 1000, 0)).await;
        let sink = sink.clone();
        consumers.push(tokio::spawn(async move {
            while let Ok(Some(delivery)) = stream.message().await {
                ack_all(&mut client, std::slice::from_ref(&delivery)).await;
                if sink.send(delivery).is_err() {
                    break;
                }
            }
        }));
    }

    let mut broker = server.broker().await;
    let published = publish_ok(&mut broker, numbered_batch(&topic, 0..TOTAL)).await;
    assert!(
        published.iter().all(|p| (p.subscribers, p.groups) == (0, 1)),
        "each message is stored by one group and offered to no subscriber: {:?}",
        published[0]
    );
    let mut seen = vec![0; TOTAL];
    within("every message to reach a consumer", async {
        for _ in 0..TOTAL {
            let delivery = deliveries.recv().await.expect("the consumer tasks are running");
            assert_eq!(delivery.attempt, 1, "acked promptly, nothing is redelivered");
            seen[delivery_number(&delivery)] += 1;
        }
    })
    .await;
    let counts: Vec<usize> = seen.iter().copied().filter(|&c| c != 1).collect();
    assert!(counts.is_empty(), "every message delivered exactly once: {seen:?}");
    let extra = tokio::time::timeout(QUIET, deliveries.recv()).await;
    assert!(extra.is_err(), "no delivery beyond the {TOTAL} published: {extra:?}");
    consumers.iter().for_each(tokio::task::JoinHandle::abort);
}

/// Every group matching a topic gets its own copy, next to the topic's subscribers.
#[tokio::test]
async fn every_group_gets_its_own_copy() {
    let server = TestServer::start().await;
    let base = unique("queue.copies");
    let topic = format!("{base}.x");
    let mut broker = server.broker().await;
    let mut exact = consume_ok(&mut broker, consumer(&topic, "billing", 100, 0)).await;
    let mut wildcard = consume_ok(&mut broker, consumer(&format!("{base}.*"), "audit", 100, 0)).await;
    let mut subscription = subscribe_ok(&mut broker, &topic).await;

    let published = publish_ok(&mut broker, numbered_batch(&topic, 0..10)).await;
    assert!(
        published.iter().all(|p| (p.subscribers, p.groups) == (1, 2)),
        "two groups and one subscriber: {published:?}"
    );
    for (name, stream) in [("billing", &mut exact), ("audit", &mut wildcard)] {
        let got = next_deliveries(stream, 10).await;
        assert_eq!(sorted_numbers(&got), (0..10).collect::<Vec<_>>(), "group {name}");
        ack_all(&mut broker, &got).await;
    }
    assert_eq!(next_messages(&mut subscription, 10).await.len(), 10);
}

/// A consumer has at most `prefetch` unacked deliveries; each ack lets exactly one more through.
#[tokio::test]
async fn prefetch_bounds_unacked_deliveries() {
    let server = TestServer::start().await;
    let topic = unique("queue.prefetch");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "slow", 3, 0)).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..10)).await;

    let mut held = next_deliveries(&mut stream, 3).await;
    assert_quiet(&mut stream, QUIET, "a consumer holding `prefetch` unacked deliveries").await;
    wait_for_group(&mut admin, &topic, "slow", "3 in flight, 7 ready", |g| {
        (g.in_flight, g.ready, g.consumers) == (3, 7, 1)
    })
    .await;

    let mut all = held.clone();
    while all.len() < 10 {
        ack_all(&mut broker, &held[..1]).await;
        held.remove(0);
        let next = next_delivery(&mut stream).await;
        held.push(next.clone());
        all.push(next);
        assert_quiet(&mut stream, Duration::from_millis(100), "a consumer back at its prefetch").await;
    }
    ack_all(&mut broker, &held).await;
    assert_eq!(sorted_numbers(&all), (0..10).collect::<Vec<_>>());
}

/// A delivery not acked within the ack deadline comes back, not before the deadline, as attempt 2 with
/// a new delivery id; the old id is then unknown, and an acked redelivery does not come back.
#[tokio::test]
async fn unacked_delivery_is_redelivered_after_the_deadline_with_a_new_id() {
    let server = TestServer::start().await;
    let topic = unique("queue.deadline");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "late", 10, 300)).await;
    let started = Instant::now();
    publish_one(&mut broker, &topic, "work").await;

    let first = next_delivery(&mut stream).await;
    assert_eq!(first.attempt, 1);
    let second = next_delivery(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed <= Duration::from_millis(300) + SLACK,
        "redelivered {elapsed:?} after publishing, with a 300 ms deadline"
    );
    assert_eq!(second.attempt, 2);
    assert_ne!(second.delivery_id, first.delivery_id, "a redelivery gets a new delivery id");
    assert_eq!(second.message, first.message, "the same message comes back");

    assert_eq!(ack_ids(&mut broker, &[first.delivery_id.as_str()]).await, vec![first.delivery_id.clone()]);
    ack_all(&mut broker, std::slice::from_ref(&second)).await;
    assert_quiet(&mut stream, Duration::from_millis(600), "an acked message").await;
    wait_for_group(&mut admin, &topic, "late", "one redelivery, one ack", |g| {
        (g.delivered, g.redelivered, g.acked, g.in_flight, g.ready) == (2, 1, 1, 0, 0)
    })
    .await;
}

/// An expired delivery is redelivered before messages that were never delivered.
#[tokio::test]
async fn redeliveries_go_ahead_of_newer_messages() {
    let server = TestServer::start().await;
    let topic = unique("queue.ahead");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "one-at-a-time", 1, 300)).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..2)).await;

    let first = next_delivery(&mut stream).await;
    assert_eq!((delivery_number(&first), first.attempt), (0, 1));
    let again = next_delivery(&mut stream).await;
    assert_eq!((delivery_number(&again), again.attempt), (0, 2), "the expired message first");
    ack_all(&mut broker, std::slice::from_ref(&again)).await;
    let newer = next_delivery(&mut stream).await;
    assert_eq!((delivery_number(&newer), newer.attempt), (1, 1));
    ack_all(&mut broker, std::slice::from_ref(&newer)).await;
}

/// When a consumer's stream ends, every delivery it held goes to another consumer at once (long
/// before the ack deadline), with new ids; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_consumer_stream_hands_its_deliveries_to_another() {
    let server = TestServer::start().await;
    let topic = unique("queue.handover");
    let mut leaving_client = server.broker().await;
    let mut leaving = consume_ok(&mut leaving_client, consumer(&topic, "pool", 10, 30_000)).await;
    let mut broker = server.broker().await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..5)).await;
    let held = next_deliveries(&mut leaving, 5).await;

    let mut staying = consume_ok(&mut broker, consumer(&topic, "pool", 10, 30_000)).await;
    assert_quiet(&mut staying, QUIET, "a second consumer while the first holds everything").await;
    drop(leaving);

    let taken = within_for(SLACK, "the held deliveries to move", next_deliveries(&mut staying, 5)).await;
    assert_eq!(sorted_numbers(&taken), (0..5).collect::<Vec<_>>(), "none lost");
    assert!(taken.iter().all(|d| d.attempt == 2), "each is a second delivery: {taken:?}");
    let old: Vec<&str> = held.iter().map(|d| d.delivery_id.as_str()).collect();
    let mut unknown = ack_ids(&mut broker, &old).await;
    unknown.sort();
    let mut expected: Vec<String> = old.iter().map(|id| (*id).to_owned()).collect();
    expected.sort();
    assert_eq!(unknown, expected, "the departed consumer's delivery ids are no longer outstanding");
    ack_all(&mut broker, &taken).await;

    publish_ok(&mut broker, numbered_batch(&topic, 5..8)).await;
    let later = next_deliveries(&mut staying, 3).await;
    assert_eq!(sorted_numbers(&later), vec![5, 6, 7]);
    assert!(later.iter().all(|d| d.attempt == 1));
}

/// A nack with a delay puts the message back as ready (counted, not in flight) and redelivers it
/// not before the delay.
#[tokio::test]
async fn nack_with_a_delay_redelivers_not_before_the_delay() {
    let server = TestServer::start().await;
    let topic = unique("queue.nack-delay");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "retry", 10, 30_000)).await;
    publish_one(&mut broker, &topic, "try again later").await;
    let first = next_delivery(&mut stream).await;

    let nacked_at = Instant::now();
    nack(&mut broker, &first, 1000).await;
    let info = group_info(&mut admin, &topic, "retry").await.expect("the group is listed");
    assert_eq!((info.ready, info.in_flight), (1, 0), "a delayed redelivery is ready: {info:?}");
    let second = within_for(Duration::from_millis(1000) + SLACK, "the delayed redelivery", next_delivery(&mut stream)).await;
    let elapsed = nacked_at.elapsed();
    assert!(elapsed >= Duration::from_millis(1000), "redelivered {elapsed:?} after a 1000 ms nack");
    assert_eq!(second.attempt, 2);
    assert_ne!(second.delivery_id, first.delivery_id);
    assert_eq!(second.message, first.message);
    ack_all(&mut broker, std::slice::from_ref(&second)).await;
}

/// A nack without a delay redelivers at once, long before the ack deadline.
#[tokio::test]
async fn nack_without_a_delay_redelivers_at_once() {
    let server = TestServer::start().await;
    let topic = unique("queue.nack-now");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "retry", 10, 30_000)).await;
    publish_one(&mut broker, &topic, "try again").await;
    let first = next_delivery(&mut stream).await;
    nack(&mut broker, &first, 0).await;
    let second = within_for(SLACK, "the immediate redelivery", next_delivery(&mut stream)).await;
    assert_eq!((second.attempt, &second.message), (2, &first.message));
    ack_all(&mut broker, std::slice::from_ref(&second)).await;
}

/// Extending a delivery restarts its ack deadline: it stays outstanding past the original deadline.
#[tokio::test]
async fn extend_restarts_the_ack_deadline() {
    let server = TestServer::start().await;
    let topic = unique("queue.extend");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "long-jobs", 10, 1000)).await;
    publish_one(&mut broker, &topic, "a long job").await;
    let delivery = next_delivery(&mut stream).await;
    let received = Instant::now();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let extend = pb::AckRequest {
        extend_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    assert_eq!(settle(&mut broker, extend).await.expect("Ack with extend succeeds"), Vec::<String>::new());
    // Without the extension the deadline would pass 1000 ms after delivery; with it, 1500 ms.
    let quiet = Duration::from_millis(1200).saturating_sub(received.elapsed());
    assert_quiet(&mut stream, quiet, "an extended delivery").await;
    ack_all(&mut broker, std::slice::from_ref(&delivery)).await;
}

/// Ack never fails for ids it does not know: it lists them, whichever list they came in.
#[tokio::test]
async fn ack_of_unknown_ids_succeeds_and_lists_them() {
    let server = TestServer::start().await;
    let topic = unique("queue.unknown");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consumer(&topic, "g", 10, 0)).await;
    publish_one(&mut broker, &topic, "real").await;
    let real = next_delivery(&mut stream).await;

    let request = pb::AckRequest {
        ack_ids: vec![real.delivery_id.clone(), "bogus-ack".into()],
        nack_ids: vec!["bogus-nack".into()],
        reject_ids: vec!["bogus-reject".into()],
        extend_ids: vec!["bogus-extend".into()],
        nack_delay_ms: 0,
    };
    let mut unknown = settle(&mut broker, request).await.expect("Ack with unknown ids succeeds");
    unknown.sort();
    assert_eq!(unknown, ["bogus-ack", "bogus-extend", "bogus-nack", "bogus-reject"]);
    assert_eq!(ack_ids(&mut broker, &[real.delivery_id.as_str()]).await, vec![real.delivery_id.clone()], "acked twice");
}

/// Declares a group that dead-letters to `dead_letter_topic`.
async fn declare_dead_lettering(admin: &mut Admin, topic: &str, group: &str, max_deliveries: u32, dead_letter_topic: &str) {
    let request = pb::DeclareGroupRequest {
        topic: topic.to_owned(),
        group: group.to_owned(),
        ack_deadline_ms: 300,
        max_deliveries,
        dead_letter_topic: dead_letter_topic.to_owned(),
        ..Default::default()
    };
    declare_ok(admin, request).await;
}

/// Checks that `dead` is `original` dead-lettered from `topic`/`group` for `reason` after `attempts`.
fn assert_dead_letter(dead: &pb::Message, original: &pb::Message, group: &str, reason: &str, attempts: u32) {
    assert_eq!(dead.payload, original.payload, "a dead letter keeps the payload");
    let mut expected: HashMap<String, String> = original.headers.clone();
    for (name, value) in [
        ("x-dead-letter-reason", reason.to_owned()),
        ("x-original-topic", original.topic.clone()),
        ("x-dead-letter-group", group.to_owned()),
        ("x-delivery-attempts", attempts.to_string()),
    ] {
        expected.insert(name.to_owned(), value);
    }
    assert_eq!(dead.headers, expected, "dead-letter headers");
}

/// A message that fails `max_deliveries` times (here: once by deadline, once by nack) is published to
/// the dead-letter topic with its payload and the dead-letter headers, and not delivered again.
#[tokio::test]
async fn exceeding_max_deliveries_dead_letters_the_message() {
    let server = TestServer::start().await;
    let topic = unique("queue.poison");
    let dead_letter_topic = unique("queue.dead");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    declare_dead_lettering(&mut admin, &topic, "fragile", 2, &dead_letter_topic).await;
    let mut graveyard = subscribe_ok(&mut broker, &dead_letter_topic).await;
    let mut stream = consume_ok(&mut broker, consume_request(&topic, "fragile")).await;

    let original = pb::Message {
        headers: HashMap::from([("trace".to_owned(), "abc".to_owned())]),
        ..message(&topic, "poison")
    };
    publish_ok(&mut broker, vec![original.clone()]).await;
    let first = next_delivery(&mut stream).await;
    assert_eq!(first.attempt, 1);
    let second = next_delivery(&mut stream).await;
    assert_eq!(second.attempt, 2, "redelivered after the 300 ms deadline");
    nack(&mut broker, &second, 0).await;

    let dead = next_message(&mut graveyard).await;
    assert_eq!(dead.topic, dead_letter_topic);
    assert_dead_letter(&dead, &original, "fragile", "max-deliveries", 2);
    assert_quiet(&mut stream, Duration::from_millis(600), "a dead-lettered message").await;
    wait_for_group(&mut admin, &topic, "fragile", "one dead letter", |g| {
        (g.dead_lettered, g.delivered, g.redelivered, g.ready, g.in_flight) == (1, 2, 1, 0, 0)
    })
    .await;
}

/// A rejected delivery goes straight to the dead-letter topic and is not redelivered.
#[tokio::test]
async fn rejected_delivery_goes_straight_to_the_dead_letter_topic() {
    let server = TestServer::start().await;
    let topic = unique("queue.reject");
    let dead_letter_topic = unique("queue.rejected");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    declare_dead_lettering(&mut admin, &topic, "strict", 0, &dead_letter_topic).await;
    let mut graveyard = subscribe_ok(&mut broker, &dead_letter_topic).await;
    let mut stream = consume_ok(&mut broker, consume_request(&topic, "strict")).await;

    let original = message(&topic, "malformed");
    publish_ok(&mut broker, vec![original.clone()]).await;
    let delivery = next_delivery(&mut stream).await;
    let reject = pb::AckRequest {
        reject_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    assert_eq!(settle(&mut broker, reject).await.expect("Ack with reject succeeds"), Vec::<String>::new());

    let dead = next_message(&mut graveyard).await;
    assert_eq!(dead.topic, dead_letter_topic);
    assert_dead_letter(&dead, &original, "strict", "rejected", 1);
    assert_quiet(&mut stream, Duration::from_millis(600), "a rejected message").await;
}

/// Messages published while a group has no consumer wait in it, for a declared group and for one
/// created by an earlier Consume.
#[tokio::test]
async fn messages_wait_in_a_group_without_consumers() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;

    let declared = unique("queue.wait-declared");
    let request = pb::DeclareGroupRequest {
        topic: declared.clone(),
        group: "later".into(),
        ..Default::default()
    };
    declare_ok(&mut admin, request).await;
    let published = publish_ok(&mut broker, numbered_batch(&declared, 0..5)).await;
    assert!(published.iter().all(|p| p.groups == 1), "{published:?}");
    wait_for_group(&mut admin, &declared, "later", "5 ready", |g| g.ready == 5).await;
    let mut stream = consume_ok(&mut broker, consume_request(&declared, "later")).await;
    let got = next_deliveries(&mut stream, 5).await;
    assert_eq!(sorted_numbers(&got), (0..5).collect::<Vec<_>>());
    ack_all(&mut broker, &got).await;

    let created = unique("queue.wait-created");
    drop(consume_ok(&mut broker, consume_request(&created, "again")).await);
    wait_for_group(&mut admin, &created, "again", "no consumers", |g| g.consumers == 0).await;
    let published = publish_ok(&mut broker, numbered_batch(&created, 0..3)).await;
    assert!(published.iter().all(|p| p.groups == 1), "{published:?}");
    let mut stream = consume_ok(&mut broker, consume_request(&created, "again")).await;
    let got = next_deliveries(&mut stream, 3).await;
    assert_eq!(sorted_numbers(&got), vec![0, 1, 2]);
    ack_all(&mut broker, &got).await;
}

/// A group holding `max_length` messages (in flight included) makes Publish fail with
/// RESOURCE_EXHAUSTED naming the message, and none of the batch is routed anywhere; an ack makes room.
#[tokio::test]
async fn a_full_group_rejects_the_whole_batch() {
    let server = TestServer::start().await;
    let base = unique("queue.full");
    let topic = format!("{base}.q");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let request = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "capped".into(),
        max_length: 3,
        ..Default::default()
    };
    declare_ok(&mut admin, request).await;
    let mut everything = subscribe_ok(&mut broker, &format!("{base}.>")).await;

    publish_ok(&mut broker, numbered_batch(&topic, 0..2)).await;
    let result = publish(&mut broker, numbered_batch(&topic, 2..5)).await;
    assert_status(result, Code::ResourceExhausted, &["messages[1]"]);
    publish_one(&mut broker, &format!("{base}.sentinel"), "sentinel").await;
    let seen: Vec<String> = next_messages(&mut everything, 3)
        .await
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload[..10.min(m.payload.len())]).into_owned())
        .collect();
    assert_eq!(seen, ["0000000000", "0000000001", "sentinel"], "the refused batch reached no subscriber");
    wait_for_group(&mut admin, &topic, "capped", "2 ready", |g| g.ready == 2).await;

    // In-flight messages still count against the limit; settling one makes room for one.
    let mut stream = consume_ok(&mut broker, consumer(&topic, "capped", 10, 0)).await;
    let held = next_deliveries(&mut stream, 2).await;
    publish_ok(&mut broker, numbered_batch(&topic, 10..11)).await;
    let result = publish(&mut broker, numbered_batch(&topic, 11..12)).await;
    assert_status(result, Code::ResourceExhausted, &["messages[0]"]);
    ack_all(&mut broker, &held[..1]).await;
    publish_ok(&mut broker, numbered_batch(&topic, 12..13)).await;
}
