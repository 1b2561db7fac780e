//! Request/reply: the inbox and correlation id the broker sets, replies matched by correlation id,
//! responders that are subscribers or queue groups, no responders, timeouts, and many requests at once.

mod common;

use std::{collections::HashSet, time::Duration};

use common::*;
use switchyard::pb;
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};
use tonic::{Code, Status};

/// Sends a Request and returns its reply, bounded by the request's own timeout plus [`SLACK`].
async fn request(
    broker: &mut Broker,
    message: pb::Message,
    timeout_ms: u32,
) -> Result<pb::Message, Status> {
    let limit = Duration::from_millis(u64::from(timeout_ms)) + SLACK;
    let request = pb::RequestRequest {
        message: Some(message),
        timeout_ms,
    };
    within_for(limit, "Request", broker.request(request))
        .await
        .map(|response| {
            response
                .into_inner()
                .reply
                .expect("a RequestResponse carries the reply")
        })
}

/// The reply to `request`: `payload` to its reply inbox under `correlation_id`.
fn reply_to(request: &pb::Message, payload: &str, correlation_id: &str) -> pb::Message {
    pb::Message {
        correlation_id: correlation_id.to_owned(),
        ..message(&request.reply_to, payload.to_owned())
    }
}

/// Answers the request `delivery` carries with `payload`, then acks it, as a responder does.
async fn answer(responder: &mut Broker, delivery: pb::Delivery, payload: &str) {
    let request = delivery
        .message
        .clone()
        .expect("a delivery carries a message");
    publish_ok(
        responder,
        vec![reply_to(&request, payload, &request.correlation_id)],
    )
    .await;
    ack_all(responder, &[delivery]).await;
}

/// The reply to a request made in the background, which must succeed.
async fn completed(pending: JoinHandle<Result<pb::Message, Status>>) -> pb::Message {
    within("the request to complete", pending)
        .await
        .expect("the request task did not panic")
        .expect("Request succeeds")
}

/// A responder subscribed to `pattern` (active when this returns) that echoes every request's payload
/// to its reply inbox and reports each request it saw.
async fn spawn_echo(
    server: &TestServer,
    pattern: &str,
) -> (JoinHandle<()>, mpsc::UnboundedReceiver<pb::Message>) {
    let mut client = server.broker().await;
    let mut stream = subscribe_ok(&mut client, pattern).await;
    let (seen, requests) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(Some(response)) = stream.message().await {
            let request = match response.event {
                Some(Event::Message(request)) => request,
                other => panic!("the echo responder fell behind: {other:?}"),
            };
            let reply = pb::Message {
                payload: request.payload.clone(),
                ..reply_to(&request, "", &request.correlation_id)
            };
            let mut publisher = client.clone();
            // Replies go out concurrently, as a pool of real responders would send them.
            tokio::spawn(async move { publish_ok(&mut publisher, vec![reply]).await });
            let _ = seen.send(request);
        }
    });
    (task, requests)
}

/// A request reaches the responder with a fresh `_INBOX.` reply topic and a correlation id (the
/// caller's if given), and the caller gets the responder's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_gets_the_reply_through_a_fresh_inbox() {
    let server = TestServer::start().await;
    let topic = unique("rpc.echo");
    let (responder, mut requests) = spawn_echo(&server, &topic).await;
    let mut broker = server.broker().await;

    let reply = request(&mut broker, message(&topic, "ping"), 5000)
        .await
        .expect("Request succeeds");
    let seen = within("the request at the responder", requests.recv())
        .await
        .expect("a request");
    assert_eq!(
        (seen.topic.as_str(), &seen.payload[..]),
        (topic.as_str(), &b"ping"[..])
    );
    assert!(
        seen.reply_to.starts_with("_INBOX."),
        "reply_to {:?} is an inbox",
        seen.reply_to
    );
    assert!(
        !seen.correlation_id.is_empty(),
        "the broker sets a correlation id"
    );
    assert_eq!(&reply.payload[..], b"ping");
    assert_eq!(reply.topic, seen.reply_to);
    assert_eq!(reply.correlation_id, seen.correlation_id);

    let mine = pb::Message {
        correlation_id: "caller-chosen".into(),
        ..message(&topic, "pong")
    };
    let reply = request(&mut broker, mine, 5000)
        .await
        .expect("Request succeeds");
    let second = within("the second request", requests.recv())
        .await
        .expect("a request");
    assert_eq!(
        second.correlation_id, "caller-chosen",
        "the caller's correlation id is kept"
    );
    assert_ne!(
        second.reply_to, seen.reply_to,
        "each request gets a fresh inbox"
    );
    assert_eq!(
        (&reply.payload[..], reply.correlation_id.as_str()),
        (&b"pong"[..], "caller-chosen")
    );
    responder.abort();
}

