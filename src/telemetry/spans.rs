//! The spans of traced messages, after the OpenTelemetry messaging semantic conventions: a
//! `publish` span (PRODUCER, operation type `send`) per message published, a `request` span
//! (PRODUCER, `send`) per request until its reply, a `deliver` span (CONSUMER, `receive`) per
//! message handed to a subscriber or a consumer, and an `ack`, `nack` or `reject` span (CONSUMER,
//! `settle`) per settlement. Each is a child of the creation context in the message's
//! `traceparent` (and `tracestate`); a message without a valid one gets none.
//!
//! A span is named `{operation} {topic}`, or the operation alone for a reply inbox, whose name is
//! new for every request (the conventions keep span names low in cardinality); the inbox is then
//! marked `messaging.destination.temporary`. The conventions' older operation types `publish` and
//! `deliver` are `send` and `receive` today.
//!
//! Kinds: PRODUCER for `send`, CONSUMER for `receive` and `settle`. The conventions' client-side
//! table has CLIENT for the last two; the broker is in the middle, handing messages on rather than
//! calling out, which is what PRODUCER and CONSUMER say.

use std::collections::HashMap;

use opentelemetry::{
    Context, KeyValue,
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use switchyard_client::trace::w3c;

use super::Telemetry;
use crate::{
    broker::{Broker, Published, Settlement, StagedPublish},
    error::BrokerError,
    message::{Message, NewMessage},
    topic::{GroupName, Topic},
};

/// The context a message was created in, when its headers carry a valid `traceparent` (and
/// `tracestate`). Parsed by the client crate's strict W3C parser, so that the broker and its
/// clients agree on what a valid header is.
fn creation_context(headers: &HashMap<String, String>) -> Option<Context> {
    let traceparent = headers.get(w3c::TRACEPARENT)?;
    let tracestate = headers.get(w3c::TRACESTATE).map(String::as_str);
    let parent = w3c::parse(traceparent, tracestate)?;
    Some(Context::new().with_remote_span_context(parent))
}

fn span_name(operation: &str, topic: &Topic) -> String {
    if topic.is_inbox() {
        operation.to_owned()
    } else {
        format!("{operation} {topic}")
    }
}

/// What every span says: the system, the operation and the topic.
fn attributes(operation: &'static str, kind: &'static str, topic: &Topic) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("messaging.system", "switchyard"),
        KeyValue::new("messaging.operation.name", operation),
        KeyValue::new("messaging.operation.type", kind),
        KeyValue::new("messaging.destination.name", topic.to_string()),
    ];
    if topic.is_inbox() {
        attributes.push(KeyValue::new("messaging.destination.temporary", true));
    }
    attributes
}

fn body_size(bytes: usize) -> KeyValue {
    KeyValue::new(
        "messaging.message.body.size",
        i64::try_from(bytes).unwrap_or(i64::MAX),
    )
}

fn start(
    tracer: &SdkTracer,
    name: String,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    parent: &Context,
) -> Span {
    tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(tracer, parent)
}

/// The spans of a publish's traced messages, by their place in the batch, ended with its outcome.
/// Empty (allocating nothing) when telemetry is off or no message is traced.
#[must_use = "the spans end with the publish's outcome"]
pub struct PublishSpans(Vec<(usize, Span)>);

/// The deliver spans of one subscription or consumer, held by its stream; nothing when telemetry
/// is off.
#[must_use = "deliveries make their spans through it"]
pub struct DeliverSpans(Option<(SdkTracer, Option<GroupName>)>);

/// The spans of a settlement's traced deliveries, by delivery id, ended with its outcome.
#[must_use = "the spans end with the settlement's outcome"]
pub struct SettleSpans(Vec<(String, Span)>);

