//! The `switchyard` binary's client commands, run as child processes against a real server on
//! `127.0.0.1:0`: what they print, what they send, and how they fail.
//!
//! Every child is killed when its handle drops, and every wait on one is bounded: a command that
//! hangs fails its test after [`RUN_LIMIT`] instead of hanging the suite.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use common::{TestServer, WAIT, unique, wait_for_group, within};
use serde_json::Value;
use switchyard::{config::Config, pb, server};
use tokio::{net::TcpListener, sync::mpsc, time::Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The longest one command may run before its test fails.
const RUN_LIMIT: Duration = Duration::from_secs(15);

/// A running `switchyard`; killed when dropped.
struct Child {
    child: std::process::Child,
    describe: String,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: mpsc::UnboundedReceiver<String>,
}

/// What a finished command printed, line by line.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// `switchyard ARGS` talking to `server` (through `SWITCHYARD_SERVER`), with `stdin` as its input
/// (none: an empty stdin).
fn start(server: &str, args: &[&str], stdin: Option<&[u8]>) -> Child {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("SWITCHYARD_SERVER", server)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let describe = format!("switchyard {}", args.join(" "));
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {describe}: {error}"));
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        let input = input.to_vec();
        // A command that stops reading early closes the pipe; that is its business.
        std::thread::spawn(move || pipe.write_all(&input));
    }
    let stdout = lines_of(child.stdout.take().expect("stdout is piped"));
    let stderr = lines_of(child.stderr.take().expect("stderr is piped"));
    Child {
        child,
        describe,
        stdout,
        stderr,
    }
}

/// The lines of a pipe, read on a thread until it closes.
fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (lines, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { return };
            if lines
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    receiver
}

impl Child {
    async fn next_stdout(&mut self) -> String {
        let what = format!("a line on the stdout of {}", self.describe);
        within(&what, self.stdout.recv())
            .await
            .unwrap_or_else(|| panic!("{}: stdout closed while waiting for a line", self.describe))
    }

    /// Waits for a stderr line containing `needle`, and returns it.
    async fn stderr_line(&mut self, needle: &str) -> String {
        let what = format!("{needle:?} on the stderr of {}", self.describe);
        within(&what, async {
            loop {
                match self.stderr.recv().await {
                    Some(line) if line.contains(needle) => return line,
                    Some(_) => continue,
                    None => panic!("{what}: stderr closed first"),
                }
            }
        })
        .await
    }

    /// Waits for the command to exit by itself, then collects what it printed.
    async fn finish(mut self) -> Output {
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(None) => panic!("{} still runs after {RUN_LIMIT:?}", self.describe),
                Err(error) => panic!("cannot wait for {}: {error}", self.describe),
            }
        };
        let stdout = drain(&mut self.stdout, &self.describe).await;
        let stderr = drain(&mut self.stderr, &self.describe).await;
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line left on a pipe of an exited command.
async fn drain(lines: &mut mpsc::UnboundedReceiver<String>, describe: &str) -> Vec<String> {
    let mut all = Vec::new();
    within(&format!("the pipes of {describe} to close"), async {
        while let Some(line) = lines.recv().await {
            all.push(line);
        }
    })
    .await;
    all
}

/// Runs `switchyard ARGS` to completion.
async fn run(server: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    start(server, args, stdin).finish().await
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
async fn pub_publishes_its_payload_argument() {
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
    assert_eq!(published["subscribers"], 1);

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
    as_json.stderr_line("subscribed to").await;
    as_text.stderr_line("subscribed to").await;

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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    let server_url = format!("http://{addr}");
    let error = run_err(&server_url, &["pub", "orders.created", "x"]).await;
    assert!(
        error.contains(&format!("cannot connect to {server_url}")),
        "{error}"
    );
    let error = run_err(&server_url, &["groups", "list", "--server", &server_url]).await;
    assert!(error.contains("cannot connect"), "{error}");
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
    sub.stderr_line("subscribed to").await;

    first.stop().await;
    sub.stderr_line("disconnected, reconnecting").await;
    let second = serve_on(
        TcpListener::bind(addr)
            .await
            .expect("bind the same port again"),
    );

    // The resubscription happens on the client's backoff: publish until it is seen.
    let mut broker = pb::broker_client::BrokerClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the restarted broker");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let published = common::publish_one(&mut broker, &topic, "after").await;
        if published.subscribers == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = sub.finish().await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, [format!("[{topic}] after")]);
    second.stop().await;
}

/// Plain `switchyard` with serve flags still runs the broker.
#[tokio::test]
async fn plain_switchyard_still_serves() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    let listen = addr.to_string();
    let _broker = start(
        "unused",
        &["--listen", &listen, "--shutdown-grace-secs", "1"],
        None,
    );
    let server_url = format!("http://{addr}");
    let deadline = Instant::now() + WAIT;
    loop {
        let output = run(&server_url, &["groups", "list"], None).await;
        if output.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broker never answered: {output:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
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
