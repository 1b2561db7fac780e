//! Settling deliveries: ack deadlines and redelivery, nacks with and without delay, extensions,
//! unknown delivery ids, and dead-lettering by `max_deliveries` or by rejection.

mod common;

use std::{collections::HashMap, time::Duration};

use common::*;
use switchyard::pb;
use tokio::time::Instant;

/// A delivery not acked within the ack deadline comes back, not before the deadline, as attempt 2 with
/// a new delivery id; the old id is then unknown, and an acked redelivery does not come back.
#[tokio::test]
async fn unacked_delivery_is_redelivered_after_the_deadline_with_a_new_id() {
    let server = TestServer::start().await;
    let topic = unique("queue.deadline");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "late", 10, 300)).await;
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
    assert_ne!(
        second.delivery_id, first.delivery_id,
        "a redelivery gets a new delivery id"
    );
    assert_eq!(second.message, first.message, "the same message comes back");

    assert_eq!(
        ack_ids(&mut broker, &[first.delivery_id.as_str()]).await,
        vec![first.delivery_id.clone()]
    );
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
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "one-at-a-time", 1, 300)).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..2)).await;

    let first = next_delivery(&mut stream).await;
    assert_eq!((delivery_number(&first), first.attempt), (0, 1));
    let again = next_delivery(&mut stream).await;
    assert_eq!(
        (delivery_number(&again), again.attempt),
        (0, 2),
        "the expired message first"
    );
    ack_all(&mut broker, std::slice::from_ref(&again)).await;
    let newer = next_delivery(&mut stream).await;
    assert_eq!((delivery_number(&newer), newer.attempt), (1, 1));
    ack_all(&mut broker, std::slice::from_ref(&newer)).await;
}

/// A nack with a delay puts the message back as ready (counted, not in flight) and redelivers it
/// not before the delay.
#[tokio::test]
async fn nack_with_a_delay_redelivers_not_before_the_delay() {
    let server = TestServer::start().await;
    let topic = unique("queue.nack-delay");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "retry", 10, 30_000)).await;
    publish_one(&mut broker, &topic, "try again later").await;
    let first = next_delivery(&mut stream).await;

    let nacked_at = Instant::now();
    nack(&mut broker, &first, 1000).await;
    let info = group_info(&mut admin, &topic, "retry")
        .await
        .expect("the group is listed");
    assert_eq!(
        (info.ready, info.in_flight),
        (1, 0),
        "a delayed redelivery is ready: {info:?}"
    );
    let second = within_for(
        Duration::from_millis(1000) + SLACK,
        "the delayed redelivery",
        next_delivery(&mut stream),
    )
    .await;
    let elapsed = nacked_at.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1000),
        "redelivered {elapsed:?} after a 1000 ms nack"
    );
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
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "retry", 10, 30_000)).await;
    publish_one(&mut broker, &topic, "try again").await;
    let first = next_delivery(&mut stream).await;
    nack(&mut broker, &first, 0).await;
    let second = within_for(
        SLACK,
        "the immediate redelivery",
        next_delivery(&mut stream),
    )
    .await;
    assert_eq!((second.attempt, &second.message), (2, &first.message));
    ack_all(&mut broker, std::slice::from_ref(&second)).await;
}

