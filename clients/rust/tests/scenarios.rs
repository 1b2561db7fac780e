//! The scenarios every client implements (`clients/scenarios.txt`), for the Rust client: one test
//! per scenario, named `scenario_ID`, against a real broker on a loopback port.

mod common;
// The broker's own test certificates; these tests use only the CA and the server's files.
#[allow(dead_code)]
#[path = "../../../tests/common/pki.rs"]
mod pki;

use std::{
    collections::HashSet,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use switchyard::config::Config;
use switchyard_client::{
    Client, ConsumeMode, Error, Event, GroupConfig, OutgoingMessage, ServeOptions,
};
use tokio::time::Instant;

/// Publishes `n` messages `m0`… to `topic`, one call each, so each is routed before the next.
async fn publish_numbered(client: &Client, topic: &str, n: usize) {
    for i in 0..n {
        within("publish", client.publish(topic.to_owned(), format!("m{i}")))
            .await
            .expect("publish");
    }
}

/// Waits, retrying, until `call` succeeds: a broker that just restarted may not listen yet.
async fn eventually<F, T>(what: &str, call: impl Fn() -> F) -> T
where
    F: Future<Output = switchyard_client::Result<T>>,
{
    within(what, async {
        loop {
            match call().await {
                Ok(value) => return value,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
}

// A current-thread runtime, so the broker routes the whole batch before the subscription stream
// drains anything: the buffer of four keeps exactly the batch's first four.
#[tokio::test(flavor = "current_thread")]
async fn scenario_fanout_wildcards_gap() {
    let config = Config {
        subscriber_buffer: 4,
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let client = server.client().await;
    let topic = unique("fan");
    let mut exact = client.subscribe(format!("{topic}.eu")).await.unwrap();
    let mut wildcard = client.subscribe(format!("{topic}.*")).await.unwrap();
    let mut everything = client.subscribe(format!("{topic}.>")).await.unwrap();
    publish_numbered(&client, &format!("{topic}.eu"), 3).await;
    for subscription in [&mut exact, &mut wildcard, &mut everything] {
        let seen = next_messages(subscription, 3).await;
        assert_eq!(
            seen.iter().map(text).collect::<Vec<_>>(),
            ["m0", "m1", "m2"]
        );
    }
    // Only the wildcards match this one.
    publish_numbered(&client, &format!("{topic}.us"), 1).await;
    assert_eq!(text(&next_message(&mut wildcard).await), "m0");
    assert_eq!(text(&next_message(&mut everything).await), "m0");
    assert_quiet(&mut exact, QUIET, "the exact subscription").await;

    let batch = (0..10)
        .map(|n| OutgoingMessage::new(format!("{topic}.eu"), format!("b{n}")))
        .collect();
    client.publish_batch(batch).await.expect("publish_batch");
    let kept = next_messages(&mut exact, 4).await;
    assert_eq!(
        kept.iter().map(text).collect::<Vec<_>>(),
        ["b0", "b1", "b2", "b3"]
    );
    assert_eq!(next_event(&mut exact).await, Event::Gap { missed: 6 });
}

#[tokio::test]
async fn scenario_competing_consumers_disjoint() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("work");
    let consumer = || client.consume(topic.clone(), "workers").prefetch(4);
    let mut first = consumer().subscribe().await.unwrap();
    let mut second = consumer().subscribe().await.unwrap();
    publish_numbered(&client, &topic, 40).await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    within("every message to one of the consumers", async {
        while a.len() + b.len() < 40 {
            tokio::select! {
                Some(Ok(delivery)) = futures_util::StreamExt::next(&mut first) => {
                    a.push(text(delivery.message()).to_owned());
                    delivery.ack();
                }
                Some(Ok(delivery)) = futures_util::StreamExt::next(&mut second) => {
                    b.push(text(delivery.message()).to_owned());
                    delivery.ack();
                }
            }
        }
    })
    .await;
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both took part: {a:?} {b:?}"
    );
    let (a, b): (HashSet<_>, HashSet<_>) = (a.into_iter().collect(), b.into_iter().collect());
    assert!(a.is_disjoint(&b), "no message went to both");
    let all: HashSet<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(&a | &b, all);
}

#[tokio::test]
async fn scenario_redelivery_after_deadline() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("slow");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .ack_deadline(Duration::from_millis(300))
        .subscribe()
        .await
        .unwrap();
    publish_numbered(&client, &topic, 1).await;
    let first = next_delivery(&mut consumer).await;
    assert_eq!(first.attempt(), 1);
    let again = next_delivery(&mut consumer).await;
    assert_eq!((text(again.message()), again.attempt()), ("m0", 2));
    assert_eq!(again.message().id, first.message().id);
    again.ack();
    // The first delivery's ack comes too late: it is no longer outstanding.
    drop(first);
}

#[tokio::test]
async fn scenario_nack_with_delay() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("later");
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .subscribe()
        .await
        .unwrap();
    publish_numbered(&client, &topic, 1).await;
    let first = next_delivery(&mut consumer).await;
    let nacked_at = Instant::now();
    first.nack(Duration::from_millis(400));
    let again = next_delivery(&mut consumer).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(400),
        "back after {:?}",
        nacked_at.elapsed()
    );
    assert_eq!((text(again.message()), again.attempt()), ("m0", 2));
    again.ack();
}

#[tokio::test]
async fn scenario_dead_letter() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("risky");
    let dead = format!("{topic}-dead");
    client
        .admin()
        .declare_group(
            GroupConfig::new(topic.clone(), "workers")
                .max_deliveries(2)
                .dead_letter_topic(dead.clone()),
        )
        .await
        .unwrap();
    let mut letters = client.consume(dead, "letters").subscribe().await.unwrap();
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .subscribe()
        .await
        .unwrap();
    publish_numbered(&client, &topic, 2).await;
    let mut rejected = None;
    for _ in 0..2 {
        let delivery = next_delivery(&mut consumer).await;
        match text(delivery.message()) {
            "m0" => {
                rejected = Some(delivery.message().id.clone());
                delivery.reject();
            }
            _ => delivery.nack(Duration::ZERO),
        }
    }
    // m1 is nacked once more: its second delivery was its last.
    let last = next_delivery(&mut consumer).await;
    assert_eq!((text(last.message()), last.attempt()), ("m1", 2));
    last.nack(Duration::ZERO);
    let mut lettered = Vec::new();
    for _ in 0..2 {
        let letter = next_delivery(&mut letters).await;
        lettered.push(text(letter.message()).to_owned());
        if text(letter.message()) == "m0" {
            assert_eq!(Some(&letter.message().id), rejected.as_ref());
        }
        letter.ack();
    }
    lettered.sort();
    assert_eq!(lettered, ["m0", "m1"]);
    assert_quiet(
        &mut consumer,
        QUIET,
        "the group after both were dead-lettered",
    )
    .await;
}

