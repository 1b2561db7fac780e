//! Bad input over the wire, as tables: every malformed topic, pattern, group name, id and limit, sent
//! through each RPC that takes it, comes back INVALID_ARGUMENT with a message that starts with the
//! field's path, while the same value is accepted where it is valid. Requests whose strings are not
//! UTF-8 (which prost refuses before any handler runs) are INVALID_ARGUMENT naming the field too. And
//! after each refused call, the same connection goes on serving valid ones.

mod common;

use std::time::Duration;

use common::*;
use switchyard::{config::Config, pb};
use tonic::{Code, Status, codegen::http::uri::PathAndQuery, transport::Channel};

/// Where a bad value goes: one field of one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    PublishTopic,
    RequestTopic,
    ReplyTo,
    SubscribeTopic,
    ConsumeTopic,
    DeclareTopic,
    DeadLetterTopic,
    DeleteTopic,
    ConsumeGroup,
    DeclareGroup,
    DeleteGroup,
}

use Field::*;

/// Every place a topic or pattern goes.
const TOPIC_FIELDS: [Field; 8] = [
    PublishTopic,
    RequestTopic,
    ReplyTo,
    SubscribeTopic,
    ConsumeTopic,
    DeclareTopic,
    DeadLetterTopic,
    DeleteTopic,
];
/// Where only a concrete topic (no wildcard) is valid.
const CONCRETE: [Field; 4] = [PublishTopic, RequestTopic, ReplyTo, DeadLetterTopic];
/// Where an empty string is missing rather than optional.
const REQUIRED: [Field; 6] = [
    PublishTopic,
    RequestTopic,
    SubscribeTopic,
    ConsumeTopic,
    DeclareTopic,
    DeleteTopic,
];
const GROUP_FIELDS: [Field; 3] = [ConsumeGroup, DeclareGroup, DeleteGroup];

impl Field {
    /// The path the status message must start with.
    fn path(self) -> &'static str {
        match self {
            PublishTopic => "messages[1].topic",
            RequestTopic => "message.topic",
            ReplyTo => "messages[0].reply_to",
            SubscribeTopic | ConsumeTopic | DeclareTopic | DeleteTopic => "topic",
            DeadLetterTopic => "dead_letter_topic",
            ConsumeGroup | DeclareGroup | DeleteGroup => "group",
        }
    }

    /// Sends `value` in this field, every other field valid.
    async fn send(self, value: &str, broker: &mut Broker, admin: &mut Admin) -> Result<(), Status> {
        let topic = unique("badinput");
        let declare =
            |topic: String, group: String, dead_letter_topic: String| pb::DeclareGroupRequest {
                topic,
                group,
                dead_letter_topic,
                ..Default::default()
            };
        let delete = |topic: String, group: String| pb::DeleteGroupRequest { topic, group };
        let value = value.to_owned();
        match self {
            PublishTopic => {
                let batch = vec![message(&topic, "fine"), message(&value, "bad")];
                publish(broker, batch).await.map(accepted)
            }
            RequestTopic => {
                let request = pb::RequestRequest {
                    message: Some(message(&value, "bad")),
                    timeout_ms: 100,
                };
                within("Request", broker.request(request))
                    .await
                    .map(accepted)
            }
            ReplyTo => {
                let bad = pb::Message {
                    reply_to: value,
                    ..message(&topic, "bad")
                };
                publish(broker, vec![bad]).await.map(accepted)
            }
            SubscribeTopic => subscribe(broker, &value).await.map(accepted),
            ConsumeTopic => consume(broker, consume_request(&value, "g"))
                .await
                .map(accepted),
            ConsumeGroup => consume(broker, consume_request(&topic, &value))
                .await
                .map(accepted),
            DeclareTopic => {
                let request = declare(value, "g".into(), String::new());
                within("DeclareGroup", admin.declare_group(request))
                    .await
                    .map(accepted)
            }
            DeclareGroup => {
                let request = declare(topic, value, String::new());
                within("DeclareGroup", admin.declare_group(request))
                    .await
                    .map(accepted)
            }
            DeadLetterTopic => {
                let request = declare(topic, "g".into(), value);
                within("DeclareGroup", admin.declare_group(request))
                    .await
                    .map(accepted)
            }
            DeleteTopic => within("DeleteGroup", admin.delete_group(delete(value, "g".into())))
                .await
                .map(accepted),
            DeleteGroup => within("DeleteGroup", admin.delete_group(delete(topic, value)))
                .await
                .map(accepted),
        }
    }
}

