//! Connection and stream limits: `max_connections` closes connections past the cap and takes new ones
//! once a slot frees; `max_streams_per_connection` holds a client's extra call until one ends;
//! `max_subscriptions` refuses subscriptions and consumers past the cap with RESOURCE_EXHAUSTED; and
//! 10,000 concurrent subscriptions on one broker all receive a fan-out.

mod common;

use std::time::Duration;

use common::{process::BrokerProcess, *};
use switchyard::{config::Config, pb};
use tonic::{Code, transport::Endpoint};

/// A fresh connection (not shared with any other client) to `server`.
async fn own_connection(addr: &str) -> Result<Broker, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(WAIT)
        .connect()
        .await?;
    Ok(pb::broker_client::BrokerClient::new(channel))
}

/// Whether a Publish on a new connection of its own succeeds.
async fn new_connection_works(addr: &str) -> bool {
    match own_connection(addr).await {
        Ok(mut broker) => publish(&mut broker, vec![message("limits.probe", "x")])
            .await
            .is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_until_a_slot_frees() {
    let server = TestServer::with_config(Config {
        max_connections: 2,
        ..test_config()
    })
    .await;
    let addr = server.addr.to_string();
    let mut first = own_connection(&addr).await.expect("first connection");
    let mut second = own_connection(&addr).await.expect("second connection");
    publish_ok(&mut first, vec![message("limits.a", "1")]).await;
    publish_ok(&mut second, vec![message("limits.a", "2")]).await;

    assert!(
        !new_connection_works(&addr).await,
        "a third connection was served"
    );
    // The two that were accepted are not affected.
    publish_ok(&mut first, vec![message("limits.a", "3")]).await;

    drop(second);
    within("a connection after one closed", async {
        while !new_connection_works(&addr).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_call_past_the_streams_per_connection_waits_for_a_slot() {
    let server = TestServer::with_config(Config {
        max_streams_per_connection: 2,
        ..test_config()
    })
    .await;
    let mut broker = server.broker().await;
    let one = subscribe_ok(&mut broker, "limits.streams.one").await;
    let _two = subscribe_ok(&mut broker, "limits.streams.two").await;

    let mut third_client = broker.clone();
    let mut third = tokio::spawn(async move {
        let request = pb::SubscribeRequest {
            topic: "limits.streams.three".into(),
        };
        third_client.subscribe(request).await
    });
    assert!(
        tokio::time::timeout(QUIET, &mut third).await.is_err(),
        "a third stream opened on a connection limited to two"
    );
    drop(one);
    let opened = within("the third stream", third).await.expect("join");
    assert!(opened.is_ok(), "{opened:?}");
}

#[tokio::test]
async fn subscriptions_and_consumers_past_the_cap_are_resource_exhausted() {
    let server = TestServer::with_config(Config {
        max_subscriptions: 2,
        ..test_config()
    })
    .await;
    let mut broker = server.broker().await;
    let subscription = subscribe_ok(&mut broker, "limits.subs.a").await;
    let _consumer = consume_ok(&mut broker, consume_request("limits.subs.b", "g")).await;

    assert_status(
        subscribe(&mut broker, "limits.subs.c").await,
        Code::ResourceExhausted,
        &["max_subscriptions"],
    );
    assert_status(
        consume(&mut broker, consume_request("limits.subs.d", "g")).await,
        Code::ResourceExhausted,
        &["max_subscriptions"],
    );

    drop(subscription);
    within("a subscription after one ended", async {
        loop {
            match subscribe(&mut broker, "limits.subs.c").await {
                Ok(_) => break,
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;
}

/// 10,000 subscriptions on one broker process (20 connections of 500 streams) all receive one
/// published message. Prints the broker's resident memory per idle subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribers_all_receive_a_fan_out() {
    const CONNECTIONS: usize = 20;
    const PER_CONNECTION: usize = 500;
    let broker = BrokerProcess::start(&[]).await;
    let addr = broker.addr.to_string();
    let topic = unique("limits.fanout");
    let before = broker.rss_bytes();
    let mut streams = Vec::with_capacity(CONNECTIONS * PER_CONNECTION);
    for _ in 0..CONNECTIONS {
        let client = own_connection(&addr).await.expect("connect to the broker");
        let opening = (0..PER_CONNECTION).map(|_| {
            let mut client = client.clone();
            let topic = topic.clone();
            async move { subscribe_ok(&mut client, &topic).await }
        });
        streams.extend(futures_util::future::join_all(opening).await);
    }
    let after = broker.rss_bytes();
    println!(
        "{} idle subscriptions: broker RSS {} -> {} kB, {} bytes each",
        streams.len(),
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / streams.len() as u64
    );

    let mut publisher = own_connection(&addr).await.expect("connect");
    let published = publish_ok(&mut publisher, vec![message(&topic, "to all")]).await;
    assert_eq!(published[0].subscribers as usize, streams.len());
    let receipts = streams.iter_mut().map(|stream| async move {
        let received = next_message(stream).await;
        assert_eq!(received.payload.as_ref(), b"to all");
    });
    within_for(
        Duration::from_secs(30),
        "10,000 deliveries",
        futures_util::future::join_all(receipts),
    )
    .await;
}
