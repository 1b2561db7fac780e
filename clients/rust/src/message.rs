//! Messages as a client sends and receives them.

use std::{collections::HashMap, time::SystemTime};

use bytes::Bytes;

use crate::pb;

/// A message received from the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The broker's id for the message (a UUID v7).
    pub id: String,
    /// The topic it was published to.
    pub topic: String,
    /// The bytes as published (shared, not copied, when cloned).
    pub payload: Bytes,
    /// The publisher's headers, plus `x-dead-letter-*` ones on a dead letter.
    pub headers: HashMap<String, String>,
    /// The publisher's application key; empty when none was set.
    pub key: String,
    /// Where a reply goes, for requests; empty otherwise.
    pub reply_to: String,
    /// Ties a reply to its request; empty when none was set.
    pub correlation_id: String,
    /// When the broker accepted it.
    pub published_at: Option<SystemTime>,
}

impl Message {
    /// The OpenTelemetry context the message was created in, for parenting or linking the spans
    /// that handle it: the current context with the remote span named by the message's
    /// `traceparent` (and `tracestate`), or the current context unchanged when it has no valid one.
    /// Needs the `otel` feature.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// use futures_util::StreamExt;
    /// use opentelemetry::{global, trace::{SpanKind, Tracer}};
    ///
    /// let tracer = global::tracer("billing");
    /// let mut jobs = client.consume("orders.created", "billing").subscribe().await?;
    /// while let Some(delivery) = jobs.next().await {
    ///     let delivery = delivery?;
    ///     let _span = tracer
    ///         .span_builder("process orders.created")
    ///         .with_kind(SpanKind::Consumer)
    ///         .start_with_context(&tracer, &delivery.trace_context());
    ///     delivery.ack();
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "otel")]
    pub fn trace_context(&self) -> opentelemetry::Context {
        crate::trace::extract(&self.headers)
    }
}

impl From<pb::Message> for Message {
    fn from(message: pb::Message) -> Self {
        Self {
            id: message.id,
            topic: message.topic,
            payload: message.payload,
            headers: message.headers,
            key: message.key,
            reply_to: message.reply_to,
            correlation_id: message.correlation_id,
            published_at: message
                .published_at
                .and_then(|at| SystemTime::try_from(at).ok()),
        }
    }
}

/// A message to publish, built up from a topic and a payload.
///
/// # Examples
///
/// ```
/// use switchyard_client::OutgoingMessage;
///
/// let message = OutgoingMessage::new("orders.created", "{\"sku\":\"A1\"}")
///     .header("source", "web")
///     .key("customer-42");
/// assert_eq!(message.topic(), "orders.created");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    inner: pb::Message,
}

impl OutgoingMessage {
    /// A message to `topic` (no wildcards) carrying `payload`.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            inner: pb::Message {
                topic: topic.into(),
                payload: payload.into(),
                ..pb::Message::default()
            },
        }
    }

    /// Adds a header (replacing one of the same name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.headers.insert(name.into(), value.into());
        self
    }

    /// An application key, kept and delivered with the message.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.inner.key = key.into();
        self
    }

    /// The topic a receiver should answer to.
    pub fn reply_to(mut self, topic: impl Into<String>) -> Self {
        self.inner.reply_to = topic.into();
        self
    }

    /// The id that ties a reply to its request.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.inner.correlation_id = id.into();
        self
    }

    /// The topic it will be published to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The payload it carries.
    pub fn payload(&self) -> &Bytes {
        &self.inner.payload
    }

    /// With the `otel` feature, the message with the caller's current trace context in its headers,
    /// unless it has a `traceparent` already (see `trace`). Called in the publishing caller's task,
    /// whose context it is, before the message is measured or queued.
    pub(crate) fn carrying_current_trace(mut self) -> Self {
        crate::trace::inject_current(&mut self.inner.headers);
        self
    }

    pub(crate) fn into_pb(self) -> pb::Message {
        self.inner
    }

    /// What this message adds to the encoded size of a `PublishRequest` (field tag and length
    /// included).
    pub(crate) fn encoded_len_in_batch(&self) -> usize {
        prost::encoding::message::encoded_len(1, &self.inner)
    }
}

/// The outcome of publishing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The id the broker gave the message.
    pub id: String,
    /// Subscriptions (and waiting requests) it was offered to.
    pub subscribers: u32,
    /// Queue groups that stored it.
    pub groups: u32,
}

impl From<pb::Published> for Published {
    fn from(published: pb::Published) -> Self {
        Self {
            id: published.id,
            subscribers: published.subscribers,
            groups: published.groups,
        }
    }
}
