//! The in-memory broker through its `Broker` interface, without a network, on a paused clock.

use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::broker::ConsumeMode;

fn broker(config: Config) -> MemoryBroker {
    MemoryBroker::new(config)
}

fn topic(text: &str) -> Topic {
    Topic::parse(text, Config::default().topic_limits()).unwrap()
}

fn pattern(text: &str) -> Pattern {
    Pattern::parse(text, Config::default().topic_limits()).unwrap()
}

fn group(text: &str) -> GroupName {
    GroupName::parse(text, 64).unwrap()
}

fn new(topic_text: &str, payload: &'static str) -> NewMessage {
    NewMessage::new(topic(topic_text), payload.as_bytes())
}

fn consume_spec(pattern_text: &str, name: &str) -> ConsumeSpec {
    ConsumeSpec {
        pattern: pattern(pattern_text),
        group: group(name),
        mode: ConsumeMode::Shared,
        prefetch: None,
        ack_deadline: None,
        standby: false,
    }
}

fn group_spec(pattern_text: &str, name: &str) -> GroupSpec {
    GroupSpec {
        pattern: pattern(pattern_text),
        group: group(name),
        mode: ConsumeMode::Shared,
        max_length: None,
        max_bytes: None,
        ack_deadline: None,
        max_deliveries: None,
        dead_letter_topic: None,
    }
}

async fn next<T>(stream: &mut EventStream<T>) -> Result<T, BrokerError> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

fn payload(event: SubscriptionEvent) -> Vec<u8> {
    match event {
        SubscriptionEvent::Message(message) => message.payload().to_vec(),
        SubscriptionEvent::Gap { missed } => panic!("unexpected gap of {missed}"),
    }
}

#[tokio::test]
async fn publish_reaches_subscribers_and_counts_them() {
    let broker = broker(Config::default());
    let mut orders = broker.subscribe(pattern("orders.>")).await.unwrap();
    let mut created = broker.subscribe(pattern("orders.created")).await.unwrap();
    let published = broker
        .publish(vec![new("orders.created", "o1")])
        .await
        .unwrap();
    assert_eq!((published[0].subscribers, published[0].groups), (2, 0));
    assert_eq!(payload(next(&mut orders).await.unwrap()), b"o1");
    assert_eq!(payload(next(&mut created).await.unwrap()), b"o1");
    drop(created);
    let published = broker
        .publish(vec![new("orders.created", "o2")])
        .await
        .unwrap();
    assert_eq!(published[0].subscribers, 1, "a dropped stream unsubscribes");
}

#[tokio::test]
async fn a_full_group_refuses_the_whole_batch() {
    let broker = broker(Config::default());
    let mut spec = group_spec("jobs", "workers");
    spec.max_length = Some(2);
    broker.declare_group(spec).await.unwrap();
    let mut watcher = broker.subscribe(pattern("jobs")).await.unwrap();
    let batch = vec![new("jobs", "a"), new("jobs", "b"), new("jobs", "c")];
    let error = broker.publish(batch).await.unwrap_err();
    assert!(
        matches!(error, BrokerError::GroupFull { index: 2, .. }),
        "{error:?}"
    );
    broker.publish(vec![new("jobs", "ok")]).await.unwrap();
    assert_eq!(
        payload(next(&mut watcher).await.unwrap()),
        b"ok",
        "nothing of the refused batch"
    );
    let info = &broker.list_groups().await.unwrap()[0];
    assert_eq!(info.ready, 1);
}

/// Past `max_memory_bytes` a batch is refused whole; acking gives the memory back, and a message
/// that nobody holds (no subscriber, no group) costs nothing once routed.
#[tokio::test]
async fn the_memory_budget_refuses_publishers_until_consumers_ack() {
    let one = new("jobs", "0123456789").footprint();
    let broker = broker(Config {
        max_memory_bytes: 3 * one,
        ..Config::default()
    });
    broker.declare_group(group_spec("jobs", "w")).await.unwrap();
    let batch = || vec![new("jobs", "0123456789"), new("jobs", "0123456789")];
    broker.publish(batch()).await.unwrap();
    let error = broker.publish(batch()).await.unwrap_err();
    assert!(matches!(error, BrokerError::MemoryFull { .. }), "{error:?}");
    assert_eq!(
        broker.list_groups().await.unwrap()[0].ready,
        2,
        "nothing of the refused batch"
    );
    // A topic nobody holds: routed, and released at once.
    for _ in 0..10 {
        broker
            .publish(vec![new("elsewhere", "0123456789")])
            .await
            .unwrap();
    }

    let mut consumer = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    let delivery = next(&mut consumer).await.unwrap();
    let settlement = Settlement {
        ack: vec![delivery.delivery_id],
        ..Settlement::default()
    };
    assert!(broker.settle(settlement).await.unwrap().is_empty());
    // The delivery handed out still holds the message until it is dropped here.
    drop(delivery.message);
    broker.publish(batch()).await.unwrap();
    assert_eq!(broker.shared.budget.used(), 3 * one);
}

