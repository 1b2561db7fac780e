//! Publish and Subscribe: the Publish response, fan-out to every matching subscription in publish
//! order, topic patterns, and the slow-subscriber policy (a bounded buffer reported as gaps).

mod common;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use common::*;
use switchyard::{config::Config, pb};
use tonic::Code;

/// Publish answers one `Published` per message, in order, with a broker-set UUID v7 id and the
/// subscriber count, and every subscriber receives the message with that id, a `published_at` and
/// every field the publisher set.
#[tokio::test]
async fn publish_reports_ids_and_delivers_every_field_counting_subscribers_except_in_cluster_mode()
{
    let server = TestServer::start().await;
    let topic = unique("fanout.fields");
    let mut broker = server.broker().await;
    let mut first = subscribe_ok(&mut broker, &topic).await;
    let mut second = subscribe_ok(&mut broker, &topic).await;

    let sent: Vec<pb::Message> = (0..3)
        .map(|n| pb::Message {
            id: format!("client-chosen-{n}"),
            headers: HashMap::from([("trace".to_owned(), format!("t{n}"))]),
            key: format!("key-{n}"),
            reply_to: format!("replies.{n}"),
            correlation_id: format!("corr-{n}"),
            ..numbered(&topic, n, 32)
        })
        .collect();
    let published = publish_ok(&mut broker, sent.clone()).await;

    let mut ids = Vec::new();
    for (n, entry) in published.iter().enumerate() {
        let id = uuid::Uuid::parse_str(&entry.id)
            .unwrap_or_else(|e| panic!("Published[{n}].id {:?} is not a UUID: {e}", entry.id));
        assert_eq!(
            id.get_version_num(),
            7,
            "Published[{n}].id {id} is a UUID v7"
        );
        assert_eq!(
            entry.subscribers,
            counted_subscribers(2),
            "Published[{n}] was offered to both subscribers"
        );
        assert_eq!(entry.groups, 0, "Published[{n}] matched no group");
        ids.push(entry.id.clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every message gets its own id: {published:?}");

    for stream in [&mut first, &mut second] {
        let received = next_messages(stream, 3).await;
        for ((got, want), entry) in received.iter().zip(&sent).zip(&published) {
            assert_eq!(got.id, entry.id, "the delivered id is the published id");
            assert_eq!(got.topic, want.topic);
            assert_eq!(got.payload, want.payload);
            assert_eq!(got.headers, want.headers);
            assert_eq!(got.key, want.key);
            assert_eq!(got.reply_to, want.reply_to);
            assert_eq!(got.correlation_id, want.correlation_id);
            let at = got
                .published_at
                .as_ref()
                .expect("published_at is set by the broker");
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_secs() as i64;
            assert!(
                (at.seconds - now).abs() < 60,
                "published_at {at:?} is about now ({now})"
            );
        }
    }
}

/// Publishing to a topic nobody listens on succeeds with zero subscribers and zero groups.
#[tokio::test]
async fn publish_without_listeners_succeeds_with_zero_counts() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let published = publish_ok(&mut broker, numbered_batch(&unique("fanout.nobody"), 0..2)).await;
    for entry in &published {
        assert_eq!((entry.subscribers, entry.groups), (0, 0), "{entry:?}");
        assert!(
            !entry.id.is_empty(),
            "an id is set even when nobody listens"
        );
    }
}

/// Every subscriber receives every message published after it subscribed, in publish order, whether
/// the messages came in batches or one by one, and nothing published before it subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_message_in_publish_order() {
    let server = TestServer::start().await;
    let topic = unique("fanout.order");
    let mut broker = server.broker().await;
    publish_one(&mut broker, &topic, "before anyone subscribed").await;

    let mut streams = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        // Each subscriber on its own connection, so ordering cannot come from sharing one.
        let mut client = server.broker().await;
        streams.push(subscribe_ok(&mut client, &topic).await);
        subscribers.push(client);
    }
    let mut publishers = Vec::new();
    for _ in 0..2 {
        publishers.push(server.broker().await);
    }
    for start in (0..200).step_by(20) {
        // Alternate connections and batch shapes: order is the order the broker accepted them in.
        let publisher = &mut publishers[start / 20 % 2];
        if start % 40 == 0 {
            publish_ok(publisher, numbered_batch(&topic, start..start + 20)).await;
        } else {
            for n in start..start + 20 {
                publish_ok(publisher, vec![numbered(&topic, n, 10)]).await;
            }
        }
    }
    for (index, stream) in streams.iter_mut().enumerate() {
        let received: Vec<usize> = next_messages(stream, 200)
            .await
            .iter()
            .map(number_of)
            .collect();
        assert_eq!(received, (0..200).collect::<Vec<_>>(), "subscriber {index}");
        assert_quiet(stream, QUIET, "a subscriber that has had every message").await;
    }
}

