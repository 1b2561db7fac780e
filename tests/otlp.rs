//! The broker's spans over OTLP, received by a collector of the test's own (the OTLP trace
//! service on `127.0.0.1:0`): a traced message published, consumed and acked, and a traced request
//! answered by a replier in a queue group, arrive as `publish`, `deliver`, `ack` and `request` spans
//! in the publisher's trace, parented on the `traceparent` each message carried, with the messaging
//! attributes; an untraced message makes none; shutting the broker down exports what is queued; a
//! collector that is down delays only shutdown, and by a bounded time; an unusable endpoint stops
//! the start.

mod common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    process::{BrokerProcess, run, switchyard},
    *,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value,
    trace::v1::{Span, span::SpanKind},
};
use switchyard::{config::OtlpEndpoint, pb};
use tokio::{net::TcpListener, sync::Notify};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The publisher's span: the parent of the broker's spans of what it published.
const PUBLISHER_SPAN: &str = "00f067aa0ba902b7";
/// The replier's span: the parent of its reply.
const REPLIER_SPAN: &str = "b7ad6b7169203331";

/// The spans a collector received, and a wake-up for each export.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    exported: Arc<Notify>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans
            .lock()
            .expect("no test panicked holding it")
            .extend(spans);
        self.exported.notify_waiters();
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves the OTLP trace service on a loopback port, for as long as the test runs.
    async fn start() -> (Self, OtlpEndpoint) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let addr: SocketAddr = listener.local_addr().expect("the collector's address");
        let collector = Self::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let endpoint = format!("http://{addr}").parse().expect("a valid endpoint");
        (collector, endpoint)
    }

    fn received(&self) -> Vec<Span> {
        self.spans
            .lock()
            .expect("no test panicked holding it")
            .clone()
    }

    /// The spans named `names`, one each, once all have arrived (within [`WAIT`]).
    async fn wait_for(&self, names: &[&str]) -> HashMap<String, Span> {
        within("the broker's spans", async {
            loop {
                let exported = self.exported.notified();
                let spans: HashMap<String, Span> = self
                    .received()
                    .into_iter()
                    .map(|span| (span.name.clone(), span))
                    .collect();
                if names.iter().all(|name| spans.contains_key(*name)) {
                    return spans;
                }
                exported.await;
            }
        })
        .await
    }
}

async fn traced_broker() -> (TestServer, Collector) {
    let (collector, endpoint) = Collector::start().await;
    let config = switchyard::config::Config {
        otlp_endpoint: Some(endpoint),
        ..test_config()
    };
    (TestServer::with_config(config).await, collector)
}

fn traceparent(span: &str) -> String {
    format!("00-{TRACE_ID}-{span}-01")
}