#[tokio::test]
async fn scenario_exclusive_rejected() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("ledger");
    let exclusive = || {
        client
            .consume(topic.clone(), "writer")
            .mode(ConsumeMode::Exclusive)
    };
    let _active = exclusive().subscribe().await.expect("the first is active");
    let refused = within("consume", exclusive().subscribe())
        .await
        .expect_err("a second active consumer is refused");
    assert_eq!(refused.reason().as_deref(), Some("GROUP_EXCLUSIVE_TAKEN"));
}

#[tokio::test]
async fn scenario_exclusive_standby_takeover() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("ledger");
    let exclusive = || {
        client
            .consume(topic.clone(), "writer")
            .mode(ConsumeMode::Exclusive)
    };
    let mut active = exclusive().subscribe().await.unwrap();
    let mut standby = exclusive().standby(true).subscribe().await.unwrap();
    publish_numbered(&client, &topic, 3).await;
    let first = next_delivery(&mut active).await;
    assert_eq!(text(first.message()), "m0");
    first.ack();
    let held = next_delivery(&mut active).await;
    assert_quiet(
        &mut standby,
        QUIET,
        "the standby while the active consumer runs",
    )
    .await;
    active.flush().await;
    drop(held);
    drop(active);
    let taken: Vec<String> = {
        let mut taken = Vec::new();
        for _ in 0..2 {
            let delivery = next_delivery(&mut standby).await;
            taken.push(text(delivery.message()).to_owned());
            delivery.ack();
        }
        taken
    };
    assert_eq!(taken, ["m1", "m2"]);
}

