//! The `otel` feature against a real broker: publishing writes the caller's span as `traceparent`
//! and `tracestate` (but keeps one set by hand), the batching publisher and requests do too,
//! subscribers and consumers read the creation context back, and `serve` handles a request in a
//! `process` span that continues the request's trace and is the parent its reply carries.
//!
//! The tracer provider is the process's global one, installed once for every test here: each test
//! tells its spans from the others' by its own topic.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use opentelemetry::{
    Context, KeyValue,
    context::FutureExt,
    global,
    trace::{SpanContext, SpanKind, TraceContextExt, Tracer},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};
use switchyard_client::OutgoingMessage;

/// Keeps every span that ends, for the tests to look at.
#[derive(Debug, Default, Clone)]
struct Recorded(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Recorded {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0
            .lock()
            .expect("no test panicked holding it")
            .push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl Recorded {
    /// The ended spans named `name`.
    fn named(&self, name: &str) -> Vec<SpanData> {
        let spans = self.0.lock().expect("no test panicked holding it");
        spans
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}

/// The global tracer provider, installed on first use, and what it recorded.
fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorded = Recorded::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(recorded.clone())
            .build();
        global::set_tracer_provider(provider);
        recorded
    })
}

/// A fresh sampled span of the test's own, with `tracestate` set, as the context to publish in.
fn caller_context() -> Context {
    recorded();
    let tracer = global::tracer("caller");
    let span = tracer.start("caller");
    let context = Context::new().with_span(span);
    // The SDK's new spans start with an empty `tracestate`; a caller's remote parent may carry one.
    let with_state = context
        .span()
        .span_context()
        .trace_state()
        .insert("congo", "t61rcWkgMzE")
        .expect("a valid tracestate entry");
    let span_context = context.span().span_context().clone();
    let remote = SpanContext::new(
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags(),
        true,
        with_state,
    );
    Context::new().with_remote_span_context(remote)
}

fn traceparent_of(context: &Context) -> String {
    let span = context.span();
    let ids = span.span_context();
    format!("00-{}-{}-01", ids.trace_id(), ids.span_id())
}

fn span_context_of(context: &Context) -> SpanContext {
    context.span().span_context().clone()
}

/// `Client::publish`, `Client::publish_with` and the batching `Publisher` write the caller's span;
/// a `traceparent` set by hand is kept with its `tracestate`; with no span, nothing is written. A
/// subscriber's and a consumer's `trace_context` is the caller's span, as a remote parent.
#[tokio::test]
async fn publishing_writes_the_callers_trace_and_receivers_read_it_back() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("traced.orders");
    let mut subscription = within("subscribe", client.subscribe(topic.clone()))
        .await
        .expect("subscribed");
    let mut consumer = within(
        "consume",
        client.consume(topic.clone(), "billing").subscribe(),
    )
    .await
    .expect("joined");
    let caller = caller_context();
    let publisher = client.publisher().build();
    let publishing = async {
        client.publish(topic.clone(), "plain").await?;
        let mine = OutgoingMessage::new(topic.clone(), "mine").header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        client.publish_with(mine).await?;
        publisher
            .publish(OutgoingMessage::new(topic.clone(), "batched"))
            .await?
            .await
    }
    .with_context(caller.clone());
    within("publish in the caller's context", publishing)
        .await
        .expect("published");
    within("publish", client.publish(topic.clone(), "untraced"))
        .await
        .expect("published");

    let expected = |payload: &str| match payload {
        "plain" | "batched" => vec![
            ("traceparent", traceparent_of(&caller)),
            ("tracestate", "congo=t61rcWkgMzE".to_owned()),
        ],
        "mine" => vec![(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        )],
        _ => Vec::new(),
    };
    for _ in 0..4 {
        let message = next_message(&mut subscription).await;
        let mut headers: Vec<(&str, String)> = message
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        headers.sort();
        assert_eq!(headers, expected(text(&message)), "{}", text(&message));
        let delivery = next_delivery(&mut consumer).await;
        if matches!(text(delivery.message()), "plain" | "batched") {
            let read = delivery.trace_context();
            let read = read.span();
            let read = read.span_context();
            let sent = span_context_of(&caller);
            assert_eq!(
                (read.trace_id(), read.span_id(), read.trace_state()),
                (sent.trace_id(), sent.span_id(), sent.trace_state())
            );
            assert!(read.is_remote());
        }
        delivery.ack();
    }
    assert_quiet(
        &mut subscription,
        QUIET,
        "the subscription after four messages",
    )
    .await;
}

/// A request made in the caller's span reaches `serve`, whose handler runs in a `process` span
/// (CONSUMER, with the messaging attributes) that is a child of the caller's span; the reply
/// carries that `process` span as its `traceparent`, and the request's `tracestate`.
#[tokio::test]
async fn serve_answers_within_the_requests_trace() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("traced.quotes");
    let responder = client.clone();
    let served = topic.clone();
    let service = tokio::spawn(async move {
        responder
            .serve(served, "quoters", |_request| async move {
                let handling = Context::current().span().span_context().clone();
                Ok::<_, std::convert::Infallible>(handling.span_id().to_string())
            })
            .await
    });
    wait_for_group(&client, &topic, "quoters", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let caller = caller_context();
    let reply = within(
        "request",
        client
            .request(topic.clone(), "quote?")
            .send()
            .with_context(caller.clone()),
    )
    .await
    .expect("a reply");

    let sent = span_context_of(&caller);
    let read = span_context_of(&reply.trace_context());
    let handling_span = text(&reply).to_owned();
    assert_eq!(read.trace_id(), sent.trace_id(), "one trace");
    assert_eq!(
        read.span_id().to_string(),
        handling_span,
        "the process span"
    );
    assert_ne!(read.span_id(), sent.span_id(), "a child, not the caller");
    assert_eq!(read.trace_state(), sent.trace_state());

    let name = format!("process {topic}");
    let process = within("the process span to end", async {
        loop {
            if let Some(span) = recorded().named(&name).pop() {
                return span;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(process.span_context.span_id().to_string(), handling_span);
    assert_eq!(
        process.parent_span_id,
        sent.span_id(),
        "parented on the caller"
    );
    assert_eq!(process.span_kind, SpanKind::Consumer);
    for expected in [
        KeyValue::new("messaging.system", "switchyard"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", topic.clone()),
        KeyValue::new("messaging.consumer.group.name", "quoters"),
    ] {
        assert!(
            process.attributes.contains(&expected),
            "{expected:?} in {:?}",
            process.attributes
        );
    }
    service.abort();
}
