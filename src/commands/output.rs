//! How every command prints: one line per message or result on stdout, as text for people or, with
//! `--json`, as one JSON object for programs.
//!
//! Text lines look like `[orders.created] (source=web) {"sku":"A1"}`. A payload is shown as it is
//! when it is UTF-8 (control characters escaped, so a message stays on one line) and as
//! `base64:...` otherwise. JSON carries the payload exactly: the string `payload` when it is UTF-8,
//! else `payload_base64`.

use std::{borrow::Cow, collections::HashMap, io::Write};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};
use switchyard_client::{Delivery, GroupInfo, Message, Published, pb};

use super::Failure;

/// Writes lines in the chosen format. `Copy`, so every task that prints can have one.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// A message from a subscription, or a request to a responder.
    pub fn message(&self, message: &Message) -> Result<(), Failure> {
        self.emit(|| text_line(message, &[]), || message_object(message))
    }

    /// The reply to a request. As text, without its topic (the request's one-off reply inbox): just
    /// the key and headers, if any, and the payload, so `switchyard request` fits in a pipeline.
    pub fn reply(&self, reply: &Message) -> Result<(), Failure> {
        self.emit(|| details(reply, &[]), || message_object(reply))
    }

    /// A delivery of a queue group: the message with its attempt and delivery id.
    pub fn delivery(&self, delivery: &Delivery) -> Result<(), Failure> {
        let message = delivery.message();
        self.emit(
            || {
                let tags = [
                    format!("attempt={}", delivery.attempt()),
                    format!("delivery={}", delivery.id()),
                ];
                text_line(message, &tags)
            },
            || {
                let mut object = message_object(message);
                object.insert("delivery_id".into(), delivery.id().into());
                object.insert("attempt".into(), delivery.attempt().into());
                object
            },
        )
    }

    /// The outcome of publishing one message to `topic`.
    pub fn published(&self, topic: &str, published: &Published) -> Result<(), Failure> {
        self.emit(
            || {
                format!(
                    "published {} to {topic} ({}, {})",
                    published.id,
                    counted(published.subscribers, "subscriber"),
                    counted(published.groups, "group"),
                )
            },
            || {
                object(json!({
                    "topic": topic,
                    "id": published.id,
                    "subscribers": published.subscribers,
                    "groups": published.groups,
                }))
            },
        )
    }

    /// One group as `groups list` shows it.
    pub fn group(&self, group: &GroupInfo) -> Result<(), Failure> {
        let mode = mode_name(group.mode);
        self.emit(
            || {
                format!(
                    "[{}] group={} mode={mode} ready={} in_flight={} consumers={} delivered={} \
                     acked={} redelivered={} dead_lettered={} bytes={}",
                    group.topic,
                    group.group,
                    group.ready,
                    group.in_flight,
                    group.consumers,
                    group.delivered,
                    group.acked,
                    group.redelivered,
                    group.dead_lettered,
                    group.bytes,
                )
            },
            || {
                object(json!({
                    "topic": group.topic,
                    "group": group.group,
                    "mode": mode,
                    "ready": group.ready,
                    "in_flight": group.in_flight,
                    "consumers": group.consumers,
                    "bytes": group.bytes,
                    "delivered": group.delivered,
                    "acked": group.acked,
                    "redelivered": group.redelivered,
                    "dead_lettered": group.dead_lettered,
                }))
            },
        )
    }

    /// A line that confirms an action: `text` for people, `fields` for programs.
    pub fn done(&self, text: &str, fields: Value) -> Result<(), Failure> {
        self.emit(|| text.to_owned(), || object(fields))
    }

    fn emit(
        &self,
        text: impl FnOnce() -> String,
        fields: impl FnOnce() -> Map<String, Value>,
    ) -> Result<(), Failure> {
        let line = if self.json {
            Value::Object(fields()).to_string()
        } else {
            text()
        };
        // Rust's stdout is line-buffered, so each line leaves as soon as it is written.
        writeln!(std::io::stdout().lock(), "{line}").map_err(|error| {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::OutputClosed
            } else {
                Failure::new(format!("cannot write to stdout: {error}"))
            }
        })
    }
}

