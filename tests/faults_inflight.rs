//! What a consumer holds: never more than its prefetch, and nothing lost when its stream ends with
//! deliveries still buffered on the way to it (in the server's HTTP/2 send buffer, the sockets, or
//! the client's receive buffer). The broker counts a delivery in flight from the moment it hands it
//! to the stream, so a stream that drops returns all of them.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{faults::Rng, *};
use futures_util::{FutureExt, StreamExt};
use switchyard::pb;
use tokio::sync::mpsc;

/// Messages in the prefetch test.
const TOTAL: usize = 100_000;
const PREFETCH: usize = 32;
/// How long the consumer waits, holding a full window, for a delivery beyond it before releasing.
const PEEK: Duration = Duration::from_millis(2);

/// Under 100,000 messages published while a consumer with prefetch 32 reads as fast as it can and
/// releases (acks) a random number of its oldest deliveries whenever the stream pauses or its window
/// is full, the consumer never holds more than 32: counted at the client as deliveries received minus
/// deliveries whose ack it has sent. When it holds 32 it first waits briefly for a 33rd, so a broker
/// that hands out one too many is caught. It also reaches 32, so the limit was tested, and every
/// message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefetch_limit_is_never_exceeded() {
    let server = TestServer::start().await;
    let topic = unique("faults.prefetch");
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "bounded".into(),
        max_length: TOTAL as u32,
        ack_deadline_ms: 600_000,
        ..Default::default()
    };
    declare_ok(&mut admin, declare).await;
    let mut broker = server.broker().await;
    let mut stream = consume_ok(
        &mut broker,
        consume_with(&topic, "bounded", PREFETCH as u32, 0),
    )
    .await;

    let mut publisher = server.broker().await;
    let publishing = tokio::spawn({
        let topic = topic.clone();
        async move {
            for start in (0..TOTAL).step_by(1000) {
                publish_ok(&mut publisher, numbered_batch(&topic, start..start + 1000)).await;
            }
        }
    });
    let (release, mut released) = mpsc::unbounded_channel::<Vec<String>>();
    let mut acker = broker.clone();
    let acking = tokio::spawn(async move {
        while let Some(mut ids) = released.recv().await {
            // What was released while the previous call was out goes in one call.
            while let Ok(more) = released.try_recv() {
                ids.extend(more);
            }
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let unknown = ack_ids(&mut acker, &ids).await;
            assert!(
                unknown.is_empty(),
                "acks of held deliveries: {unknown:?} unknown"
            );
        }
    });

    let mut rng = Rng::from_env("prefetch");
    let mut held: Vec<String> = Vec::with_capacity(2 * PREFETCH);
    let mut seen = vec![false; TOTAL];
    let (mut received, mut most_held, mut full_windows) = (0, 0, 0);
    while received < TOTAL || !held.is_empty() {
        let next = match held.len() {
            0 => tokio::time::timeout(WAIT, stream.message()).await.ok(),
            n if n >= PREFETCH => tokio::time::timeout(PEEK, stream.message()).await.ok(),
            // Below the limit, only what has already arrived is read before releasing.
            _ => stream.message().now_or_never(),
        };
        match next {
            Some(Ok(Some(delivery))) => {
                let number = delivery_number(&delivery);
                assert_eq!(delivery.attempt, 1, "message {number} was redelivered");
                assert!(!seen[number], "message {number} delivered twice");
                seen[number] = true;
                held.push(delivery.delivery_id);
                received += 1;
                most_held = most_held.max(held.len());
                assert!(
                    held.len() <= PREFETCH,
                    "the consumer holds {} unacked deliveries with prefetch {PREFETCH}",
                    held.len()
                );
            }
            Some(outcome) => panic!("the consumer stream ended after {received}: {outcome:?}"),
            None if held.is_empty() => {
                panic!("nothing delivered for {WAIT:?} after {received} of {TOTAL}")
            }
            None => {
                if held.len() == PREFETCH {
                    full_windows += 1;
                }
                let count = rng.between(1, held.len() as u64) as usize;
                let ids: Vec<String> = held.drain(..count).collect();
                release.send(ids).expect("the acker runs until the end");
            }
        }
    }
    drop(release);
    within("the publisher", publishing)
        .await
        .expect("publishing succeeds");
    within("the acker", acking)
        .await
        .expect("every ack succeeds");
    println!(
        "prefetch {PREFETCH}: {received} deliveries, at most {most_held} held, the window full {full_windows} times"
    );
    assert_eq!(
        most_held, PREFETCH,
        "the window was filled, so the limit was tested"
    );
    wait_for_group(
        &mut admin,
        &topic,
        "bounded",
        "everything acked once",
        |g| (g.acked, g.delivered, g.in_flight, g.ready) == (TOTAL as u64, TOTAL as u64, 0, 0),
    )
    .await;
}

