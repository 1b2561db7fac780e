//! A client whose broker goes away: streams carry on against the restarted broker (a subscription
//! marks the drop with one event, a consumer tells its callback), and no call waits longer than its
//! timeout for a broker that is stopped, absent or silent.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use futures_util::StreamExt;
use switchyard_client::{Client, Error, Event, GroupConfig, OutgoingMessage};
use tokio::{net::TcpListener, time::Instant};

/// A subscription whose broker restarts on the same port, read all along, yields exactly one
/// `Event::Disconnected` (an event, so that `event?` in a loop goes on), then resubscribes by itself:
/// messages published after the restart arrive, in order.
#[tokio::test]
async fn subscription_survives_a_restart() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("news");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    client
        .publish(topic.clone(), "before")
        .await
        .expect("publish");
    assert_eq!(text(&next_message(&mut subscription).await), "before");
    // Read the subscription all the time, as an application would, so it reconnects while the old
    // broker shuts down and the new one starts.
    let (items, mut read) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(item) = subscription.next().await {
            if items.send(item).is_err() {
                return;
            }
        }
    });

    let _server = server.restart().await;
    let dropped = within("the disconnect", read.recv()).await;
    assert!(
        matches!(dropped, Some(Ok(Event::Disconnected { .. }))),
        "{dropped:?}"
    );

    // What is published before the subscription is back is not seen: publish until something arrives.
    let mut sent = 0;
    let first = within("a message after the restart", async {
        loop {
            let published = client.publish(topic.clone(), format!("after{sent}")).await;
            sent += usize::from(published.is_ok());
            if let Ok(item) = tokio::time::timeout(Duration::from_millis(50), read.recv()).await {
                break item;
            }
        }
    })
    .await;
    let Some(Ok(Event::Message(first))) = first else {
        panic!("expected a message after the one disconnect, got {first:?}")
    };
    let first: usize = text(&first).trim_start_matches("after").parse().unwrap();
    // Whatever was published after the first one that arrived arrives too, then the next one.
    client
        .publish(topic.clone(), "last")
        .await
        .expect("publish");
    let expected = (first + 1..sent)
        .map(|n| format!("after{n}"))
        .chain(["last".to_owned()]);
    for want in expected {
        match within("a message", read.recv()).await {
            Some(Ok(Event::Message(message))) => assert_eq!(text(&message), want),
            other => panic!("expected {want}, got {other:?}"),
        }
    }
    reader.abort();
}

