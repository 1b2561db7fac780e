//! Queue groups through the client: deliveries settled with ack, nack, reject and extend (sent in the
//! background in batches), a dropped delivery nacked at once, a dropped consumer flushing its acks
//! before it leaves, and exclusive groups with a standby that takes over.

mod common;
// The broker's own tests' HTTP requests, for its metrics.
#[path = "../../../tests/common/http.rs"]
#[allow(dead_code)]
mod http;

use std::time::Duration;

use common::*;
use switchyard_client::{ConsumeMode, Error, GroupConfig, OutgoingMessage};
use tokio::time::Instant;

/// Two consumers of one group share its messages (each message to one of them), and acks settle them:
/// the group ends with everything acked and nothing in flight.
#[tokio::test]
async fn consume_and_ack() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("jobs");
    let group = "workers";
    let mut first = within(
        "consume",
        client.consume(topic.clone(), group).prefetch(5).subscribe(),
    )
    .await
    .expect("consume");
    let mut second = within(
        "consume",
        client.consume(topic.clone(), group).prefetch(5).subscribe(),
    )
    .await
    .expect("consume");
    let batch = (0..10)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("job{n}")).key(format!("k{n}")))
        .collect();
    let published = client.publish_batch(batch).await.expect("publish_batch");
    assert!(
        published.iter().all(|p| p.groups == 1),
        "the group stored every message"
    );

    let mut seen = Vec::new();
    for consumer in [&mut first, &mut second] {
        for _ in 0..5 {
            let delivery = next_delivery(consumer).await;
            assert_eq!(delivery.attempt(), 1);
            assert!(!delivery.id().is_empty());
            let n: usize = text(delivery.message())
                .trim_start_matches("job")
                .parse()
                .unwrap();
            assert_eq!(delivery.message().key, format!("k{n}"));
            seen.push(n);
            delivery.ack();
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..10).collect::<Vec<_>>(),
        "each message to exactly one consumer"
    );
    let info = wait_for_group(&client, &topic, group, "ten acks", |info| info.acked == 10).await;
    assert_eq!((info.ready, info.in_flight, info.redelivered), (0, 0, 0));
    assert_eq!(info.consumers, 2);
}

/// A delivery dropped without being settled is nacked at once: it comes back with attempt 2 long
/// before the 30 s ack deadline.
#[tokio::test]
async fn dropped_delivery_is_redelivered_quickly() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("forgotten");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .ack_deadline(Duration::from_secs(30))
        .subscribe()
        .await
        .expect("consume");
    let published = client.publish(topic.clone(), "job").await.expect("publish");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.attempt(), 1);
    let dropped_at = Instant::now();
    drop(delivery);
    let again = within_for(
        Duration::from_secs(2),
        "the redelivery",
        futures_util::StreamExt::next(&mut consumer),
    )
    .await
    .expect("the consumer goes on")
    .expect("a redelivery");
    assert_eq!(again.attempt(), 2);
    assert_eq!(again.message().id, published.id, "the same message");
    assert!(dropped_at.elapsed() < Duration::from_secs(2));
    again.ack();
    consumer.close().await;
}

/// Dropping the consumer right after acking does not redeliver what was acked: the acks (held back by
/// a long linger) are sent before the server stream closes.
#[tokio::test]
async fn dropping_the_consumer_after_acks_redelivers_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("acked");
    let group = "workers";
    let mut consumer = client
        .consume(topic.clone(), group)
        .ack_batching(1000, Duration::from_secs(60))
        .subscribe()
        .await
        .expect("consume");
    let batch = (0..20)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("job{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    for _ in 0..20 {
        next_delivery(&mut consumer).await.ack();
    }
    drop(consumer);

    let info = wait_for_group(&client, &topic, group, "twenty acks", |info| {
        info.acked == 20 && info.consumers == 0
    })
    .await;
    assert_eq!((info.ready, info.in_flight, info.redelivered), (0, 0, 0));
    let mut next = client
        .consume(topic.clone(), group)
        .subscribe()
        .await
        .expect("consume");
    assert_quiet(&mut next, QUIET, "a new consumer of a settled group").await;
}

