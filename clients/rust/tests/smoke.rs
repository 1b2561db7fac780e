//! A first check that the client talks to a real broker.

use std::time::Duration;

use futures_util::StreamExt;
use switchyard_client::{Client, Event};

#[tokio::test]
async fn publish_reaches_a_subscriber() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(switchyard::server::run(
        listener,
        switchyard::config::Config::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = Client::connect(format!("http://{addr}")).await.unwrap();
    let mut subscription = client.subscribe("smoke.>").await.unwrap();
    client.publish("smoke.test", "hello").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap();
    let Some(Ok(Event::Message(message))) = event else {
        panic!("{event:?}")
    };
    assert_eq!(message.payload, "hello");
}
