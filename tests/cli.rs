//! The `switchyard` binary's client commands, run as child processes against a real server on
//! `127.0.0.1:0`: what they print, what they send, and how they fail.
//!
//! The children are started and waited for by the shared harness (`common::child`): each is killed
//! when its handle drops, and every wait on one is bounded.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    TestServer,
    child::{ChildProcess, Output},
    process::{self, BrokerProcess, cli},
    unique, wait_for_group, within,
};
use serde_json::Value;
use switchyard::{config::Config, pb, server};
use tokio::{net::TcpListener, time::Instant};

/// `switchyard ARGS` talking to `server`, with `stdin` as its input (none: an empty stdin).
fn start(server: &str, args: &[&str], stdin: Option<&[u8]>) -> ChildProcess {
    ChildProcess::spawn(cli(server, args), stdin)
}

/// Runs `switchyard ARGS` to completion.
async fn run(server: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    process::run(cli(server, args), stdin).await
}

/// Runs `switchyard ARGS`, which must succeed, and returns its stdout.
async fn run_ok(server: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<String> {
    let output = run(server, args, stdin).await;
    assert!(
        output.status.success(),
        "switchyard {} failed: {output:?}",
        args.join(" ")
    );
    output.stdout
}

/// Runs `switchyard ARGS`, which must fail with one `error: ` line on stderr, and returns it.
async fn run_err(server: &str, args: &[&str]) -> String {
    let output = run(server, args, None).await;
    assert!(
        !output.status.success(),
        "switchyard {} succeeded: {output:?}",
        args.join(" ")
    );
    assert_eq!(output.status.code(), Some(1), "exit status of {output:?}");
    assert_eq!(output.stderr.len(), 1, "one line on stderr: {output:?}");
    let line = output.stderr[0].clone();
    assert!(line.starts_with("error: "), "{line:?}");
    line
}

fn url(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line:?}"))
}

/// The group `group` on `topic` in the output of `groups list --json`.
fn listed(lines: &[String], topic: &str, group: &str) -> Option<Value> {
    lines
        .iter()
        .map(|line| json(line))
        .find(|info| info["topic"] == topic && info["group"] == group)
}

