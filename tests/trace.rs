//! Trace context end to end: a W3C `traceparent` and `tracestate` on a message reach every receiver
//! byte for byte, through Publish and PublishStream, to subscribers and to queue groups, onto a dead
//! letter (beside the four dead-letter headers, the only ones the broker adds), through
//! request/reply in both directions, unary and streamed, and across a durable broker's crash.

mod common;

use std::collections::HashMap;

use common::{process::BrokerProcess, *};
use switchyard::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The W3C specification's own example: version 00, a trace id, the publisher's span, sampled.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
/// What a replier writes on its reply: the same trace, its own span as the parent.
const REPLY_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";

/// The headers of a traced message: the trace context and one header of the application's own.
fn traced_headers() -> HashMap<String, String> {
    HashMap::from([
        ("traceparent".to_owned(), TRACEPARENT.to_owned()),
        ("tracestate".to_owned(), TRACESTATE.to_owned()),
        ("app".to_owned(), "checkout".to_owned()),
    ])
}

fn traced(topic: &str, payload: &str) -> pb::Message {
    pb::Message {
        headers: traced_headers(),
        ..message(topic, payload.to_owned())
    }
}

/// The reply a replier that continues the request's trace sends: its own span as the parent, the
/// request's `tracestate` carried on.
fn traced_reply(request: &pb::Message, payload: &str) -> pb::Message {
    assert_eq!(request.headers, traced_headers(), "the request's headers");
    pb::Message {
        correlation_id: request.correlation_id.clone(),
        headers: HashMap::from([
            ("traceparent".to_owned(), REPLY_TRACEPARENT.to_owned()),
            (
                "tracestate".to_owned(),
                request.headers["tracestate"].clone(),
            ),
        ]),
        ..message(&request.reply_to, payload.to_owned())
    }
}

fn assert_reply_headers(reply: &pb::Message) {
    let expected = HashMap::from([
        ("traceparent".to_owned(), REPLY_TRACEPARENT.to_owned()),
        ("tracestate".to_owned(), TRACESTATE.to_owned()),
    ]);
    assert_eq!(reply.headers, expected, "the reply's headers");
}

/// A traced message published with Publish and one with PublishStream reach a subscriber and a
/// queue group's consumer with exactly the headers they were published with.
#[tokio::test]
async fn trace_headers_reach_subscribers_and_consumers_unchanged() {
    let server = TestServer::start().await;
    let topic = unique("trace.orders");
    let mut broker = server.broker().await;
    let mut subscription = subscribe_ok(&mut broker, &topic).await;
    let mut deliveries = consume_ok(&mut broker, consume_request(&topic, "billing")).await;

    publish_ok(&mut broker, vec![traced(&topic, "unary")]).await;
    let (frames, body) = mpsc::channel(1);
    let mut answers = within(
        "PublishStream",
        broker.publish_stream(ReceiverStream::new(body)),
    )
    .await
    .expect("PublishStream opens")
    .into_inner();
    let frame = pb::PublishStreamRequest {
        sequence: 1,
        messages: vec![traced(&topic, "streamed")],
        wait_for_room: false,
    };
    frames.send(frame).await.expect("the stream takes a frame");
    let answer = next_item(&mut answers, "the PublishStream answer").await;
    assert!(
        matches!(
            answer.result,
            Some(pb::publish_stream_response::Result::Published(_))
        ),
        "{answer:?}"
    );

    for payload in ["unary", "streamed"] {
        let seen = next_message(&mut subscription).await;
        assert_eq!(&seen.payload[..], payload.as_bytes());
        assert_eq!(seen.headers, traced_headers(), "at the subscriber");
        let delivery = next_delivery(&mut deliveries).await;
        let consumed = delivery.message.as_ref().expect("a delivery's message");
        assert_eq!(&consumed.payload[..], payload.as_bytes());
        assert_eq!(consumed.headers, traced_headers(), "at the consumer");
        ack_all(&mut broker, &[delivery]).await;
    }
}