/// `Consumer::close` sends the acks it holds and then leaves; what it had not settled goes to the next
/// consumer.
#[tokio::test]
async fn close_flushes_and_requeues_the_rest() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("closing");
    let group = "workers";
    let mut consumer = client
        .consume(topic.clone(), group)
        .ack_batching(1000, Duration::from_secs(60))
        .subscribe()
        .await
        .expect("consume");
    let batch = (0..4)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("job{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    next_delivery(&mut consumer).await.ack();
    next_delivery(&mut consumer).await.ack();
    within("close", consumer.close()).await;

    let mut next = client
        .consume(topic.clone(), group)
        .subscribe()
        .await
        .expect("consume");
    let rest = [
        next_delivery(&mut next).await,
        next_delivery(&mut next).await,
    ];
    let rest: Vec<&str> = rest.iter().map(|d| text(d.message())).collect();
    assert_eq!(rest, ["job2", "job3"]);
    assert_quiet(&mut next, QUIET, "the new consumer after the rest").await;
}

/// A nack with a delay holds the message back for that long, then redelivers it with attempt 2.
#[tokio::test]
async fn nack_with_delay_redelivers_later() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("retry");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .subscribe()
        .await
        .expect("consume");
    client.publish(topic.clone(), "job").await.expect("publish");
    let delivery = next_delivery(&mut consumer).await;
    let nacked_at = Instant::now();
    delivery.nack(Duration::from_millis(600));
    assert_quiet(
        &mut consumer,
        Duration::from_millis(300),
        "the consumer during the delay",
    )
    .await;
    let again = next_delivery(&mut consumer).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(600),
        "redelivered after {:?}, before the delay",
        nacked_at.elapsed()
    );
    assert_eq!(again.attempt(), 2);
    assert_eq!(text(again.message()), "job");
    again.ack();
}

/// A rejected delivery goes to the group's dead-letter topic at once, with its id, payload and the
/// dead-letter headers.
#[tokio::test]
async fn reject_dead_letters() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("payments");
    let dead = unique("payments-dead");
    let group = "workers";
    client
        .admin()
        .declare_group(GroupConfig::new(topic.clone(), group).dead_letter_topic(dead.clone()))
        .await
        .expect("declare_group");
    let mut dead_letters = client.subscribe(dead.clone()).await.expect("subscribe");
    let mut consumer = client
        .consume(topic.clone(), group)
        .subscribe()
        .await
        .expect("consume");
    let published = client
        .publish(topic.clone(), "poison")
        .await
        .expect("publish");
    next_delivery(&mut consumer).await.reject();

    let letter = next_message(&mut dead_letters).await;
    assert_eq!(letter.id, published.id);
    assert_eq!(letter.payload, "poison");
    let header = |name: &str| letter.headers.get(name).map(String::as_str);
    assert_eq!(header("x-dead-letter-reason"), Some("rejected"));
    assert_eq!(header("x-original-topic"), Some(topic.as_str()));
    assert_eq!(header("x-dead-letter-group"), Some(group));
    assert_quiet(&mut consumer, QUIET, "the consumer after a reject").await;
    let info = wait_for_group(&client, &topic, group, "one dead letter", |info| {
        info.dead_lettered == 1
    })
    .await;
    assert_eq!((info.ready, info.in_flight), (0, 0));
}

/// `extend` restarts the ack deadline: a delivery extended every 150 ms outlives a 500 ms deadline
/// several times over without being redelivered, and is then acked.
#[tokio::test]
async fn extend_keeps_a_delivery() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("slow");
    let group = "workers";
    let mut consumer = client
        .consume(topic.clone(), group)
        .ack_deadline(Duration::from_millis(500))
        .subscribe()
        .await
        .expect("consume");
    client
        .publish(topic.clone(), "long job")
        .await
        .expect("publish");
    let delivery = next_delivery(&mut consumer).await;
    for _ in 0..10 {
        delivery.extend();
        assert_quiet(
            &mut consumer,
            Duration::from_millis(150),
            "the consumer while extending",
        )
        .await;
    }
    delivery.ack();
    let info = wait_for_group(&client, &topic, group, "one ack", |info| info.acked == 1).await;
    assert_eq!(
        info.redelivered, 0,
        "extended past the deadline without a redelivery"
    );
}

