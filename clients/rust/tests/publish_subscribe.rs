//! Publish and subscribe through the client: every field a publisher sets reaches a subscriber,
//! batches keep their order and are all or nothing, and a slow subscriber sees its losses as a gap.

mod common;

use std::time::SystemTime;

use common::*;
use switchyard::config::Config;
use switchyard_client::{Error, Event, OutgoingMessage};

/// `publish_with` carries headers, key, reply topic and correlation id to a subscriber, and the id it
/// returns is the id the subscriber sees, with a broker timestamp.
#[tokio::test]
async fn publish_with_round_trips_every_field() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("orders");
    let mut subscription = within("subscribe", client.subscribe(format!("{topic}.>")))
        .await
        .expect("subscribe");
    assert_eq!(subscription.pattern(), format!("{topic}.>"));

    let before = SystemTime::now();
    let sent = OutgoingMessage::new(format!("{topic}.created"), "order 17")
        .header("source", "web")
        .header("trace", "abc")
        .key("customer-42")
        .reply_to("replies.orders")
        .correlation_id("corr-1");
    let published = within("publish_with", client.publish_with(sent))
        .await
        .expect("publish_with");
    assert_eq!(published.subscribers, 1, "offered to the one subscription");
    assert_eq!(published.groups, 0, "no group on the topic");

    let message = next_message(&mut subscription).await;
    assert_eq!(message.id, published.id);
    assert_eq!(message.topic, format!("{topic}.created"));
    assert_eq!(message.payload, "order 17");
    assert_eq!(
        message.headers.get("source").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        message.headers.get("trace").map(String::as_str),
        Some("abc")
    );
    assert_eq!(message.headers.len(), 2);
    assert_eq!(message.key, "customer-42");
    assert_eq!(message.reply_to, "replies.orders");
    assert_eq!(message.correlation_id, "corr-1");
    let at = message
        .published_at
        .expect("the broker stamps published_at");
    assert!(
        at >= before - std::time::Duration::from_secs(1),
        "published_at {at:?} is recent"
    );
}

/// `publish` (topic and payload only) arrives with empty optional fields, and a topic nobody
/// listens on is not an error.
#[tokio::test]
async fn plain_publish_arrives_and_unheard_publish_succeeds() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("plain");
    let nobody = within("publish", client.publish(unique("nobody"), "x"))
        .await
        .expect("publishing to a topic nobody listens on succeeds");
    assert_eq!((nobody.subscribers, nobody.groups), (0, 0));

    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    client
        .publish(topic.clone(), "hello")
        .await
        .expect("publish");
    let message = next_message(&mut subscription).await;
    assert_eq!(message.payload, "hello");
    assert!(message.headers.is_empty());
    assert_eq!(
        (
            message.key.as_str(),
            message.reply_to.as_str(),
            message.correlation_id.as_str()
        ),
        ("", "", "")
    );
}

/// `publish_batch` answers one `Published` per message in request order, and a subscriber receives
/// the batch in that order.
#[tokio::test]
async fn publish_batch_keeps_order() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("batch");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let batch = (0..50)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("m{n}")))
        .collect();
    let published = within("publish_batch", client.publish_batch(batch))
        .await
        .expect("publish_batch");
    assert_eq!(published.len(), 50);
    for (n, (message, entry)) in next_messages(&mut subscription, 50)
        .await
        .iter()
        .zip(&published)
        .enumerate()
    {
        assert_eq!(
            text(message),
            format!("m{n}"),
            "message {n} in publish order"
        );
        assert_eq!(message.id, entry.id, "Published[{n}] names message {n}");
    }
}

/// A batch with one invalid message is refused whole: the error names the message, and nothing of the
/// batch is delivered.
#[tokio::test]
async fn invalid_batch_publishes_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("atomic");
    let mut subscription = client
        .subscribe(format!("{topic}.>"))
        .await
        .expect("subscribe");
    let batch = vec![
        OutgoingMessage::new(format!("{topic}.ok"), "fine"),
        OutgoingMessage::new(format!("{topic}.*"), "wildcards are not publishable"),
    ];
    let error = within("publish_batch", client.publish_batch(batch))
        .await
        .expect_err("a wildcard topic is refused");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{error}");
    assert!(
        error.to_string().contains("messages[1]"),
        "the error names the message: {error}"
    );
    assert_quiet(&mut subscription, QUIET, "the subscription").await;
}

/// A subscriber that falls behind its broker buffer sees an `Event::Gap` with the exact number of
/// messages it lost, at the place they went missing, and then the messages after it.
// A current-thread runtime on purpose: the broker routes a whole batch before its subscription stream
// can drain anything, so the buffer of four keeps exactly the first four messages of the batch.
#[tokio::test(flavor = "current_thread")]
async fn slow_subscriber_sees_a_gap() {
    let config = Config {
        subscriber_buffer: 4,
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let client = server.client().await;
    let topic = unique("gap");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let batch = (0..10)
        .map(|n| OutgoingMessage::new(topic.clone(), format!("m{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    client
        .publish(topic.clone(), "after")
        .await
        .expect("publish");

    let kept = next_messages(&mut subscription, 4).await;
    let kept: Vec<&str> = kept.iter().map(text).collect();
    assert_eq!(kept, ["m0", "m1", "m2", "m3"]);
    assert_eq!(
        next_event(&mut subscription).await,
        Event::Gap { missed: 6 },
        "the six messages past the buffer are reported where they went missing"
    );
    assert_eq!(text(&next_message(&mut subscription).await), "after");
}

/// A pattern the broker refuses fails `subscribe` itself, with the broker's code.
#[tokio::test]
async fn bad_pattern_fails_subscribe() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let error = within("subscribe", client.subscribe("orders.>.created"))
        .await
        .expect_err("`>` must be last");
    assert!(matches!(error, Error::Status(_)), "{error:?}");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{error}");
}

/// A payload over the broker's limit is refused by the broker (INVALID_ARGUMENT naming it), and a
/// batch too large for one gRPC message is refused before it is sent (OUT_OF_RANGE, with the sizes),
/// not failed as an opaque HTTP/2 error.
#[tokio::test]
async fn oversized_messages_are_refused_clearly() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("big");
    let error = within(
        "publish",
        client.publish(topic.clone(), vec![0u8; 2 * 1024 * 1024]),
    )
    .await
    .expect_err("over the 1 MiB payload limit");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{error}");
    assert!(error.to_string().contains("payload"), "{error}");

    let error = within(
        "publish",
        client.publish(topic.clone(), vec![0u8; 5 * 1024 * 1024]),
    )
    .await
    .expect_err("over the 4 MiB message limit");
    assert_eq!(error.code(), Some(tonic::Code::OutOfRange), "{error}");
    assert!(error.to_string().contains("limit of 4194304"), "{error}");
    let error = within(
        "request",
        client
            .request(topic.clone(), vec![0u8; 5 * 1024 * 1024])
            .send(),
    )
    .await
    .expect_err("over the 4 MiB message limit");
    assert_eq!(error.code(), Some(tonic::Code::OutOfRange), "{error}");
}
