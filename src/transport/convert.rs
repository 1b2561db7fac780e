//! Every conversion between `pb` and the domain, and the one table from [`BrokerError`] to a gRPC
//! status. Input is validated here against the configured limits, with the offending field named by
//! its path in the request (`messages[2].topic`), so a client knows exactly what to fix.

use std::time::Duration;

use bytes::Bytes;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    broker::{ConsumeMode, ConsumeSpec, GroupInfo, GroupSpec, Published, Settlement},
    config::Config,
    error::BrokerError,
    message::{Message, NewMessage},
    pb,
    topic::{GroupName, Pattern, Topic},
    validate,
};

/// Maps each broker error to its status code; the message is the error's own text, and the
/// details ([`super::details`]) say the same for programs.
pub fn status(error: BrokerError) -> Status {
    let code = match error {
        BrokerError::InvalidArgument { .. } => Code::InvalidArgument,
        BrokerError::GroupFull { .. }
        | BrokerError::GroupBytesFull { .. }
        | BrokerError::MemoryFull { .. }
        | BrokerError::TooManyStreams { .. }
        | BrokerError::DiskFull { .. } => Code::ResourceExhausted,
        BrokerError::ExclusiveTaken { .. } | BrokerError::GroupConflict { .. } => {
            Code::FailedPrecondition
        }
        BrokerError::GroupNotFound { .. } | BrokerError::GroupDeleted { .. } => Code::NotFound,
        BrokerError::NoResponders { .. }
        | BrokerError::ShuttingDown
        | BrokerError::StorageFailed { .. }
        | BrokerError::ClusterUnavailable { .. } => Code::Unavailable,
        BrokerError::RequestTimedOut(_) => Code::DeadlineExceeded,
        BrokerError::Unsupported { .. } => Code::Unimplemented,
    };
    Status::with_error_details(code, error.to_string(), super::details::of_broker(&error))
}

fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> BrokerError {
    BrokerError::invalid(field, reason)
}

pub fn topic(text: &str, field: &str, config: &Config) -> Result<Topic, BrokerError> {
    Topic::parse(text, config.topic_limits()).map_err(|error| invalid(field, error))
}

pub fn pattern(text: &str, field: &str, config: &Config) -> Result<Pattern, BrokerError> {
    Pattern::parse(text, config.topic_limits()).map_err(|error| invalid(field, error))
}

pub fn group_name(text: &str, field: &str, config: &Config) -> Result<GroupName, BrokerError> {
    GroupName::parse(text, config.max_group_name_bytes).map_err(|error| invalid(field, error))
}

fn mode(value: i32, field: &str) -> Result<ConsumeMode, BrokerError> {
    match pb::ConsumeMode::try_from(value) {
        Ok(pb::ConsumeMode::Unspecified | pb::ConsumeMode::Shared) => Ok(ConsumeMode::Shared),
        Ok(pb::ConsumeMode::Exclusive) => Ok(ConsumeMode::Exclusive),
        Err(_) => Err(invalid(field, format!("unknown mode {value}"))),
    }
}

/// A zero means "the default".
fn millis(value: u32) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(u64::from(value)))
}

fn check_len(field: impl FnOnce() -> String, value: &str, max: usize) -> Result<(), BrokerError> {
    if value.len() > max {
        let reason = format!("is {} bytes, more than the limit of {max}", value.len());
        return Err(invalid(field(), reason));
    }
    Ok(())
}

/// Validates one message of a request. `at` names it in errors (`messages[3]`, `message`); it is only
/// called on an error, so a valid message costs no formatting. `previous` is the topic of the message
/// before it in the same request: the same text reuses it, unparsed and unallocated, as batches to one
/// topic are the common case.
/// Payloads up to this size are copied out of the request buffer they were decoded from.
const COPIED_PAYLOAD_BYTES: usize = 4096;

/// A decoded payload is a slice of the whole receive buffer (the batch, and more): kept as is, one
/// message still queued would pin all of it. A small payload gets its own allocation (RSS per queued
/// 128 B message went from 332 to 282 bytes, BENCHMARKS.md); a large one is most of its buffer anyway.
fn own_payload(payload: Bytes) -> Bytes {
    if payload.len() <= COPIED_PAYLOAD_BYTES {
        Bytes::copy_from_slice(&payload)
    } else {
        payload
    }
}