/// How a consumer goes away in [`dropped_with_deliveries_on_the_way`].
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// Cancels the Consume call; the connection stays.
    DropStream,
    /// Closes the whole HTTP/2 connection (and with it the stream).
    DropConnection,
}

/// A consumer with prefetch 16 reads `read` of 100 messages and goes away as `leave` says, while the
/// other deliveries the broker handed to its stream are still buffered on the way. All 16 go back to
/// the group, and a second consumer gets all 100, those 16 as attempt 2.
async fn dropped_with_deliveries_on_the_way(read: usize, leave: Leave) {
    let server = TestServer::start().await;
    let topic = unique("faults.buffered");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut leaving_broker = server.broker().await;
    let mut leaving = consume_ok(
        &mut leaving_broker,
        consume_with(&topic, "buffered", 16, 60_000),
    )
    .await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..100)).await;
    let read = sorted_numbers(&next_deliveries(&mut leaving, read).await);
    wait_for_group(
        &mut admin,
        &topic,
        "buffered",
        "16 handed to the stream",
        |g| (g.in_flight, g.ready) == (16, 84),
    )
    .await;
    match leave {
        Leave::DropStream => drop(leaving),
        Leave::DropConnection => drop((leaving, leaving_broker)),
    }
    all_return_to_the_next_consumer(&server, &topic, &read).await;
}

/// Once the consumer that was handed 16 of the 100 messages on `topic` is gone: all 100 are back in
/// the group, and a new consumer gets every one, those 16 (among them `read`, the ones the leaver had
/// read) as attempt 2.
async fn all_return_to_the_next_consumer(server: &TestServer, topic: &str, read: &[usize]) {
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    wait_for_group(
        &mut admin,
        topic,
        "buffered",
        "all 100 back in the group",
        |g| (g.consumers, g.in_flight, g.ready) == (0, 0, 100),
    )
    .await;
    let mut draining = consume_ok(&mut broker, consume_with(topic, "buffered", 100, 60_000)).await;
    let drained = next_deliveries(&mut draining, 100).await;
    ack_all(&mut broker, &drained).await;
    assert_eq!(sorted_numbers(&drained), (0..100).collect::<Vec<_>>());
    let again: BTreeSet<usize> = drained
        .iter()
        .filter(|d| d.attempt == 2)
        .map(delivery_number)
        .collect();
    assert_eq!(again.len(), 16, "the 16 handed out come back as attempt 2");
    assert!(
        read.iter().all(|n| again.contains(n)),
        "{read:?} within {again:?}"
    );
    wait_for_group(&mut admin, topic, "buffered", "all 100 acked", |g| {
        (g.acked, g.redelivered, g.in_flight, g.ready) == (100, 16, 0, 0)
    })
    .await;
}

/// A consumer that read nothing and cancels its stream loses none of the 16 buffered for it.
#[tokio::test]
async fn a_cancelled_stream_returns_everything_buffered_for_it() {
    dropped_with_deliveries_on_the_way(0, Leave::DropStream).await;
}

/// A consumer that read 3 and drops its connection returns those 3 and the 13 still on the way.
#[tokio::test]
async fn a_dropped_connection_returns_what_was_read_and_what_was_on_the_way() {
    dropped_with_deliveries_on_the_way(3, Leave::DropConnection).await;
}

/// The same through the Rust client, which keeps deliveries in its own buffers: a consumer that
/// holds 3 unsettled and is dropped loses nothing; all 100 reach the next consumer.
#[tokio::test]
async fn a_dropped_client_consumer_returns_what_it_held_and_buffered() {
    let server = TestServer::start().await;
    let topic = unique("faults.client-buffered");
    let url = format!("http://{}", server.addr);
    let client = within("connect", switchyard_client::Client::connect(url))
        .await
        .expect("the client connects");
    let mut admin = server.admin().await;
    let mut leaving = within(
        "Consume",
        client
            .consume(&topic, "buffered")
            .prefetch(16)
            .ack_deadline(Duration::from_secs(60))
            .subscribe(),
    )
    .await
    .expect("the consumer joins");
    let batch: Vec<_> = (0..100)
        .map(|n| switchyard_client::OutgoingMessage::new(&topic, format!("{n:010}")))
        .collect();
    within("publish", client.publish_batch(batch))
        .await
        .expect("publish succeeds");
    let mut held = Vec::new();
    for _ in 0..3 {
        let delivery = within("a delivery", leaving.next())
            .await
            .expect("the consumer stream goes on")
            .expect("a delivery");
        held.push(delivery);
    }
    wait_for_group(&mut admin, &topic, "buffered", "16 in flight", |g| {
        (g.in_flight, g.ready) == (16, 84)
    })
    .await;
    let read: Vec<usize> = held
        .iter()
        .map(|delivery| {
            let payload = std::str::from_utf8(&delivery.message().payload).unwrap_or_default();
            payload.parse().expect("a numbered payload")
        })
        .collect();
    drop(leaving);
    drop(held);
    all_return_to_the_next_consumer(&server, &topic, &read).await;
}