/// Only a reply carrying the request's correlation id completes it; others on the inbox are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_with_another_correlation_id_are_ignored_counting_subscribers_except_in_cluster_mode()
 {
    let server = TestServer::start().await;
    let topic = unique("rpc.correlation");
    let mut responder = server.broker().await;
    let mut requests = subscribe_ok(&mut responder, &topic).await;
    let mut caller = server.broker().await;
    let pending =
        tokio::spawn(async move { request(&mut caller, message(&topic, "question"), 5000).await });

    let seen = next_message(&mut requests).await;
    publish_ok(
        &mut responder,
        vec![reply_to(&seen, "wrong", "someone-else")],
    )
    .await;
    let right = vec![reply_to(&seen, "right", &seen.correlation_id)];
    let published = publish_ok(&mut responder, right).await;
    assert_eq!(
        published[0].subscribers,
        counted_subscribers(1),
        "the waiting requester counts as a subscriber"
    );
    let reply = completed(pending).await;
    assert_eq!(&reply.payload[..], b"right");
}

/// A request is a message like any other to the groups it reaches: one to a full group is refused
/// with RESOURCE_EXHAUSTED naming the group, and the group gets nothing.
#[tokio::test]
async fn a_request_to_a_full_group_is_refused() {
    let server = TestServer::start().await;
    let topic = unique("rpc.full");
    let mut admin = server.admin().await;
    let mut broker = server.broker().await;
    let capped = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "capped".into(),
        max_length: 1,
        ..Default::default()
    };
    declare_ok(&mut admin, capped).await;
    publish_ok(&mut broker, vec![message(&topic, "fills it")]).await;
    wait_for_group(&mut admin, &topic, "capped", "1 ready", |g| g.ready == 1).await;

    let refused = request(&mut broker, message(&topic, "question"), 2000).await;
    assert_status(refused, Code::ResourceExhausted, &["capped"]);
    let group = group_info(&mut admin, &topic, "capped")
        .await
        .expect("listed");
    assert_eq!(group.ready, 1, "the refused request was not queued");
}

/// A queue group is a responder too: a request it answers through Consume succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_can_answer_requests() {
    let server = TestServer::start().await;
    let topic = unique("rpc.group");
    let mut responder = server.broker().await;
    let mut deliveries = consume_ok(&mut responder, consume_request(&topic, "answerers")).await;
    let mut caller = server.broker().await;
    let asked = topic.clone();
    let pending =
        tokio::spawn(async move { request(&mut caller, message(&asked, "work?"), 5000).await });

    let delivery = next_delivery(&mut deliveries).await;
    let seen = delivery
        .message
        .clone()
        .expect("a delivery carries a message");
    assert!(
        seen.reply_to.starts_with("_INBOX."),
        "reply_to {:?}",
        seen.reply_to
    );
    answer(&mut responder, delivery, "done").await;
    let reply = completed(pending).await;
    assert_eq!(&reply.payload[..], b"done");
}

/// A request that no subscriber and no group matches fails at once with UNAVAILABLE.
#[tokio::test]
async fn request_without_responders_is_unavailable() {
    let server = TestServer::start().await;
    let topic = unique("rpc.nobody");
    let mut broker = server.broker().await;
    let _elsewhere = subscribe_ok(&mut broker, &format!("{topic}.other")).await;
    let started = Instant::now();
    let result = request(&mut broker, message(&topic, "anyone?"), 10_000).await;
    assert_status(result, Code::Unavailable, &[]);
    assert!(
        started.elapsed() < SLACK,
        "failed at once, not after {:?}",
        started.elapsed()
    );
}