impl Telemetry {
    /// Starts a `publish` span for each traced message of `batch`.
    pub fn publishing(&self, batch: &[NewMessage]) -> PublishSpans {
        let Some(tracer) = self.tracer() else {
            return PublishSpans(Vec::new());
        };
        let spans = batch
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                let span = send_span(tracer, "publish", message)?;
                Some((index, span))
            })
            .collect();
        PublishSpans(spans)
    }

    /// Starts a `request` span for `request`, if it is traced: it lasts until the reply (or the
    /// error), and says the request's correlation id, when it has one yet.
    pub fn requesting(&self, request: &NewMessage) -> PublishSpans {
        let Some(tracer) = self.tracer() else {
            return PublishSpans(Vec::new());
        };
        PublishSpans(
            send_span(tracer, "request", request)
                .map(|span| (0, span))
                .into_iter()
                .collect(),
        )
    }

    /// Deliveries to a subscription.
    pub fn subscriber(&self) -> DeliverSpans {
        DeliverSpans(self.tracer().map(|tracer| (tracer.clone(), None)))
    }

    /// Deliveries to a consumer of `group`.
    pub fn consumer(&self, group: &GroupName) -> DeliverSpans {
        DeliverSpans(
            self.tracer()
                .map(|tracer| (tracer.clone(), Some(group.clone()))),
        )
    }

    /// Starts an `ack`, `nack` or `reject` span for each outstanding traced delivery `settlement`
    /// names, looked up in `broker` before the settlement makes it go. Extensions get none: they
    /// settle nothing.
    pub fn settling<B: Broker>(&self, settlement: &Settlement, broker: &B) -> SettleSpans {
        let Some(tracer) = self.tracer() else {
            return SettleSpans(Vec::new());
        };
        let settled = [
            ("ack", &settlement.ack),
            ("nack", &settlement.nack),
            ("reject", &settlement.reject),
        ];
        let mut spans = Vec::new();
        for (operation, ids) in settled {
            for id in ids {
                let Some(outstanding) = broker.outstanding(id) else {
                    continue;
                };
                let message = &outstanding.message;
                let Some(parent) = creation_context(message.headers()) else {
                    continue;
                };
                let mut attributes = attributes(operation, "settle", message.topic());
                attributes.push(KeyValue::new(
                    "messaging.message.id",
                    message.id().to_string(),
                ));
                attributes.push(KeyValue::new(
                    "messaging.consumer.group.name",
                    outstanding.group.to_string(),
                ));
                let name = span_name(operation, message.topic());
                let span = start(tracer, name, SpanKind::Consumer, attributes, &parent);
                spans.push((id.clone(), span));
            }
        }
        SettleSpans(spans)
    }
}

/// A PRODUCER span for a message being sent, if it is traced.
fn send_span(tracer: &SdkTracer, operation: &'static str, message: &NewMessage) -> Option<Span> {
    let parent = creation_context(&message.headers)?;
    let mut attributes = attributes(operation, "send", &message.topic);
    attributes.push(body_size(message.payload.len()));
    if !message.correlation_id.is_empty() {
        let conversation = message.correlation_id.clone();
        attributes.push(KeyValue::new(
            "messaging.message.conversation_id",
            conversation,
        ));
    }
    let name = span_name(operation, &message.topic);
    Some(start(tracer, name, SpanKind::Producer, attributes, &parent))
}

impl PublishSpans {
    /// Awaits `publish` and ends the spans with its outcome.
    pub async fn around_publish(
        self,
        publish: impl Future<Output = Result<Vec<Published>, BrokerError>>,
    ) -> Result<Vec<Published>, BrokerError> {
        let outcome = publish.await;
        self.end(outcome.as_deref());
        outcome
    }

    /// [`PublishSpans::around_publish`] for a staged publish: the spans end once its outcome comes,
    /// or now if it could not be routed. A staged publish without spans is handed back as it is,
    /// not boxed again.
    pub fn around_staged(
        self,
        staged: Result<StagedPublish, BrokerError>,
    ) -> Result<StagedPublish, BrokerError> {
        match staged {
            Ok(staged) if self.0.is_empty() => Ok(staged),
            Ok(staged) => Ok(Box::pin(self.around_publish(staged))),
            Err(error) => {
                self.end(Err(&error));
                Err(error)
            }
        }
    }

