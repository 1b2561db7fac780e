//! Server-streaming responses written straight from the broker's own messages.
//!
//! Every subscriber and consumer stream turns `Message`s into protobuf. Going through the
//! generated `pb::Message` first costs a fresh `String` for the id (formatted as text) and the topic,
//! a clone of the headers and a second pass to encode them, once per subscriber of every message:
//! most of the broker's time in a fan-out (BENCHMARKS.md, "Profile of fan-out"). The types here write
//! the same bytes directly from the [`Message`]: the id is formatted on the stack, and topic, payload
//! and headers are copied once, into the transport's own buffer. The generated server names them in
//! place of `pb::SubscribeResponse` and `pb::Delivery` (`build.rs`); clients still decode those.
//!
//! The encoding follows `proto/switchyard/v1/broker.proto` field by field; the unit tests decode what
//! is written here with the generated types and compare it with `convert::message`.

use bytes::BufMut;
use prost::encoding::{self, WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::{
    broker::{self, SubscriptionEvent},
    message::Message,
};

/// A message type the transport can write: the generated ones, and the ones of this module.
pub trait Encode {
    /// Writes the message's fields, without a length prefix (the gRPC frame has one).
    fn encode_raw(&self, buf: &mut impl BufMut);
}

impl<T: prost::Message> Encode for T {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        prost::Message::encode_raw(self, buf);
    }
}

/// One event of a Subscribe stream: `switchyard.v1.SubscribeResponse`.
#[derive(Debug)]
pub struct SubscribeResponse(pub SubscriptionEvent);

/// One delivery of a Consume stream: `switchyard.v1.Delivery`.
#[derive(Debug)]
pub struct Delivery(pub broker::Delivery);

impl Encode for SubscribeResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match &self.0 {
            // oneof event { Message message = 1; Gap gap = 2; }
            SubscriptionEvent::Message(message) => {
                MessageFields::new(message).encode_as_field(1, buf);
            }
            SubscriptionEvent::Gap { missed } => {
                let gap_len = uint_field_len(1, *missed);
                encode_key(2, WireType::LengthDelimited, buf);
                encode_varint(gap_len as u64, buf);
                put_uint_field(1, *missed, buf);
            }
        }
    }
}

impl Encode for Delivery {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        let broker::Delivery {
            message,
            delivery_id,
            attempt,
        } = &self.0;
        MessageFields::new(message).encode_as_field(1, buf);
        put_text_field(2, delivery_id, buf);
        put_uint_field(3, u64::from(*attempt), buf);
    }
}

/// A [`Message`] ready to be written as `switchyard.v1.Message`, with the parts that need work
/// (the id as text, the timestamp) prepared once for both measuring and writing.
struct MessageFields<'a> {
    message: &'a Message,
    id: [u8; uuid::fmt::Hyphenated::LENGTH],
    published_at: prost_types::Timestamp,
}

impl<'a> MessageFields<'a> {
    fn new(message: &'a Message) -> Self {
        let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
        message.id().write_text(&mut id);
        Self {
            message,
            id,
            published_at: message.published_at().into(),
        }
    }

    fn reply_to(&self) -> &str {
        self.message.reply_to().map_or("", |topic| topic.as_str())
    }

    /// The length of the message's own fields.
    fn encoded_len(&self) -> usize {
        let message = self.message;
        bytes_field_len(1, self.id.len())
            + bytes_field_len(2, message.topic().as_str().len())
            + bytes_field_len(3, message.payload().len())
            + encoding::hash_map::encoded_len(
                encoding::string::encoded_len,
                encoding::string::encoded_len,
                4,
                message.headers(),
            )
            + bytes_field_len(5, message.key().len())
            + bytes_field_len(6, self.reply_to().len())
            + bytes_field_len(7, message.correlation_id().len())
            + encoding::message::encoded_len(8, &self.published_at)
    }

    /// Writes the message as field `tag` of the enclosing message.
    fn encode_as_field(&self, tag: u32, buf: &mut impl BufMut) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(self.encoded_len() as u64, buf);
        let message = self.message;
        put_bytes_field(1, &self.id, buf);
        put_text_field(2, message.topic().as_str(), buf);
        put_bytes_field(3, message.payload(), buf);
        encoding::hash_map::encode(
            encoding::string::encode,
            encoding::string::encoded_len,
            encoding::string::encode,
            encoding::string::encoded_len,
            4,
            message.headers(),
            buf,
        );
        put_text_field(5, message.key(), buf);
        put_text_field(6, self.reply_to(), buf);
        put_text_field(7, message.correlation_id(), buf);
        encoding::message::encode(8, &self.published_at, buf);
    }
}

