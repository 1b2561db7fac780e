//! A Switchyard message as a NATS message: the payload as is, everything else in headers.
//!
//! - `Sy` carries the id and the publish time, so every node and every redelivery shows the
//!   message as it was published: the id's 16 bytes in unpadded base64url (22 characters), then
//!   the nanoseconds since the Unix epoch in hex. Short, because every message carries it and
//!   JetStream stores, replicates and scans the header block of each message several times over:
//!   in the queue benchmark, leaving out the 73 bytes of the two headers it replaced (`Sy-Id`,
//!   the id's hyphenated text, and `Sy-At`, decimal nanoseconds) took the cluster from 56 to
//!   47.5 µs of CPU per message. Those two are still read, for messages stored before;
//! - `Sy-Key`, `Sy-Reply-To` and `Sy-Correlation-Id` carry the optional fields;
//! - each user header `NAME: VALUE` travels as `Sy-H-NAME: VALUE`;
//! - `Sy-Attempts` marks a request that was handed straight to a consumer (see `direct`) and
//!   then stored in the stream: the deliveries it had before, and that subscribers already
//!   have their copy;
//! - `Sy-Busy` is a node's answer to a request handed straight to it that none of its
//!   consumers has room for.
//!
//! NATS header names are ASCII without `:` or spaces and values cannot hold CR or LF, while
//! Switchyard's may be any UTF-8: both are percent-encoded (RFC 3986 style, `%` included), so
//! every header round-trips exactly. A message published by a plain NATS client without these
//! headers gets a fresh id and the time it arrived.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::{
    message::{Message, MessageId, NewMessage},
    topic::{Topic, TopicLimits},
};

const STAMP: &str = "Sy";
/// What carried the id and publish time before [`STAMP`].
const EARLIER_ID: &str = "Sy-Id";
const EARLIER_AT: &str = "Sy-At";
/// The length of an id in unpadded base64.
const ID_LENGTH: usize = 22;
const KEY: &str = "Sy-Key";
const REPLY_TO: &str = "Sy-Reply-To";
const CORRELATION_ID: &str = "Sy-Correlation-Id";
const USER: &str = "Sy-H-";
const ATTEMPTS: &str = "Sy-Attempts";
const BUSY: &str = "Sy-Busy";

/// What a header value may not hold as is.
const VALUE: &AsciiSet = &CONTROLS.add(b'%');
/// What a header name may not hold as is.
const NAME: &AsciiSet = &VALUE.add(b':').add(b' ');

/// The headers that carry `message` (all but its topic and payload).
pub fn headers(message: &Message) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(STAMP, stamp(message));
    let optional = [
        (KEY, message.key()),
        (CORRELATION_ID, message.correlation_id()),
        (REPLY_TO, message.reply_to().map_or("", Topic::as_str)),
    ];
    for (name, value) in optional {
        if !value.is_empty() {
            headers.insert(name, escape(value, VALUE));
        }
    }
    for (name, value) in message.headers() {
        headers.insert(
            format!("{USER}{}", escape(name, NAME)).as_str(),
            escape(value, VALUE),
        );
    }
    headers
}

/// Marks `headers` as a request's that had `attempts` deliveries before it was stored.
pub fn mark_attempts(headers: &mut HeaderMap, attempts: u32) {
    headers.insert(ATTEMPTS, attempts.to_string());
}

/// The deliveries a stored message had before it was stored, if it is marked so (see
/// [`mark_attempts`]): subscribers skip such a message, which they have seen.
pub fn prior_attempts(headers: Option<&HeaderMap>) -> Option<u32> {
    let value = headers?.get(ATTEMPTS)?;
    Some(value.as_str().parse().unwrap_or(0))
}

/// The headers of a node's answer that it has no room for a request handed to it.
pub fn busy() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(BUSY, "1");
    headers
}

