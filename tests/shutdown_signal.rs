//! `switchyard serve` as a real process on SIGTERM: every open stream (subscription, consumer,
//! PublishStream) ends with UNAVAILABLE, and the process exits cleanly within the grace period even
//! while a client still holds its connection open, removing its ready file.

mod common;

use std::time::Duration;

use common::{process::BrokerProcess, *};
use switchyard::pb;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const GRACE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn sigterm_ends_open_streams_with_unavailable_and_exits_within_the_grace() {
    let mut broker =
        BrokerProcess::start(&["--shutdown-grace", &format!("{}s", GRACE.as_secs())]).await;
    assert!(
        broker.ready_file().exists(),
        "a serving broker has its ready file"
    );
    let mut client = pb::broker_client::BrokerClient::new(broker.channel().await);
    let topic = unique("shutdown");
    let mut subscription = subscribe_ok(&mut client, &topic).await;
    let mut consumer = consume_ok(&mut client, consume_request(&topic, "workers")).await;
    let (_frames, body) = mpsc::channel::<pb::PublishStreamRequest>(1);
    let mut publish_stream = within(
        "PublishStream",
        client.publish_stream(ReceiverStream::new(body)),
    )
    .await
    .expect("PublishStream opens")
    .into_inner();
    publish_ok(&mut client, vec![message(&topic, "held")]).await;
    next_message(&mut subscription).await;
    // Unacked when the signal comes.
    next_delivery(&mut consumer).await;

    let signalled = Instant::now();
    broker.terminate();
    for (what, status) in [
        (
            "subscription",
            end_status(&mut subscription, "subscription").await,
        ),
        ("consumer", end_status(&mut consumer, "consumer").await),
        (
            "PublishStream",
            end_status(&mut publish_stream, "PublishStream").await,
        ),
    ] {
        assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
    }

    // `client` still holds the connection open: the process waits for it at most the grace period.
    let exit = broker.exit_within(GRACE + SLACK).await;
    if !exit.success() {
        broker.fail(&format!("the broker exited with {exit}"));
    }
    assert!(
        signalled.elapsed() <= GRACE + SLACK,
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        !broker.ready_file().exists(),
        "the ready file outlived the broker"
    );
    drop(client);
}
