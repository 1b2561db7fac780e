//! What the routing benchmarks and the allocation counts share: topics, messages with 128-byte
//! payloads, a mixed set of patterns, and two small brokers (a work queue with one consumer, and
//! subscribers on one topic) that can be filled and drained between timed sections.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use switchyard::{
    broker::{
        Broker, ConsumeMode, ConsumeSpec, Delivery, EventStream, Settlement, SubscriptionEvent,
    },
    config::Config,
    memory::{
        MemoryBroker,
        group_state::{ConsumerTerms, GroupSettings},
    },
    message::{Message, NewMessage},
    topic::{GroupName, Pattern, Topic},
};
use tokio::runtime::Runtime;

/// The payload size of every benchmarked message.
pub const PAYLOAD_BYTES: usize = 128;

/// Timed operations run in chunks of this many, so that queues and in-flight maps stay the size a
/// busy consumer sees (a prefetch's worth), and so that the untimed fill and drain between chunks
/// never overflows a subscriber buffer (4 096 by default).
pub const CHUNK: u64 = 1_000;

/// The topic the work queue's group and the fan-out subscribers listen on.
const WORK_TOPIC: &str = "bench.work";
const FANOUT_TOPIC: &str = "bench.fanout";

pub fn topic(text: &str) -> Topic {
    Topic::parse(text, Config::default().topic_limits()).expect("benchmark topics are valid")
}

pub fn pattern(text: &str) -> Pattern {
    Pattern::parse(text, Config::default().topic_limits()).expect("benchmark patterns are valid")
}

/// A message to publish on `topic`: a 128-byte payload and the first `headers` of four typical headers.
pub fn new_message(topic_text: &str, headers: usize) -> NewMessage {
    let typical = [
        ("content-type", "application/json"),
        ("source", "checkout-web"),
        ("tenant", "acme-eu"),
        ("trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ];
    let mut message = NewMessage::new(topic(topic_text), Bytes::from(vec![0x5a; PAYLOAD_BYTES]));
    message.headers = typical
        .iter()
        .take(headers)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect::<HashMap<_, _>>();
    message
}

/// A stamped message as a group or subscriber holds it.
pub fn message(headers: usize) -> Message {
    Message::stamp(new_message("orders.eu.created", headers))
}

/// `n` publish calls of one message each, built before the timed section.
pub fn singles(message: &NewMessage, n: u64) -> Vec<Vec<NewMessage>> {
    (0..n).map(|_| vec![message.clone()]).collect()
}

/// `n` patterns over three tokens, drawn from a fixed seed: 80 % literal (`svc12.ev3.id40`), 15 % with
/// `*` in the middle (`svc12.*.id40`), 5 % with a trailing `>` (`svc12.ev3.>`), over 1 000 services,
/// 100 events and 100 ids. So a topic matches a handful of them, whatever `n` is.
pub fn patterns(n: usize) -> Vec<Pattern> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut draw = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    (0..n)
        .map(|_| {
            let (service, event, id) = (draw(1_000), draw(100), draw(100));
            let text = match draw(20) {
                0 => format!("svc{service}.ev{event}.>"),
                1..=3 => format!("svc{service}.*.id{id}"),
                _ => format!("svc{service}.ev{event}.id{id}"),
            };
            pattern(&text)
        })
        .collect()
}

/// A topic that the first literal pattern of `patterns` (and perhaps a few others) matches.
pub fn hit_topic(patterns: &[Pattern]) -> Topic {
    let literal = patterns
        .iter()
        .find(|p| !p.as_str().contains(['*', '>']))
        .expect("the pattern set holds a literal pattern");
    topic(literal.as_str())
}

/// A single-threaded runtime: the benchmark drives everything from one `block_on`, so nothing runs
/// concurrently with the timed code except what the broker itself spawns when the benchmark yields.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime starts")
}

