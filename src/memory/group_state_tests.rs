//! The queue group rules, checked on the bare state machine with a hand-driven clock.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::{
    message::NewMessage,
    topic::{Topic, TopicLimits},
};

const SECOND: Duration = Duration::from_secs(1);

fn settings(mode: ConsumeMode, max_deliveries: Option<u32>) -> GroupSettings {
    GroupSettings {
        mode,
        max_length: 1000,
        max_bytes: None,
        ack_deadline: SECOND,
        max_deliveries,
        dead_letter_topic: None,
    }
}

fn message(n: u32) -> Message {
    let limits = TopicLimits {
        max_bytes: 64,
        max_tokens: 4,
    };
    let topic = Topic::parse("jobs", limits).unwrap();
    Message::stamp(NewMessage::new(
        topic,
        Bytes::from(n.to_be_bytes().to_vec()),
    ))
}

fn number(message: &Message) -> u32 {
    u32::from_be_bytes(message.payload()[..4].try_into().unwrap())
}

fn terms(prefetch: u32, standby: bool) -> ConsumerTerms {
    ConsumerTerms {
        prefetch,
        ack_deadline: SECOND,
        standby,
    }
}

fn attach(state: &mut GroupState, prefetch: u32) -> ConsumerId {
    state
        .attach(terms(prefetch, false), Arc::default())
        .unwrap()
}

#[test]
fn prefetch_bounds_what_a_consumer_holds() {
    let now = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), now);
    (0..5).for_each(|n| {
        state.enqueue(message(n));
    });
    let consumer = attach(&mut state, 2);
    let first = state.take(consumer, now).unwrap();
    assert!(state.take(consumer, now).is_some());
    assert!(state.take(consumer, now).is_none(), "prefetch 2 reached");
    state.settle(first.delivery, Settle::Ack, now).unwrap();
    assert!(state.take(consumer, now).is_some(), "an ack frees a slot");
    assert_eq!(state.stats().acked, 1);
}

#[test]
fn expired_deliveries_come_back_first_with_a_new_delivery_id() {
    let start = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), start);
    (0..3).for_each(|n| {
        state.enqueue(message(n));
    });
    let consumer = attach(&mut state, 1);
    let first = state.take(consumer, start).unwrap();
    assert!(state.expire(start + SECOND / 2).is_empty());
    assert!(state.take(consumer, start).is_none(), "not early");
    state.expire(start + SECOND);
    let again = state.take(consumer, start + SECOND).unwrap();
    assert_eq!(number(&again.message), number(&first.message));
    assert_eq!(again.attempt, 2);
    assert_ne!(again.delivery, first.delivery);
    assert_eq!(
        state.settle(first.delivery, Settle::Ack, start + SECOND),
        Err(NotOutstanding),
        "stale id"
    );
    assert_eq!(state.stats().redelivered, 1);
}

#[test]
fn a_detached_consumer_returns_its_messages_in_order() {
    let now = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), now);
    (0..4).for_each(|n| {
        state.enqueue(message(n));
    });
    let leaving = attach(&mut state, 3);
    let taken: Vec<u32> = (0..3)
        .map(|_| number(&state.take(leaving, now).unwrap().message))
        .collect();
    assert_eq!(taken, [0, 1, 2]);
    let staying = attach(&mut state, 10);
    assert_eq!(number(&state.take(staying, now).unwrap().message), 3);
    state.detach(leaving, now);
    let redelivered: Vec<u32> = std::iter::from_fn(|| state.take(staying, now))
        .map(|handout| number(&handout.message))
        .collect();
    assert_eq!(redelivered, [0, 1, 2]);
}

#[test]
fn nack_delay_holds_a_message_back() {
    let start = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), start);
    state.enqueue(message(7));
    let consumer = attach(&mut state, 1);
    let handout = state.take(consumer, start).unwrap();
    let delay = Duration::from_millis(300);
    state
        .settle(handout.delivery, Settle::Nack { delay }, start)
        .unwrap();
    assert_eq!(state.next_deadline(), Some(start + delay));
    state.expire(start + delay / 2);
    assert!(state.take(consumer, start + delay / 2).is_none());
    state.expire(start + delay);
    assert_eq!(state.take(consumer, start + delay).unwrap().attempt, 2);
}

#[test]
fn extend_restarts_the_deadline() {
    let start = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), start);
    state.enqueue(message(1));
    let consumer = attach(&mut state, 1);
    let handout = state.take(consumer, start).unwrap();
    let later = start + SECOND / 2;
    state
        .settle(handout.delivery, Settle::Extend, later)
        .unwrap();
    state.expire(start + SECOND);
    assert_eq!(state.in_flight(), 1, "still within the extended deadline");
    state.expire(later + SECOND);
    assert_eq!(state.in_flight(), 0);
}

