//! The protobuf codec of the generated services: prost's, except for who is blamed when a message
//! does not decode, and for the responses the server writes itself (`super::wire`).
//!
//! prost refuses a string field that is not UTF-8, or a malformed message, while tonic decodes the
//! request, before any handler runs; tonic's own codec then answers INTERNAL, which tells a client the
//! server is broken. A request that does not decode is the caller's mistake, so this codec answers
//! INVALID_ARGUMENT with the field's path (`messages.topic: is not valid UTF-8`), as every other
//! validation error does. A response that does not decode (the client side of the same generated code)
//! stays INTERNAL. Either way only that call fails: the connection and its other calls go on.

use std::marker::PhantomData;

use prost::{DecodeError, Message};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use super::wire::Encode;
use crate::{error::BrokerError, pb};

/// Which way a message type travels, and so whose fault it is when it does not decode.
pub trait Direction {
    /// True for requests: the caller sent it.
    const FROM_CALLER: bool;
}

macro_rules! direction {
    ($from_caller:literal: $($message:ident),* $(,)?) => {$(
        impl Direction for pb::$message {
            const FROM_CALLER: bool = $from_caller;
        }
    )*};
}
direction!(true: PublishRequest, SubscribeRequest, ConsumeRequest, AckRequest, RequestRequest,
    PublishStreamRequest, RequestStreamRequest, DeclareGroupRequest, DeleteGroupRequest,
    ListGroupsRequest);
direction!(false: PublishResponse, SubscribeResponse, Delivery, AckResponse, RequestResponse,
    PublishStreamResponse, RequestStreamResponse, DeclareGroupResponse, DeleteGroupResponse,
    ListGroupsResponse);

/// The codec named by `build.rs` for every generated service and client.
#[derive(Debug)]
pub struct SwitchyardCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SwitchyardCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SwitchyardCodec<T, U>
where
    T: Encode + Send + 'static,
    U: Message + Default + Direction + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = SwitchyardEncoder<T>;
    type Decoder = SwitchyardDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        SwitchyardEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        SwitchyardDecoder(PhantomData)
    }
}

/// Writes generated messages as prost does, and the server's own responses (`super::wire`) directly.
#[derive(Debug)]
pub struct SwitchyardEncoder<T>(PhantomData<T>);

impl<T: Encode> Encoder for SwitchyardEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode_raw(buf);
        Ok(())
    }
}

/// prost's decoding, with [`decode_status`] for its errors.
#[derive(Debug)]
pub struct SwitchyardDecoder<U>(PhantomData<U>);

impl<U: Message + Default + Direction> Decoder for SwitchyardDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| decode_status(&error, U::FROM_CALLER))
    }
}

/// The status for a message that did not decode: INVALID_ARGUMENT naming the field when the caller
/// sent it, INTERNAL (gRPC's code for a response that does not parse) otherwise.
pub fn decode_status(error: &DecodeError, from_caller: bool) -> Status {
    if !from_caller {
        return Status::internal(error.to_string());
    }
    let (field, description) = field_and_description(error);
    let reason = if description == "invalid string value: data is not UTF-8 encoded" {
        "is not valid UTF-8".to_owned()
    } else {
        format!("is not a valid protobuf encoding ({description})")
    };
    super::convert::status(BrokerError::invalid(field, reason))
}

/// Splits prost's message, `failed to decode Protobuf message: Inner.field: Outer.field: what`
/// (innermost first), into the field path from the request down (`field.field`, or `request` when
/// no field is known) and what went wrong. prost keeps the path private, so its text is read; a
/// unit test pins the format.
fn field_and_description(error: &DecodeError) -> (String, String) {
    let text = error.to_string();
    let rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let mut fields = Vec::new();
    let mut remaining = rest;
    while let Some((head, tail)) = remaining.split_once(": ") {
        match head.split_once('.') {
            Some((message, field)) if is_identifier(message) && is_identifier(field) => {
                fields.push(field);
                remaining = tail;
            }
            _ => break,
        }
    }
    fields.reverse();
    let field = if fields.is_empty() {
        "request".to_owned()
    } else {
        fields.join(".")
    };
    (field, remaining.to_owned())
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// A `pb::Message` whose topic (field 2) holds the bytes `topic`, inside a PublishRequest.
    fn publish_with_topic(topic: &[u8]) -> Vec<u8> {
        let mut message = vec![0x12, topic.len() as u8];
        message.extend_from_slice(topic);
        let mut request = vec![0x0a, message.len() as u8];
        request.extend_from_slice(&message);
        request
    }

    #[test]
    fn invalid_utf8_is_invalid_argument_naming_the_field() {
        let error = pb::PublishRequest::decode(&publish_with_topic(b"a.\xff")[..]).unwrap_err();
        let status = decode_status(&error, true);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "messages.topic: is not valid UTF-8");
        assert!(pb::PublishRequest::decode(&publish_with_topic(b"a.b")[..]).is_ok());
    }

    #[test]
    fn malformed_requests_name_what_is_known() {
        let cases: [(&[u8], &str); 3] = [
            // Field 1 (the topic) claims 5 bytes; 1 follows.
            (
                &[0x0a, 0x05, b'a'],
                "topic: is not a valid protobuf encoding (buffer underflow)",
            ),
            // Tag 0 is never valid.
            (
                &[0x00],
                "request: is not a valid protobuf encoding (invalid tag value: 0)",
            ),
            // Field 1 (a string) sent as a varint.
            (
                &[0x08, 0x01],
                "topic: is not a valid protobuf encoding (invalid wire type: Varint (expected LengthDelimited))",
            ),
        ];
        for (bytes, expected) in cases {
            let error = pb::SubscribeRequest::decode(bytes).unwrap_err();
            let status = decode_status(&error, true);
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(status.message(), expected, "{bytes:?}");
        }
    }

    #[test]
    fn a_response_that_does_not_decode_stays_internal() {
        let error = pb::PublishRequest::decode(&publish_with_topic(b"\xff")[..]).unwrap_err();
        assert_eq!(decode_status(&error, false).code(), Code::Internal);
    }
}