/// The length of a `string` or `bytes` field holding `len` bytes; proto3 leaves an empty one out.
fn bytes_field_len(tag: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }
}

fn put_bytes_field(tag: u32, value: &[u8], buf: &mut impl BufMut) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(value.len() as u64, buf);
        buf.put_slice(value);
    }
}

fn put_text_field(tag: u32, value: &str, buf: &mut impl BufMut) {
    put_bytes_field(tag, value.as_bytes(), buf);
}

/// The length of a `uint64` or `uint32` field; proto3 leaves a zero out.
fn uint_field_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_uint_field(tag: u32, value: u64, buf: &mut impl BufMut) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;
    use crate::{
        message::{MessageId, NewMessage},
        pb,
        topic::{Topic, TopicLimits},
        transport::convert,
    };

    fn topic(text: &str) -> Topic {
        let limits = TopicLimits {
            max_bytes: 256,
            max_tokens: 16,
        };
        Topic::parse(text, limits).unwrap()
    }

    fn written(response: &impl Encode) -> Vec<u8> {
        let mut buf = Vec::new();
        response.encode_raw(&mut buf);
        buf
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::hash_map("[a-z-]{1,8}", ".{0,12}", 0..4),
            "[a-z0-9]{0,8}",
            prop::option::of("_INBOX\\.[a-z0-9]{1,8}"),
            "[a-z0-9]{0,8}",
            0..=u64::from(u32::MAX) * 1_000_000_000,
            "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}",
        )
            .prop_map(
                |(payload, headers, key, reply_to, correlation_id, nanos, name)| {
                    let new = NewMessage {
                        topic: topic(&name),
                        payload: payload.into(),
                        headers,
                        key,
                        reply_to: reply_to.as_deref().map(topic),
                        correlation_id,
                    };
                    let at = UNIX_EPOCH + Duration::from_nanos(nanos);
                    Message::stamp_as(new, MessageId::new(), at, None)
                },
            )
    }

    proptest! {
        #[test]
        fn a_subscribe_response_decodes_to_what_convert_builds(message in message_strategy()) {
            let bytes = written(&SubscribeResponse(SubscriptionEvent::Message(message.clone())));
            let decoded = pb::SubscribeResponse::decode(&bytes[..]).unwrap();
            let expected = pb::SubscribeResponse {
                event: Some(pb::subscribe_response::Event::Message(convert::message(&message))),
            };
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn a_delivery_decodes_to_what_convert_builds(
            message in message_strategy(),
            delivery_id in "[0-9]{0,12}",
            attempt in any::<u32>(),
        ) {
            let delivery = broker::Delivery { message: message.clone(), delivery_id, attempt };
            let expected = pb::Delivery {
                message: Some(convert::message(&message)),
                delivery_id: delivery.delivery_id.clone(),
                attempt,
            };
            let decoded = pb::Delivery::decode(&written(&Delivery(delivery))[..]).unwrap();
            prop_assert_eq!(decoded, expected);
        }
    }

    #[test]
    fn without_headers_the_bytes_are_prosts() {
        let message = Message::stamp(NewMessage::new(topic("a.b"), "payload"));
        let event = SubscriptionEvent::Message(message.clone());
        let generated = pb::SubscribeResponse {
            event: Some(pb::subscribe_response::Event::Message(convert::message(
                &message,
            ))),
        };
        assert_eq!(
            written(&SubscribeResponse(event)),
            generated.encode_to_vec()
        );
    }

    #[test]
    fn a_gap_is_written_with_its_count() {
        for missed in [0, 1, 300, u64::MAX] {
            let bytes = written(&SubscribeResponse(SubscriptionEvent::Gap { missed }));
            let generated = pb::SubscribeResponse {
                event: Some(pb::subscribe_response::Event::Gap(pb::Gap { missed })),
            };
            assert_eq!(bytes, generated.encode_to_vec(), "missed {missed}");
        }
    }
}