#[test]
fn max_deliveries_and_reject_dead_letter() {
    let start = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, Some(2)), start);
    state.enqueue(message(1));
    state.enqueue(message(2));
    let consumer = attach(&mut state, 1);
    let first = state.take(consumer, start).unwrap();
    state
        .settle(
            first.delivery,
            Settle::Nack {
                delay: Duration::ZERO,
            },
            start,
        )
        .unwrap();
    let second = state.take(consumer, start).unwrap();
    let dead = state
        .settle(
            second.delivery,
            Settle::Nack {
                delay: Duration::ZERO,
            },
            start,
        )
        .unwrap()
        .dead
        .expect("second failure of two allowed");
    assert!(state.forget(dead.position, start));
    assert_eq!(
        (dead.reason, dead.attempts),
        (DeadLetterReason::MaxDeliveries, 2)
    );
    let other = state.take(consumer, start).unwrap();
    let rejected = state
        .settle(other.delivery, Settle::Reject, start)
        .unwrap()
        .dead
        .unwrap();
    assert_eq!(rejected.reason, DeadLetterReason::Rejected);
    assert!(
        !state.is_empty(),
        "a dead letter is held until its move is recorded"
    );
    assert!(state.forget(rejected.position, start));
    assert!(state.is_empty());
    assert_eq!(state.stats().dead_lettered(), 2);
}

#[test]
fn exclusive_has_one_active_consumer_and_standbys_take_over_in_order() {
    let now = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Exclusive, None), now);
    (0..4).for_each(|n| {
        state.enqueue(message(n));
    });
    let active = attach(&mut state, 2);
    assert_eq!(
        state.attach(terms(2, false), Arc::default()),
        Err(AttachRefusal::ExclusiveTaken)
    );
    let standby = state.attach(terms(10, true), Arc::default()).unwrap();
    assert!(state.take(standby, now).is_none(), "a standby gets nothing");
    assert_eq!(number(&state.take(active, now).unwrap().message), 0);
    assert_eq!(number(&state.take(active, now).unwrap().message), 1);
    state.detach(active, now);
    let order: Vec<u32> = std::iter::from_fn(|| state.take(standby, now))
        .map(|handout| number(&handout.message))
        .collect();
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn wake_ups_go_round_the_consumers() {
    let now = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), now);
    let notifies: Vec<Arc<Notify>> = (0..3).map(|_| Arc::default()).collect();
    for notify in &notifies {
        state.attach(terms(10, false), Arc::clone(notify)).unwrap();
    }
    let mut woken = Vec::new();
    for n in 0..4 {
        state.enqueue(message(n));
        let wake = state.consumers_to_wake();
        assert_eq!(wake.len(), 1, "one message wakes one consumer");
        woken.push(
            notifies
                .iter()
                .position(|n| Arc::ptr_eq(n, &wake[0]))
                .unwrap(),
        );
        let consumer = woken[woken.len() - 1] as ConsumerId;
        state.take(consumer, now).unwrap();
    }
    assert_eq!(woken, [0, 1, 2, 0]);
}

#[test]
fn capacity_counts_everything_held() {
    let now = Instant::now();
    let mut settings = settings(ConsumeMode::Shared, None);
    settings.max_length = 2;
    let mut state = GroupState::new(settings, now);
    state.enqueue(message(1));
    let consumer = attach(&mut state, 1);
    state.take(consumer, now).unwrap();
    assert!(state.has_room_for(1));
    assert!(
        !state.has_room_for(2),
        "one in flight and one more make two"
    );
}

#[test]
fn idleness_needs_no_consumers_and_no_messages() {
    let start = Instant::now();
    let mut state = GroupState::new(settings(ConsumeMode::Shared, None), start);
    assert_eq!(state.idle_since(), Some(start));
    let consumer = attach(&mut state, 1);
    assert_eq!(state.idle_since(), None);
    state.enqueue(message(1));
    let later = start + SECOND;
    state.detach(consumer, later);
    assert_eq!(state.idle_since(), None, "a message still waits");
    let again = attach(&mut state, 1);
    let handout = state.take(again, later).unwrap();
    state.settle(handout.delivery, Settle::Ack, later).unwrap();
    state.detach(again, later);
    assert_eq!(state.idle_since(), Some(later));
}

/// One step of a random run against a group.
#[derive(Debug, Clone)]
enum Step {
    Publish,
    Attach,
    Detach(usize),
    Take(usize),
    Ack(usize),
    Nack(usize, bool),
    Reject(usize),
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Publish),
        1 => Just(Step::Attach),
        1 => any::<usize>().prop_map(Step::Detach),
        4 => any::<usize>().prop_map(Step::Take),
        3 => any::<usize>().prop_map(Step::Ack),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, delayed)| Step::Nack(i, delayed)),
        1 => any::<usize>().prop_map(Step::Reject),
        1 => (0u64..1500).prop_map(Step::Advance),
    ]
}

fn pick<T: Copy>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()])
}

/// The footprint of every message the state holds, counted afresh.
fn held_bytes(state: &GroupState) -> u64 {
    let footprint = |pending: &Pending| pending.message.footprint() as u64;
    state.ready.iter().map(footprint).sum::<u64>()
        + state.redeliver.values().map(footprint).sum::<u64>()
        + state.delayed.values().map(footprint).sum::<u64>()
        + state
            .in_flight
            .values()
            .map(|flight| footprint(&flight.pending))
            .sum::<u64>()
        + state.leaving.values().map(footprint).sum::<u64>()
}

