//! The state machine of one queue group, as plain data: what waits, what is in flight with whom and
//! until when, and who may take the next message. Time is passed in, so every rule here is tested
//! without a clock, a runtime or a network; `group.rs` wraps it with a lock, wakeups and a timer.
//!
//! Ordering: new messages wait in publish order in `ready`. A message coming back (deadline passed,
//! nack, consumer gone) goes to `redeliver`, ordered by its original position, and is handed out before
//! anything in `ready`. So an exclusive consumer, and a standby taking over, see publish order.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{sync::Notify, time::Instant};

use crate::{
    broker::{ConsumeMode, ConsumerInfo, GroupCounters, GroupSpec},
    config::Config,
    journal::replay::Held,
    message::{Message, NewMessage},
    topic::{GroupName, Topic},
};

/// What a group was created with. Fixed for its lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    pub mode: ConsumeMode,
    /// Messages held at most: waiting, delayed and in flight together.
    pub max_length: u32,
    /// What the held messages may be charged together (`Message::footprint`), if limited.
    pub max_bytes: Option<u64>,
    pub ack_deadline: Duration,
    /// `None`: redeliver forever.
    pub max_deliveries: Option<u32>,
    pub dead_letter_topic: Option<Topic>,
}

impl GroupSettings {
    /// What a group declared with `spec` holds: its settings, or the broker's defaults.
    pub fn declared(spec: &GroupSpec, config: &Config) -> Self {
        Self {
            mode: spec.mode,
            max_length: spec.max_length.unwrap_or(config.default_max_length),
            max_bytes: spec.max_bytes,
            ack_deadline: spec.ack_deadline.unwrap_or(config.default_ack_deadline),
            max_deliveries: spec.max_deliveries,
            dead_letter_topic: spec.dead_letter_topic.clone(),
        }
    }

    /// What a group that a consumer's Consume creates holds: the broker's defaults.
    pub fn made_by_consume(mode: ConsumeMode, config: &Config) -> Self {
        Self {
            mode,
            max_length: config.default_max_length,
            max_bytes: None,
            ack_deadline: config.default_ack_deadline,
            max_deliveries: None,
            dead_letter_topic: None,
        }
    }

    /// The first setting that differs from `requested`, as (name, existing, requested): what a
    /// conflicting declaration is refused with.
    pub fn first_difference(
        &self,
        requested: &GroupSettings,
    ) -> Option<(&'static str, String, String)> {
        let show_topic = |topic: &Option<crate::topic::Topic>| {
            topic
                .as_ref()
                .map_or_else(|| "none".to_string(), ToString::to_string)
        };
        let show_max =
            |max: Option<u32>| max.map_or_else(|| "unlimited".to_string(), |m| m.to_string());
        let show_bytes =
            |max: Option<u64>| max.map_or_else(|| "unlimited".to_string(), |m| m.to_string());
        let pairs = [
            ("mode", self.mode.to_string(), requested.mode.to_string()),
            (
                "max_length",
                self.max_length.to_string(),
                requested.max_length.to_string(),
            ),
            (
                "max_bytes",
                show_bytes(self.max_bytes),
                show_bytes(requested.max_bytes),
            ),
            (
                "ack_deadline_ms",
                self.ack_deadline.as_millis().to_string(),
                requested.ack_deadline.as_millis().to_string(),
            ),
            (
                "max_deliveries",
                show_max(self.max_deliveries),
                show_max(requested.max_deliveries),
            ),
            (
                "dead_letter_topic",
                show_topic(&self.dead_letter_topic),
                show_topic(&requested.dead_letter_topic),
            ),
        ];
        pairs.into_iter().find(|(_, was, asked)| was != asked)
    }
}

pub type ConsumerId = u64;
/// Identifies one delivery within its group; a redelivery gets a new one.
pub type DeliverySeq = u64;

/// One consumer's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerTerms {
    pub prefetch: u32,
    pub ack_deadline: Duration,
    pub standby: bool,
}

/// Why a consumer could not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachRefusal {
    ExclusiveTaken,
}

/// A settlement named a delivery that is not outstanding: settled, expired, returned, or never made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOutstanding;

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Ack,
    Nack { delay: Duration },
    Reject,
    Extend,
}

