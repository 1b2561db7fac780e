//! The HTTP listener of a real broker process: `/metrics` and the JSON API follow known traffic (25
//! waiting shows ready 25, 25 acks show acked 25, a slow subscriber's gaps show, a deleted group's
//! series are gone), `/healthz` and `/readyz` answer, tokens guard what `--http-auth` names, it is
//! off when asked, and an address asked for that cannot be bound stops the start.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    http::http_request,
    process::{BrokerProcess, run, switchyard},
    *,
};
use serde_json::Value;
use switchyard::pb;
use tokio::time::Instant;

/// `GET path` over a fresh connection: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_with(addr, path, "").await
}

/// `GET path` with `headers` (whole lines, each ending in CRLF): the status code and the body, or
/// for a refusal the head too.
async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    http_request(addr, "GET", path, headers).await
}

/// Polls `path` until `done` holds for its body, for at most [`WAIT`].
async fn until<T>(
    addr: SocketAddr,
    path: &str,
    what: &str,
    read: impl Fn(&str) -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(addr, path).await;
        assert_eq!(status, 200, "{body}");
        let read = read(&body);
        if done(&read) {
            return read;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {what}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/metrics` until `done` holds for it.
async fn metrics_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    until(addr, "/metrics", what, str::to_owned, |body| done(body)).await
}

/// Polls a JSON endpoint until `done` holds for it.
async fn json_until(
    addr: SocketAddr,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let parse = |body: &str| serde_json::from_str(body).expect("a JSON body");
    until(addr, path, what, parse, done).await
}

const LABELS: &str = r#"{topic="jobs.>",group="workers",mode="shared"}"#;

#[tokio::test]
async fn metrics_follow_traffic_and_a_deleted_group_leaves_no_series() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let channel = broker.channel().await;
    let (mut client, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    declare_ok(&mut admin, declaration("jobs.>", "workers")).await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..25)).await;
    let body = metrics_until(http, "ready 25", |body| {
        body.contains(&format!("switchyard_group_ready{LABELS} 25"))
    })
    .await;
    assert!(body.contains("switchyard_build_info{version="), "{body}");
    assert!(
        body.contains("switchyard_published_messages_total 25"),
        "{body}"
    );
    assert!(
        body.contains(r#"switchyard_publish_requests_total{code="OK"} 1"#),
        "{body}"
    );
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    // The oldest waiting message ages while nobody takes it.
    let age = |body: &str| -> f64 {
        let line = format!("switchyard_group_oldest_ready_age_seconds{LABELS} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {line} in {body}"))
    };
    let first = age(&body);
    metrics_until(http, "an older oldest message", |body| age(body) > first).await;
    let groups = json_until(http, "/api/groups", "ready 25", |json| {
        json["groups"][0]["ready"] == 25
    })
    .await;
    let group = &groups["groups"][0];
    assert_eq!(
        (group["topic"].as_str(), group["group"].as_str()),
        (Some("jobs.>"), Some("workers"))
    );
    assert!(
        group["oldest_ready_seconds"]
            .as_f64()
            .is_some_and(|age| age > 0.0),
        "{group}"
    );

    let mut stream = consume_ok(&mut client, consume_with("jobs.>", "workers", 25, 0)).await;
    let taken = next_deliveries(&mut stream, 25).await;
    let detail = json_until(
        http,
        "/api/group?topic=jobs.%3E&group=workers",
        "the consumer holding 25",
        |json| json["consumers_attached"][0]["in_flight"] == 25,
    )
    .await;
    assert_eq!(detail["consumers_attached"][0]["prefetch"], 25, "{detail}");
    assert_eq!(detail["in_flight"], 25, "{detail}");
    ack_all(&mut client, &taken).await;
    metrics_until(http, "25 acked and nothing left", |body| {
        body.contains(&format!("switchyard_group_acked_total{LABELS} 25"))
            && body.contains(&format!("switchyard_group_ready{LABELS} 0"))
            && body.contains(&format!("switchyard_group_in_flight{LABELS} 0"))
            && body.contains(&format!("switchyard_group_consumers{LABELS} 1"))
            // One Ack call settled the 25.
            && body.contains(r#"switchyard_ack_requests_total{code="OK"} 1"#)
    })
    .await;
    drop(stream);

    delete_ok(&mut admin, "jobs.>", "workers").await;
    metrics_until(http, "no series of the deleted group", |body| {
        !body.contains("workers") && body.contains("switchyard_groups 0")
    })
    .await;
    // The broker's totals keep what the deleted group did.
    let overview = json_until(http, "/api/overview", "the totals", |json| {
        json["totals"]["acked"] == 25
    })
    .await;
    assert_eq!(overview["totals"]["published"], 25, "{overview}");
    // A page that has the history asks only for what came after its last sample.
    let samples = json_until(http, "/api/overview", "two samples", |json| {
        json["history"]["samples"]
            .as_array()
            .is_some_and(|s| s.len() >= 2)
    })
    .await["history"]["samples"]
        .clone();
    let first = samples[0]["t"].as_u64().expect("a sample's time");
    let after = json_until(
        http,
        &format!("/api/overview?since={first}"),
        "the later ones",
        |json| {
            json["history"]["samples"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        },
    )
    .await;
    let later = after["history"]["samples"].as_array().expect("samples");
    assert!(
        later
            .iter()
            .all(|sample| sample["t"].as_u64() > Some(first)),
        "{after}"
    );
    assert_eq!(get(http, "/api/overview?since=soon").await.0, 400);
    assert_eq!(overview["totals"]["delivered"], 25, "{overview}");
    assert_eq!(overview["counts"]["groups"], 0, "{overview}");
    let (status, body) = get(http, "/api/group?topic=jobs.%3E&group=workers").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(http, "/api/group?group=workers").await;
    assert!(status == 400 && body.contains("topic"), "{body}");

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

/// Nacks, rejects and redeliveries past `max_deliveries` are counted per reason.
#[tokio::test]
async fn settlements_are_counted_by_kind_and_dead_letters_by_reason() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let channel = broker.channel().await;
    let (mut client, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    let exhausted_after_two = pb::DeclareGroupRequest {
        max_deliveries: 2,
        ..declaration("jobs.>", "workers")
    };
    declare_ok(&mut admin, exhausted_after_two).await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..2)).await;
    let mut stream = consume_ok(&mut client, consume_with("jobs.>", "workers", 2, 0)).await;
    // The first is rejected; the second nacked twice, which uses up its two deliveries.
    let first = next_deliveries(&mut stream, 2).await;
    let settle = |ack: pb::AckRequest| {
        let mut client = client.clone();
        async move { client.ack(ack).await.expect("Ack") }
    };
    settle(pb::AckRequest {
        reject_ids: vec![first[0].delivery_id.clone()],
        nack_ids: vec![first[1].delivery_id.clone()],
        ..Default::default()
    })
    .await;
    let again = next_deliveries(&mut stream, 1).await;
    settle(pb::AckRequest {
        nack_ids: vec![again[0].delivery_id.clone()],
        ..Default::default()
    })
    .await;
    let dead = |reason: &str| {
        format!(
            r#"switchyard_group_dead_lettered_total{{topic="jobs.>",group="workers",mode="shared",reason="{reason}"}} 1"#
        )
    };
    metrics_until(
        http,
        "one dead letter of each reason and two nacks",
        |body| {
            body.contains(&dead("rejected"))
                && body.contains(&dead("max_deliveries"))
                && body.contains(&format!("switchyard_group_nacked_total{LABELS} 2"))
                && body.contains(&format!("switchyard_group_redelivered_total{LABELS} 1"))
        },
    )
    .await;
    let groups = json_until(http, "/api/groups", "the dead letters", |json| {
        json["groups"][0]["dead_lettered"]["max_deliveries"] == 1
    })
    .await;
    assert_eq!(
        groups["groups"][0]["dead_lettered"]["rejected"], 1,
        "{groups}"
    );
    assert_eq!(groups["groups"][0]["nacked"], 2, "{groups}");
}

/// A subscriber that does not read loses what overflows its buffer, and the loss shows per pattern;
/// open streams and connections show while they are open.
#[tokio::test]
async fn a_slow_subscribers_gaps_and_open_streams_show() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0", "--subscriber-buffer", "4"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let mut client = Broker::new(broker.channel().await);
    let stream = subscribe_ok(&mut client, "ticks.*").await;
    publish_ok(&mut client, numbered_batch("ticks.a", 0..20)).await;
    // Each of the 20 was buffered, taken by the stream on its way to the client, or dropped: which,
    // depends on how fast the stream drains the buffer (the exact rule is unit-tested with the
    // buffer). Buffering 4 at most, at least 16 minus what the stream took are gaps.
    let subscriptions = json_until(
        http,
        "/api/subscriptions",
        "every message counted",
        |json| {
            let pattern = &json["patterns"][0];
            let count = |field: &str| pattern[field].as_u64().unwrap_or(0);
            count("gaps") > 0 && count("gaps") + count("delivered") + count("buffered") == 20
        },
    )
    .await;
    let gaps = subscriptions["patterns"][0]["gaps"].as_u64().unwrap_or(0);
    assert!(
        subscriptions["patterns"][0]["slow_events"].as_u64() >= Some(1),
        "{subscriptions}"
    );
    let body = metrics_until(http, "the gaps", |body| {
        body.contains(&format!(
            r#"switchyard_subscription_gaps_total{{pattern="ticks.*"}} {gaps}"#
        ))
    })
    .await;
    assert!(
        body.contains(r#"switchyard_subscription_subscribers{pattern="ticks.*"} 1"#)
            && body.contains(r#"switchyard_streams{rpc="subscribe"} 1"#),
        "{body}"
    );
    let connections = json_until(http, "/api/connections", "a stream open", |json| {
        json["connections"]
            .as_array()
            .is_some_and(|open| open.iter().any(|c| c["streams"] == 1))
    })
    .await;
    assert!(
        connections["connections"][0]["peer"].is_string(),
        "{connections}"
    );

    drop(stream);
    metrics_until(http, "the subscription gone", |body| {
        body.contains(r#"switchyard_streams{rpc="subscribe"} 0"#)
            && !body.contains(r#"pattern="ticks.*""#)
    })
    .await;
}

/// Requests are counted by how they end.
#[tokio::test]
async fn request_outcomes_are_counted() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let mut client = Broker::new(broker.channel().await);
    let refused = client
        .request(pb::RequestRequest {
            message: Some(message("svc.nobody", "ping")),
            timeout_ms: 1000,
        })
        .await
        .expect_err("nobody answers");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    let overview = json_until(http, "/api/overview", "no responders", |json| {
        json["requests"]["no_responders"] == 1
    })
    .await;
    assert_eq!(overview["requests"]["answered"], 0, "{overview}");
    metrics_until(http, "no responders", |body| {
        body.contains(r#"switchyard_requests_total{outcome="no_responders"} 1"#)
    })
    .await;
}

const TOKENS: &str = r#"{"tokens": [
    {"name": "ops", "token": "ops-token", "admin": true},
    {"name": "app", "token": "app-token", "publish": {"allow": [">"]}}
]}"#;

/// With authentication on, the dashboard and the JSON API need an admin token, by Bearer or by
/// Basic (what a browser sends once asked); `/metrics` and health are open unless `--http-auth`
/// says otherwise.
#[tokio::test]
async fn tokens_guard_the_dashboard_and_what_http_auth_names() {
    let file = tempfile::NamedTempFile::new().expect("a token file");
    std::fs::write(file.path(), TOKENS).expect("write the token file");
    let path = file.path().to_str().expect("a UTF-8 path");
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0", "--auth-file", path]).await;
    let http = broker.http.expect("the ready file names the HTTP address");

    let (status, head) = get(http, "/api/overview").await;
    assert_eq!(status, 401, "{head}");
    assert!(
        head.contains(r#"www-authenticate: Basic realm="switchyard""#),
        "{head}"
    );
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        get_with(http, "/api/overview", &bearer("app-token"))
            .await
            .0,
        403
    );
    assert_eq!(
        get_with(http, "/api/overview", &bearer("wrong")).await.0,
        401
    );
    assert_eq!(
        get_with(http, "/api/overview", &bearer("ops-token"))
            .await
            .0,
        200
    );
    // "anyone:ops-token", as a browser sends it.
    let basic = "Authorization: Basic YW55b25lOm9wcy10b2tlbg==\r\n";
    assert_eq!(get_with(http, "/api/groups", basic).await.0, 200);
    assert_eq!(get(http, "/metrics").await.0, 200);
    assert_eq!(get(http, "/healthz").await.0, 200);
    drop(broker);

    let broker = BrokerProcess::start(&[
        "--http",
        "127.0.0.1:0",
        "--auth-file",
        path,
        "--http-auth",
        "all",
    ])
    .await;
    let http = broker.http.expect("the ready file names the HTTP address");
    assert_eq!(get(http, "/metrics").await.0, 401);
    assert_eq!(get(http, "/readyz").await.0, 401);
    assert_eq!(
        get_with(http, "/metrics", &bearer("ops-token")).await.0,
        200
    );
    assert_eq!(
        get_with(http, "/healthz", &bearer("ops-token")).await.0,
        200
    );
}

/// A durable broker's log shows: its size, fsyncs and their latency and batch size, and how long
/// recovery took.
#[tokio::test]
async fn a_durable_brokers_log_shows() {
    let dir = tempfile::tempdir().expect("a data directory");
    let path = dir.path().to_str().expect("a UTF-8 path");
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0", "--data-dir", path]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let channel = broker.channel().await;
    let (mut client, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    declare_ok(&mut admin, declaration("jobs.>", "workers")).await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..3)).await;
    let value = |body: &str, name: &str| -> f64 {
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    let body = metrics_until(http, "the publish's fsync", |body| {
        body.contains("switchyard_journal_fsyncs_total")
            && value(body, "switchyard_journal_records_total") >= 3.0
    })
    .await;
    // The epoch, the declaration and the publish: three fsyncs at least, each counted once.
    let fsyncs = value(&body, "switchyard_journal_fsyncs_total");
    assert!(fsyncs >= 3.0, "{body}");
    assert_eq!(
        value(
            &body,
            r#"switchyard_journal_fsync_seconds_bucket{le="+Inf"}"#
        ),
        fsyncs,
        "{body}"
    );
    assert_eq!(
        value(&body, "switchyard_journal_batch_records_count"),
        fsyncs,
        "{body}"
    );
    assert!(value(&body, "switchyard_journal_bytes") > 0.0, "{body}");
    assert!(value(&body, "switchyard_journal_segments") >= 1.0, "{body}");
    assert!(
        body.contains("switchyard_journal_recovery_seconds "),
        "{body}"
    );
    let overview = json_until(http, "/api/overview", "the journal", |json| {
        json["journal"]["fsyncs"].as_u64().is_some_and(|n| n >= 3)
    })
    .await;
    assert_eq!(overview["durable"], true, "{overview}");
}

/// On loopback the listener answers only requests addressed to loopback, so a web page cannot
/// reach it through a name of its own pointed at 127.0.0.1 (DNS rebinding).
#[tokio::test]
async fn a_loopback_listener_refuses_requests_for_other_hosts() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0"]).await;
    let http = broker.http.expect("the ready file names the HTTP address");
    let (status, head) = get_with(http, "/api/overview", "Host: rebound.example:50052\r\n").await;
    assert_eq!(status, 421, "{head}");
    for host in ["localhost:50052", "127.0.0.1"] {
        let header = format!("Host: {host}\r\n");
        assert_eq!(
            get_with(http, "/api/overview", &header).await.0,
            200,
            "{host}"
        );
    }
}