/// A request whose responder never answers fails with DEADLINE_EXCEEDED, not before its timeout.
#[tokio::test]
async fn request_without_a_reply_times_out() {
    let server = TestServer::start().await;
    let topic = unique("rpc.silent");
    let mut broker = server.broker().await;
    let mut silent = subscribe_ok(&mut broker, &topic).await;
    let started = Instant::now();
    let result = request(&mut broker, message(&topic, "hello?"), 300).await;
    let elapsed = started.elapsed();
    assert_status(result, Code::DeadlineExceeded, &[]);
    assert!(
        elapsed >= Duration::from_millis(300),
        "timed out after {elapsed:?}, before 300 ms"
    );
    let seen = next_message(&mut silent).await;
    assert!(
        seen.reply_to.starts_with("_INBOX."),
        "the silent responder got the request: {seen:?}"
    );
}

/// A thousand concurrent requests each get their own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_their_own_reply() {
    const REQUESTS: usize = 1000;
    let server = TestServer::start().await;
    let topic = unique("rpc.many");
    let (responder, mut requests) = spawn_echo(&server, &topic).await;
    let broker = server.broker().await;

    let mut calls = tokio::task::JoinSet::new();
    for n in 0..REQUESTS {
        let mut client = broker.clone();
        let topic = topic.clone();
        calls.spawn(async move {
            let payload = format!("request-{n}");
            let reply = request(&mut client, message(&topic, payload.clone()), 20_000).await;
            (payload, reply)
        });
    }
    let mut answered = 0;
    within_for(Duration::from_secs(30), "a thousand replies", async {
        while let Some(joined) = calls.join_next().await {
            let (payload, reply) = joined.expect("a request task did not panic");
            let reply = reply.unwrap_or_else(|status| panic!("{payload}: {status:?}"));
            assert_eq!(reply.payload, payload.as_bytes(), "the reply to {payload}");
            answered += 1;
        }
    })
    .await;
    assert_eq!(answered, REQUESTS);

    let mut inboxes = HashSet::new();
    let mut correlations = HashSet::new();
    for _ in 0..REQUESTS {
        let seen = within("the responder's record", requests.recv())
            .await
            .expect("a request");
        inboxes.insert(seen.reply_to);
        correlations.insert(seen.correlation_id);
    }
    assert_eq!(
        (inboxes.len(), correlations.len()),
        (REQUESTS, REQUESTS),
        "fresh inbox and id each"
    );
    responder.abort();
}

/// A request that a group's consumer nacks comes back as its next attempt, and so does one it
/// holds past its ack deadline: the same message, still answerable. Subscribers see it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_a_consumer_gives_back_comes_back_and_subscribers_see_it_once() {
    let server = TestServer::start().await;
    let topic = unique("rpc.again");
    let mut watcher = server.broker().await;
    let mut watching = subscribe_ok(&mut watcher, &topic).await;
    let mut responder = server.broker().await;
    let mut deliveries =
        consume_ok(&mut responder, consume_with(&topic, "answerers", 4, 400)).await;
    let pending = request_in_background(&server, message(&topic, "work?")).await;

    let first = next_delivery(&mut deliveries).await;
    assert_eq!(first.attempt, 1);
    nack(&mut responder, &first, 0).await;
    let second = next_delivery(&mut deliveries).await;
    assert_eq!(second.attempt, 2);
    // Left unsettled: its 400 ms deadline passes and it comes back once more.
    let third = next_delivery(&mut deliveries).await;
    assert_eq!(third.attempt, 3);
    let (first, third) = (first.message.unwrap(), third.message.unwrap());
    assert_eq!(third.id, first.id);
    assert_eq!(third.reply_to, first.reply_to);
    publish_ok(
        &mut responder,
        vec![reply_to(&third, "done", &third.correlation_id)],
    )
    .await;
    let reply = completed(pending).await;
    assert_eq!(&reply.payload[..], b"done");

    let seen = next_message(&mut watching).await;
    assert_eq!(seen.id, first.id);
    assert_quiet(
        &mut watching,
        Duration::from_millis(300),
        "the subscription",
    )
    .await;
}