    /// Ends the spans with each message's id, or the error.
    fn end(self, outcome: Result<&[Published], &BrokerError>) {
        for (index, mut span) in self.0 {
            match outcome {
                Ok(published) => {
                    if let Some(published) = published.get(index) {
                        let id = KeyValue::new("messaging.message.id", published.id.to_string());
                        span.set_attribute(id);
                    }
                }
                Err(error) => span.set_status(Status::error(error.to_string())),
            }
            span.end();
        }
    }

    /// Awaits `request` and ends the span with its outcome.
    pub async fn around_request(
        self,
        request: impl Future<Output = Result<Message, BrokerError>>,
    ) -> Result<Message, BrokerError> {
        let outcome = request.await;
        for (_, mut span) in self.0 {
            if let Err(error) = &outcome {
                span.set_status(Status::error(error.to_string()));
            }
            span.end();
        }
        outcome
    }
}

impl DeliverSpans {
    /// Records that `message` was handed over, if it is traced.
    pub fn delivered(&self, message: &Message) {
        let Some((tracer, group)) = &self.0 else {
            return;
        };
        let Some(parent) = creation_context(message.headers()) else {
            return;
        };
        let mut attributes = attributes("deliver", "receive", message.topic());
        attributes.push(KeyValue::new(
            "messaging.message.id",
            message.id().to_string(),
        ));
        attributes.push(body_size(message.payload().len()));
        if let Some(group) = group {
            attributes.push(KeyValue::new(
                "messaging.consumer.group.name",
                group.to_string(),
            ));
        }
        let name = span_name("deliver", message.topic());
        start(tracer, name, SpanKind::Consumer, attributes, &parent).end();
    }
}

impl SettleSpans {
    /// Awaits `settle` and ends the spans with its outcome: a delivery it did not know any more
    /// (settled or expired since it was looked up) or a failed settlement marks its span failed.
    pub async fn around_settle(
        self,
        settle: impl Future<Output = Result<Vec<String>, BrokerError>>,
    ) -> Result<Vec<String>, BrokerError> {
        let outcome = settle.await;
        for (id, mut span) in self.0 {
            match &outcome {
                Ok(unknown) if unknown.contains(&id) => {
                    span.set_status(Status::error("the delivery was no longer outstanding"));
                }
                Ok(_) => {}
                Err(error) => span.set_status(Status::error(error.to_string())),
            }
            span.end();
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_valid_traceparent_is_a_creation_context() {
        let with = |value: &str| {
            let headers = HashMap::from([(w3c::TRACEPARENT.to_owned(), value.to_owned())]);
            creation_context(&headers)
        };
        let context = with("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("a valid traceparent");
        let span = context.span();
        assert_eq!(
            span.span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span.span_context().is_remote());
        assert!(with("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(with("garbage").is_none());
        // What a lax parser takes: short, signed or uppercase fields, a version-00 value with more.
        for lax in [
            "00-1-1-1",
            "00-+4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "A0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        ] {
            assert!(with(lax).is_none(), "{lax}");
        }
        assert!(creation_context(&HashMap::new()).is_none());
        let upper = HashMap::from([(
            "Traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]);
        assert!(creation_context(&upper).is_none(), "names match exactly");
    }

    #[test]
    fn an_inbox_is_left_out_of_the_span_name() {
        let limits = crate::topic::TopicLimits {
            max_bytes: 256,
            max_tokens: 16,
        };
        let topic = Topic::parse("orders.created", limits).unwrap();
        assert_eq!(span_name("publish", &topic), "publish orders.created");
        assert_eq!(span_name("publish", &Topic::new_inbox()), "publish");
        let marked = attributes("publish", "send", &Topic::new_inbox());
        assert!(marked.contains(&KeyValue::new("messaging.destination.temporary", true)));
    }

    #[test]
    fn off_makes_no_spans() {
        let off = Telemetry::OFF;
        let mut message = NewMessage::new(Topic::new_inbox(), "x");
        message.headers.insert(
            w3c::TRACEPARENT.to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        assert!(off.publishing(std::slice::from_ref(&message)).0.is_empty());
        assert!(off.requesting(&message).0.is_empty());
        assert!(off.subscriber().0.is_none());
    }
}
