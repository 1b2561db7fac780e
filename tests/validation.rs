//! Input validation: malformed topics and patterns, oversized payloads, empty group names and nack
//! delays beyond the limit are INVALID_ARGUMENT naming the field (and the message's index in a batch),
//! and an invalid batch delivers nothing.

mod common;

use std::{fmt::Debug, time::Duration};

use common::*;
use switchyard::{config::Config, pb};
use tonic::{Code, Status};

const MAX_PAYLOAD: usize = 1024;

/// A server with a small payload limit and a one-second nack delay limit.
async fn strict_server() -> TestServer {
    let config = Config {
        max_payload_bytes: MAX_PAYLOAD,
        max_nack_delay: Duration::from_secs(1),
        ..test_config()
    };
    TestServer::with_config(config).await
}

/// Asserts INVALID_ARGUMENT mentioning `needles`, with `case` in the panic message.
fn assert_invalid<T: Debug>(case: &str, result: Result<T, Status>, needles: &[&str]) {
    let status = match result {
        Ok(value) => panic!("{case}: expected INVALID_ARGUMENT, got Ok({value:?})"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    for needle in needles {
        assert!(
            status.message().contains(needle),
            "{case}: {needle:?} not in {:?}",
            status.message()
        );
    }
}

/// Checks that `topic` is refused as a Publish topic and, unless `valid_pattern`, as a Subscribe,
/// Consume and DeclareGroup pattern, each time naming the topic field.
async fn assert_bad_topic(server: &TestServer, topic: &str, valid_pattern: bool) {
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let case = format!("Publish to {topic:?}");
    let batch = vec![
        message(&unique("validation.fine"), "ok"),
        message(topic, "bad"),
    ];
    assert_invalid(
        &case,
        publish(&mut broker, batch).await,
        &["topic", "messages[1]"],
    );
    if valid_pattern {
        return;
    }
    let case = format!("Subscribe to {topic:?}");
    assert_invalid(&case, subscribe(&mut broker, topic).await, &["topic"]);
    let case = format!("Consume {topic:?}");
    assert_invalid(
        &case,
        consume(&mut broker, consume_request(topic, "g")).await,
        &["topic"],
    );
    let declare = pb::DeclareGroupRequest {
        topic: topic.to_owned(),
        group: "g".into(),
        ..Default::default()
    };
    let case = format!("DeclareGroup {topic:?}");
    assert_invalid(
        &case,
        within("DeclareGroup", admin.declare_group(declare)).await,
        &["topic"],
    );
}

/// An empty topic is refused everywhere a topic or pattern is taken.
#[tokio::test]
async fn empty_topic_is_rejected() {
    let server = strict_server().await;
    assert_bad_topic(&server, "", false).await;
    let mut broker = server.broker().await;
    let result = publish(&mut broker, vec![message("", "alone")]).await;
    assert_invalid(
        "a single message with no topic",
        result,
        &["topic", "messages[0]"],
    );
}

/// Wildcards are for patterns: a Publish (or Request) topic with `*` or `>` is refused.
#[tokio::test]
async fn wildcards_are_rejected_in_publish_topics() {
    let server = strict_server().await;
    let base = unique("validation.wild");
    for topic in [
        format!("{base}.*"),
        format!("{base}.>"),
        "*".to_owned(),
        ">".to_owned(),
    ] {
        assert_bad_topic(&server, &topic, true).await;
    }
    let mut broker = server.broker().await;
    let request = pb::RequestRequest {
        message: Some(message(&format!("{base}.*"), "who?")),
        timeout_ms: 1000,
    };
    assert_invalid(
        "Request to a pattern",
        within("Request", broker.request(request)).await,
        &["topic"],
    );
}

/// `>` must be the last token of a pattern.
#[tokio::test]
async fn tail_wildcard_must_be_last() {
    let server = strict_server().await;
    let base = unique("validation.tail");
    assert_bad_topic(&server, &format!("{base}.>.x"), false).await;
    assert_bad_topic(&server, &format!(">.{base}"), false).await;
}

/// Empty tokens (a leading, trailing or doubled dot) are refused in topics and patterns.
#[tokio::test]
async fn empty_tokens_are_rejected() {
    let server = strict_server().await;
    let base = unique("validation.dots");
    for topic in [
        format!("{base}..x"),
        format!(".{base}"),
        format!("{base}."),
        ".".to_owned(),
    ] {
        assert_bad_topic(&server, &topic, false).await;
    }
}

/// Whitespace anywhere in a topic or pattern is refused.
#[tokio::test]
async fn whitespace_in_topics_is_rejected() {
    let server = strict_server().await;
    let base = unique("validation.space");
    for topic in [
        format!("{base}.a b"),
        format!("{base}.a\tb"),
        format!("{base}.a\n"),
        format!(" {base}"),
        format!("{base}. "),
    ] {
        assert_bad_topic(&server, &topic, false).await;
    }
}

/// A payload over `max_payload_bytes` is refused naming the payload and the message's index; one of
/// exactly the limit is accepted.
#[tokio::test]
async fn oversized_payload_is_rejected_naming_payload_and_index() {
    let server = strict_server().await;
    let topic = unique("validation.big");
    let mut broker = server.broker().await;
    let batch = vec![
        message(&topic, vec![b'a'; MAX_PAYLOAD]),
        message(&topic, vec![b'b'; MAX_PAYLOAD + 1]),
    ];
    assert_invalid(
        "an oversized second message",
        publish(&mut broker, batch).await,
        &["payload", "messages[1]"],
    );
    publish_ok(&mut broker, vec![message(&topic, vec![b'c'; MAX_PAYLOAD])]).await;
    let request = pb::RequestRequest {
        message: Some(message(&topic, vec![b'd'; MAX_PAYLOAD + 1])),
        timeout_ms: 1000,
    };
    assert_invalid(
        "an oversized request",
        within("Request", broker.request(request)).await,
        &["payload"],
    );
}

/// A batch with one invalid message is refused whole: neither subscribers nor groups get any of it.
#[tokio::test]
async fn an_invalid_message_in_a_batch_delivers_nothing() {
    let server = strict_server().await;
    let base = unique("validation.atomic");
    let good = format!("{base}.ok");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        topic: good.clone(),
        group: "keeper".into(),
        ..Default::default()
    };
    declare_ok(&mut admin, declare).await;
    let mut everything = subscribe_ok(&mut broker, &format!("{base}.>")).await;

    let bad_topic = vec![
        message(&good, "first"),
        message(&format!("{base}..bad"), "x"),
        message(&good, "third"),
    ];
    assert_invalid(
        "a bad topic in a batch",
        publish(&mut broker, bad_topic).await,
        &["topic", "messages[1]"],
    );
    let too_big = vec![
        message(&good, "first"),
        message(&good, "second"),
        message(&good, vec![0_u8; MAX_PAYLOAD + 1]),
    ];
    assert_invalid(
        "a big payload in a batch",
        publish(&mut broker, too_big).await,
        &["payload", "messages[2]"],
    );

    publish_one(&mut broker, &format!("{base}.sentinel"), "sentinel").await;
    let first = next_message(&mut everything).await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "nothing of the refused batches was delivered"
    );
    let info = group_info(&mut admin, &good, "keeper")
        .await
        .expect("the declared group is listed");
    assert_eq!(
        info.ready, 0,
        "nothing of the refused batches was stored: {info:?}"
    );
}