/// Whether a message is a node's [`busy`] answer.
pub fn is_busy(headers: Option<&HeaderMap>) -> bool {
    headers.is_some_and(|headers| headers.get(BUSY).is_some())
}

/// Why a NATS message is not a Switchyard message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("topic {0:?}: {1}")]
    Topic(String, crate::topic::NameError),
    #[error("header {0}: not percent-encoded UTF-8")]
    Escape(String),
    #[error("header {0}: {1:?} is not a valid value")]
    Value(&'static str, String),
}

/// The message that `topic`, `payload` and `headers` carry.
pub fn decode(
    topic: String,
    payload: Bytes,
    headers: Option<&HeaderMap>,
    limits: TopicLimits,
) -> Result<Message, DecodeError> {
    let topic = Topic::parse(&topic, limits).map_err(|error| DecodeError::Topic(topic, error))?;
    let mut new = NewMessage::new(topic, payload);
    let (mut id, mut at) = (None, None);
    for (name, values) in headers.into_iter().flat_map(|headers| headers.iter()) {
        let Some(value) = values.first() else {
            continue;
        };
        let name = name.as_ref();
        let text = value.as_str();
        match name {
            STAMP => {
                let (parsed_id, parsed_at) =
                    unstamp(text).ok_or_else(|| DecodeError::Value(STAMP, text.to_owned()))?;
                (id, at) = (Some(parsed_id), Some(parsed_at));
            }
            EARLIER_ID => {
                let parsed = uuid::Uuid::parse_str(text)
                    .map_err(|_| DecodeError::Value(EARLIER_ID, text.to_owned()))?;
                id = id.or(Some(MessageId::from_bytes(parsed.into_bytes())));
            }
            EARLIER_AT => {
                let nanos: u64 = text
                    .parse()
                    .map_err(|_| DecodeError::Value(EARLIER_AT, text.to_owned()))?;
                at = at.or(Some(UNIX_EPOCH + Duration::from_nanos(nanos)));
            }
            KEY => new.key = unescape(name, text)?,
            CORRELATION_ID => new.correlation_id = unescape(name, text)?,
            REPLY_TO => {
                let reply_to = unescape(name, text)?;
                let topic = Topic::parse(&reply_to, limits)
                    .map_err(|error| DecodeError::Topic(reply_to, error))?;
                new.reply_to = Some(topic);
            }
            _ => {
                if let Some(user) = name.strip_prefix(USER) {
                    new.headers
                        .insert(unescape(name, user)?, unescape(name, text)?);
                }
            }
        }
    }
    Ok(Message::stamp_as(
        new,
        id.unwrap_or_default(),
        at.unwrap_or_else(SystemTime::now),
        None,
    ))
}

/// The `Sy` header's value: the id in unpadded base64url, then the publish time's nanoseconds
/// since the Unix epoch in hex.
fn stamp(message: &Message) -> String {
    let nanos = message
        .published_at()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut text = URL_SAFE_NO_PAD.encode(message.id().as_bytes());
    text.push_str(&format!("{nanos:x}"));
    text
}

/// The id and publish time a `Sy` header's value holds.
fn unstamp(text: &str) -> Option<(MessageId, SystemTime)> {
    let (id, nanos) = (text.get(..ID_LENGTH)?, text.get(ID_LENGTH..)?);
    let mut bytes = [0; 16];
    let decoded = URL_SAFE_NO_PAD.decode_slice(id, &mut bytes).ok()?;
    let nanos = u64::from_str_radix(nanos, 16).ok()?;
    (decoded == bytes.len()).then(|| {
        (
            MessageId::from_bytes(bytes),
            UNIX_EPOCH + Duration::from_nanos(nanos),
        )
    })
}

fn escape(text: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(text, set).to_string()
}