/// What an accepted call returned does not matter here; a stream it opened closes at once.
fn accepted<T>(_: T) {}

/// Sends `value` to each of `fields` and checks that exactly those in `refused` are refused, each with
/// INVALID_ARGUMENT and its path; the others may fail for other reasons (no responders, no such
/// group), never as invalid.
async fn check_row(
    server: &TestServer,
    value: &str,
    fields: &[Field],
    refused: &[Field],
) -> Vec<String> {
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut failures = Vec::new();
    for &field in fields {
        let result = field.send(value, &mut broker, &mut admin).await;
        let want_refused = refused.contains(&field);
        match result {
            Err(status) if want_refused => {
                let prefix = format!("{}: ", field.path());
                if status.code() != Code::InvalidArgument || !status.message().starts_with(&prefix)
                {
                    failures.push(format!(
                        "{value:?} in {field:?}: expected INVALID_ARGUMENT starting {prefix:?}, got {:?} {:?}",
                        status.code(),
                        status.message()
                    ));
                }
            }
            Ok(()) if want_refused => {
                failures.push(format!(
                    "{value:?} in {field:?}: accepted, expected refused"
                ));
            }
            Err(status) if status.code() == Code::InvalidArgument => failures.push(format!(
                "{value:?} in {field:?}: refused ({}), expected accepted",
                status.message()
            )),
            _ => {}
        }
    }
    failures
}