#[tokio::test]
async fn scenario_request_reply() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.upper");
    let responder = client.clone();
    let served = topic.clone();
    tokio::spawn(async move {
        responder
            .serve(served, "upper", |request| async move {
                Ok::<_, String>(text(&request).to_uppercase())
            })
            .await
    });
    let reply = eventually("a reply", || {
        client
            .request(topic.clone(), "hello")
            .timeout(Duration::from_secs(1))
            .send()
    })
    .await;
    assert_eq!(text(&reply), "HELLO");
}

#[tokio::test]
async fn scenario_no_responders_by_reason() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let started = Instant::now();
    let error = client
        .request(unique("nobody"), "anyone?")
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect_err("nobody answers");
    assert!(matches!(error, Error::NoResponders { .. }), "{error:?}");
    assert_eq!(error.reason().as_deref(), Some("NO_RESPONDERS"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "at once, not at the timeout"
    );
}

/// A broker over TLS with the test CA's server certificate, knowing the token `app-token`.
async fn secured() -> (TestServer, pki::Pki, tempfile::NamedTempFile) {
    let pki = pki::pki();
    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    tokens
        .write_all(br#"{"tokens": [{"name": "app", "token": "app-token", "admin": true}]}"#)
        .unwrap();
    let config = Config {
        tls_cert: Some(pki.path("server.pem")),
        tls_key: Some(pki.path("server.key")),
        auth_file: Some(tokens.path().to_owned()),
        ..test_config()
    };
    (TestServer::with_config(config).await, pki, tokens)
}

/// A client of a [`secured`] broker trusting the test CA, with `token`.
async fn secured_client(
    server: &TestServer,
    pki: &pki::Pki,
    token: &str,
) -> switchyard_client::Result<Client> {
    Client::builder(format!("https://{}", server.addr))
        .tls_ca_pem(&pki.ca)
        .tls_domain_name(pki::SERVER_NAME)
        .token(token)
        .call_timeout(WAIT)
        .connect()
        .await
}

#[tokio::test]
async fn scenario_tls_and_token() {
    let (server, pki, _tokens) = secured().await;
    let client = secured_client(&server, &pki, "app-token").await.unwrap();
    let topic = unique("secure");
    let mut subscription = client.subscribe(topic.clone()).await.unwrap();
    client.publish(topic, "sealed").await.unwrap();
    assert_eq!(text(&next_message(&mut subscription).await), "sealed");
}

#[tokio::test]
async fn scenario_wrong_token() {
    let (server, pki, _tokens) = secured().await;
    let refused = match secured_client(&server, &pki, "not-the-token").await {
        Ok(client) => client.publish(unique("secure"), "x").await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(
        refused.reason().as_deref(),
        Some("UNAUTHENTICATED"),
        "{refused}"
    );
}

#[tokio::test]
async fn scenario_reconnect_after_restart() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("lasting");
    let mut subscription = client.subscribe(topic.clone()).await.unwrap();
    let drops = Arc::new(Mutex::new(0));
    let heard = Arc::clone(&drops);
    let mut consumer = client
        .consume(topic.clone(), "workers")
        .on_disconnect(move |_| *heard.lock().unwrap() += 1)
        .subscribe()
        .await
        .unwrap();
    publish_numbered(&client, &topic, 1).await;
    assert_eq!(text(&next_message(&mut subscription).await), "m0");
    next_delivery(&mut consumer).await.ack();

    let _server = server.restart().await;
    assert!(
        matches!(
            next_event(&mut subscription).await,
            Event::Disconnected { .. }
        ),
        "the subscription announces the drop"
    );
    // The restarted broker is empty: the group is declared again before publishing, and the
    // subscription is back once a message published now reaches it.
    let topic_again = topic.clone();
    eventually("declare the group again", || {
        let (admin, topic) = (client.admin(), topic_again.clone());
        async move {
            admin
                .declare_group(GroupConfig::new(topic, "workers"))
                .await
        }
    })
    .await;
    let arrived = within("a message after the restart", async {
        loop {
            client.publish(topic.clone(), "after").await.unwrap();
            if let Ok(Some(event)) = tokio::time::timeout(
                Duration::from_millis(200),
                futures_util::StreamExt::next(&mut subscription),
            )
            .await
            {
                return event.unwrap();
            }
        }
    })
    .await;
    assert!(matches!(&arrived, Event::Message(message) if text(message) == "after"));
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(text(delivery.message()), "after");
    delivery.ack();
    assert_eq!(
        *drops.lock().unwrap(),
        1,
        "the consumer announced the one drop"
    );
}

#[tokio::test]
async fn scenario_pipelined_request_burst() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.echo");
    let responder = client.clone();
    let served = topic.clone();
    tokio::spawn(async move {
        let options = ServeOptions::default().concurrency(64);
        responder
            .serve_with(served, "echo", options, |request| async move {
                Ok::<_, String>(request.payload)
            })
            .await
    });
    eventually("the responder to answer", || {
        client
            .request(topic.clone(), "warm")
            .timeout(Duration::from_millis(500))
            .send()
    })
    .await;
    let burst = (0..200).map(|n| {
        let (client, topic) = (client.clone(), topic.clone());
        async move {
            let reply = client.request(topic, format!("r{n}")).send().await;
            (n, reply)
        }
    });
    for (n, reply) in within("200 replies", futures_util::future::join_all(burst)).await {
        assert_eq!(text(&reply.expect("a reply")), format!("r{n}"));
    }
}