fn traced(topic: &str, payload: &str) -> pb::Message {
    pb::Message {
        headers: HashMap::from([("traceparent".to_owned(), traceparent(PUBLISHER_SPAN))]),
        ..message(topic, payload.to_owned())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        any_value::Value::IntValue(number) => Some(number.to_string()),
        any_value::Value::BoolValue(flag) => Some(flag.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Asserts that `span` is in the test's trace, a child of `parent`, of `kind`, with `attributes`.
fn assert_span(span: &Span, parent: &str, kind: SpanKind, attributes: &[(&str, &str)]) {
    assert_eq!(hex(&span.trace_id), TRACE_ID, "{}: the trace", span.name);
    assert_eq!(
        hex(&span.parent_span_id),
        parent,
        "{}: the parent",
        span.name
    );
    assert_eq!(span.kind, kind as i32, "{}: the kind", span.name);
    for (key, value) in [("messaging.system", "switchyard")]
        .iter()
        .chain(attributes)
    {
        assert_eq!(
            attribute(span, key).as_deref(),
            Some(*value),
            "{}: {key}",
            span.name
        );
    }
}

/// Publish, consume and ack a traced message: a `publish` (PRODUCER), a `deliver` and an `ack`
/// (CONSUMER) span arrive while the broker runs, children of the publisher's span, naming the
/// topic, the group and the message id.
#[tokio::test]
async fn a_traced_message_is_published_delivered_and_acked_in_its_trace() {
    let (server, collector) = traced_broker().await;
    let topic = unique("otlp.orders");
    let mut broker = server.broker().await;
    let mut deliveries = consume_ok(&mut broker, consume_request(&topic, "billing")).await;
    let published = publish_ok(&mut broker, vec![traced(&topic, "order 17")]).await;
    let delivery = next_delivery(&mut deliveries).await;
    ack_all(&mut broker, &[delivery]).await;

    let id = published[0].id.as_str();
    let names = [
        format!("publish {topic}"),
        format!("deliver {topic}"),
        format!("ack {topic}"),
    ];
    let spans = collector
        .wait_for(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let common = [
        ("messaging.destination.name", topic.as_str()),
        ("messaging.message.id", id),
    ];
    let publish = &spans[&names[0]];
    assert_span(publish, PUBLISHER_SPAN, SpanKind::Producer, &common);
    assert_span(
        publish,
        PUBLISHER_SPAN,
        SpanKind::Producer,
        &[
            ("messaging.operation.name", "publish"),
            ("messaging.operation.type", "send"),
            ("messaging.message.body.size", "8"),
        ],
    );
    for (name, operation, kind) in [
        (&names[1], "deliver", "receive"),
        (&names[2], "ack", "settle"),
    ] {
        let span = &spans[name];
        assert_span(span, PUBLISHER_SPAN, SpanKind::Consumer, &common);
        assert_span(
            span,
            PUBLISHER_SPAN,
            SpanKind::Consumer,
            &[
                ("messaging.operation.name", operation),
                ("messaging.operation.type", kind),
                ("messaging.consumer.group.name", "billing"),
            ],
        );
    }
}

/// A traced request through a queue group and its reply: a `request` span (PRODUCER) under the
/// requester's span, the request's `deliver` and `ack` under it too, and the reply's `publish` span
/// under the replier's span, in the same trace, marked as going to a temporary inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_and_its_reply_keep_one_trace() {
    let (server, collector) = traced_broker().await;
    let topic = unique("otlp.quotes");
    let mut replier = server.broker().await;
    let mut requests = consume_ok(&mut replier, consume_request(&topic, "quoters")).await;
    let pending = request_in_background(&server, traced(&topic, "quote?")).await;
    let delivery = next_delivery(&mut requests).await;
    let seen = delivery.message.clone().expect("a delivery's message");
    let reply = pb::Message {
        correlation_id: seen.correlation_id.clone(),
        headers: HashMap::from([("traceparent".to_owned(), traceparent(REPLIER_SPAN))]),
        ..message(&seen.reply_to, "42")
    };
    publish_ok(&mut replier, vec![reply]).await;
    ack_all(&mut replier, &[delivery]).await;
    within("the request to complete", pending)
        .await
        .expect("the request task did not panic")
        .expect("Request succeeds");

    let names = [
        format!("request {topic}"),
        format!("deliver {topic}"),
        format!("ack {topic}"),
        "publish".to_owned(),
    ];
    let spans = collector
        .wait_for(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_span(
        &spans[&names[0]],
        PUBLISHER_SPAN,
        SpanKind::Producer,
        &[
            ("messaging.operation.name", "request"),
            ("messaging.destination.name", topic.as_str()),
        ],
    );
    for name in &names[1..3] {
        let group = [("messaging.consumer.group.name", "quoters")];
        assert_span(&spans[name], PUBLISHER_SPAN, SpanKind::Consumer, &group);
    }
    assert_span(
        &spans["publish"],
        REPLIER_SPAN,
        SpanKind::Producer,
        &[
            ("messaging.destination.temporary", "true"),
            (
                "messaging.message.conversation_id",
                seen.correlation_id.as_str(),
            ),
        ],
    );
}

/// Untraced messages make no spans; what is queued at shutdown is exported before the broker exits,
/// even when the batch would not go out for another minute (`OTEL_BSP_SCHEDULE_DELAY`).
#[tokio::test]
async fn only_traced_messages_make_spans_and_shutdown_exports_them() {
    let (collector, endpoint) = Collector::start().await;
    let mut command = switchyard([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--otlp-endpoint",
        endpoint.as_str(),
    ]);
    command.env("OTEL_BSP_SCHEDULE_DELAY", "60000");
    let broker = BrokerProcess::launch(command).await;
    let topic = unique("otlp.mixed");
    let mut client = Broker::new(broker.channel().await);
    publish_ok(&mut client, vec![message(&topic, "untraced")]).await;
    let published = publish_ok(&mut client, vec![traced(&topic, "traced")]).await;
    drop(client);
    assert!(
        collector.received().is_empty(),
        "nothing exported before the delay"
    );
    let output = broker.stop(Duration::from_secs(20)).await;
    assert!(output.status.success(), "{output:?}");

    let spans = collector.received();
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    assert_eq!(
        names,
        [format!("publish {topic}")],
        "only the traced message's"
    );
    assert_eq!(
        attribute(&spans[0], "messaging.message.id").as_deref(),
        Some(published[0].id.as_str())
    );
}

/// A collector that is down costs the broker nothing but log lines: publishing goes on, and
/// shutdown gives up on the last spans after a bounded wait.
#[tokio::test]
async fn a_collector_that_is_down_delays_nothing_but_shutdown_a_little() {
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let endpoint: OtlpEndpoint = format!("http://{}", gone.local_addr().expect("its address"))
        .parse()
        .expect("an endpoint");
    drop(gone);
    let config = switchyard::config::Config {
        otlp_endpoint: Some(endpoint),
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let topic = unique("otlp.down");
    let mut broker = server.broker().await;
    for n in 0..20 {
        publish_ok(&mut broker, vec![traced(&topic, &format!("m{n}"))]).await;
    }
    drop(broker);
    within_for(
        Duration::from_secs(15),
        "a shutdown with the collector down",
        server.shutdown(),
    )
    .await
    .expect("a clean shutdown");
}

/// An endpoint the exporter cannot use stops the start, naming the flag, with exit status 2.
#[tokio::test]
async fn an_unusable_endpoint_stops_the_start() {
    for endpoint in [
        "https://collector:4317",
        "collector:4317",
        "http://collector",
    ] {
        let output = run(
            switchyard([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--otlp-endpoint",
                endpoint,
            ]),
            None,
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{endpoint}: {output:?}");
        let stderr = output.stderr.join("\n");
        assert!(stderr.contains("--otlp-endpoint"), "{endpoint}: {stderr}");
    }
}
