//! Every request type, as the server sees it: a sequence of calls, each one request type and the bytes
//! of its protobuf encoding. Each is decoded with prost (a failure must become INVALID_ARGUMENT, as the
//! server's codec makes it), converted and validated by the transport edge, and, when valid, run
//! against an in-memory broker whose limits are small enough for the fuzzer to reach. Deliveries are
//! read back so that later calls can settle real delivery ids. The input may swap a decoded topic or
//! group for one of a few fixed ones, and give an empty Publish or Request one message: random bytes
//! alone almost never make a Consume and a Publish that meet, so without that the broker's delivery
//! and settlement paths would go unexercised.
//! Nothing a client sends may panic.
#![no_main]

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use prost::Message as _;
use switchyard::{
    broker::{Broker as _, Delivery, EventStream, Settlement, SubscriptionEvent},
    config::Config,
    memory::MemoryBroker,
    pb,
    transport::{codec, convert},
};
use tonic::Code;

fuzz_target!(|data: &[u8]| {
    // Building a current-thread runtime fails only when the OS is out of resources: not an input.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let mut session = Session::new();
        let mut input = Unstructured::new(data);
        while !input.is_empty() {
            if session.call(&mut input).await.is_err() {
                break;
            }
        }
        session.broker.shutdown();
    });
});