/// A consumer whose broker restarts on the same port yields nothing for the drop (its stream goes
/// on), calls its `on_disconnect` callback once, rejoins its group by itself and receives what is
/// published after the restart; acking a delivery from before the restart is harmless.
#[tokio::test]
async fn consumer_survives_a_restart() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("jobs");
    let group = "workers";
    let drops = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&drops);
    let mut consumer = client
        .consume(topic.clone(), group)
        .on_disconnect(move |status| heard.lock().unwrap().push(status.code()))
        .subscribe()
        .await
        .expect("consume");
    client
        .publish(topic.clone(), "before")
        .await
        .expect("publish");
    let held = next_delivery(&mut consumer).await;
    assert_eq!(text(held.message()), "before");

    let _server = server.restart().await;
    held.ack();

    // The restarted broker is empty: declare the group so it keeps what is published before the
    // consumer has rejoined.
    within("declare_group", async {
        loop {
            match client
                .admin()
                .declare_group(GroupConfig::new(topic.clone(), group))
                .await
            {
                Ok(()) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    client
        .publish(topic.clone(), "after")
        .await
        .expect("publish");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(text(delivery.message()), "after");
    assert_eq!(delivery.attempt(), 1);
    assert_eq!(
        drops.lock().unwrap().len(),
        1,
        "the callback heard the one drop: {drops:?}"
    );
    delivery.ack();
    let info = wait_for_group(&client, &topic, group, "one ack", |info| info.acked == 1).await;
    assert_eq!((info.consumers, info.in_flight), (1, 0));
}

/// Every call to a stopped broker fails within the call timeout instead of waiting for it: publish,
/// publish_batch, subscribe, consume, request, admin, the batching Publisher, and a consumer's flush.
#[tokio::test]
async fn calls_to_a_stopped_broker_fail_within_the_call_timeout() {
    let server = TestServer::start().await;
    let call_timeout = Duration::from_secs(1);
    let client = Client::builder(server.url())
        .connect_timeout(Duration::from_secs(1))
        .call_timeout(call_timeout)
        .connect()
        .await
        .expect("connect");
    let topic = unique("gone");
    let consumer = client
        .consume(topic.clone(), "g")
        .subscribe()
        .await
        .expect("consume");
    let publisher = client.publisher().build();
    server.stop().await;

    let limit = call_timeout + Duration::from_secs(1);
    let started = Instant::now();
    let error = within_for(limit, "publish", client.publish(topic.clone(), "x"))
        .await
        .expect_err("no broker");
    assert!(matches!(error, Error::Status(_)), "{error:?}");
    within_for(
        limit,
        "publish_batch",
        client.publish_batch(vec![OutgoingMessage::new(topic.clone(), "x")]),
    )
    .await
    .expect_err("no broker");
    within_for(limit, "subscribe", client.subscribe(topic.clone()))
        .await
        .expect_err("no broker");
    within_for(
        limit,
        "consume",
        client.consume(topic.clone(), "g").subscribe(),
    )
    .await
    .expect_err("no broker");
    let error = within_for(limit, "request", client.request(topic.clone(), "x").send())
        .await
        .expect_err("no broker");
    assert!(
        !matches!(error, Error::NoResponders { .. }),
        "not a broker's answer: {error:?}"
    );
    within_for(limit, "list_groups", client.admin().list_groups())
        .await
        .expect_err("no broker");
    let pending = within_for(
        limit,
        "Publisher::publish",
        publisher.publish(OutgoingMessage::new(topic.clone(), "x")),
    )
    .await
    .expect("queued");
    within_for(limit, "Publisher::flush", publisher.flush())
        .await
        .expect("flushed, with errors");
    within_for(limit, "PendingPublish", pending)
        .await
        .expect_err("no broker");
    within_for(limit, "Consumer::flush", consumer.flush()).await;
    // Each call failed fast: a refused connection is not a timeout.
    assert!(
        started.elapsed() < limit * 2,
        "took {:?}",
        started.elapsed()
    );
}

/// Connecting to a port nobody listens on fails at once with `Error::Connect`.
#[tokio::test]
async fn connect_to_a_closed_port_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let error = within_for(
        Duration::from_secs(2),
        "connect",
        Client::builder(format!("http://{addr}"))
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await
    .expect_err("nobody listens");
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&addr.to_string()),
        "names the address: {error}"
    );
}

/// The shared RequestStream and a Publisher's PublishStream break when the broker restarts: what
/// they carried fails (never resent), and the next request or batch opens a new stream by itself.
#[tokio::test]
async fn request_stream_and_publisher_reopen_after_a_restart() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.restart");
    let publisher = client.publisher().build();
    let serve = |client: Client, topic: String| async move {
        client
            .serve(topic, "svc", |request| async move {
                Ok::<_, std::convert::Infallible>(request.payload)
            })
            .await
    };
    let responder = tokio::spawn(serve(client.clone(), topic.clone()));
    // Until the responder has joined (and again after the restart), a request may find nobody.
    let answered = |payload: &'static str| {
        let (client, topic) = (client.clone(), topic.clone());
        within("a request", async move {
            loop {
                match client.request(topic.clone(), payload).send().await {
                    Ok(reply) => break reply,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    };
    assert_eq!(text(&answered("one").await), "one");
    within(
        "a publish",
        publisher.publish(OutgoingMessage::new(topic.clone(), "x")),
    )
    .await
    .expect("queued")
    .await
    .expect("published");

    let _server = server.restart().await;
    // The responder's consumer rejoins by itself; requests and batches go through again once the
    // new streams are open.
    assert_eq!(text(&answered("two").await), "two");
    let published = within("a publish after the restart", async {
        loop {
            let pending = publisher
                .publish(OutgoingMessage::new(unique("after"), "y"))
                .await
                .expect("queued");
            match pending.await {
                Ok(published) => break published,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(!published.id.is_empty());
    responder.abort();
}

/// A URL that is not one fails `connect` with `Error::Connect` instead of panicking.
#[tokio::test]
async fn connect_to_a_bad_url_fails() {
    let error = within("connect", Client::connect("not a url"))
        .await
        .expect_err("a bad URL");
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
}

/// A "broker" that accepts TCP connections and never answers: connecting does not hang, and every
/// call gives up within the call timeout.
#[tokio::test]
async fn a_silent_broker_cannot_hang_a_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let call_timeout = Duration::from_millis(300);
    let limit = Duration::from_secs(2);
    let connected = within_for(
        limit,
        "connect",
        Client::builder(format!("http://{addr}"))
            .connect_timeout(call_timeout)
            .call_timeout(call_timeout)
            .connect(),
    )
    .await;
    // Whether an unanswered HTTP/2 handshake fails `connect` or only the first call is up to the
    // transport; either way, nothing waits past its timeout.
    if let Ok(client) = connected {
        let topic = unique("void");
        let error = within_for(limit, "publish", client.publish(topic.clone(), "x"))
            .await
            .expect_err("no answer");
        assert_eq!(error.code(), Some(tonic::Code::DeadlineExceeded), "{error}");
        within_for(limit, "subscribe", client.subscribe(topic.clone()))
            .await
            .expect_err("no answer");
        within_for(
            limit,
            "consume",
            client.consume(topic.clone(), "g").subscribe(),
        )
        .await
        .expect_err("no answer");
        within_for(limit, "list_groups", client.admin().list_groups())
            .await
            .expect_err("no answer");
        let error = within_for(
            limit,
            "request",
            client.request(topic, "x").timeout(call_timeout).send(),
        )
        .await
        .expect_err("no answer");
        assert!(matches!(error, Error::TimedOut(_)), "{error:?}");
    }
    accepting.abort();
}