/// A group's `max_bytes` refuses a batch whole, as `max_length` does; acking makes room.
#[tokio::test]
async fn a_group_past_its_max_bytes_refuses_the_whole_batch() {
    let broker = broker(Config::default());
    let one = new("jobs", "0123456789").footprint() as u64;
    let mut spec = group_spec("jobs", "w");
    spec.max_bytes = Some(2 * one);
    broker.declare_group(spec).await.unwrap();
    broker
        .publish(vec![new("jobs", "0123456789")])
        .await
        .unwrap();
    let batch = vec![new("jobs", "0123456789"), new("jobs", "0123456789")];
    let error = broker.publish(batch).await.unwrap_err();
    assert!(
        matches!(error, BrokerError::GroupBytesFull { index: 1, .. }),
        "{error:?}"
    );
    let info = &broker.list_groups().await.unwrap()[0];
    assert_eq!((info.ready, info.bytes), (1, one));

    let mut consumer = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    let delivery = next(&mut consumer).await.unwrap();
    let settlement = Settlement {
        ack: vec![delivery.delivery_id],
        ..Settlement::default()
    };
    broker.settle(settlement).await.unwrap();
    let batch = vec![new("jobs", "0123456789"), new("jobs", "0123456789")];
    broker.publish(batch).await.unwrap();
    assert_eq!(broker.list_groups().await.unwrap()[0].bytes, 2 * one);
}

/// A publisher that asks to wait is held while its group is full and goes through once a consumer
/// acks; one whose wait runs out gets the group-full error, and nothing of its batch is stored.
#[tokio::test(start_paused = true)]
async fn a_waiting_publisher_gets_room_when_a_consumer_acks() {
    let broker = broker(Config::default());
    let mut spec = group_spec("jobs", "w");
    spec.max_length = Some(1);
    broker.declare_group(spec).await.unwrap();
    broker.publish(vec![new("jobs", "first")]).await.unwrap();

    let error = broker
        .publish_waiting(vec![new("jobs", "refused")], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::GroupFull { .. }), "{error:?}");
    // A batch the group could never hold is refused at once, however long it may wait.
    let started = tokio::time::Instant::now();
    let too_big = vec![new("jobs", "a"), new("jobs", "b")];
    let error = broker
        .publish_waiting(too_big, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            BrokerError::GroupFull {
                never_fits: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(started.elapsed(), Duration::ZERO);

    let waiting = {
        let broker = broker.clone();
        tokio::spawn(async move {
            broker
                .publish_waiting(vec![new("jobs", "second")], Duration::from_secs(60))
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!waiting.is_finished(), "published into a full group");
    let mut consumer = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    let delivery = next(&mut consumer).await.unwrap();
    assert_eq!(delivery.message.payload(), b"first");
    let settlement = Settlement {
        ack: vec![delivery.delivery_id],
        ..Settlement::default()
    };
    broker.settle(settlement).await.unwrap();
    waiting.await.unwrap().unwrap();
    let second = next(&mut consumer).await.unwrap();
    assert_eq!(second.message.payload(), b"second");
}

#[tokio::test]
async fn each_message_goes_to_one_consumer_and_acks_settle_it() {
    let broker = broker(Config::default());
    let mut first = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    let mut second = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    let published = broker
        .publish(vec![new("jobs", "a"), new("jobs", "b")])
        .await
        .unwrap();
    assert_eq!(published[0].groups, 1);
    let a = next(&mut first).await.unwrap();
    let b = next(&mut second).await.unwrap();
    assert_ne!(a.message.id(), b.message.id());
    let settlement = Settlement {
        ack: vec![
            a.delivery_id.clone(),
            b.delivery_id,
            "bogus".into(),
            "ff.ff".into(),
        ],
        ..Settlement::default()
    };
    let unknown = broker.settle(settlement).await.unwrap();
    assert_eq!(unknown, ["bogus", "ff.ff"]);
    let again = Settlement {
        ack: vec![a.delivery_id.clone()],
        ..Settlement::default()
    };
    assert_eq!(broker.settle(again).await.unwrap(), [a.delivery_id]);
    assert_eq!(broker.list_groups().await.unwrap()[0].counters.acked, 2);
}

#[tokio::test(start_paused = true)]
async fn unacked_deliveries_return_after_the_deadline() {
    let broker = broker(Config::default());
    let mut spec = consume_spec("jobs", "w");
    spec.ack_deadline = Some(Duration::from_millis(500));
    let mut consumer = broker.consume(spec).await.unwrap();
    broker.publish(vec![new("jobs", "a")]).await.unwrap();
    let first = next(&mut consumer).await.unwrap();
    let started = tokio::time::Instant::now();
    let second = next(&mut consumer).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the deadline"
    );
    assert_eq!(
        (second.attempt, second.message.id()),
        (2, first.message.id())
    );
}

#[tokio::test(start_paused = true)]
async fn dead_letters_reach_the_dead_letter_topic() {
    let broker = broker(Config::default());
    let mut spec = group_spec("jobs", "w");
    spec.max_deliveries = Some(1);
    spec.dead_letter_topic = Some(topic("jobs-dead"));
    broker.declare_group(spec).await.unwrap();
    let mut dead = broker.subscribe(pattern("jobs-dead")).await.unwrap();
    let mut consumer = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    broker.publish(vec![new("jobs", "poison")]).await.unwrap();
    let delivery = next(&mut consumer).await.unwrap();
    let nack = Settlement {
        nack: vec![delivery.delivery_id],
        ..Settlement::default()
    };
    broker.settle(nack).await.unwrap();
    let SubscriptionEvent::Message(letter) = next(&mut dead).await.unwrap() else {
        panic!("expected the dead letter");
    };
    assert_eq!(letter.payload(), b"poison");
    assert_eq!(
        letter.id(),
        delivery.message.id(),
        "a dead letter keeps its id"
    );
    assert_eq!(letter.headers()["x-dead-letter-reason"], "max-deliveries");
    assert_eq!(letter.headers()["x-original-topic"], "jobs");
}

#[tokio::test(start_paused = true)]
async fn undeclared_groups_expire_when_idle_and_declared_ones_stay() {
    let config = Config {
        group_idle_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let broker = broker(config);
    broker.declare_group(group_spec("kept", "w")).await.unwrap();
    let consumer = broker.consume(consume_spec("temp", "w")).await.unwrap();
    drop(consumer);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(broker.list_groups().await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Let the housekeeping task run.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let groups = broker.list_groups().await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.pattern.as_str()).collect();
    assert_eq!(names, ["kept"]);
}

#[tokio::test]
async fn exclusive_groups_refuse_a_second_consumer_and_other_modes() {
    let broker = broker(Config::default());
    let mut spec = consume_spec("bids", "auction");
    spec.mode = ConsumeMode::Exclusive;
    let _active = broker.consume(spec.clone()).await.unwrap();
    let refused = broker.consume(spec.clone()).await.err();
    assert!(matches!(refused, Some(BrokerError::ExclusiveTaken { .. })));
    let shared = broker.consume(consume_spec("bids", "auction")).await.err();
    assert!(matches!(
        shared,
        Some(BrokerError::GroupConflict {
            setting: "mode",
            ..
        })
    ));
    spec.standby = true;
    assert!(broker.consume(spec).await.is_ok());
}

#[tokio::test]
async fn deleting_a_group_ends_its_consumers() {
    let broker = broker(Config::default());
    let mut consumer = broker.consume(consume_spec("jobs", "w")).await.unwrap();
    broker
        .delete_group(pattern("jobs"), group("w"))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut consumer).await,
        Err(BrokerError::GroupDeleted { .. })
    ));
    let missing = broker.delete_group(pattern("jobs"), group("w")).await;
    assert!(matches!(missing, Err(BrokerError::GroupNotFound { .. })));
}

