//! Trace context on messages, with the `otel` feature: what a message carries as its W3C
//! `traceparent` and `tracestate` headers, written from and read into OpenTelemetry contexts.
//!
//! - Publishing (a [`Client`](crate::Client) publish, the batching [`Publisher`](crate::Publisher),
//!   a request) writes the caller's current context into the message, unless the message has a
//!   `traceparent` already: one set by hand is kept. No active span, nothing written.
//! - A received message hands its creation context back ([`Message::trace_context`]).
//! - [`Client::serve`](crate::Client::serve) handles each request in a `process` span (CONSUMER)
//!   whose parent is the request's context, so the handler's own spans and the reply belong to the
//!   request's trace, the reply as that span's child. Without an installed tracer provider the span
//!   is OpenTelemetry's no-op one, which keeps its parent's ids: the reply then carries the request's
//!   `traceparent` and `tracestate` as they came.
//!
//! The format is always W3C Trace Context (the broker documents these two headers); the
//! application's global propagator is not consulted. Without the feature every function here does
//! nothing, so callers need no `cfg` of their own.

/// The header format itself, public for anyone who reads or writes these headers by hand (the
/// broker's own spans use it, so that the broker and its clients agree on what is valid).
#[cfg(feature = "otel")]
pub mod w3c;

use std::{collections::HashMap, fmt::Display};

use crate::message::Message;

#[cfg(feature = "otel")]
use opentelemetry::{
    Context, KeyValue,
    context::{FutureExt, WithContext},
    trace::{SpanKind, Status, TraceContextExt, Tracer},
};

/// Writes the caller's current trace context into `headers` unless they carry a `traceparent`.
#[cfg(feature = "otel")]
pub(crate) fn inject_current(headers: &mut HashMap<String, String>) {
    inject(&Context::current(), headers);
}

#[cfg(not(feature = "otel"))]
pub(crate) fn inject_current(_headers: &mut HashMap<String, String>) {}

/// Writes `context`'s span into `headers` unless they carry a `traceparent` (and then leaves their
/// `tracestate` alone too: the two go together).
#[cfg(feature = "otel")]
fn inject(context: &Context, headers: &mut HashMap<String, String>) {
    if headers.contains_key(w3c::TRACEPARENT) {
        return;
    }
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return;
    }
    headers.insert(w3c::TRACEPARENT.into(), w3c::traceparent(span_context));
    let state = span_context.trace_state().header();
    if !state.is_empty() {
        headers.insert(w3c::TRACESTATE.into(), state);
    }
}

/// The caller's current context with the remote span that `headers` name, or the current context
/// unchanged when they name none (or a malformed one), as an OpenTelemetry propagator extracts.
#[cfg(feature = "otel")]
pub(crate) fn extract(headers: &HashMap<String, String>) -> Context {
    let current = Context::current();
    let remote = headers.get(w3c::TRACEPARENT).and_then(|traceparent| {
        w3c::parse(
            traceparent,
            headers.get(w3c::TRACESTATE).map(String::as_str),
        )
    });
    match remote {
        Some(remote) => current.with_remote_span_context(remote),
        None => current,
    }
}

/// The trace context a `serve` request is handled in: with `otel`, a `process` span whose parent
/// is the request's context (see the module docs); without, nothing. Made while the request is at
/// hand, then given the work that consumes it.
pub(crate) struct Processing {
    #[cfg(feature = "otel")]
    context: Context,
}

impl Processing {
    /// Starts the `process` span of `request`, handled as a member of `group`. The tracer is looked
    /// up per request, not kept: the application may install its provider after `serve` started.
    #[cfg(feature = "otel")]
    pub(crate) fn start(request: &Message, group: &str) -> Self {
        let scope = opentelemetry::InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = opentelemetry::global::tracer_with_scope(scope);
        let mut attributes = vec![
            KeyValue::new("messaging.system", "switchyard"),
            KeyValue::new("messaging.operation.name", "process"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", request.topic.clone()),
            KeyValue::new("messaging.consumer.group.name", group.to_owned()),
            KeyValue::new("messaging.message.id", request.id.clone()),
        ];
        if !request.correlation_id.is_empty() {
            let conversation = request.correlation_id.clone();
            attributes.push(KeyValue::new(
                "messaging.message.conversation_id",
                conversation,
            ));
        }
        let parent = extract(&request.headers);
        let span = tracer
            .span_builder(format!("process {}", request.topic))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        Self {
            context: parent.with_span(span),
        }
    }

    #[cfg(not(feature = "otel"))]
    pub(crate) fn start(_request: &Message, _group: &str) -> Self {
        Self {}
    }

    /// `work` inside the span, which ends when `work` is done.
    #[cfg(feature = "otel")]
    pub(crate) fn run<F: Future>(self, work: F) -> WithContext<F> {
        work.with_context(self.context)
    }

    #[cfg(not(feature = "otel"))]
    pub(crate) fn run<F: Future>(self, work: F) -> F {
        work
    }
}

/// Marks the current span (a `serve` handler's `process` span) as failed with `error`.
#[cfg(feature = "otel")]
pub(crate) fn record_failure(error: &dyn Display) {
    Context::current()
        .span()
        .set_status(Status::error(error.to_string()));
}

#[cfg(not(feature = "otel"))]
pub(crate) fn record_failure(_error: &dyn Display) {}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn remote_context() -> Context {
        let state = TraceState::from_key_value([("rojo", "00f067aa0ba902b7")]).unwrap();
        let span = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            state,
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn the_current_span_is_written_as_traceparent_and_tracestate() {
        let _attached = remote_context().attach();
        let mut headers = HashMap::new();
        inject_current(&mut headers);
        assert_eq!(headers["traceparent"], TRACEPARENT);
        assert_eq!(headers["tracestate"], "rojo=00f067aa0ba902b7");
    }

    #[test]
    fn a_traceparent_set_by_hand_is_kept_with_its_tracestate() {
        let mut headers = HashMap::from([("traceparent".to_owned(), "mine".to_owned())]);
        inject(&remote_context(), &mut headers);
        assert_eq!(
            headers,
            HashMap::from([("traceparent".to_owned(), "mine".to_owned())])
        );
    }

    #[test]
    fn without_an_active_span_nothing_is_written() {
        let mut headers = HashMap::new();
        inject(&Context::new(), &mut headers);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn extraction_gives_back_what_injection_wrote() {
        let mut headers = HashMap::new();
        inject(&remote_context(), &mut headers);
        let extracted = extract(&headers);
        let span = extracted.span();
        assert_eq!(
            span.span_context(),
            remote_context().span().span_context(),
            "ids, flags and state"
        );
    }

    #[test]
    fn a_message_without_a_valid_traceparent_leaves_the_current_context() {
        let _attached = remote_context().attach();
        for headers in [
            HashMap::new(),
            HashMap::from([("traceparent".to_owned(), "garbage".to_owned())]),
        ] {
            let extracted = extract(&headers);
            let span = extracted.span();
            assert_eq!(span.span_context(), remote_context().span().span_context());
        }
    }
}