/// Without `extend`, the same 500 ms deadline does redeliver: the control for `extend_keeps_a_delivery`.
#[tokio::test]
async fn ack_deadline_redelivers_without_extend() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("stalled");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .ack_deadline(Duration::from_millis(500))
        .subscribe()
        .await
        .expect("consume");
    client.publish(topic.clone(), "job").await.expect("publish");
    let held = next_delivery(&mut consumer).await;
    let again = next_delivery(&mut consumer).await;
    assert_eq!(again.attempt(), 2);
    assert_ne!(again.id(), held.id(), "a redelivery has a new id");
    again.ack();
}

/// An exclusive group has one active consumer, which gets messages in order; a second consumer is
/// refused, a standby waits, and when the active consumer goes the standby takes over, in order, with
/// what the first had not acked.
#[tokio::test]
async fn exclusive_with_standby_takeover() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("bids");
    let group = "auction";
    let exclusive = || {
        client
            .consume(topic.clone(), group)
            .mode(ConsumeMode::Exclusive)
    };
    let mut active = within("consume", exclusive().subscribe())
        .await
        .expect("the first is active");
    let refused = within("consume", exclusive().subscribe())
        .await
        .expect_err("a second active consumer is refused");
    assert!(matches!(refused, Error::Status(_)), "{refused:?}");
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    let shared = within("consume", client.consume(topic.clone(), group).subscribe())
        .await
        .expect_err("a shared consumer of an exclusive group is refused");
    assert_eq!(
        shared.code(),
        Some(tonic::Code::FailedPrecondition),
        "{shared}"
    );
    let mut standby = within("consume", exclusive().standby(true).subscribe())
        .await
        .expect("a standby is accepted and waits");

    let batch = (0..5)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("bid{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    let first = next_delivery(&mut active).await;
    assert_eq!(text(first.message()), "bid0");
    first.ack();
    let second = next_delivery(&mut active).await;
    assert_eq!(text(second.message()), "bid1");
    assert_quiet(
        &mut standby,
        QUIET,
        "the standby while the active consumer runs",
    )
    .await;

    active.flush().await;
    drop(active);
    let mut taken_over = Vec::new();
    for _ in 0..4 {
        let delivery = next_delivery(&mut standby).await;
        taken_over.push(text(delivery.message()).to_owned());
        delivery.ack();
    }
    assert_eq!(
        taken_over,
        ["bid1", "bid2", "bid3", "bid4"],
        "in order, bid0 acked"
    );
    drop(second);
    let info = wait_for_group(&client, &topic, group, "five acks", |info| info.acked == 5).await;
    assert_eq!(info.consumers, 1);
}

/// A delivery that stays unsettled past the group's `max_deliveries` is dead-lettered with the
/// reason `max-deliveries`, each attempt numbered.
#[tokio::test]
async fn max_deliveries_dead_letters_after_nacks() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("flaky");
    let dead = unique("flaky-dead");
    let group = "workers";
    client
        .admin()
        .declare_group(
            GroupConfig::new(topic.clone(), group)
                .max_deliveries(3)
                .dead_letter_topic(dead.clone()),
        )
        .await
        .expect("declare_group");
    let mut dead_letters = client.subscribe(dead.clone()).await.expect("subscribe");
    let mut consumer = client
        .consume(topic.clone(), group)
        .subscribe()
        .await
        .expect("consume");
    client
        .publish(topic.clone(), "flaky")
        .await
        .expect("publish");
    for attempt in 1..=3 {
        let delivery = next_delivery(&mut consumer).await;
        assert_eq!(delivery.attempt(), attempt);
        delivery.nack(Duration::ZERO);
    }
    let letter = next_message(&mut dead_letters).await;
    assert_eq!(
        letter
            .headers
            .get("x-dead-letter-reason")
            .map(String::as_str),
        Some("max-deliveries")
    );
    assert_eq!(
        letter
            .headers
            .get("x-delivery-attempts")
            .map(String::as_str),
        Some("3")
    );
}