/// An empty Publish batch is refused.
#[tokio::test]
async fn empty_batch_is_rejected() {
    let server = strict_server().await;
    let mut broker = server.broker().await;
    assert_invalid(
        "an empty batch",
        publish(&mut broker, Vec::new()).await,
        &[],
    );
}

/// An empty group name is refused by Consume and DeclareGroup, naming the group.
#[tokio::test]
async fn empty_group_name_is_rejected() {
    let server = strict_server().await;
    let topic = unique("validation.nogroup");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    assert_invalid(
        "Consume",
        consume(&mut broker, consume_request(&topic, "")).await,
        &["group"],
    );
    let declare = pb::DeclareGroupRequest {
        topic,
        ..Default::default()
    };
    assert_invalid(
        "DeclareGroup",
        within("DeclareGroup", admin.declare_group(declare)).await,
        &["group"],
    );
}

/// A nack delay over the maximum is refused naming the field, and the delivery stays outstanding.
#[tokio::test]
async fn nack_delay_over_the_maximum_is_rejected() {
    let server = strict_server().await;
    let topic = unique("validation.nack");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consume_request(&topic, "g")).await;
    publish_one(&mut broker, &topic, "work").await;
    let delivery = next_delivery(&mut stream).await;
    let request = pb::AckRequest {
        nack_ids: vec![delivery.delivery_id.clone()],
        nack_delay_ms: 1001,
        ..Default::default()
    };
    assert_invalid(
        "a 1001 ms nack delay",
        settle(&mut broker, request).await,
        &["nack_delay"],
    );
    assert_quiet(&mut stream, QUIET, "a delivery whose nack was refused").await;
    ack_all(&mut broker, &[delivery]).await;
}