#[tokio::test]
async fn scenario_publish_backpressure() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("flood");
    // A group that holds 5: the broker holds each batch until there is room (`wait_for_room`),
    // and the publisher's queue of 2 holds the rest back in `publish`.
    client
        .admin()
        .declare_group(GroupConfig::new(topic.clone(), "workers").max_length(5))
        .await
        .unwrap();
    let publisher = client
        .publisher()
        .max_pending(2)
        .max_batch(1)
        .max_in_flight(1)
        .wait_for_room(true)
        .build();
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&queued);
    let (publishing, flood) = (topic.clone(), publisher.clone());
    let publishing = tokio::spawn(async move {
        let mut pending = Vec::new();
        for n in 0..30 {
            let message = OutgoingMessage::new(publishing.clone(), format!("p{n}"));
            pending.push(flood.publish(message).await.unwrap());
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for published in pending {
            published.await.unwrap();
        }
    });
    // With nobody consuming, the publisher fills the group and its queue, then waits.
    tokio::time::sleep(QUIET).await;
    let waiting_at = queued.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        waiting_at < 30,
        "publish waited for room: {waiting_at} of 30 queued"
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        queued.load(std::sync::atomic::Ordering::Relaxed),
        waiting_at
    );

    let mut consumer = client
        .consume(topic.clone(), "workers")
        .subscribe()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..30 {
        let delivery = next_delivery(&mut consumer).await;
        seen.push(text(delivery.message()).to_owned());
        delivery.ack();
    }
    within("every publish to complete", publishing)
        .await
        .unwrap();
    let expected: Vec<String> = (0..30).map(|n| format!("p{n}")).collect();
    assert_eq!(seen, expected, "every message once, in order");
    assert_quiet(&mut consumer, QUIET, "the group").await;
}