/// A consumer can be flushed and closed from a spawned task: the futures of `flush` and `close` are
/// `Send`, as `tokio::spawn` needs.
#[tokio::test]
async fn flush_and_close_from_a_spawned_task() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("spawned");
    let group = "workers";
    let mut consumer = client
        .consume(topic.clone(), group)
        .ack_batching(1000, Duration::from_secs(60))
        .subscribe()
        .await
        .expect("consume");
    client.publish(topic.clone(), "job").await.expect("publish");
    let worker = tokio::spawn(async move {
        next_delivery(&mut consumer).await.ack();
        consumer.flush().await;
        consumer.close().await;
    });
    within("the worker", worker)
        .await
        .expect("the worker did not panic");
    let info = wait_for_group(&client, &topic, group, "one ack, no consumer", |info| {
        info.acked == 1 && info.consumers == 0
    })
    .await;
    assert_eq!(info.redelivered, 0);
}

/// A nack the broker refuses (a delay over its one-hour limit) does not take the acks sent with it
/// down too: an ack settled in the same batch still lands.
#[tokio::test]
async fn a_refused_nack_does_not_lose_acks() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("mixed");
    let group = "workers";
    let mut consumer = client
        .consume(topic.clone(), group)
        .ack_batching(100, Duration::from_millis(100))
        .subscribe()
        .await
        .expect("consume");
    let batch = vec![
        OutgoingMessage::new(topic.clone(), "later"),
        OutgoingMessage::new(topic.clone(), "done"),
    ];
    client.publish_batch(batch).await.expect("publish_batch");
    let later = next_delivery(&mut consumer).await;
    let done = next_delivery(&mut consumer).await;
    later.nack(Duration::from_secs(2 * 3600));
    done.ack();
    consumer.flush().await;
    let info = wait_for_group(&client, &topic, group, "one ack", |info| info.acked == 1).await;
    assert_eq!(
        info.in_flight, 1,
        "the refused nack left its delivery in flight"
    );
}

/// Settlements made together go to the broker in few Ack calls, as its own count of Ack calls
/// (`switchyard_ack_requests_total` on its metrics endpoint) shows: with the default batching, 40
/// acks made in a row are not 40 calls.
#[tokio::test]
async fn settlements_made_together_go_in_few_ack_calls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ready = dir.path().join("ready.json");
    let server = TestServer::with_config(switchyard::config::Config {
        http: switchyard::config::HttpListen(Some(([127, 0, 0, 1], 0).into())),
        ready_file: Some(ready.clone()),
        ..test_config()
    })
    .await;
    let client = server.client().await;
    let topic = unique("batched");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .prefetch(40)
        .subscribe()
        .await
        .expect("consume");
    let batch = (0..40)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("job{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    let mut deliveries = Vec::new();
    for _ in 0..40 {
        deliveries.push(next_delivery(&mut consumer).await);
    }
    for delivery in deliveries {
        delivery.ack();
    }
    wait_for_group(&client, &topic, "workers", "forty acks", |info| {
        info.acked == 40
    })
    .await;

    let http = within("the ready file", read_ready(&ready))
        .await
        .http
        .expect("the ready file names the HTTP listener");
    let (status, metrics) = http::http_request(http, "GET", "/metrics", "").await;
    assert_eq!(status, 200, "{metrics}");
    let calls: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(r#"switchyard_ack_requests_total{code="OK"} "#))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no OK Ack calls counted in {metrics}"));
    assert!((1..40).contains(&calls), "40 acks took {calls} Ack calls");
}

/// The ready file at `path` once the server has written it.
async fn read_ready(path: &std::path::Path) -> switchyard::ready::Ready {
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(ready) = serde_json::from_str(&text)
        {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
