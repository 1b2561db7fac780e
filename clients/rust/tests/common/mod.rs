//! Shared pieces of the client's tests: a real Switchyard on a loopback port (which can be stopped and
//! started again on the same port), connected clients, and bounded reads of the client's streams.
//!
//! Every wait in here is bounded: a helper that reads from a stream gives up after [`WAIT`] and panics
//! with what it was waiting for, so a broken client fails a test instead of hanging the suite.

// Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::{
    fmt::Debug,
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_core::Stream;
use futures_util::StreamExt;
use switchyard::{config::Config, server};
use switchyard_client::{Client, Consumer, Delivery, Event, GroupInfo, Message, Subscription};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};

/// The longest any single expected step (a call, the next item of a stream) may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test watches a stream before concluding that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// The configuration the tests start from: the defaults, with a short shutdown grace so that stopping
/// a server (to restart it, or to test a client without one) takes little time.
pub fn test_config() -> Config {
    Config {
        shutdown_grace: Duration::from_millis(200),
        ..Config::default()
    }
}

/// A Switchyard serving on a loopback port for the length of one test. Dropping it stops the server.
pub struct TestServer {
    pub addr: SocketAddr,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

impl TestServer {
    /// Starts a server with [`test_config`] on an ephemeral port.
    pub async fn start() -> Self {
        Self::with_config(test_config()).await
    }

    /// Starts a server with `config` on an ephemeral port.
    pub async fn with_config(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test listener on 127.0.0.1:0");
        Self::serve(listener, config)
    }

    /// Starts a server with `config` on `addr`, retrying the bind for up to [`WAIT`]: the previous
    /// server on that port may still be letting go of it.
    pub async fn on(addr: SocketAddr, config: Config) -> Self {
        let deadline = Instant::now() + WAIT;
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return Self::serve(listener, config),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("could not bind {addr} again: {error}"),
            }
        }
    }

    fn serve(listener: TcpListener, config: Config) -> Self {
        let addr = listener
            .local_addr()
            .expect("local address of the test listener");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender means the `TestServer` is gone: stop as well.
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::run(listener, config.clone(), shutdown));
        Self {
            addr,
            config,
            shutdown: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client with short timeouts, so that a test about a failure fails fast.
    pub async fn client(&self) -> Client {
        within(
            "Client::connect",
            Client::builder(self.url())
                .connect_timeout(Duration::from_secs(1))
                .call_timeout(WAIT)
                .connect(),
        )
        .await
        .unwrap_or_else(|error| panic!("connect to the test server at {}: {error}", self.addr))
    }

    /// Stops the server (open streams end with UNAVAILABLE) and waits for `server::run` to return, so
    /// the port is free again.
    pub async fn stop(mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let outcome = within("server::run to return after shutdown", task).await;
            outcome
                .expect("the server task did not panic")
                .expect("the server stopped cleanly");
        }
    }

    /// Stops the server and starts a new one, empty, on the same port with the same configuration.
    pub async fn restart(self) -> Self {
        let (addr, config) = (self.addr, self.config.clone());
        self.stop().await;
        Self::on(addr, config).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// Awaits `future` for at most [`WAIT`], panicking with `what` if it takes longer.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    within_for(WAIT, what, future).await
}

/// Awaits `future` for at most `limit`, panicking with `what` if it takes longer.
pub async fn within_for<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// A topic no other test (or earlier run) uses: `prefix` followed by a fresh token.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}.t{nanos}n{n}")
}

/// The next item of a stream, which must arrive within [`WAIT`] and not end the stream.
pub async fn next_item<S: Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    match within(what, stream.next()).await {
        Some(item) => item,
        None => panic!("the stream ended while waiting for {what}"),
    }
}

/// The next event of a subscription, which must not be an error.
pub async fn next_event(subscription: &mut Subscription) -> Event {
    next_item(subscription, "a subscription event")
        .await
        .unwrap_or_else(|error| panic!("the subscription failed: {error}"))
}

/// The next event of a subscription, which must be a message (not a gap or a disconnect).
pub async fn next_message(subscription: &mut Subscription) -> Message {
    match next_event(subscription).await {
        Event::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next `n` events of a subscription, which must all be messages.
pub async fn next_messages(subscription: &mut Subscription, n: usize) -> Vec<Message> {
    let mut messages = Vec::with_capacity(n);
    while messages.len() < n {
        messages.push(next_message(subscription).await);
    }
    messages
}

/// The next delivery of a consumer, which must not be an error.
pub async fn next_delivery(consumer: &mut Consumer) -> Delivery {
    next_item(consumer, "a delivery")
        .await
        .unwrap_or_else(|error| panic!("the consumer failed: {error}"))
}

/// Asserts that nothing arrives on `stream` for `quiet`.
pub async fn assert_quiet<S>(stream: &mut S, quiet: Duration, what: &str)
where
    S: Stream + Unpin,
    S::Item: Debug,
{
    if let Ok(item) = tokio::time::timeout(quiet, stream.next()).await {
        panic!("expected nothing on {what} for {quiet:?}, got {item:?}");
    }
}

/// The payload of a message as text.
pub fn text(message: &Message) -> &str {
    std::str::from_utf8(&message.payload).expect("test payloads are UTF-8")
}

/// The listed state of one group, if it exists.
pub async fn group_info(client: &Client, topic: &str, group: &str) -> Option<GroupInfo> {
    within("ListGroups", client.admin().list_groups())
        .await
        .expect("ListGroups succeeds")
        .into_iter()
        .find(|info| info.topic == topic && info.group == group)
}

/// Polls the group's listed state until `done` holds, for at most [`WAIT`]; returns the last state.
/// Settlements are sent in the background, so their effect is seen a little after the call.
pub async fn wait_for_group(
    client: &Client,
    topic: &str,
    group: &str,
    what: &str,
    done: impl Fn(&GroupInfo) -> bool,
) -> GroupInfo {
    let deadline = Instant::now() + WAIT;
    loop {
        let info = group_info(client, topic, group).await;
        match info {
            Some(info) if done(&info) => return info,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("group {topic}/{group} never reached {what}; last state {info:?}"),
        }
    }
}