proptest! {
    /// Random interleavings of publish, take, ack, nack, reject, expiry and disconnects never lose or
    /// invent a message: at every step each published message is held exactly once or settled exactly
    /// once, and draining at the end settles all of them.
    #[test]
    fn no_message_is_lost_or_invented(
        steps in prop::collection::vec(step(), 1..120),
        mode in prop_oneof![Just(ConsumeMode::Shared), Just(ConsumeMode::Exclusive)],
        max_deliveries in prop_oneof![Just(None), (1u32..4).prop_map(Some)],
    ) {
        let mut now = Instant::now();
        let mut state = GroupState::new(settings(mode, max_deliveries), now);
        let mut published = 0u32;
        let mut consumers: Vec<ConsumerId> = Vec::new();
        // Outstanding deliveries: delivery -> (message number, consumer).
        let mut outstanding: HashMap<DeliverySeq, (u32, ConsumerId)> = HashMap::new();
        let mut acked: BTreeSet<u32> = BTreeSet::new();
        let mut dead: BTreeSet<u32> = BTreeSet::new();
        let record_dead = |state: &mut GroupState, letters: Vec<DeadLetter>, dead: &mut BTreeSet<u32>| {
            for letter in letters {
                assert!(state.forget(letter.position, Instant::now()), "a dead letter is leaving");
                assert!(dead.insert(number(&letter.message)), "dead-lettered twice");
            }
        };
        for step in steps {
            match step {
                Step::Publish => {
                    state.enqueue(message(published));
                    published += 1;
                }
                Step::Attach => {
                    if let Ok(id) = state.attach(terms(3, true), Arc::default()) {
                        consumers.push(id);
                    }
                }
                Step::Detach(i) => if let Some(id) = pick(&consumers, i) {
                    consumers.retain(|c| *c != id);
                    outstanding.retain(|_, (_, owner)| *owner != id);
                    { let letters = state.detach(id, now); record_dead(&mut state, letters, &mut dead); };
                },
                Step::Take(i) => if let Some(id) = pick(&consumers, i)
                    && let Some(handout) = state.take(id, now) {
                    outstanding.insert(handout.delivery, (number(&handout.message), id));
                },
                Step::Ack(i) | Step::Nack(i, _) | Step::Reject(i) => {
                    let ids: Vec<DeliverySeq> = outstanding.keys().copied().collect();
                    let Some(delivery) = pick(&ids, i) else { continue };
                    let action = match step {
                        Step::Ack(_) => Settle::Ack,
                        Step::Nack(_, delayed) => Settle::Nack {
                            delay: if delayed { SECOND / 2 } else { Duration::ZERO },
                        },
                        _ => Settle::Reject,
                    };
                    let (n, _) = outstanding.remove(&delivery).unwrap();
                    let letter = state.settle(delivery, action, now).expect("outstanding delivery settles");
                    if action == Settle::Ack {
                        assert!(acked.insert(n), "acked twice");
                    }
                    record_dead(&mut state, letter.dead.into_iter().collect(), &mut dead);
                }
                Step::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    { let letters = state.expire(now); record_dead(&mut state, letters, &mut dead); };
                    // Whatever expired is no longer outstanding; its old id must not settle.
                    let expired: Vec<DeliverySeq> = outstanding.keys().copied()
                        .filter(|d| !state.in_flight.contains_key(d)).collect();
                    for delivery in expired {
                        outstanding.remove(&delivery);
                        prop_assert_eq!(state.settle(delivery, Settle::Ack, now), Err(NotOutstanding));
                    }
                }
            }
            prop_assert!(acked.is_disjoint(&dead));
            prop_assert_eq!(state.len() + acked.len() + dead.len(), published as usize);
            prop_assert_eq!(state.bytes(), held_bytes(&state), "max_bytes accounting");
            for (id, &(n, owner)) in &outstanding {
                prop_assert_eq!(state.in_flight[id].consumer, owner);
                prop_assert_eq!(number(&state.in_flight[id].pending.message), n);
            }
        }
        // Drain: one fresh consumer after everyone left takes and acks everything that is left.
        for id in consumers.drain(..) {
            { let letters = state.detach(id, now); record_dead(&mut state, letters, &mut dead); };
        }
        let drainer = attach(&mut state, u32::MAX);
        for _ in 0..10 {
            now += SECOND;
            { let letters = state.expire(now); record_dead(&mut state, letters, &mut dead); };
            while let Some(handout) = state.take(drainer, now) {
                prop_assert!(acked.insert(number(&handout.message)), "delivered after ack");
                state.settle(handout.delivery, Settle::Ack, now).unwrap();
            }
        }
        prop_assert!(state.is_empty());
        prop_assert_eq!(state.bytes(), 0);
        let settled: BTreeSet<u32> = acked.union(&dead).copied().collect();
        prop_assert_eq!(settled, (0..published).collect::<BTreeSet<u32>>());
    }
}