/// A request nacked with a delay comes back once the delay has passed, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nacked_with_a_delay_comes_back_after_it() {
    let server = TestServer::start().await;
    let topic = unique("rpc.later");
    let mut responder = server.broker().await;
    let mut deliveries = consume_ok(&mut responder, consume_request(&topic, "answerers")).await;
    let pending = request_in_background(&server, message(&topic, "work?")).await;

    let first = next_delivery(&mut deliveries).await;
    let nacked_at = Instant::now();
    nack(&mut responder, &first, 400).await;
    let second = next_delivery(&mut deliveries).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(400),
        "back after {:?}",
        nacked_at.elapsed()
    );
    assert_eq!(second.attempt, 2);
    answer(&mut responder, second, "done").await;
    let reply = completed(pending).await;
    assert_eq!(&reply.payload[..], b"done");
}

/// A request held by a consumer that leaves goes to another consumer of the group, which can
/// still answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_by_a_consumer_that_leaves_goes_to_another() {
    let server = TestServer::start().await;
    let topic = unique("rpc.handover");
    let mut leaving = server.broker().await;
    let mut left = consume_ok(&mut leaving, consume_with(&topic, "answerers", 1, 0)).await;
    let pending = request_in_background(&server, message(&topic, "work?")).await;
    let held = next_delivery(&mut left).await;

    let mut staying = server.broker().await;
    let mut stays = consume_ok(&mut staying, consume_with(&topic, "answerers", 1, 0)).await;
    drop(left);
    let again = next_delivery(&mut stays).await;
    assert_eq!(again.attempt, 2);
    assert_eq!(again.message.as_ref().unwrap().id, held.message.unwrap().id);
    answer(&mut staying, again, "done").await;
    let reply = completed(pending).await;
    assert_eq!(&reply.payload[..], b"done");
}

/// A request its consumer rejects goes to the group's dead-letter topic, and is not delivered
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_is_dead_lettered() {
    let server = TestServer::start().await;
    let topic = unique("rpc.refused");
    let dead = format!("{topic}-dead");
    let mut admin = server.admin().await;
    declare_ok(
        &mut admin,
        pb::DeclareGroupRequest {
            dead_letter_topic: dead.clone(),
            ..declaration(&topic, "answerers")
        },
    )
    .await;
    let mut reader = server.broker().await;
    let mut letters = consume_ok(&mut reader, consume_request(&dead, "letters")).await;
    let mut responder = server.broker().await;
    let mut deliveries = consume_ok(&mut responder, consume_request(&topic, "answerers")).await;
    let mut requester = server.broker().await;
    let asked = message(&topic, "work?");
    let pending = tokio::spawn(async move { request(&mut requester, asked, 1000).await });

    let delivery = next_delivery(&mut deliveries).await;
    let unknown = settle(
        &mut responder,
        pb::AckRequest {
            reject_ids: vec![delivery.delivery_id.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("Ack succeeds");
    assert!(unknown.is_empty(), "{unknown:?}");
    let letter = next_delivery(&mut letters).await;
    let letter = letter.message.unwrap();
    assert_eq!(&letter.payload[..], b"work?");
    assert_eq!(letter.id, delivery.message.unwrap().id);
    assert_status(
        within("the request to end", pending)
            .await
            .expect("the request task did not panic"),
        Code::DeadlineExceeded,
        &[],
    );
    assert_quiet(&mut deliveries, Duration::from_millis(300), "the group").await;
}

/// Requests through two connections (in cluster mode, one on each node, so one on the
/// responder's own node) both reach the group's consumer, and their replies come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_through_any_connection_reach_the_group() {
    let server = TestServer::start().await;
    let topic = unique("rpc.anywhere");
    let mut watcher = server.broker().await;
    let mut watching = subscribe_ok(&mut watcher, &topic).await;
    let mut responder = server.broker().await;
    let mut deliveries = consume_ok(&mut responder, consume_request(&topic, "answerers")).await;
    for asked in ["first", "second"] {
        let pending = request_in_background(&server, message(&topic, asked)).await;
        let delivery = next_delivery(&mut deliveries).await;
        let seen = delivery.message.clone().unwrap();
        assert_eq!(&seen.payload[..], asked.as_bytes());
        let answered = format!("{asked} done");
        answer(&mut responder, delivery, &answered).await;
        let reply = completed(pending).await;
        assert_eq!(&reply.payload[..], answered.as_bytes());
        assert_eq!(
            &next_message(&mut watching).await.payload[..],
            asked.as_bytes()
        );
    }
    assert_quiet(
        &mut watching,
        Duration::from_millis(300),
        "the subscription",
    )
    .await;
}