/// A rejected message's dead letter keeps the original trace context (it is still the message the
/// publisher created), and the broker adds only its four dead-letter headers.
#[tokio::test]
async fn a_dead_letter_keeps_the_trace_headers() {
    let server = TestServer::start().await;
    let topic = unique("trace.jobs");
    let dead_letter_topic = unique("trace.dead");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let group = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "strict".into(),
        dead_letter_topic: dead_letter_topic.clone(),
        ..Default::default()
    };
    declare_ok(&mut admin, group).await;
    let mut graveyard = subscribe_ok(&mut broker, &dead_letter_topic).await;
    let mut deliveries = consume_ok(&mut broker, consume_request(&topic, "strict")).await;

    publish_ok(&mut broker, vec![traced(&topic, "poison")]).await;
    let delivery = next_delivery(&mut deliveries).await;
    let reject = pb::AckRequest {
        reject_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    let unknown = settle(&mut broker, reject).await.expect("Ack succeeds");
    assert!(unknown.is_empty(), "{unknown:?}");

    let dead = next_message(&mut graveyard).await;
    let mut expected = traced_headers();
    expected.extend(
        [
            ("x-dead-letter-reason", "rejected"),
            ("x-original-topic", topic.as_str()),
            ("x-dead-letter-group", "strict"),
            ("x-delivery-attempts", "1"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    assert_eq!(dead.headers, expected, "the dead letter's headers");
}

/// A traced message held by a durable group comes back after its broker was killed with its
/// headers unchanged: the log stores them as published.
#[tokio::test]
async fn a_durable_broker_keeps_the_trace_headers_across_a_crash() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let args = [
        "--data-dir",
        dir.path().to_str().expect("a UTF-8 temporary path"),
    ];
    let topic = unique("trace.kept");
    let process = BrokerProcess::start(&args).await;
    let channel = process.channel().await;
    let (mut broker, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    let group = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "later".into(),
        ..Default::default()
    };
    declare_ok(&mut admin, group).await;
    publish_ok(&mut broker, vec![traced(&topic, "kept")]).await;
    process.kill().await;

    let process = BrokerProcess::start(&args).await;
    let mut broker = Broker::new(process.channel().await);
    let mut deliveries = consume_ok(&mut broker, consume_request(&topic, "later")).await;
    let delivery = next_delivery(&mut deliveries).await;
    let kept = delivery.message.as_ref().expect("a delivery's message");
    assert_eq!(kept.headers, traced_headers(), "after the restart");
}

/// A traced unary Request reaches its replier with its headers unchanged, and the replier's reply,
/// a child in the same trace, reaches the requester with exactly the headers the replier set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_and_its_reply_keep_their_headers() {
    let server = TestServer::start().await;
    let topic = unique("trace.rpc");
    let mut replier = server.broker().await;
    let mut requests = consume_ok(&mut replier, consume_request(&topic, "repliers")).await;
    let pending = request_in_background(&server, traced(&topic, "quote?")).await;

    let delivery = next_delivery(&mut requests).await;
    let seen = delivery.message.as_ref().expect("a delivery's message");
    publish_ok(&mut replier, vec![traced_reply(seen, "42")]).await;
    ack_all(&mut replier, &[delivery]).await;

    let reply = within("the request to complete", pending)
        .await
        .expect("the request task did not panic")
        .expect("Request succeeds");
    assert_eq!(&reply.payload[..], b"42");
    assert_reply_headers(&reply);
}

/// The same through a RequestStream (what the Rust client sends), with a subscriber as the replier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_traced_request_and_its_reply_keep_their_headers() {
    let server = TestServer::start().await;
    let topic = unique("trace.stream");
    let mut replier = server.broker().await;
    let mut requests = subscribe_ok(&mut replier, &topic).await;
    let mut requester = server.broker().await;
    let (frames, body) = mpsc::channel(1);
    let mut answers = within(
        "RequestStream",
        requester.request_stream(ReceiverStream::new(body)),
    )
    .await
    .expect("RequestStream opens")
    .into_inner();
    let frame = pb::RequestStreamRequest {
        sequence: 1,
        message: Some(traced(&topic, "quote?")),
        timeout_ms: 5000,
    };
    frames.send(frame).await.expect("the stream takes a frame");

    let seen = next_message(&mut requests).await;
    publish_ok(&mut replier, vec![traced_reply(&seen, "42")]).await;

    let answer = next_item(&mut answers, "the RequestStream answer").await;
    let Some(pb::request_stream_response::Result::Reply(reply)) = answer.result else {
        panic!("expected a reply, got {answer:?}");
    };
    assert_eq!(&reply.payload[..], b"42");
    assert_reply_headers(&reply);
}