/// Each topic and pattern rule, in every field that takes a topic or pattern.
#[tokio::test]
async fn topic_rules_in_every_field() {
    let server = TestServer::start().await;
    let limits = Config::default();
    let longest = "x".repeat(limits.max_topic_bytes);
    let too_long = "x".repeat(limits.max_topic_bytes + 1);
    let most_tokens = vec!["t"; limits.max_topic_tokens].join(".");
    let too_many_tokens = vec!["t"; limits.max_topic_tokens + 1].join(".");
    let all = &TOPIC_FIELDS[..];
    let none: &[Field] = &[];
    let table: Vec<(&str, &[Field])> = vec![
        ("orders.eu.created", none),
        ("caf\u{e9}.\u{4e2d}-_:/=", none),
        (&longest, none),
        (&most_tokens, none),
        ("", &REQUIRED),
        ("a..b", all),
        (".a", all),
        ("a.", all),
        (".", all),
        ("a b", all),
        (" a", all),
        ("a\tb", all),
        ("a\nb", all),
        ("a\rb", all),
        ("a\0b", all),
        ("a\u{7f}", all),
        ("a\u{a0}b", all),
        ("a\u{200b}b", all),
        ("a\u{202e}b", all),
        ("\u{feff}a", all),
        ("a.*", &CONCRETE),
        ("a.>", &CONCRETE),
        ("*", &CONCRETE),
        (">", &CONCRETE),
        ("*.a.>", &CONCRETE),
        ("a.>.b", all),
        (">.a", all),
        ("a*", all),
        ("a.b*", all),
        ("a.*b", all),
        ("a.>b", all),
        ("a.>>", all),
        (&too_long, all),
        (&too_many_tokens, all),
    ];
    let mut failures = Vec::new();
    for (value, refused) in table {
        failures.extend(check_row(&server, value, all, refused).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Group names are ASCII letters, digits, `-` and `_`, at most `max_group_name_bytes`.
#[tokio::test]
async fn group_name_rules_in_every_field() {
    let server = TestServer::start().await;
    let max = Config::default().max_group_name_bytes;
    let longest = "g".repeat(max);
    let too_long = "g".repeat(max + 1);
    let all = &GROUP_FIELDS[..];
    let none: &[Field] = &[];
    let table: Vec<(&str, &[Field])> = vec![
        ("workers", none),
        ("Workers-1_b", none),
        (&longest, none),
        ("", all),
        ("a.b", all),
        ("*", all),
        (">", all),
        ("a b", all),
        ("a\0", all),
        ("a\u{200b}", all),
        ("caf\u{e9}", all),
        ("a:b", all),
        ("a/b", all),
        (&too_long, all),
    ];
    let mut failures = Vec::new();
    for (value, refused) in table {
        failures.extend(check_row(&server, value, all, refused).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A server with small limits, so each is cheap to exceed.
async fn small_limits_server() -> TestServer {
    let config = Config {
        max_payload_bytes: 64,
        max_batch_messages: 4,
        max_headers: 2,
        max_header_bytes: 32,
        max_id_bytes: 16,
        default_prefetch: 2,
        max_prefetch: 8,
        default_ack_deadline: Duration::from_secs(5),
        max_ack_deadline: Duration::from_secs(10),
        max_ack_ids: 4,
        max_nack_delay: Duration::from_secs(1),
        max_request_timeout: Duration::from_secs(10),
        ..test_config()
    };
    TestServer::with_config(config).await
}

/// A batch of four good messages with `change` applied to the last.
fn batch_with_last(topic: &str, change: impl FnOnce(&mut pb::Message)) -> Vec<pb::Message> {
    let mut batch: Vec<_> = (0..4).map(|n| message(topic, format!("m{n}"))).collect();
    if let Some(last) = batch.last_mut() {
        change(last);
    }
    batch
}

/// Each message limit names `messages[3].<field>`; after each refusal, a valid Publish on the same
/// connection succeeds.
#[tokio::test]
async fn message_limits_name_the_field_and_keep_the_connection() {
    let server = small_limits_server().await;
    let topic = unique("badinput.limits");
    let mut broker = server.broker().await;
    let header = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    type Change = Box<dyn FnOnce(&mut pb::Message)>;
    let table: Vec<(&str, Change)> = vec![
        ("payload", Box::new(|m| m.payload = vec![b'p'; 65].into())),
        (
            "headers",
            Box::new(move |m| {
                m.headers = [header("a", "1"), header("b", "2"), header("c", "3")].into();
            }),
        ),
        (
            "headers",
            Box::new(move |m| m.headers = [header("name", &"v".repeat(29))].into()),
        ),
        (
            "headers",
            Box::new(move |m| m.headers = [header("", "v")].into()),
        ),
        ("key", Box::new(|m| m.key = "k".repeat(17))),
        ("reply_to", Box::new(|m| m.reply_to = "r".repeat(17))),
        ("reply_to", Box::new(|m| m.reply_to = "r.*".into())),
        (
            "correlation_id",
            Box::new(|m| m.correlation_id = "c".repeat(17)),
        ),
    ];
    for (field, change) in table {
        let result = publish(&mut broker, batch_with_last(&topic, change)).await;
        assert_status(
            result,
            Code::InvalidArgument,
            &[&format!("messages[3].{field}: ")],
        );
        publish_ok(&mut broker, batch_with_last(&topic, |_| {})).await;
    }
    // At the limits exactly, all is accepted.
    let at_limits = batch_with_last(&topic, |m| {
        m.payload = vec![b'p'; 64].into();
        m.headers = [header("name", &"v".repeat(27)), header("b", "")].into();
        m.key = "k".repeat(16);
        m.reply_to = "r".repeat(16);
        m.correlation_id = "c".repeat(16);
    });
    publish_ok(&mut broker, at_limits).await;
    let five = (0..5).map(|n| message(&topic, format!("m{n}"))).collect();
    assert_status(
        publish(&mut broker, five).await,
        Code::InvalidArgument,
        &["messages: "],
    );
    publish_ok(&mut broker, batch_with_last(&topic, |_| {})).await;
}

/// The limits of Consume, Ack, Request and DeclareGroup name their field; the connection goes on.
#[tokio::test]
async fn call_limits_name_the_field_and_keep_the_connection() {
    let server = small_limits_server().await;
    let topic = unique("badinput.calls");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;

    let consume_cases = [
        ("prefetch", consume_with(&topic, "g", 9, 0)),
        ("ack_deadline_ms", consume_with(&topic, "g", 1, 10_001)),
        (
            "mode",
            pb::ConsumeRequest {
                mode: 7,
                ..consume_request(&topic, "g")
            },
        ),
        (
            "standby",
            pb::ConsumeRequest {
                standby: true,
                ..consume_request(&topic, "g")
            },
        ),
    ];
    for (field, request) in consume_cases {
        let result = consume(&mut broker, request).await;
        assert_status(result, Code::InvalidArgument, &[&format!("{field}: ")]);
    }
    let _consumer = consume_ok(&mut broker, consume_with(&topic, "g", 8, 10_000)).await;

    let ids = |n: usize| (0..n).map(|i| format!("0.{i}")).collect::<Vec<_>>();
    let ack_cases = [
        (
            "ack_ids",
            pb::AckRequest {
                ack_ids: ids(3),
                extend_ids: ids(2),
                ..Default::default()
            },
        ),
        (
            "nack_delay_ms",
            pb::AckRequest {
                nack_ids: ids(1),
                nack_delay_ms: 1001,
                ..Default::default()
            },
        ),
    ];
    for (field, request) in ack_cases {
        let result = settle(&mut broker, request).await;
        assert_status(result, Code::InvalidArgument, &[&format!("{field}: ")]);
    }
    let unknown = ack_ids(&mut broker, &["0.0", "nonsense"]).await;
    assert_eq!(unknown.len(), 2, "ids that are not outstanding come back");

    let request = pb::RequestRequest {
        message: Some(message(&topic, "q")),
        timeout_ms: 10_001,
    };
    let result = within("Request", broker.request(request)).await;
    assert_status(result, Code::InvalidArgument, &["timeout_ms: "]);
    let request = pb::RequestRequest {
        message: None,
        timeout_ms: 0,
    };
    let result = within("Request", broker.request(request)).await;
    assert_status(result, Code::InvalidArgument, &["message: "]);

    let declare = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "declared".into(),
        ack_deadline_ms: 10_001,
        ..Default::default()
    };
    let result = within("DeclareGroup", admin.declare_group(declare)).await;
    assert_status(result, Code::InvalidArgument, &["ack_deadline_ms: "]);
    let looping = pb::DeclareGroupRequest {
        topic: format!("{topic}.>"),
        group: "declared".into(),
        dead_letter_topic: format!("{topic}.dead"),
        ..Default::default()
    };
    let result = within("DeclareGroup", admin.declare_group(looping)).await;
    assert_status(result, Code::InvalidArgument, &["dead_letter_topic: "]);

    publish_ok(&mut broker, vec![message(&topic, "still serving")]).await;
}

/// Twins of the schema's request messages with `bytes` where the schema has `string`: the same wire
/// format, but free to carry bytes that are not UTF-8.
mod raw {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PublishRequest {
        #[prost(message, repeated, tag = "1")]
        pub messages: Vec<Message>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        #[prost(bytes = "vec", tag = "2")]
        pub topic: Vec<u8>,
        /// A map on the wire is a repeated entry message with the key as 1 and the value as 2.
        #[prost(message, repeated, tag = "4")]
        pub headers: Vec<Header>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Header {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PublishStreamRequest {
        #[prost(uint64, tag = "1")]
        pub sequence: u64,
        #[prost(message, repeated, tag = "2")]
        pub messages: Vec<Message>,
    }

    /// An AckRequest whose first field has the wrong wire type.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WrongWireType {
        #[prost(fixed32, tag = "1")]
        pub ack_ids: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TopicAndGroup {
        #[prost(bytes = "vec", tag = "1")]
        pub topic: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub group: Vec<u8>,
    }
}

/// Sends `request` as a unary call to `path`, decoding the answer as `R`.
async fn raw_unary<Q, R>(channel: &Channel, path: &'static str, request: Q) -> Result<R, Status>
where
    Q: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    within("the channel to be ready", grpc.ready())
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    let call = grpc.unary(
        tonic::Request::new(request),
        PathAndQuery::from_static(path),
        codec,
    );
    within(path, call).await.map(tonic::Response::into_inner)
}

/// Sends `request` as a server-streaming call to `path`; only the call's own status matters here.
async fn raw_streaming<Q>(channel: &Channel, path: &'static str, request: Q) -> Result<(), Status>
where
    Q: prost::Message + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    within("the channel to be ready", grpc.ready())
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Q, pb::Delivery>::default();
    let call = grpc.server_streaming(
        tonic::Request::new(request),
        PathAndQuery::from_static(path),
        codec,
    );
    within(path, call).await.map(|_| ())
}

/// Strings that are not UTF-8 are INVALID_ARGUMENT naming the field, in unary and streaming calls,
/// and the connection that carried them goes on serving valid calls.
#[tokio::test]
async fn invalid_utf8_is_invalid_argument_and_the_connection_survives() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut broker = Broker::new(channel.clone());
    let topic = unique("badinput.utf8");

    let publish_raw = |topic: &[u8], header: Option<(&[u8], &[u8])>| raw::PublishRequest {
        messages: vec![raw::Message {
            topic: topic.to_vec(),
            headers: header
                .map(|(name, value)| raw::Header {
                    name: name.to_vec(),
                    value: value.to_vec(),
                })
                .into_iter()
                .collect(),
        }],
    };
    let path = "/switchyard.v1.Broker/Publish";
    let cases = [
        (
            publish_raw(b"orders.\xff", None),
            "messages.topic: is not valid UTF-8",
        ),
        (
            publish_raw(topic.as_bytes(), Some((b"\xc3\x28", b"v"))),
            "messages.headers: is not valid UTF-8",
        ),
        (
            publish_raw(topic.as_bytes(), Some((b"n", b"\xed\xa0\x80"))),
            "messages.headers: is not valid UTF-8",
        ),
    ];
    for (request, expected) in cases {
        let result = raw_unary::<_, pb::PublishResponse>(&channel, path, request).await;
        let status = assert_status(result, Code::InvalidArgument, &[]);
        assert_eq!(status.message(), expected);
        publish_ok(&mut broker, vec![message(&topic, "after")]).await;
    }
    let valid = publish_raw(topic.as_bytes(), Some((b"n", b"v")));
    raw_unary::<_, pb::PublishResponse>(&channel, path, valid)
        .await
        .expect("the twin type encodes what the schema does");

    let bad_group = raw::TopicAndGroup {
        topic: topic.as_bytes().to_vec(),
        group: b"w\x80".to_vec(),
    };
    let result = raw_streaming(&channel, "/switchyard.v1.Broker/Consume", bad_group).await;
    let status = assert_status(result, Code::InvalidArgument, &[]);
    assert_eq!(status.message(), "group: is not valid UTF-8");
    let bad_topic = raw::TopicAndGroup {
        topic: b"\xfe".to_vec(),
        group: Vec::new(),
    };
    let result = raw_streaming(&channel, "/switchyard.v1.Broker/Subscribe", bad_topic).await;
    let status = assert_status(result, Code::InvalidArgument, &[]);
    assert_eq!(status.message(), "topic: is not valid UTF-8");
    let result =
        raw_unary::<_, pb::DeleteGroupResponse>(&channel, "/switchyard.v1.Admin/DeleteGroup", {
            raw::TopicAndGroup {
                topic: b"a\xff".to_vec(),
                group: b"g".to_vec(),
            }
        })
        .await;
    let status = assert_status(result, Code::InvalidArgument, &[]);
    assert_eq!(status.message(), "topic: is not valid UTF-8");

    // Not the schema's encoding: `ack_ids` sent as a fixed32.
    let wrong = raw::WrongWireType { ack_ids: 7 };
    let result =
        raw_unary::<_, pb::AckResponse>(&channel, "/switchyard.v1.Broker/Ack", wrong).await;
    assert_status(
        result,
        Code::InvalidArgument,
        &["ack_ids: is not a valid protobuf encoding"],
    );

    let mut stream = subscribe_ok(&mut broker, &topic).await;
    publish_one(&mut broker, &topic, "still serving").await;
    assert_eq!(
        &next_message(&mut stream).await.payload[..],
        b"still serving"
    );
}

/// A PublishStream frame that does not decode ends the stream with INVALID_ARGUMENT naming the
/// field, after the frames before it were answered; the connection goes on serving.
#[tokio::test]
async fn a_stream_frame_that_does_not_decode_ends_its_stream_with_invalid_argument() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut broker = Broker::new(channel.clone());
    let topic = unique("badinput.stream");
    let frame = |sequence: u64, topic: &[u8]| raw::PublishStreamRequest {
        sequence,
        messages: vec![raw::Message {
            topic: topic.to_vec(),
            headers: Vec::new(),
        }],
    };
    let frames = futures_util::stream::iter([frame(1, topic.as_bytes()), frame(2, b"orders.\xff")]);
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    within("the channel to be ready", grpc.ready())
        .await
        .expect("ready");
    let codec =
        tonic_prost::ProstCodec::<raw::PublishStreamRequest, pb::PublishStreamResponse>::default();
    let mut answers = within(
        "PublishStream",
        grpc.streaming(
            tonic::Request::new(frames),
            PathAndQuery::from_static("/switchyard.v1.Broker/PublishStream"),
            codec,
        ),
    )
    .await
    .expect("the stream opens")
    .into_inner();
    let first = next_item(&mut answers, "the answer to frame 1").await;
    assert_eq!(first.sequence, 1);
    assert!(
        matches!(
            first.result,
            Some(pb::publish_stream_response::Result::Published(_))
        ),
        "{first:?}"
    );
    let status = end_status(&mut answers, "the end of the stream").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "messages.topic: is not valid UTF-8");
    publish_ok(&mut broker, vec![message(&topic, "still serving")]).await;
}