/// Why a message left its group without being acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    Rejected,
    MaxDeliveries,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::MaxDeliveries => "max-deliveries",
        }
    }

    /// The dead letter of `original` from `group` after `attempts` deliveries: the message, to
    /// `topic`, with headers that say where it came from and why. Every backend sends the same.
    pub fn letter(
        self,
        original: &Message,
        topic: &Topic,
        group: &GroupName,
        attempts: u32,
    ) -> NewMessage {
        let mut headers = original.headers().clone();
        headers.insert("x-dead-letter-reason".into(), self.as_str().into());
        headers.insert("x-original-topic".into(), original.topic().to_string());
        headers.insert("x-dead-letter-group".into(), group.to_string());
        headers.insert("x-delivery-attempts".into(), attempts.to_string());
        NewMessage {
            topic: topic.clone(),
            payload: original.payload_bytes(),
            headers,
            key: original.key().to_owned(),
            reply_to: original.reply_to().cloned(),
            correlation_id: original.correlation_id().to_owned(),
        }
    }
}

/// A message to forward to the dead-letter topic (or discard, if the group has none). The group
/// still holds it as leaving until [`GroupState::forget`], so that the move is one step.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub position: u64,
    pub message: Message,
    pub reason: DeadLetterReason,
    pub attempts: u32,
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Handout {
    pub delivery: DeliverySeq,
    /// The message's place in publish order within the group.
    pub position: u64,
    pub message: Message,
    pub attempt: u32,
}

/// Counters kept for listing: the broker's [`GroupCounters`].
pub type GroupStats = GroupCounters;

/// When the oldest messages a group holds were published, for their ages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Oldest {
    /// The oldest waiting to be delivered (ready, to be redelivered, or delayed).
    pub ready: Option<SystemTime>,
    /// The oldest not yet acked: waiting or in flight (as Pub/Sub's `oldest_unacked_message_age`).
    pub unacked: Option<SystemTime>,
}

#[derive(Debug)]
struct Pending {
    /// Position in publish order within this group.
    seq: u64,
    message: Message,
    /// Deliveries made so far.
    attempts: u32,
}

#[derive(Debug)]
struct InFlight {
    pending: Pending,
    consumer: ConsumerId,
    deadline: Instant,
    ack_deadline: Duration,
}

#[derive(Debug)]
struct ConsumerSlot {
    id: ConsumerId,
    terms: ConsumerTerms,
    in_flight: u32,
    notify: Arc<Notify>,
}

/// What a settlement did, for the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The settled message's position.
    pub position: u64,
    /// Set when the message left the group (rejected, or nacked past `max_deliveries`).
    pub dead: Option<DeadLetter>,
}

#[derive(Debug)]
pub struct GroupState {
    settings: GroupSettings,
    next_seq: u64,
    /// Dead letters on their way out: held (and counted) until the move is recorded.
    leaving: HashMap<u64, Pending>,
    next_delivery: DeliverySeq,
    next_consumer: ConsumerId,
    ready: VecDeque<Pending>,
    redeliver: BTreeMap<u64, Pending>,
    /// Nacked with a delay: due time, then publish order.
    delayed: BTreeMap<(Instant, u64), Pending>,
    in_flight: HashMap<DeliverySeq, InFlight>,
    deadlines: BTreeSet<(Instant, DeliverySeq)>,
    /// In attach order. In exclusive mode the first is the active consumer and the rest stand by.
    consumers: Vec<ConsumerSlot>,
    /// Where the next wake-up round starts, so that single messages go round the consumers in turn
    /// instead of always to the first one with room.
    wake_cursor: usize,
    stats: GroupStats,
    /// Since when the group has had neither consumers nor messages.
    idle_since: Option<Instant>,
    /// The footprint of every message held, for `max_bytes`.
    bytes: u64,
}

impl GroupState {
    pub fn new(settings: GroupSettings, now: Instant) -> Self {
        Self {
            settings,
            next_seq: 0,
            leaving: HashMap::new(),
            next_delivery: 0,
            next_consumer: 0,
            ready: VecDeque::new(),
            redeliver: BTreeMap::new(),
            delayed: BTreeMap::new(),
            in_flight: HashMap::new(),
            deadlines: BTreeSet::new(),
            consumers: Vec::new(),
            wake_cursor: 0,
            stats: GroupStats::default(),
            idle_since: Some(now),
            bytes: 0,
        }
    }

    /// Numbers this state's deliveries from `first` on: a broker run's epoch goes in the high bits,
    /// so a delivery id from an earlier run never names a delivery of this one.
    pub fn numbering_deliveries_from(mut self, first: DeliverySeq) -> Self {
        self.next_delivery = first;
        self
    }