fn unescape(header: &str, text: &str) -> Result<String, DecodeError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| DecodeError::Escape(header.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    #[test]
    fn every_field_round_trips_whatever_its_bytes() {
        let limits = Config::default().topic_limits();
        let mut new = NewMessage::new(Topic::parse("orders.eu", limits).unwrap(), "payload");
        new.key = "key: with\r\nnewline % and ü".into();
        new.correlation_id = "corr-1".into();
        new.reply_to = Some(Topic::new_inbox_under("n1"));
        new.headers = HashMap::from([
            ("traceparent".into(), "00-abc-def-01".into()),
            ("odd name: ü".into(), "line1\nline2 %41".into()),
            ("empty".into(), String::new()),
        ]);
        let message = Message::stamp(new);
        let headers = headers(&message);
        let back = decode(
            "orders.eu".into(),
            message.payload_bytes(),
            Some(&headers),
            limits,
        )
        .unwrap();
        assert_eq!(back.id(), message.id());
        assert_eq!(back.published_at(), message.published_at());
        assert_eq!(back.key(), message.key());
        assert_eq!(back.correlation_id(), message.correlation_id());
        assert_eq!(back.reply_to(), message.reply_to());
        assert_eq!(back.headers(), message.headers());
        assert_eq!(back.payload(), b"payload");
    }

    #[test]
    fn marks_are_read_back_and_are_not_user_headers() {
        let limits = Config::default().topic_limits();
        let message = Message::stamp(NewMessage::new(Topic::parse("t", limits).unwrap(), "x"));
        let mut marked = headers(&message);
        assert_eq!(prior_attempts(Some(&marked)), None);
        mark_attempts(&mut marked, 2);
        assert_eq!(prior_attempts(Some(&marked)), Some(2));
        let back = decode("t".into(), message.payload_bytes(), Some(&marked), limits).unwrap();
        assert!(back.headers().is_empty());
        assert!(is_busy(Some(&busy())));
        assert!(!is_busy(Some(&marked)));
        assert!(!is_busy(None));
    }

    #[test]
    fn the_stamp_is_one_short_header_and_a_bad_one_is_refused() {
        let limits = Config::default().topic_limits();
        let message = Message::stamp(NewMessage::new(Topic::parse("t", limits).unwrap(), "x"));
        let headers = headers(&message);
        let stamp = headers.get(STAMP).expect("the stamp").as_str().to_owned();
        assert!(stamp.len() <= ID_LENGTH + 16, "{stamp}");
        assert_eq!(headers.iter().count(), 1, "nothing but the stamp");
        for bad in [
            "",
            "short",
            &stamp[..ID_LENGTH],
            &format!("{}zz", &stamp[..ID_LENGTH]),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(STAMP, bad);
            let decoded = decode("t".into(), Bytes::new(), Some(&headers), limits);
            assert!(
                matches!(decoded, Err(DecodeError::Value(STAMP, _))),
                "{bad:?}: {decoded:?}"
            );
        }
    }

    #[test]
    fn a_message_stored_with_the_earlier_headers_keeps_its_id_and_time() {
        let limits = Config::default().topic_limits();
        let message = Message::stamp(NewMessage::new(Topic::parse("t", limits).unwrap(), "x"));
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let nanos = message
            .published_at()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut headers = HeaderMap::new();
        headers.insert(EARLIER_ID, message.id().write_text(&mut text));
        headers.insert(EARLIER_AT, nanos.to_string());
        let back = decode("t".into(), message.payload_bytes(), Some(&headers), limits).unwrap();
        assert_eq!(back.id(), message.id());
        assert_eq!(back.published_at(), message.published_at());
    }

    #[test]
    fn a_plain_nats_message_gets_an_id_and_a_time() {
        let limits = Config::default().topic_limits();
        let message = decode("t".into(), Bytes::from_static(b"x"), None, limits).unwrap();
        assert_eq!(message.topic().as_str(), "t");
        assert!(message.headers().is_empty());
        assert!(decode("a..b".into(), Bytes::new(), None, limits).is_err());
    }
}