/// One publisher's messages reach a subscriber in publish order across topics, whether a group
/// reads the topic or not, one by one and in batches: in cluster mode a batch that no group reads
/// stays out of the stream, so the two take different paths through NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_messages_arrive_in_order_whether_a_group_reads_their_topic_or_not() {
    let server = TestServer::start().await;
    let base = unique("fanout.paths");
    let (grouped, plain) = (format!("{base}.grouped"), format!("{base}.plain"));
    let mut admin = server.admin().await;
    declare_ok(&mut admin, declaration(&grouped, "reader")).await;
    let mut subscriber = server.broker().await;
    let mut stream = subscribe_ok(&mut subscriber, &format!("{base}.*")).await;
    let mut publisher = server.broker().await;
    let topic_of = |n: usize| {
        if n.is_multiple_of(3) {
            &grouped
        } else {
            &plain
        }
    };
    for n in 0..90 {
        let published = publish_ok(&mut publisher, vec![numbered(topic_of(n), n, 10)]).await;
        assert_eq!(
            published[0].groups,
            u32::from(n.is_multiple_of(3)),
            "message {n}"
        );
    }
    let mixed = (90..100).map(|n| numbered(topic_of(n), n, 10)).collect();
    publish_ok(&mut publisher, mixed).await;
    publish_ok(&mut publisher, numbered_batch(&plain, 100..110)).await;
    let received: Vec<usize> = next_messages(&mut stream, 110)
        .await
        .iter()
        .map(number_of)
        .collect();
    assert_eq!(received, (0..110).collect::<Vec<_>>());
    delete_ok(&mut admin, &grouped, "reader").await;
}

/// Subscribes to `pattern`, publishes each case in order and checks that exactly the matching ones
/// arrive (in order) and are counted. The last case must match, so that an unmatched message wrongly
/// delivered shows up before it.
async fn assert_pattern(server: &TestServer, pattern: &str, cases: &[(String, bool)]) {
    assert!(
        cases.last().is_some_and(|(_, matches)| *matches),
        "the last case must match"
    );
    let mut broker = server.broker().await;
    let mut stream = subscribe_ok(&mut broker, pattern).await;
    for (topic, matches) in cases {
        let published = publish_one(&mut broker, topic, topic.clone()).await;
        assert_eq!(
            published.subscribers,
            counted_subscribers(u32::from(*matches)),
            "{topic} against {pattern}: subscriber count"
        );
    }
    let expected: Vec<&str> = cases
        .iter()
        .filter(|(_, m)| *m)
        .map(|(t, _)| t.as_str())
        .collect();
    let received = next_messages(&mut stream, expected.len()).await;
    let received: Vec<&str> = received.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(received, expected, "topics delivered to {pattern}");
}

/// `*` matches exactly one token, wherever it stands.
#[tokio::test]
async fn single_token_wildcard_matches_exactly_one_token_counting_subscribers_except_in_cluster_mode()
 {
    let server = TestServer::start().await;
    let base = unique("fanout.star");
    let case = |suffix: &str, matches| (format!("{base}.{suffix}"), matches);
    let cases = [
        (base.clone(), false),
        case("created", false),
        case("eu.created", true),
        case("eu.north.created", false),
        case("eu.updated", false),
        case("eu", false),
        case("us.created", true),
    ];
    assert_pattern(&server, &format!("{base}.*.created"), &cases).await;

    let cases = [(base.clone(), false), case("a.b", false), case("a", true)];
    assert_pattern(&server, &format!("{base}.*"), &cases).await;
}

/// `>` matches one or more trailing tokens, so `a.>` does not match `a`.
#[tokio::test]
async fn tail_wildcard_matches_one_or_more_trailing_tokens_counting_subscribers_except_in_cluster_mode()
 {
    let server = TestServer::start().await;
    let base = unique("fanout.tail");
    let case = |suffix: &str, matches| (format!("{base}.{suffix}"), matches);
    let cases = [
        (base.clone(), false),
        (format!("x.{base}.a"), false),
        case("a", true),
        case("a.b.c", true),
        case("b", true),
    ];
    assert_pattern(&server, &format!("{base}.>"), &cases).await;

    let cases = [case("a", false), case("a.b", true), case("a.b.c", true)];
    assert_pattern(&server, &format!("{base}.*.>"), &cases).await;
}

/// A pattern without wildcards matches only the identical topic.
#[tokio::test]
async fn literal_pattern_matches_only_the_same_topic_counting_subscribers_except_in_cluster_mode() {
    let server = TestServer::start().await;
    let base = unique("fanout.literal");
    let cases = [
        (base.clone(), false),
        (format!("{base}.a.b"), false),
        (format!("{base}.b"), false),
        (format!("{base}.a"), true),
    ];
    assert_pattern(&server, &format!("{base}.a"), &cases).await;
}