#[tokio::test]
async fn requests_get_their_reply_and_late_replies_are_counted() {
    let broker = broker(Config::default());
    let responder = broker.clone();
    let mut requests = broker.subscribe(pattern("echo")).await.unwrap();
    let serve = tokio::spawn(async move {
        let SubscriptionEvent::Message(request) = next(&mut requests).await.unwrap() else {
            panic!("expected a request");
        };
        let mut reply = NewMessage::new(
            request.reply_to().cloned().unwrap(),
            request.payload_bytes(),
        );
        reply.correlation_id = request.correlation_id().to_owned();
        responder.publish(vec![reply.clone()]).await.unwrap();
        responder.publish(vec![reply]).await.unwrap();
    });
    let reply = broker
        .request(new("echo", "ping"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.payload(), b"ping");
    serve.await.unwrap();
    assert_eq!(
        broker.unmatched_replies(),
        1,
        "the second reply came too late"
    );
}

#[tokio::test]
async fn requests_without_responders_fail_at_once() {
    let broker = broker(Config::default());
    let error = broker
        .request(new("nobody", "x"), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::NoResponders { .. }));
}

#[tokio::test]
async fn shutdown_ends_streams_and_refuses_new_work() {
    let broker = broker(Config::default());
    let mut subscription = broker.subscribe(pattern("a")).await.unwrap();
    let mut consumer = broker.consume(consume_spec("b", "w")).await.unwrap();
    broker.shutdown();
    assert_eq!(
        next(&mut subscription).await,
        Err(BrokerError::ShuttingDown)
    );
    assert_eq!(
        next(&mut consumer).await.err(),
        Some(BrokerError::ShuttingDown)
    );
    assert!(broker.publish(vec![new("a", "x")]).await.is_err());
}