    /// The state a journal's replay describes, at `now` (and `wall_now` for nack delays). What was
    /// in flight comes back as a redelivery with its attempts counted; what has used up its
    /// deliveries leaves as a dead letter.
    pub fn restore(
        settings: GroupSettings,
        now: Instant,
        wall_now: SystemTime,
        next_position: u64,
        held: impl IntoIterator<Item = (u64, Held)>,
    ) -> (Self, Vec<DeadLetter>) {
        let mut state = Self::new(settings, now);
        state.next_seq = next_position;
        let mut dead = Vec::new();
        for (position, held) in held {
            state.bytes += held.message.footprint() as u64;
            let pending = Pending {
                seq: position,
                message: held.message,
                attempts: held.attempts,
            };
            if pending.attempts == 0 && held.until.is_none() {
                state.ready.push_back(pending);
                continue;
            }
            let delay = held
                .until
                .and_then(|until| until.duration_since(wall_now).ok())
                .unwrap_or_default();
            dead.extend(state.requeue(pending, now, delay));
        }
        state.refresh_idle(now);
        (state, dead)
    }

    /// Everything held, as a journal's replay would rebuild it: by position, with attempts, and the
    /// wall-clock time a delayed message is due (from `now` and `wall_now`).
    pub fn held(&self, now: Instant, wall_now: SystemTime) -> Vec<(u64, Held)> {
        let held = |pending: &Pending, until: Option<SystemTime>| {
            let restated = Held {
                message: pending.message.clone(),
                attempts: pending.attempts,
                until,
            };
            (pending.seq, restated)
        };
        let mut all: Vec<(u64, Held)> = self.ready.iter().map(|p| held(p, None)).collect();
        all.extend(self.redeliver.values().map(|p| held(p, None)));
        all.extend(self.delayed.iter().map(|((due, _), pending)| {
            held(pending, Some(wall_now + due.saturating_duration_since(now)))
        }));
        all.extend(
            self.in_flight
                .values()
                .map(|flight| held(&flight.pending, None)),
        );
        all.extend(self.leaving.values().map(|p| held(p, None)));
        all.sort_unstable_by_key(|(position, _)| *position);
        all
    }

    /// The position the next stored message takes.
    pub fn next_position(&self) -> u64 {
        self.next_seq
    }

    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    pub fn stats(&self) -> GroupStats {
        self.stats
    }

    /// The publish times of the oldest messages waiting and not acked. Positions follow publish
    /// order, so the oldest is the lowest position; in-flight and delayed messages are looked through
    /// (a scrape's cost, never a publish's).
    pub fn oldest(&self) -> Oldest {
        let ready = self
            .ready
            .front()
            .into_iter()
            .chain(self.redeliver.values().next())
            .chain(self.delayed.values())
            .min_by_key(|pending| pending.seq);
        let unacked = ready
            .into_iter()
            .chain(self.in_flight.values().map(|flight| &flight.pending))
            .min_by_key(|pending| pending.seq);
        Oldest {
            ready: ready.map(|pending| pending.message.published_at()),
            unacked: unacked.map(|pending| pending.message.published_at()),
        }
    }

    /// The consumers attached, in attach order.
    pub fn consumers_listed(&self) -> Vec<ConsumerInfo> {
        self.consumers
            .iter()
            .enumerate()
            .map(|(index, slot)| ConsumerInfo {
                id: slot.id,
                prefetch: slot.terms.prefetch,
                in_flight: slot.in_flight,
                ack_deadline: slot.terms.ack_deadline,
                active: self.settings.mode == ConsumeMode::Shared || index == 0,
            })
            .collect()
    }