/// A shared group's settings with no length limit, so a state machine can be filled freely.
pub fn group_settings() -> GroupSettings {
    GroupSettings {
        mode: ConsumeMode::Shared,
        max_length: u32::MAX,
        max_bytes: None,
        ack_deadline: Duration::from_secs(30),
        max_deliveries: None,
        dead_letter_topic: None,
    }
}

/// A consumer that never runs out of prefetch.
pub fn consumer_terms() -> ConsumerTerms {
    ConsumerTerms {
        prefetch: u32::MAX,
        ack_deadline: Duration::from_secs(30),
        standby: false,
    }
}

/// A broker with one shared group on `bench.work` and one consumer with a large prefetch.
pub struct WorkQueue {
    pub broker: MemoryBroker,
    pub message: NewMessage,
    consumer: EventStream<Delivery>,
}

impl WorkQueue {
    /// Needs to run inside the runtime: the broker spawns its housekeeping task.
    pub async fn new() -> Self {
        let broker = MemoryBroker::new(Config::default());
        let spec = ConsumeSpec {
            pattern: pattern(WORK_TOPIC),
            group: GroupName::parse("workers", 64).expect("a valid group name"),
            mode: ConsumeMode::Shared,
            prefetch: Some(Config::default().max_prefetch),
            ack_deadline: None,
            standby: false,
        };
        let consumer = broker.consume(spec).await.expect("the consumer attaches");
        Self {
            broker,
            message: new_message(WORK_TOPIC, 0),
            consumer,
        }
    }

    /// Publishes `n` messages in one batch.
    pub async fn fill(&self, n: u64) {
        let batch = (0..n).map(|_| self.message.clone()).collect();
        self.broker
            .publish(batch)
            .await
            .expect("the group has room");
    }

    /// The consumer's next delivery; only called when one is waiting.
    pub async fn next(&mut self) -> Delivery {
        self.consumer
            .next()
            .await
            .expect("the consumer's stream is open")
            .expect("a delivery")
    }

    /// Takes `n` deliveries and returns their ids.
    pub async fn take_ids(&mut self, n: u64) -> Vec<String> {
        let mut ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            ids.push(self.next().await.delivery_id);
        }
        ids
    }

    /// Acks every id in one call.
    pub async fn ack(&self, ids: Vec<String>) {
        let unknown = self
            .broker
            .settle(Settlement {
                ack: ids,
                ..Settlement::default()
            })
            .await
            .expect("the settlement is within limits");
        assert!(unknown.is_empty(), "every id was outstanding");
    }

    /// Takes and acks `n` deliveries, emptying the group again.
    pub async fn drain(&mut self, n: u64) {
        let ids = self.take_ids(n).await;
        self.ack(ids).await;
    }
}

/// A broker with `n` subscribers on `bench.fanout`, through a mix of literal, `*` and `>` patterns.
pub struct Fanout {
    pub broker: MemoryBroker,
    pub message: NewMessage,
    subscribers: Vec<EventStream<SubscriptionEvent>>,
}

impl Fanout {
    /// Needs to run inside the runtime: the broker spawns its housekeeping task.
    pub async fn new(subscribers: usize) -> Self {
        let broker = MemoryBroker::new(Config::default());
        let mut streams = Vec::with_capacity(subscribers);
        for index in 0..subscribers {
            let text = ["bench.fanout", "bench.*", "bench.>"][index % 3];
            streams.push(broker.subscribe(pattern(text)).await.expect("subscribed"));
        }
        Self {
            broker,
            message: new_message(FANOUT_TOPIC, 0),
            subscribers: streams,
        }
    }

    /// Reads `n` messages from every subscriber; only called when they are buffered.
    pub async fn drain(&mut self, n: u64) {
        for stream in &mut self.subscribers {
            for _ in 0..n {
                let event = stream.next().await.expect("the subscription is open");
                assert!(matches!(event, Ok(SubscriptionEvent::Message(_))));
            }
        }
    }
}