/// Dropping a subscription's stream unsubscribes it: publishes stop counting it, and a request
/// finds nobody to answer it (which every backend, cluster mode too, knows at once).
#[tokio::test]
async fn dropping_the_stream_unsubscribes_counting_subscribers_except_in_cluster_mode() {
    let server = TestServer::start().await;
    let topic = unique("fanout.drop");
    let mut broker = server.broker().await;
    let mut requester = server.broker().await;
    let ask = |requester: &mut Broker| {
        let request = pb::RequestRequest {
            message: Some(message(&topic, "anyone?")),
            timeout_ms: 100,
        };
        let mut requester = requester.clone();
        async move { within("Request", requester.request(request)).await }
    };
    let stream = subscribe_ok(&mut broker, &topic).await;
    assert_eq!(
        publish_one(&mut broker, &topic, "seen").await.subscribers,
        counted_subscribers(1)
    );
    let asked = ask(&mut requester).await;
    assert_eq!(
        asked.map(drop).map_err(|status| status.code()),
        Err(Code::DeadlineExceeded),
        "a subscriber received the request and did not answer"
    );
    drop(stream);
    within("the dropped subscription to stop counting", async {
        loop {
            let counted = publish_one(&mut broker, &topic, "unseen").await.subscribers;
            let asked = ask(&mut requester).await.map(drop);
            if counted == 0 && asked.is_err_and(|status| status.code() == Code::Unavailable) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Messages published in each batch, which the fast subscriber reads before the next.
const BATCH: usize = 16;
const TOTAL: usize = 4096;
const PAYLOAD: usize = 1024;

/// A subscriber that stops reading loses messages beyond its buffer's message bound and is told so
/// with gaps: what it receives plus the sum of `missed` is exactly what was published, in order,
/// each gap where its messages went missing. A subscriber that keeps reading meanwhile gets every
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_gets_gaps_and_others_get_everything() {
    slow_subscriber_gets_gaps(Config {
        subscriber_buffer: BATCH,
        ..test_config()
    })
    .await;
}

/// The same with the byte bound the one that binds: room for a little more than a batch of 1 KiB
/// messages, and the message bound at its default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_of_a_subscriber_buffer_makes_gaps_too() {
    let config = Config {
        subscriber_buffer_bytes: (BATCH + 4) * (PAYLOAD + 256),
        ..test_config()
    };
    assert!(
        config.subscriber_buffer > TOTAL,
        "only the byte bound can bind"
    );
    slow_subscriber_gets_gaps(config).await;
}

async fn slow_subscriber_gets_gaps(config: Config) {
    const BUFFER: usize = BATCH;
    let server = TestServer::with_config(config).await;
    let topic = unique("fanout.slow");
    let mut broker = server.broker().await;
    let mut fast = subscribe_ok(&mut broker, &topic).await;
    // Small HTTP/2 windows keep the transport from absorbing the backlog that must overflow the
    // subscriber's buffer: TOTAL * PAYLOAD (4 MiB) is far more than the remaining transport buffers.
    let slow_channel = server
        .channel_with(|endpoint| {
            endpoint
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
        })
        .await;
    let mut slow_client = Broker::new(slow_channel);
    let mut slow = subscribe_ok(&mut slow_client, &topic).await;

    for start in (0..TOTAL).step_by(BUFFER) {
        let batch = (start..start + BUFFER)
            .map(|n| numbered(&topic, n, PAYLOAD))
            .collect();
        publish_ok(&mut broker, batch).await;
        // Reading each batch before publishing the next keeps the fast subscriber's buffer from
        // ever holding more than BUFFER messages.
        let received: Vec<usize> = next_messages(&mut fast, BUFFER)
            .await
            .iter()
            .map(number_of)
            .collect();
        assert_eq!(
            received,
            (start..start + BUFFER).collect::<Vec<_>>(),
            "the fast subscriber"
        );
    }

    // Each gap stands where its messages went missing: the next message is the one after them.
    let mut received = 0_u64;
    let mut missed = 0_u64;
    let mut expected = 0_u64;
    within_for(
        Duration::from_secs(20),
        "the slow subscriber to account for every message",
        async {
            while received + missed < TOTAL as u64 {
                match next_event(&mut slow).await {
                    Event::Message(message) => {
                        let n = number_of(&message) as u64;
                        assert_eq!(
                            n, expected,
                            "the message after {missed} missed and {received} received"
                        );
                        received += 1;
                        expected = n + 1;
                    }
                    Event::Gap(gap) => {
                        assert!(gap.missed > 0, "a gap reports at least one lost message");
                        missed += gap.missed;
                        expected += gap.missed;
                    }
                }
            }
        },
    )
    .await;
    assert_eq!(
        received + missed,
        TOTAL as u64,
        "received {received} plus missed {missed} is the number published"
    );
    assert!(
        missed > 0,
        "a subscriber that did not read for {TOTAL} messages missed some"
    );
    assert_quiet(
        &mut slow,
        QUIET,
        "a slow subscriber that has accounted for everything",
    )
    .await;
}
