//! The HTTP listener of a real broker process: `/metrics` follows known traffic (25 waiting shows
//! ready 25, 25 acks show acked 25, a deleted group's series are gone), `/healthz` and `/readyz`
//! answer, it is off when asked, and an address asked for that cannot be bound stops the start.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    process::{BrokerProcess, run, switchyard},
    *,
};
use switchyard::pb;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// `GET path` over a fresh connection: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    within("an HTTP GET", async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the HTTP port");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read the response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
}

/// Polls `/metrics` until `done` holds for it, for at most [`WAIT`].
async fn metrics_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never showed {what}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const LABELS: &str = r#"{topic="jobs.>",group="workers",mode="shared"}"#;

#[tokio::test]
async fn metrics_follow_traffic_and_a_deleted_group_leaves_no_series() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let channel = broker.channel().await;
    let (mut client, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    declare_ok(
        &mut admin,
        pb::DeclareGroupRequest {
            topic: "jobs.>".into(),
            group: "workers".into(),
            ..Default::default()
        },
    )
    .await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..25)).await;
    let body = metrics_until(http, "ready 25", |body| {
        body.contains(&format!("switchyard_group_ready{LABELS} 25"))
    })
    .await;
    assert!(body.contains("switchyard_build_info{version="), "{body}");
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    let mut stream = consume_ok(&mut client, consume_with("jobs.>", "workers", 25, 0)).await;
    let taken = next_deliveries(&mut stream, 25).await;
    ack_all(&mut client, &taken).await;
    metrics_until(http, "25 acked and nothing left", |body| {
        body.contains(&format!("switchyard_group_acked_total{LABELS} 25"))
            && body.contains(&format!("switchyard_group_ready{LABELS} 0"))
            && body.contains(&format!("switchyard_group_in_flight{LABELS} 0"))
            && body.contains(&format!("switchyard_group_consumers{LABELS} 1"))
    })
    .await;
    drop(stream);

    delete_ok(&mut admin, "jobs.>", "workers").await;
    metrics_until(http, "no series of the deleted group", |body| {
        !body.contains("workers") && body.contains("switchyard_groups 0")
    })
    .await;

    assert_eq!(get(http, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(http, "/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(get(http, "/nowhere").await.0, 404);
}

#[tokio::test]
async fn the_listener_is_off_when_asked_and_a_taken_address_stops_the_start() {
    // The harness runs brokers with SWITCHYARD_HTTP=off.
    let broker = BrokerProcess::start(&[]).await;
    assert_eq!(broker.http, None);
    drop(broker);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        switchyard(["serve", "--listen", "127.0.0.1:0", "--http", &addr]),
        None,
    )
    .await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = output.stderr.join("\n");
    assert!(
        stderr.contains("--http") && stderr.contains(&addr),
        "{stderr}"
    );
}