/// Limits small enough that a few bytes reach each of them.
fn config() -> Config {
    Config {
        max_payload_bytes: 64,
        max_batch_messages: 4,
        max_topic_bytes: 32,
        max_topic_tokens: 4,
        max_group_name_bytes: 8,
        max_headers: 2,
        max_header_bytes: 32,
        max_id_bytes: 16,
        subscriber_buffer: 2,
        default_prefetch: 2,
        max_prefetch: 4,
        default_ack_deadline: Duration::from_millis(50),
        max_ack_deadline: Duration::from_secs(1),
        default_max_length: 4,
        max_nack_delay: Duration::from_secs(1),
        max_ack_ids: 4,
        default_request_timeout: Duration::from_millis(10),
        max_request_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// The names the input may swap in, so that calls meet: patterns that match each other's topics,
/// a dead-letter topic, a reply inbox, and two groups.
const TOPICS: &[&str] = &["a", "a.b", "a.*", "a.>", "b.dead", "_INBOX.x"];
const GROUPS: &[&str] = &["g", "h"];

/// Replaces `text` with one of `names` when the input says so.
fn swap(input: &mut Unstructured<'_>, text: &mut String, names: &[&str]) -> Result<()> {
    if input.ratio(3, 4)? {
        *text = (*input.choose(names)?).to_owned();
    }
    Ok(())
}

/// Decodes `bytes` as `T`, checking that a failure maps to the caller's fault.
fn decode<T: prost::Message + Default>(bytes: &[u8]) -> Option<T> {
    match T::decode(bytes) {
        Ok(message) => Some(message),
        Err(error) => {
            let status = codec::decode_status(&error, true);
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            None
        }
    }
}

/// A broker and what the calls so far left open.
struct Session {
    config: Config,
    broker: MemoryBroker,
    subscriptions: Vec<EventStream<SubscriptionEvent>>,
    consumers: Vec<EventStream<Delivery>>,
    delivery_ids: Vec<String>,
}

impl Session {
    fn new() -> Self {
        let config = config();
        config
            .validate()
            .expect("the fuzzing configuration is valid");
        Self {
            broker: MemoryBroker::new(config.clone()),
            config,
            subscriptions: Vec::new(),
            consumers: Vec::new(),
            delivery_ids: Vec::new(),
        }
    }

    /// One call: which request, then its bytes. Broker errors are answers, not failures.
    async fn call(&mut self, input: &mut Unstructured<'_>) -> Result<()> {
        let kind: u8 = input.int_in_range(0..=8)?;
        let bytes: &[u8] = input.arbitrary()?;
        let config = &self.config;
        match kind {
            0 => {
                if let Some(mut request) = decode::<pb::PublishRequest>(bytes) {
                    if request.messages.is_empty() && input.arbitrary()? {
                        request.messages.push(pb::Message::default());
                    }
                    for message in &mut request.messages {
                        swap(input, &mut message.topic, TOPICS)?;
                    }
                    if let Ok(batch) = convert::publish_request(request, config)
                        && let Ok(published) = self.broker.publish(batch).await
                    {
                        let _: Vec<pb::Published> =
                            published.into_iter().map(convert::published).collect();
                    }
                }
            }
            1 => {
                if let Some(mut request) = decode::<pb::SubscribeRequest>(bytes) {
                    swap(input, &mut request.topic, TOPICS)?;
                    if let Ok(pattern) = convert::pattern(&request.topic, "topic", config)
                        && let Ok(stream) = self.broker.subscribe(pattern).await
                    {
                        self.subscriptions.push(stream);
                    }
                }
            }
            2 => {
                if let Some(mut request) = decode::<pb::ConsumeRequest>(bytes) {
                    swap(input, &mut request.topic, TOPICS)?;
                    swap(input, &mut request.group, GROUPS)?;
                    if let Ok(spec) = convert::consume_spec(request, config)
                        && let Ok(stream) = self.broker.consume(spec).await
                    {
                        self.consumers.push(stream);
                    }
                }
            }
            3 => {
                if let Some(request) = decode::<pb::AckRequest>(bytes) {
                    let _ = self.broker.settle(convert::settlement(request)).await;
                }
            }
            4 => {
                if let Some(mut request) = decode::<pb::RequestRequest>(bytes) {
                    if request.message.is_none() && input.arbitrary()? {
                        request.message = Some(pb::Message::default());
                    }
                    if let Some(message) = &mut request.message {
                        swap(input, &mut message.topic, TOPICS)?;
                    }
                    if let Ok((message, timeout)) = convert::request(request, None, config)
                        && let Ok(reply) = self.broker.request(message, timeout).await
                    {
                        let _ = convert::reply(reply);
                    }
                }
            }
            5 => {
                if let Some(mut request) = decode::<pb::DeclareGroupRequest>(bytes) {
                    swap(input, &mut request.topic, TOPICS)?;
                    swap(input, &mut request.group, GROUPS)?;
                    swap(input, &mut request.dead_letter_topic, TOPICS)?;
                    if let Ok(spec) = convert::group_spec(request, config) {
                        let _ = self.broker.declare_group(spec).await;
                    }
                }
            }
            6 => {
                if let Some(mut request) = decode::<pb::DeleteGroupRequest>(bytes) {
                    swap(input, &mut request.topic, TOPICS)?;
                    swap(input, &mut request.group, GROUPS)?;
                    if let Ok(pattern) = convert::pattern(&request.topic, "topic", config)
                        && let Ok(group) = convert::group_name(&request.group, "group", config)
                    {
                        let _ = self.broker.delete_group(pattern, group).await;
                    }
                }
            }
            7 => {
                if decode::<pb::ListGroupsRequest>(bytes).is_some()
                    && let Ok(groups) = self.broker.list_groups().await
                {
                    let _: Vec<pb::GroupInfo> =
                        groups.into_iter().map(convert::group_info).collect();
                }
            }
            _ => self.settle_known(input).await?,
        }
        self.drain();
        Ok(())
    }

    /// Settles the delivery ids the broker really handed out, each one acked, nacked, rejected,
    /// extended or left alone as the input picks (ids settled before come back as unknown).
    async fn settle_known(&mut self, input: &mut Unstructured<'_>) -> Result<()> {
        let mut settlement = Settlement {
            nack_delay: Duration::from_millis(u64::from(input.int_in_range(0..=1500_u16)?)),
            ..Settlement::default()
        };
        for id in &self.delivery_ids {
            let list = match input.int_in_range(0..=4_u8)? {
                0 => &mut settlement.ack,
                1 => &mut settlement.nack,
                2 => &mut settlement.reject,
                3 => &mut settlement.extend,
                _ => continue,
            };
            list.push(id.clone());
        }
        let _ = self.broker.settle(settlement).await;
        Ok(())
    }

    /// Reads whatever the open streams have ready, converting it as the server would. A stream that
    /// has ended is dropped, never polled again: the `Stream` contract leaves that undefined, and
    /// tonic does not do it either.
    fn drain(&mut self) {
        self.subscriptions.retain_mut(|stream| {
            loop {
                match stream.next().now_or_never() {
                    Some(Some(Ok(event))) => {
                        let encoded = convert::subscription_event(event).encode_to_vec();
                        assert!(pb::SubscribeResponse::decode(&encoded[..]).is_ok());
                    }
                    Some(Some(Err(_))) => {}
                    Some(None) => return false,
                    None => return true,
                }
            }
        });
        let delivery_ids = &mut self.delivery_ids;
        self.consumers.retain_mut(|stream| {
            loop {
                match stream.next().now_or_never() {
                    Some(Some(Ok(delivery))) => {
                        delivery_ids.push(delivery.delivery_id.clone());
                        let encoded = convert::delivery(delivery).encode_to_vec();
                        assert!(pb::Delivery::decode(&encoded[..]).is_ok());
                    }
                    Some(Some(Err(_))) => {}
                    Some(None) => return false,
                    None => return true,
                }
            }
        });
    }
}