    /// Messages held: waiting, delayed, in flight and leaving.
    pub fn len(&self) -> usize {
        self.waiting() + self.in_flight.len() + self.leaving.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages not in flight: ready, to be redelivered, or delayed.
    pub fn waiting(&self) -> usize {
        self.ready.len() + self.redeliver.len() + self.delayed.len()
    }

    /// The message of `delivery` while it is in flight.
    pub fn in_flight_message(&self, delivery: DeliverySeq) -> Option<&Message> {
        self.in_flight
            .get(&delivery)
            .map(|flight| &flight.pending.message)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn consumers(&self) -> usize {
        self.consumers.len()
    }

    /// Whether `extra` more messages fit under `max_length`.
    pub fn has_room_for(&self, extra: usize) -> bool {
        self.len().saturating_add(extra) <= self.settings.max_length as usize
    }

    /// Whether `extra` more bytes (of footprint) fit under `max_bytes`.
    pub fn has_bytes_for(&self, extra: u64) -> bool {
        self.settings
            .max_bytes
            .is_none_or(|max| self.bytes.saturating_add(extra) <= max)
    }

    /// The footprint of the messages held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Since when the group has been without consumers and messages, if it is.
    pub fn idle_since(&self) -> Option<Instant> {
        self.idle_since
    }

    /// Stores a message; returns its position.
    pub fn enqueue(&mut self, message: Message) -> u64 {
        self.bytes += message.footprint() as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ready.push_back(Pending {
            seq,
            message,
            attempts: 0,
        });
        self.idle_since = None;
        seq
    }

    /// Takes back a message whose record failed, if it is still waiting; `false` if it is not (the
    /// group was cleared meanwhile, or it was taken: its delivery then fails with the journal, which
    /// takes no more writes after a failure, so it is never handed over).
    pub fn withdraw(&mut self, position: u64, now: Instant) -> bool {
        let index = self.ready.partition_point(|pending| pending.seq < position);
        let pending = match self.ready.get(index) {
            Some(pending) if pending.seq == position => self.ready.remove(index),
            _ => self.redeliver.remove(&position),
        };
        let Some(pending) = pending else {
            return false;
        };
        self.bytes -= pending.message.footprint() as u64;
        self.refresh_idle(now);
        true
    }

    /// Lets go of a dead letter once its move is recorded; `false` if it was not leaving.
    pub fn forget(&mut self, position: u64, now: Instant) -> bool {
        let Some(pending) = self.leaving.remove(&position) else {
            return false;
        };
        self.bytes -= pending.message.footprint() as u64;
        self.refresh_idle(now);
        true
    }

    /// Adds a consumer, or refuses it when an exclusive group already has an active one and it does
    /// not ask to stand by.
    pub fn attach(
        &mut self,
        terms: ConsumerTerms,
        notify: Arc<Notify>,
    ) -> Result<ConsumerId, AttachRefusal> {
        let exclusive = self.settings.mode == ConsumeMode::Exclusive;
        if exclusive && !self.consumers.is_empty() && !terms.standby {
            return Err(AttachRefusal::ExclusiveTaken);
        }
        let id = self.next_consumer;
        self.next_consumer += 1;
        self.consumers.push(ConsumerSlot {
            id,
            terms,
            in_flight: 0,
            notify,
        });
        self.idle_since = None;
        Ok(id)
    }

    /// Removes a consumer and returns what it held to the group, ahead of newer messages. In an
    /// exclusive group the longest-waiting standby becomes active.
    pub fn detach(&mut self, consumer: ConsumerId, now: Instant) -> Vec<DeadLetter> {
        let Some(index) = self.consumers.iter().position(|slot| slot.id == consumer) else {
            return Vec::new();
        };
        self.consumers.remove(index);
        let held: Vec<DeliverySeq> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.consumer == consumer)
            .map(|(delivery, _)| *delivery)
            .collect();
        let mut dead = Vec::new();
        for delivery in held {
            if let Some(flight) = self.remove_in_flight(delivery) {
                dead.extend(self.requeue(flight.pending, now, Duration::ZERO));
            }
        }
        self.refresh_idle(now);
        dead
    }

    /// Hands the next message to `consumer` if it may take one: it is active, under its prefetch, and
    /// something is ready. Redeliveries come first, in publish order.
    pub fn take(&mut self, consumer: ConsumerId, now: Instant) -> Option<Handout> {
        let index = self.consumers.iter().position(|slot| slot.id == consumer)?;
        if !self.may_take(index) {
            return None;
        }
        let mut pending = match self.redeliver.pop_first() {
            Some((_, pending)) => pending,
            None => self.ready.pop_front()?,
        };
        pending.attempts += 1;
        self.stats.delivered += 1;
        if pending.attempts > 1 {
            self.stats.redelivered += 1;
        }
        let slot = &mut self.consumers[index];
        slot.in_flight += 1;
        let ack_deadline = slot.terms.ack_deadline;
        let delivery = self.next_delivery;
        self.next_delivery += 1;
        let deadline = now + ack_deadline;
        self.deadlines.insert((deadline, delivery));
        let handout = Handout {
            delivery,
            position: pending.seq,
            message: pending.message.clone(),
            attempt: pending.attempts,
        };
        self.in_flight.insert(
            delivery,
            InFlight {
                pending,
                consumer,
                deadline,
                ack_deadline,
            },
        );
        Some(handout)
    }

    fn may_take(&self, index: usize) -> bool {
        let slot = &self.consumers[index];
        let active = self.settings.mode == ConsumeMode::Shared || index == 0;
        active && slot.in_flight < slot.terms.prefetch
    }

    /// Settles one delivery; nothing changes when it is not outstanding.
    pub fn settle(
        &mut self,
        delivery: DeliverySeq,
        action: Settle,
        now: Instant,
    ) -> Result<Settled, NotOutstanding> {
        if let Settle::Extend = action {
            let flight = self.in_flight.get_mut(&delivery).ok_or(NotOutstanding)?;
            self.deadlines.remove(&(flight.deadline, delivery));
            flight.deadline = now + flight.ack_deadline;
            self.deadlines.insert((flight.deadline, delivery));
            return Ok(Settled {
                position: flight.pending.seq,
                dead: None,
            });
        }
        let flight = self.remove_in_flight(delivery).ok_or(NotOutstanding)?;
        let position = flight.pending.seq;
        let dead = match action {
            Settle::Ack => {
                self.stats.acked += 1;
                self.bytes -= flight.pending.message.footprint() as u64;
                None
            }
            Settle::Nack { delay } => {
                self.stats.nacked += 1;
                self.requeue(flight.pending, now, delay)
            }
            Settle::Reject => Some(self.dead_letter(flight.pending, DeadLetterReason::Rejected)),
            Settle::Extend => unreachable!("handled above"),
        };
        self.refresh_idle(now);
        Ok(Settled { position, dead })
    }

    /// Returns to the group every delivery whose deadline has passed and releases delayed messages
    /// that are due.
    pub fn expire(&mut self, now: Instant) -> Vec<DeadLetter> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let pending = entry.remove();
            self.redeliver.insert(pending.seq, pending);
        }
        let mut dead = Vec::new();
        while let Some(&(deadline, delivery)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(flight) = self.remove_in_flight(delivery) {
                dead.extend(self.requeue(flight.pending, now, Duration::ZERO));
            }
        }
        self.refresh_idle(now);
        dead
    }

    /// The next time [`GroupState::expire`] has work: a deadline or a delayed message coming due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        let due = self.delayed.first_key_value().map(|((at, _), _)| *at);
        deadline.into_iter().chain(due).min()
    }

    /// The consumers worth waking: active, with room, no more of them than there are messages to take,
    /// starting where the last round stopped.
    pub fn consumers_to_wake(&mut self) -> Vec<Arc<Notify>> {
        let available = self.ready.len() + self.redeliver.len();
        let count = self.consumers.len();
        if available == 0 || count == 0 {
            return Vec::new();
        }
        let start = self.wake_cursor % count;
        let chosen: Vec<usize> = (start..count)
            .chain(0..start)
            .filter(|&index| self.may_take(index))
            .take(available)
            .collect();
        if let Some(last) = chosen.last() {
            self.wake_cursor = last + 1;
        }
        chosen
            .into_iter()
            .map(|index| Arc::clone(&self.consumers[index].notify))
            .collect()
    }

    /// Empties the group, for deletion. Returns how many messages were dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.len();
        self.ready.clear();
        self.redeliver.clear();
        self.delayed.clear();
        self.in_flight.clear();
        self.deadlines.clear();
        self.leaving.clear();
        dropped
    }

    fn remove_in_flight(&mut self, delivery: DeliverySeq) -> Option<InFlight> {
        let flight = self.in_flight.remove(&delivery)?;
        self.deadlines.remove(&(flight.deadline, delivery));
        if let Some(slot) = self.consumers.iter_mut().find(|s| s.id == flight.consumer) {
            slot.in_flight -= 1;
        }
        Some(flight)
    }

    /// Puts a message back for another try, unless it has used up its deliveries.
    fn requeue(&mut self, pending: Pending, now: Instant, delay: Duration) -> Option<DeadLetter> {
        if self
            .settings
            .max_deliveries
            .is_some_and(|max| pending.attempts >= max)
        {
            return Some(self.dead_letter(pending, DeadLetterReason::MaxDeliveries));
        }
        if delay.is_zero() {
            self.redeliver.insert(pending.seq, pending);
        } else {
            self.delayed.insert((now + delay, pending.seq), pending);
        }
        None
    }

    fn dead_letter(&mut self, pending: Pending, reason: DeadLetterReason) -> DeadLetter {
        match reason {
            DeadLetterReason::Rejected => self.stats.rejected += 1,
            DeadLetterReason::MaxDeliveries => self.stats.exhausted += 1,
        }
        let letter = DeadLetter {
            position: pending.seq,
            message: pending.message.clone(),
            reason,
            attempts: pending.attempts,
        };
        self.leaving.insert(pending.seq, pending);
        letter
    }

    fn refresh_idle(&mut self, now: Instant) {
        let idle = self.consumers.is_empty() && self.is_empty();
        self.idle_since = match (idle, self.idle_since) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(now),
            (false, _) => None,
        };
    }
}

#[cfg(test)]
#[path = "group_state_tests.rs"]
mod tests;