/// `pub TOPIC PAYLOAD` publishes one message with the given headers and key, and prints its id.
#[tokio::test]
async fn pub_publishes_its_payload_argument_counting_subscribers_except_in_cluster_mode() {
    let server = TestServer::start().await;
    let topic = unique("orders");
    let mut broker = server.broker().await;
    let mut subscription = common::subscribe_ok(&mut broker, &topic).await;

    let args = [
        "pub",
        &topic,
        r#"{"sku":"A1"}"#,
        "-H",
        "source=cli",
        "--headers",
        "trace=7",
        "--key",
        "customer-42",
        "--json",
    ];
    let stdout = run_ok(&url(&server), &args, None).await;
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    let published = json(&stdout[0]);
    assert_eq!(published["topic"], topic.as_str());
    assert_eq!(published["subscribers"], common::counted_subscribers(1));

    let message = common::next_message(&mut subscription).await;
    assert_eq!(published["id"], message.id.as_str());
    assert_eq!(&message.payload[..], br#"{"sku":"A1"}"#);
    assert_eq!(message.headers["source"], "cli");
    assert_eq!(message.headers["trace"], "7");
    assert_eq!(message.key, "customer-42");
}

/// Without a payload argument, `pub` publishes each line of stdin, in order, and confirms each.
#[tokio::test]
async fn pub_publishes_one_message_per_stdin_line() {
    let server = TestServer::start().await;
    let topic = unique("lines");
    let mut broker = server.broker().await;
    let mut subscription = common::subscribe_ok(&mut broker, &topic).await;

    let stdout = run_ok(
        &url(&server),
        &["pub", &topic],
        Some(b"one\ntwo\r\n\nthree"),
    )
    .await;
    assert_eq!(stdout.len(), 4, "{stdout:?}");
    assert!(
        stdout
            .iter()
            .all(|line| line.starts_with("published ") && line.contains(&topic)),
        "{stdout:?}"
    );
    let payloads: Vec<_> = common::next_messages(&mut subscription, 4)
        .await
        .into_iter()
        .map(|message| message.payload)
        .collect();
    assert_eq!(payloads, ["one", "two", "", "three"]);
}

/// `sub --count N --json` prints N JSON lines that parse back to what was published, binary payloads
/// as base64, then exits; without --json the lines are `[topic] (headers) payload`.
#[tokio::test]
async fn sub_prints_count_messages_as_json_or_text() {
    let server = TestServer::start().await;
    let topic = unique("events");
    let pattern = format!("{topic}.>");
    let mut as_json = start(
        &url(&server),
        &["sub", &pattern, "--count", "3", "--json"],
        None,
    );
    let mut as_text = start(&url(&server), &["sub", &pattern, "--count", "3"], None);
    as_json.printed_stderr("subscribed to").await;
    as_text.printed_stderr("subscribed to").await;

    let mut broker = server.broker().await;
    let mut with_headers = common::message(&format!("{topic}.a"), r#"{"sku":"A1"}"#);
    with_headers.headers.insert("source".into(), "web".into());
    let binary = common::message(&format!("{topic}.b"), vec![0xff, 0x00, 0x01]);
    let two_lines = common::message(&format!("{topic}.c"), "line 1\nline 2");
    let published = common::publish_ok(&mut broker, vec![with_headers, binary, two_lines]).await;

    let output = as_json.finish().await;
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = output.stdout.iter().map(|line| json(line)).collect();
    assert_eq!(lines.len(), 3, "{output:?}");
    for (line, published) in lines.iter().zip(&published) {
        assert_eq!(line["id"], published.id.as_str());
    }
    assert_eq!(lines[0]["topic"], format!("{topic}.a"));
    assert_eq!(lines[0]["payload"], r#"{"sku":"A1"}"#);
    assert_eq!(lines[0]["headers"]["source"], "web");
    assert!(lines[0]["published_at"].is_string());
    assert_eq!(lines[1]["payload_base64"], "/wAB");
    assert!(lines[1].get("payload").is_none());
    assert_eq!(lines[2]["payload"], "line 1\nline 2");

    let output = as_text.finish().await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        output.stdout,
        [
            format!(r#"[{topic}.a] (source=web) {{"sku":"A1"}}"#),
            format!("[{topic}.b] base64:/wAB"),
            format!(r"[{topic}.c] line 1\nline 2"),
        ]
    );
}

/// `consume --count N` prints N deliveries with attempt and delivery id and acks them, which
/// `groups list` then shows; with `--no-ack` the delivery goes back to the group instead.
#[tokio::test]
async fn consume_acks_what_it_prints_unless_no_ack() {
    let server = TestServer::start().await;
    let server_url = url(&server);
    let topic = unique("jobs");
    run_ok(
        &server_url,
        &["groups", "declare", &topic, "--group", "workers"],
        None,
    )
    .await;
    run_ok(&server_url, &["pub", &topic], Some(b"a\nb\nc\n")).await;

    let args = ["consume", &topic, "-g", "workers", "--count", "3", "--json"];
    let stdout = run_ok(&server_url, &args, None).await;
    let deliveries: Vec<Value> = stdout.iter().map(|line| json(line)).collect();
    assert_eq!(deliveries.len(), 3, "{stdout:?}");
    let payloads: Vec<_> = deliveries.iter().map(|d| d["payload"].clone()).collect();
    assert_eq!(payloads, ["a", "b", "c"]);
    for delivery in &deliveries {
        assert_eq!(delivery["attempt"], 1);
        assert!(delivery["delivery_id"].is_string(), "{delivery}");
    }
    // The acks were sent before `consume` exited.
    let groups = run_ok(&server_url, &["groups", "list", "--json"], None).await;
    let group = listed(&groups, &topic, "workers").expect("the group is listed");
    assert_eq!(group["acked"], 3, "{group}");
    assert_eq!(group["ready"], 0, "{group}");
    assert_eq!(group["in_flight"], 0, "{group}");

    run_ok(&server_url, &["pub", &topic, "d"], None).await;
    let args = [
        "consume", &topic, "-g", "workers", "--count", "1", "--no-ack",
    ];
    let stdout = run_ok(&server_url, &args, None).await;
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    assert!(
        stdout[0].starts_with(&format!("[{topic}] attempt=1 delivery="))
            && stdout[0].ends_with(" d"),
        "{stdout:?}"
    );
    let mut admin = server.admin().await;
    wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "d back in the group, delivered once",
        |info| info.ready == 1 && info.in_flight == 0 && info.acked == 3 && info.delivered == 4,
    )
    .await;
}

/// `request` gets the echo of a `reply` responder running as another process, as text, as JSON,
/// and once per stdin line.
#[tokio::test]
async fn request_gets_the_echo_of_a_reply_responder() {
    let server = TestServer::start().await;
    let server_url = url(&server);
    let topic = unique("svc.echo");
    let mut responder = start(&server_url, &["reply", &topic], None);
    let mut admin = server.admin().await;
    wait_for_group(&mut admin, &topic, "responders", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    assert_eq!(
        run_ok(&server_url, &["request", &topic, "ping"], None).await,
        ["ping"]
    );
    let stdout = run_ok(&server_url, &["request", &topic, "ping", "--json"], None).await;
    assert_eq!(json(&stdout[0])["payload"], "ping");
    let stdout = run_ok(&server_url, &["request", &topic], Some(b"one\ntwo\n")).await;
    assert_eq!(stdout, ["one", "two"]);
    // The responder prints each request it answers.
    assert_eq!(responder.next_stdout().await, format!("[{topic}] ping"));
}

/// `reply --exec` answers with the command's stdout, fed the request's payload on stdin.
#[tokio::test]
async fn reply_exec_answers_with_the_output_of_its_command() {
    let server = TestServer::start().await;
    let server_url = url(&server);
    let topic = unique("svc.upper");
    let args = ["reply", &topic, "--group", "upper", "--exec", "tr a-z A-Z"];
    let _responder = start(&server_url, &args, None);
    let mut admin = server.admin().await;
    wait_for_group(&mut admin, &topic, "upper", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let stdout = run_ok(&server_url, &["request", &topic, "hello, world"], None).await;
    assert_eq!(stdout, ["HELLO, WORLD"]);
}

/// A request nobody serves fails at once, with one line that names the topic.
#[tokio::test]
async fn request_without_responders_fails_naming_the_topic() {
    let server = TestServer::start().await;
    let topic = unique("svc.nobody");
    let started = Instant::now();
    let error = run_err(
        &url(&server),
        &["request", &topic, "hi", "--timeout", "10s"],
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait for the timeout"
    );
    assert!(
        error.contains("no responders") && error.contains(&topic),
        "{error}"
    );
}

/// `groups declare` with options, `list` (text and JSON) and `delete`; conflicts and unknown groups
/// are one-line errors.
#[tokio::test]
async fn groups_declare_list_delete() {
    let server = TestServer::start().await;
    let server_url = url(&server);
    let topic = unique("auction");
    let declare = [
        "groups",
        "declare",
        &topic,
        "--group",
        "bidders",
        "--mode",
        "exclusive",
        "--max-deliveries",
        "3",
        "--dead-letter-topic",
        "auction.dead",
        "--ack-deadline",
        "10s",
    ];
    let stdout = run_ok(&server_url, &declare, None).await;
    assert_eq!(stdout, [format!("declared group bidders on {topic}")]);
    // Declaring the same group again is fine; with another setting it is not.
    run_ok(&server_url, &declare, None).await;
    let conflicting = ["groups", "declare", &topic, "-g", "bidders"];
    let error = run_err(&server_url, &conflicting).await;
    assert!(
        error.contains("bidders") && error.contains("mode"),
        "{error}"
    );

    let listed_json = run_ok(&server_url, &["groups", "list", "--json"], None).await;
    let group = listed(&listed_json, &topic, "bidders").expect("the group is listed");
    assert_eq!(group["mode"], "exclusive");
    assert_eq!(group["consumers"], 0);
    let listed_text = run_ok(&server_url, &["groups", "list"], None).await;
    let prefix = format!("[{topic}] group=bidders mode=exclusive ready=0 ");
    assert!(
        listed_text.iter().any(|line| line.starts_with(&prefix)),
        "{listed_text:?}"
    );

    let delete = ["groups", "delete", &topic, "--group", "bidders"];
    let stdout = run_ok(&server_url, &delete, None).await;
    assert_eq!(stdout, [format!("deleted group bidders on {topic}")]);
    let listed_json = run_ok(&server_url, &["groups", "list", "--json"], None).await;
    assert!(listed(&listed_json, &topic, "bidders").is_none());
    let error = run_err(&server_url, &delete).await;
    assert!(error.contains("not found"), "{error}");
}

/// A topic the broker refuses is a one-line error naming the topic and what is wrong with it.
#[tokio::test]
async fn a_bad_topic_is_a_clear_error() {
    let server = TestServer::start().await;
    let server_url = url(&server);
    let error = run_err(&server_url, &["pub", "orders..created", "x"]).await;
    assert!(
        error.contains("orders..created") && error.contains("empty token"),
        "{error}"
    );
    let error = run_err(&server_url, &["pub", "orders.*", "x"]).await;
    assert!(error.contains("wildcard"), "{error}");
    let error = run_err(&server_url, &["sub", "orders.>.x"]).await;
    assert!(error.contains("orders.>.x"), "{error}");
    let output = run(&server_url, &["pub", "bad topic"], Some(b"a\nb\n")).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        output.stderr.iter().any(|line| line.contains("whitespace")),
        "{output:?}"
    );
}

/// A broker that is not there is a one-line error naming its address, not a panic.
#[tokio::test]
async fn connection_refused_is_a_clear_error() {
    // A socket bound but never listening holds its port for the whole test, and the kernel refuses
    // every connection to it: nothing else can take the port and answer.
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().expect("a socket address"))
        .expect("bind a loopback port");
    let addr = socket.local_addr().expect("its address");
    let server_url = format!("http://{addr}");
    let error = run_err(&server_url, &["pub", "orders.created", "x"]).await;
    assert!(
        error.contains(&format!("cannot connect to {server_url}")),
        "{error}"
    );
    let error = run_err(&server_url, &["groups", "list", "--server", &server_url]).await;
    assert!(error.contains("cannot connect"), "{error}");
    drop(socket);
}

/// `sub` notes a lost connection on stderr, resubscribes by itself, and goes on printing.
#[tokio::test]
async fn sub_survives_a_broker_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let first = serve_on(listener);
    let topic = unique("restart");
    let mut sub = start(
        &format!("http://{addr}"),
        &["sub", &topic, "--count", "1"],
        None,
    );
    sub.printed_stderr("subscribed to").await;

    first.stop().await;
    sub.printed_stderr("disconnected, reconnecting").await;
    // The same port again, since the client reconnects to the address it was given: the one port
    // in the suite that is released and taken back, for the few milliseconds of a restart.
    let second = serve_on(
        TcpListener::bind(addr)
            .await
            .expect("bind the same port again"),
    );

    // The resubscription happens on the client's backoff: publish until it is seen.
    let mut broker = pb::broker_client::BrokerClient::new(common::faults::connect(addr).await);
    within("the restarted sub to count as a subscriber", async {
        while common::publish_one(&mut broker, &topic, "after")
            .await
            .subscribers
            == 0
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let output = sub.finish().await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, [format!("[{topic}] after")]);
    second.stop().await;
}

/// `consume` notes a lost connection on stderr (its consumer's disconnect callback), rejoins its
/// group by itself, and goes on printing what the restarted broker delivers.
#[tokio::test]
async fn consume_survives_a_broker_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let first = serve_on(listener);
    let topic = unique("restart.jobs");
    let mut consume = start(
        &format!("http://{addr}"),
        &["consume", &topic, "-g", "workers", "--count", "1"],
        None,
    );
    let mut admin = pb::admin_client::AdminClient::new(common::faults::connect(addr).await);
    common::wait_for_group(&mut admin, &topic, "workers", "the consumer", |g| {
        g.consumers == 1
    })
    .await;

    first.stop().await;
    consume.printed_stderr("disconnected, reconnecting").await;
    // The same port again, as in sub_survives_a_broker_restart.
    let second = serve_on(
        TcpListener::bind(addr)
            .await
            .expect("bind the same port again"),
    );
    let mut admin = pb::admin_client::AdminClient::new(common::faults::connect(addr).await);
    common::wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "the rejoined consumer",
        |g| g.consumers == 1,
    )
    .await;
    let mut broker = pb::broker_client::BrokerClient::new(common::faults::connect(addr).await);
    common::publish_one(&mut broker, &topic, "after").await;
    let output = consume.finish().await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout.len(), 1, "{output:?}");
    assert!(output.stdout[0].contains("after"), "{output:?}");
    second.stop().await;
}

/// Plain `switchyard` with serve flags still runs the broker.
#[tokio::test]
async fn plain_switchyard_still_serves() {
    let broker = BrokerProcess::launch(process::switchyard([
        "--listen",
        "127.0.0.1:0",
        "--shutdown-grace",
        "1s",
    ]))
    .await;
    let output = run(&broker.url(), &["groups", "list"], None).await;
    if !output.status.success() {
        broker.fail(&format!("groups list against it failed: {output:?}"));
    }
}

/// A server on a given listener, for a test that stops it and starts another on the same port.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), server::ServerError>>,
    addr: SocketAddr,
}

fn serve_on(listener: TcpListener) -> Serving {
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config {
        shutdown_grace: Duration::from_millis(200),
        ..common::test_config()
    };
    let task = tokio::spawn(server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Serving { stop, task, addr }
}

impl Serving {
    async fn stop(self) {
        let _ = self.stop.send(());
        let what = format!("the server on {} to stop", self.addr);
        let _ = within(&what, self.task).await;
    }
}