pub fn new_message(
    message: pb::Message,
    at: &dyn Fn() -> String,
    previous: Option<&Topic>,
    config: &Config,
) -> Result<NewMessage, BrokerError> {
    let pb::Message {
        topic: topic_text,
        payload,
        headers,
        key,
        reply_to,
        correlation_id,
        id: _,
        published_at: _,
    } = message;
    let field = |name: &str| format!("{}.{name}", at());
    let topic = match previous {
        Some(previous) if previous.as_str() == topic_text => previous.clone(),
        _ => Topic::parse(&topic_text, config.topic_limits())
            .map_err(|error| invalid(field("topic"), error))?,
    };
    if payload.len() > config.max_payload_bytes {
        let reason = format!(
            "is {} bytes, more than the limit of {}",
            payload.len(),
            config.max_payload_bytes
        );
        return Err(invalid(field("payload"), reason));
    }
    if headers.len() > config.max_headers {
        let reason = format!(
            "has {} headers, more than the limit of {}",
            headers.len(),
            config.max_headers
        );
        return Err(invalid(field("headers"), reason));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if header_bytes > config.max_header_bytes {
        let reason = format!(
            "has {header_bytes} bytes of names and values, more than the limit of {}",
            config.max_header_bytes
        );
        return Err(invalid(field("headers"), reason));
    }
    if headers.keys().any(String::is_empty) {
        return Err(invalid(field("headers"), "a header name is empty"));
    }
    check_len(|| field("key"), &key, config.max_id_bytes)?;
    check_len(|| field("reply_to"), &reply_to, config.max_id_bytes)?;
    let reply_to = match reply_to.as_str() {
        "" => None,
        text => Some(
            Topic::parse(text, config.topic_limits())
                .map_err(|error| invalid(field("reply_to"), error))?,
        ),
    };
    check_len(
        || field("correlation_id"),
        &correlation_id,
        config.max_id_bytes,
    )?;
    Ok(NewMessage {
        topic,
        payload: own_payload(payload),
        headers,
        key,
        reply_to,
        correlation_id,
    })
}

pub fn publish_request(
    request: pb::PublishRequest,
    config: &Config,
) -> Result<Vec<NewMessage>, BrokerError> {
    let count = request.messages.len();
    if count == 0 {
        return Err(invalid("messages", "must hold at least one message"));
    }
    if count > config.max_batch_messages {
        let reason = format!(
            "{count} messages, more than the limit of {}",
            config.max_batch_messages
        );
        return Err(invalid("messages", reason));
    }
    let mut batch: Vec<NewMessage> = Vec::with_capacity(count);
    for (index, message) in request.messages.into_iter().enumerate() {
        let at = || format!("messages[{index}]");
        let previous = batch.last().map(|new| &new.topic);
        batch.push(new_message(message, &at, previous, config)?);
    }
    Ok(batch)
}

pub fn consume_spec(
    request: pb::ConsumeRequest,
    config: &Config,
) -> Result<ConsumeSpec, BrokerError> {
    let spec = ConsumeSpec {
        pattern: pattern(&request.topic, "topic", config)?,
        group: group_name(&request.group, "group", config)?,
        mode: mode(request.mode, "mode")?,
        prefetch: (request.prefetch > 0).then_some(request.prefetch),
        ack_deadline: millis(request.ack_deadline_ms),
        standby: request.standby,
    };
    validate::consume(&spec, config)?;
    Ok(spec)
}

pub fn group_spec(
    request: pb::DeclareGroupRequest,
    config: &Config,
) -> Result<GroupSpec, BrokerError> {
    // Fields are checked in the schema's order, so the first bad one is the one reported.
    let pattern = pattern(&request.topic, "topic", config)?;
    let group = group_name(&request.group, "group", config)?;
    let mode = mode(request.mode, "mode")?;
    let dead_letter_topic = match request.dead_letter_topic.as_str() {
        "" => None,
        text => Some(topic(text, "dead_letter_topic", config)?),
    };
    let spec = GroupSpec {
        pattern,
        group,
        mode,
        max_length: (request.max_length > 0).then_some(request.max_length),
        max_bytes: (request.max_bytes > 0).then_some(request.max_bytes),
        ack_deadline: millis(request.ack_deadline_ms),
        max_deliveries: (request.max_deliveries > 0).then_some(request.max_deliveries),
        dead_letter_topic,
    };
    validate::group(&spec, config)?;
    Ok(spec)
}

pub fn settlement(request: pb::AckRequest, config: &Config) -> Result<Settlement, BrokerError> {
    let settlement = Settlement {
        ack: request.ack_ids,
        nack: request.nack_ids,
        nack_delay: Duration::from_millis(u64::from(request.nack_delay_ms)),
        reject: request.reject_ids,
        extend: request.extend_ids,
    };
    validate::settlement(&settlement, config)?;
    Ok(settlement)
}

/// How much before the call's gRPC deadline the broker gives up on a reply itself. The transport ends a
/// call whose deadline passes with CANCELLED; answering a little earlier makes the caller see the
/// promised DEADLINE_EXCEEDED even when the machine is busy.
fn deadline_margin(deadline: Duration) -> Duration {
    (deadline / 10).clamp(Duration::from_millis(10), Duration::from_millis(200))
}

/// How long a publisher that asked to wait for room may wait: `--max-publish-wait`, cut short by
/// the call's own gRPC deadline (less a margin, as for requests) when that comes first.
pub fn publish_wait(call_deadline: Option<Duration>, config: &Config) -> Duration {
    call_deadline.map_or(config.max_publish_wait, |deadline| {
        config
            .max_publish_wait
            .min(deadline.saturating_sub(deadline_margin(deadline)))
    })
}

/// The request message and how long to wait: the request's timeout (or the default), cut short by the
/// call's own gRPC deadline (less a margin) when that comes first.
pub fn request(
    request: pb::RequestRequest,
    call_deadline: Option<Duration>,
    config: &Config,
) -> Result<(NewMessage, Duration), BrokerError> {
    let message = request
        .message
        .ok_or_else(|| invalid("message", "is required"))?;
    let message = new_message(message, &|| "message".to_string(), None, config)?;
    let asked = millis(request.timeout_ms).unwrap_or(config.default_request_timeout);
    if asked > config.max_request_timeout {
        let reason = format!(
            "must be at most {} ms",
            config.max_request_timeout.as_millis()
        );
        return Err(invalid("timeout_ms", reason));
    }
    let timeout = call_deadline.map_or(asked, |deadline| {
        asked.min(deadline.saturating_sub(deadline_margin(deadline)))
    });
    Ok((message, timeout))
}

pub fn message(message: &Message) -> pb::Message {
    pb::Message {
        id: message.id().to_string(),
        topic: message.topic().to_string(),
        payload: message.payload_bytes(),
        headers: message.headers().clone(),
        key: message.key().to_owned(),
        reply_to: message
            .reply_to()
            .map(ToString::to_string)
            .unwrap_or_default(),
        correlation_id: message.correlation_id().to_owned(),
        published_at: Some(message.published_at().into()),
    }
}

pub fn published(published: Published) -> pb::Published {
    pb::Published {
        id: published.id.to_string(),
        subscribers: published.subscribers,
        groups: published.groups,
    }
}

pub fn reply(reply: Message) -> pb::RequestResponse {
    pb::RequestResponse {
        reply: Some(message(&reply)),
    }
}

fn mode_to_pb(mode: ConsumeMode) -> pb::ConsumeMode {
    match mode {
        ConsumeMode::Shared => pb::ConsumeMode::Shared,
        ConsumeMode::Exclusive => pb::ConsumeMode::Exclusive,
    }
}

pub fn group_info(info: GroupInfo) -> pb::GroupInfo {
    pb::GroupInfo {
        topic: info.pattern.to_string(),
        group: info.group.to_string(),
        mode: mode_to_pb(info.mode).into(),
        ready: info.ready,
        in_flight: info.in_flight,
        consumers: info.consumers,
        delivered: info.counters.delivered,
        acked: info.counters.acked,
        redelivered: info.counters.redelivered,
        dead_lettered: info.counters.dead_lettered(),
        bytes: info.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::CommitError;

    /// A full disk tells the publisher to back off; any other storage failure says the broker cannot
    /// serve writes; neither is mistaken for a bad request.
    #[test]
    fn storage_failures_map_to_their_codes() {
        let full = BrokerError::from(CommitError::DiskFull("ENOSPC".into()));
        assert_eq!(status(full).code(), tonic::Code::ResourceExhausted);
        let failed = BrokerError::from(CommitError::Failed("fsync: EIO".into()));
        let failed = status(failed);
        assert_eq!(failed.code(), tonic::Code::Unavailable);
        assert!(failed.message().contains("EIO"), "{}", failed.message());
        let closed = BrokerError::from(CommitError::Closed);
        assert_eq!(status(closed).code(), tonic::Code::Unavailable);
    }

    fn request_with(timeout_ms: u32, call_deadline: Option<Duration>) -> Duration {
        let request = pb::RequestRequest {
            message: Some(pb::Message {
                topic: "svc".into(),
                ..pb::Message::default()
            }),
            timeout_ms,
        };
        let (_, timeout) = super::request(request, call_deadline, &Config::default()).unwrap();
        timeout
    }

    #[test]
    fn the_broker_answers_before_the_call_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(request_with(300, None), ms(300));
        assert_eq!(
            request_with(0, None),
            Config::default().default_request_timeout
        );
        assert_eq!(request_with(300, Some(ms(300))), ms(270), "a tenth early");
        assert_eq!(
            request_with(300, Some(ms(10_000))),
            ms(300),
            "the request's own timeout"
        );
        assert_eq!(
            request_with(60_000, Some(ms(30_000))),
            ms(29_800),
            "at most 200 ms early"
        );
        assert_eq!(request_with(50, Some(ms(5))), Duration::ZERO);
    }

    #[test]
    fn a_batch_to_one_topic_shares_the_topic_and_errors_name_the_message() {
        let message = |topic: &str| pb::Message {
            topic: topic.into(),
            ..pb::Message::default()
        };
        let request = pb::PublishRequest {
            messages: vec![message("a.b"), message("a.b"), message("a.c")],
            wait_for_room: false,
        };
        let batch = publish_request(request, &Config::default()).unwrap();
        assert_eq!(
            batch[0].topic.as_str().as_ptr(),
            batch[1].topic.as_str().as_ptr()
        );
        assert_eq!(batch[2].topic.as_str(), "a.c");
        let request = pb::PublishRequest {
            messages: vec![message("a.b"), message("a..b")],
            wait_for_room: false,
        };
        let error = publish_request(request, &Config::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("messages[1].topic: "),
            "{error}"
        );
    }

    #[test]
    fn every_error_kind_has_its_status_code() {
        use tonic::Code;
        let cases = [
            (BrokerError::invalid("topic", "bad"), Code::InvalidArgument),
            (
                BrokerError::GroupFull {
                    index: 0,
                    group: "g".into(),
                    max_length: 1,
                    never_fits: false,
                },
                Code::ResourceExhausted,
            ),
            (
                BrokerError::GroupBytesFull {
                    index: 0,
                    group: "g".into(),
                    max_bytes: 1,
                    never_fits: true,
                },
                Code::ResourceExhausted,
            ),
            (
                BrokerError::MemoryFull { used: 1, limit: 1 },
                Code::ResourceExhausted,
            ),
            (
                BrokerError::TooManyStreams { limit: 1 },
                Code::ResourceExhausted,
            ),
            (
                BrokerError::ExclusiveTaken { group: "g".into() },
                Code::FailedPrecondition,
            ),
            (
                BrokerError::GroupNotFound {
                    group: "g".into(),
                    pattern: "t".into(),
                },
                Code::NotFound,
            ),
            (
                BrokerError::NoResponders { topic: "t".into() },
                Code::Unavailable,
            ),
            (
                BrokerError::RequestTimedOut(Duration::ZERO),
                Code::DeadlineExceeded,
            ),
            (BrokerError::ShuttingDown, Code::Unavailable),
        ];
        for (error, code) in cases {
            assert_eq!(status(error).code(), code);
        }
    }
}
