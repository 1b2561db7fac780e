//! The broker with a journal, without files: what it records replays to what it holds (also after a
//! restatement), and a record the journal refuses is never acknowledged.

use std::{
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use futures_util::StreamExt;
use parking_lot::Mutex;

use super::*;
use crate::{
    broker::ConsumeMode,
    journal::{Answer, Event},
    storage::Usage,
};

/// Keeps every event in memory; refuses them all once told to.
#[derive(Debug, Default)]
struct RecordingJournal {
    events: Mutex<Vec<Event>>,
    refusing: AtomicBool,
}

impl Journal for RecordingJournal {
    fn record(&self, event: Event) -> Receipt {
        if self.refusing.load(Ordering::Relaxed) {
            return Receipt::refused(BrokerError::StorageFailed {
                reason: "injected".into(),
            });
        }
        self.events.lock().push(event);
        Receipt::done()
    }

    fn failed(&self) -> Pin<Box<dyn Future<Output = String> + Send>> {
        Box::pin(std::future::pending())
    }

    fn usage(&self) -> Usage {
        Usage::default()
    }

    fn rotate(&self) -> Answer<u64> {
        let mark = self.events.lock().len() as u64;
        Box::pin(async move { Ok(mark) })
    }

    fn remove_before(&self, _mark: u64) -> Answer<()> {
        Box::pin(async { Ok(()) })
    }
}

impl RecordingJournal {
    /// What the events from `from` on replay to.
    fn replay_from(&self, from: usize) -> Recovered {
        let mut recovered = Recovered::default();
        for event in self.events.lock()[from..].iter().cloned() {
            recovered.apply(event);
        }
        recovered
    }
}

fn durable(journal: &Arc<RecordingJournal>, recovered: Recovered) -> MemoryBroker {
    let config = Config::default();
    let budget = Arc::new(MemoryBudget::new(config.max_memory_bytes));
    MemoryBroker::with_journal(config, budget, Arc::clone(journal) as _, recovered)
}

fn limits() -> crate::topic::TopicLimits {
    Config::default().topic_limits()
}

fn spec() -> GroupSpec {
    GroupSpec {
        pattern: Pattern::parse("jobs.>", limits()).unwrap(),
        group: GroupName::parse("workers", 64).unwrap(),
        mode: ConsumeMode::Shared,
        max_length: None,
        max_bytes: None,
        ack_deadline: None,
        max_deliveries: Some(5),
        dead_letter_topic: None,
    }
}

fn consumer(prefetch: u32) -> ConsumeSpec {
    let spec = spec();
    ConsumeSpec {
        pattern: spec.pattern,
        group: spec.group,
        mode: ConsumeMode::Shared,
        prefetch: Some(prefetch),
        ack_deadline: Some(Duration::from_secs(60)),
        standby: false,
    }
}

fn batch(count: usize) -> Vec<NewMessage> {
    let topic = Topic::parse("jobs.a", limits()).unwrap();
    (0..count)
        .map(|n| NewMessage::new(topic.clone(), n.to_string()))
        .collect()
}

async fn next_delivery(stream: &mut EventStream<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a delivery within 5 s")
        .expect("the stream goes on")
        .expect("a delivery, not an error")
}

/// Acks `ids`; returns those the broker did not know.
async fn ack(broker: &MemoryBroker, ids: &[&str]) -> Result<Vec<String>, BrokerError> {
    broker
        .settle(Settlement {
            ack: ids.iter().map(|id| (*id).to_owned()).collect(),
            ..Settlement::default()
        })
        .await
}

/// (payload, attempts) of what a replay says the group holds.
fn held(recovered: &Recovered) -> Vec<(String, u32)> {
    let group = recovered.groups.values().next().expect("one group");
    group
        .messages
        .values()
        .map(|held| {
            let payload = String::from_utf8_lossy(held.message.payload()).into_owned();
            (payload, held.attempts)
        })
        .collect()
}

#[tokio::test]
async fn what_is_recorded_replays_to_what_is_held_and_a_restart_raises_the_attempt() {
    let journal = Arc::new(RecordingJournal::default());
    let broker = durable(&journal, Recovered::default());
    broker.declare_group(spec()).await.unwrap();
    broker.publish(batch(5)).await.unwrap();
    let mut stream = broker.consume(consumer(2)).await.unwrap();
    let first = next_delivery(&mut stream).await;
    let second = next_delivery(&mut stream).await;
    let unknown = ack(&broker, &[&first.delivery_id]).await.unwrap();
    assert!(unknown.is_empty());
    // The ack made room: a third delivery goes out before the "crash".
    let third = next_delivery(&mut stream).await;
    let recovered = journal.replay_from(0);
    assert_eq!(
        held(&recovered),
        [
            ("1".to_owned(), 1),
            ("2".to_owned(), 1),
            ("3".to_owned(), 0),
            ("4".to_owned(), 0)
        ]
    );
    broker.shutdown();
    drop(stream);

    // As `durable::open` does: the new run takes the next epoch.
    let mut recovered = recovered;
    recovered.epoch += 1;
    let restarted = durable(&Arc::new(RecordingJournal::default()), recovered);
    let groups = restarted.list_groups().await.unwrap();
    assert_eq!((groups.len(), groups[0].ready), (1, 4));
    let mut stream = restarted.consume(consumer(10)).await.unwrap();
    let again: Vec<(Vec<u8>, u32)> = [
        next_delivery(&mut stream).await,
        next_delivery(&mut stream).await,
        next_delivery(&mut stream).await,
    ]
    .into_iter()
    .map(|delivery| (delivery.message.payload().to_vec(), delivery.attempt))
    .collect();
    assert_eq!(
        again,
        [(b"1".to_vec(), 2), (b"2".to_vec(), 2), (b"3".to_vec(), 1)]
    );
    for old in [&second, &third] {
        assert_eq!(
            ack(&restarted, &[&old.delivery_id]).await.unwrap(),
            std::slice::from_ref(&old.delivery_id),
            "a delivery id of the run before settles nothing"
        );
    }
}

#[tokio::test]
async fn a_restatement_alone_replays_to_what_is_held() {
    let journal = Arc::new(RecordingJournal::default());
    let broker = durable(&journal, Recovered::default());
    broker.declare_group(spec()).await.unwrap();
    broker.publish(batch(6)).await.unwrap();
    let mut stream = broker.consume(consumer(2)).await.unwrap();
    let first = next_delivery(&mut stream).await;
    let second = next_delivery(&mut stream).await;
    broker
        .settle(Settlement {
            ack: vec![first.delivery_id],
            nack: vec![second.delivery_id],
            nack_delay: Duration::from_secs(30),
            ..Settlement::default()
        })
        .await
        .unwrap();
    let before = journal.events.lock().len();
    broker.shared.reclaim().await.unwrap();
    let whole = journal.replay_from(0);
    let restated = journal.replay_from(before);
    assert_eq!(held(&restated), held(&whole));
    assert_eq!(restated.reclaimed_before, before as u64);
    let delayed = &restated.groups.values().next().unwrap().messages;
    assert!(
        delayed.values().any(|held| held.until.is_some()),
        "the nack delay is restated"
    );
}

/// A message equal to `message` in another allocation.
fn apart(message: &Message) -> Message {
    let mut new = NewMessage::new(message.topic().clone(), message.payload().to_vec());
    new.headers = message.headers().clone();
    let copy = Message::stamp_as(new, message.id(), message.published_at(), None);
    assert!(copy == *message && !copy.ptr_eq(message));
    copy
}

#[tokio::test]
async fn a_message_two_groups_hold_is_restated_for_each_and_replayed_once() {
    let journal = Arc::new(RecordingJournal::default());
    let broker = durable(&journal, Recovered::default());
    broker.declare_group(spec()).await.unwrap();
    broker
        .declare_group(GroupSpec {
            group: GroupName::parse("auditors", 64).unwrap(),
            ..spec()
        })
        .await
        .unwrap();
    broker.publish(batch(1)).await.unwrap();
    let before = journal.events.lock().len();
    broker.shared.reclaim().await.unwrap();
    // As read back from disk: every restated copy its own message.
    let mut restated = Recovered::default();
    for event in journal.events.lock()[before..].iter().cloned() {
        restated.apply(match event {
            Event::Restated { group, held } => Event::Restated {
                group,
                held: held
                    .into_iter()
                    .map(|(position, mut held)| {
                        held.message = apart(&held.message);
                        (position, held)
                    })
                    .collect(),
            },
            other => other,
        });
    }
    let copies: Vec<&Message> = restated
        .groups
        .values()
        .flat_map(|group| group.messages.values().map(|held| &held.message))
        .collect();
    assert_eq!(copies.len(), 2);
    assert!(
        copies[0].ptr_eq(copies[1]),
        "one message, held by both groups"
    );
}

#[tokio::test]
async fn a_refused_record_is_never_acknowledged_and_leaves_nothing_behind() {
    let journal = Arc::new(RecordingJournal::default());
    let broker = durable(&journal, Recovered::default());
    broker.declare_group(spec()).await.unwrap();
    broker.publish(batch(1)).await.unwrap();
    let mut stream = broker.consume(consumer(5)).await.unwrap();
    let delivery = next_delivery(&mut stream).await;
    journal.refusing.store(true, Ordering::Relaxed);

    let refused = broker.publish(batch(3)).await;
    assert!(
        matches!(refused, Err(BrokerError::StorageFailed { .. })),
        "{refused:?}"
    );
    let groups = broker.list_groups().await.unwrap();
    assert_eq!(
        (groups[0].ready, groups[0].in_flight),
        (0, 1),
        "the refused batch was withdrawn"
    );
    let ack = ack(&broker, &[&delivery.delivery_id]).await;
    assert!(
        matches!(ack, Err(BrokerError::StorageFailed { .. })),
        "{ack:?}"
    );
    assert!(
        matches!(
            broker
                .declare_group(GroupSpec {
                    group: GroupName::parse("other", 64).unwrap(),
                    ..spec()
                })
                .await,
            Err(BrokerError::StorageFailed { .. })
        ),
        "a group whose record was refused is not declared"
    );
}