/// `[topic] tag... key=K (name=value, ...) payload`.
fn text_line(message: &Message, tags: &[String]) -> String {
    let details = details(message, tags);
    if details.is_empty() {
        format!("[{}]", message.topic)
    } else {
        format!("[{}] {details}", message.topic)
    }
}

/// `tag... key=K (name=value, ...) payload`, each part only if there is one; headers sorted by name.
fn details(message: &Message, tags: &[String]) -> String {
    let mut parts: Vec<Cow<'_, str>> = tags.iter().map(|tag| Cow::Borrowed(tag.as_str())).collect();
    if !message.key.is_empty() {
        parts.push(Cow::Owned(format!("key={}", one_line(&message.key))));
    }
    if !message.headers.is_empty() {
        let headers: Vec<String> = sorted(&message.headers)
            .into_iter()
            .map(|(name, value)| format!("{}={}", one_line(name), one_line(value)))
            .collect();
        parts.push(Cow::Owned(format!("({})", headers.join(", "))));
    }
    if !message.payload.is_empty() {
        parts.push(payload_text(&message.payload));
    }
    parts.join(" ")
}

fn payload_text(payload: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(payload) {
        Ok(text) => one_line(text),
        Err(_) => Cow::Owned(format!("base64:{}", STANDARD.encode(payload))),
    }
}

/// `text` with control characters other than tab escaped (`\n`, `\u{1b}`).
fn one_line(text: &str) -> Cow<'_, str> {
    let is_escaped = |c: char| c.is_control() && c != '\t';
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_escaped(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// The JSON object of a message; see the module documentation for the payload.
fn message_object(message: &Message) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), message.id.clone().into());
    object.insert("topic".into(), message.topic.clone().into());
    match std::str::from_utf8(&message.payload) {
        Ok(text) => object.insert("payload".into(), text.into()),
        Err(_) => object.insert(
            "payload_base64".into(),
            STANDARD.encode(&message.payload).into(),
        ),
    };
    let headers: Map<String, Value> = message
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into()))
        .collect();
    object.insert("headers".into(), headers.into());
    for (name, value) in [
        ("key", &message.key),
        ("reply_to", &message.reply_to),
        ("correlation_id", &message.correlation_id),
    ] {
        if !value.is_empty() {
            object.insert(name.into(), value.clone().into());
        }
    }
    if let Some(at) = message.published_at {
        object.insert(
            "published_at".into(),
            prost_types::Timestamp::from(at).to_string().into(),
        );
    }
    object
}

fn sorted(headers: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut headers: Vec<_> = headers.iter().collect();
    headers.sort_unstable();
    headers
}

/// The object inside a `json!({...})` literal.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

fn counted(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn mode_name(mode: i32) -> &'static str {
    match pb::ConsumeMode::try_from(mode) {
        Ok(pb::ConsumeMode::Exclusive) => "exclusive",
        Ok(_) => "shared",
        Err(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &'static [u8]) -> Message {
        Message {
            id: "01a2".into(),
            topic: "orders.created".into(),
            payload: bytes::Bytes::from_static(payload),
            headers: HashMap::from([
                ("trace".to_owned(), "7".to_owned()),
                ("source".to_owned(), "web".to_owned()),
            ]),
            key: String::new(),
            reply_to: String::new(),
            correlation_id: String::new(),
            published_at: None,
        }
    }

    #[test]
    fn text_shows_topic_sorted_headers_and_payload() {
        let line = text_line(&message(br#"{"sku":"A1"}"#), &[]);
        assert_eq!(
            line,
            r#"[orders.created] (source=web, trace=7) {"sku":"A1"}"#
        );
    }

    /// A message stays on one line, and bytes that are not UTF-8 are not mangled.
    #[test]
    fn text_escapes_control_characters_and_base64s_binary() {
        assert_eq!(payload_text(b"a\nb"), r"a\nb");
        assert_eq!(payload_text(&[0xff, 0x00]), "base64:/wA=");
    }

    #[test]
    fn json_has_payload_or_payload_base64() {
        let text = message_object(&message(b"hi"));
        assert_eq!(text["payload"], "hi");
        assert!(!text.contains_key("payload_base64"));
        let binary = message_object(&message(&[0xff]));
        assert_eq!(binary["payload_base64"], "/w==");
        assert!(!binary.contains_key("payload"));
        assert_eq!(binary["headers"]["source"], "web");
    }
}