/// Extending a delivery restarts its ack deadline: past the original deadline the delivery is still
/// outstanding (its id acks) and has not come back.
///
/// The check happens in a window that always exists: after the original deadline (at the latest a
/// deadline after the delivery arrived) and before the extended one (at the earliest a deadline after
/// the extension was sent), which is as wide as the wait before extending. Too slow a machine fails
/// the test at the extension, saying so; it never leaves it checking nothing.
#[tokio::test]
async fn extend_restarts_the_ack_deadline() {
    const DEADLINE: Duration = Duration::from_secs(3);
    const BEFORE_EXTENDING: Duration = Duration::from_millis(1500);
    let server = TestServer::start().await;
    let topic = unique("queue.extend");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(
        &mut broker,
        consume_with(&topic, "long-jobs", 10, DEADLINE.as_millis() as u32),
    )
    .await;
    publish_one(&mut broker, &topic, "a long job").await;
    let delivery = next_delivery(&mut stream).await;
    let received = Instant::now();

    tokio::time::sleep(BEFORE_EXTENDING).await;
    let extend_sent = Instant::now();
    let extend = pb::AckRequest {
        extend_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    let unknown = settle(&mut broker, extend)
        .await
        .expect("Ack with extend succeeds");
    assert!(
        unknown.is_empty(),
        "the extension came {:?} after the delivery, past its {DEADLINE:?} deadline",
        extend_sent - received
    );

    let original_passed = received + DEADLINE;
    let check_at = original_passed + (extend_sent - received) / 2;
    if let Ok(outcome) = tokio::time::timeout_at(check_at, stream.message()).await {
        panic!("the extended delivery came back before its new deadline: {outcome:?}");
    }
    let acked_at = Instant::now();
    assert_eq!(
        ack_ids(&mut broker, &[delivery.delivery_id.as_str()]).await,
        Vec::<String>::new(),
        "the delivery is still outstanding {:?} after it arrived, past the original deadline",
        acked_at - received
    );
    assert!(
        acked_at >= original_passed,
        "checked after the original deadline"
    );
}

/// Ack never fails for ids it does not know: it lists them, whichever list they came in.
#[tokio::test]
async fn ack_of_unknown_ids_succeeds_and_lists_them() {
    let server = TestServer::start().await;
    let topic = unique("queue.unknown");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "g", 10, 0)).await;
    publish_one(&mut broker, &topic, "real").await;
    let real = next_delivery(&mut stream).await;

    let request = pb::AckRequest {
        ack_ids: vec![real.delivery_id.clone(), "bogus-ack".into()],
        nack_ids: vec!["bogus-nack".into()],
        reject_ids: vec!["bogus-reject".into()],
        extend_ids: vec!["bogus-extend".into()],
        nack_delay_ms: 0,
    };
    let mut unknown = settle(&mut broker, request)
        .await
        .expect("Ack with unknown ids succeeds");
    unknown.sort();
    assert_eq!(
        unknown,
        ["bogus-ack", "bogus-extend", "bogus-nack", "bogus-reject"]
    );
    assert_eq!(
        ack_ids(&mut broker, &[real.delivery_id.as_str()]).await,
        vec![real.delivery_id.clone()],
        "acked twice"
    );
}

/// Declares a group that dead-letters to `dead_letter_topic`.
async fn declare_dead_lettering(
    admin: &mut Admin,
    topic: &str,
    group: &str,
    max_deliveries: u32,
    dead_letter_topic: &str,
) {
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
fn assert_dead_letter(
    dead: &pb::Message,
    original: &pb::Message,
    group: &str,
    reason: &str,
    attempts: u32,
) {
    assert_eq!(
        dead.payload, original.payload,
        "a dead letter keeps the payload"
    );
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
    assert_quiet(
        &mut stream,
        Duration::from_millis(600),
        "a dead-lettered message",
    )
    .await;
    wait_for_group(&mut admin, &topic, "fragile", "one dead letter", |g| {
        (
            g.dead_lettered,
            g.delivered,
            g.redelivered,
            g.ready,
            g.in_flight,
        ) == (1, 2, 1, 0, 0)
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
    assert_eq!(
        settle(&mut broker, reject)
            .await
            .expect("Ack with reject succeeds"),
        Vec::<String>::new()
    );

    let dead = next_message(&mut graveyard).await;
    assert_eq!(dead.topic, dead_letter_topic);
    assert_dead_letter(&dead, &original, "strict", "rejected", 1);
    assert_quiet(
        &mut stream,
        Duration::from_millis(600),
        "a rejected message",
    )
    .await;
}

/// A rejected delivery of a group without a dead-letter topic is discarded: not redelivered, not held.
#[tokio::test]
async fn rejected_delivery_without_a_dead_letter_topic_is_discarded() {
    let server = TestServer::start().await;
    let topic = unique("redelivery.discard");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "plain", 10, 300)).await;
    publish_one(&mut broker, &topic, "unwanted").await;
    let delivery = next_delivery(&mut stream).await;
    let reject = pb::AckRequest {
        reject_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    let unknown = settle(&mut broker, reject)
        .await
        .expect("Ack with reject succeeds");
    assert!(
        unknown.is_empty(),
        "the rejected delivery was outstanding: {unknown:?}"
    );
    assert_quiet(
        &mut stream,
        Duration::from_millis(600),
        "a discarded message",
    )
    .await;
    wait_for_group(&mut admin, &topic, "plain", "nothing held", |g| {
        (g.ready, g.in_flight) == (0, 0)
    })
    .await;
}
