//! A live queue group: its state machine behind a lock, the consumers' streams, and the timer that
//! returns expired deliveries. Dead letters and idleness are reported to the broker's housekeeping task
//! over a channel, so a group never needs a handle to the broker that owns it.
//!
//! With a journal, every change is recorded under the group's lock, so the journal's order is the
//! group's; a delivery is handed to its consumer only once its record is durable, and a settlement
//! is acknowledged only once its record is.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use parking_lot::{Mutex, MutexGuard};
use tokio::{
    sync::{Notify, mpsc},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::group_state::{
    AttachRefusal, ConsumerId, ConsumerTerms, DeadLetter, GroupSettings, GroupState,
    NotOutstanding, Settle,
};
use crate::{
    broker::{ConsumerInfo, Delivery, EventStream, GroupCounters, GroupInfo},
    error::BrokerError,
    journal::{self, Event, Journal, Receipt},
    message::{Message, MessageId, NewMessage},
    topic::{GroupName, Pattern},
};

/// Broker-wide number of a group instance. Delivery ids carry it, so an Ack finds its group without a
/// search, and ids of a deleted group never settle anything in a new one of the same name.
pub use crate::journal::GroupId;

/// What groups tell the broker's housekeeping task.
#[derive(Debug)]
pub enum Housekeeping {
    /// Forward this dead letter (it expired or its consumer left).
    DeadLetter(Forward),
    /// The group has been idle for its idle timeout; remove it if it still is.
    Idle(GroupId),
}

/// A dead letter to route to its group's dead-letter topic, past any `max_length`: it was accepted
/// once and must not be lost now. It keeps the id of the message it was made from, and its source
/// group holds it as leaving until the routing records the move.
#[derive(Debug)]
pub struct Forward {
    pub source: GroupId,
    pub position: u64,
    pub letter: NewMessage,
    pub id: MessageId,
}

/// What settling some deliveries of a group did.
#[derive(Debug)]
pub struct SettleOutcome {
    /// Indices of the deliveries that were not outstanding.
    pub unknown: Vec<usize>,
    /// The last record's receipt: the journal writes in order, so it stands for all.
    pub receipt: Receipt,
    pub forwards: Vec<Forward>,
}

impl SettleOutcome {
    fn later(&mut self, receipt: Receipt) {
        if !receipt.is_done() {
            self.receipt = receipt;
        }
    }
}

/// What every group of a broker shares.
#[derive(Debug, Clone)]
pub struct GroupContext {
    pub idle_timeout: Duration,
    pub housekeeping: mpsc::UnboundedSender<Housekeeping>,
    pub journal: Option<Arc<dyn Journal>>,
    /// Where this run numbers deliveries from (its epoch in the high bits).
    pub first_delivery: u64,
}

#[derive(Debug)]
pub struct QueueGroup {
    pub id: GroupId,
    pub pattern: Pattern,
    pub name: GroupName,
    /// Declared groups stay until deleted; groups made by Consume alone expire when idle.
    declared: AtomicBool,
    /// A `parking_lot` mutex, held for a few map operations and never across `.await`.
    locked: Mutex<Locked>,
    /// Wakes the timer when a deadline earlier than the one it sleeps for appears.
    timer: Arc<Notify>,
    /// Cancelled when the group is deleted or dropped: ends its consumers' streams and its timer.
    closed: CancellationToken,
    housekeeping: mpsc::UnboundedSender<Housekeeping>,
    idle_timeout: Duration,
    journal: Option<Arc<dyn Journal>>,
}

/// The state under the group's lock.
#[derive(Debug)]
pub struct Locked {
    state: GroupState,
    /// When the timer will next look: an earlier deadline must wake it.
    armed: Option<Instant>,
    closed: bool,
    /// Stored messages wait for their record before consumers see them.
    journaled: bool,
}

impl Locked {
    pub fn has_room_for(&self, extra: usize) -> bool {
        self.state.has_room_for(extra)
    }

    pub fn has_bytes_for(&self, extra: u64) -> bool {
        self.state.has_bytes_for(extra)
    }

    pub fn max_bytes(&self) -> Option<u64> {
        self.state.settings().max_bytes
    }

    pub fn max_length(&self) -> u32 {
        self.state.settings().max_length
    }

    /// Stores a message and returns its position; `None` if the group was deleted meanwhile and the
    /// message was not stored.
    pub fn store(&mut self, message: Message) -> Option<u64> {
        (!self.closed).then(|| self.state.enqueue(message))
    }

    pub fn withdraw(&mut self, position: u64) {
        self.state.withdraw(position, Instant::now());
    }

    pub fn forget(&mut self, position: u64) {
        self.state.forget(position, Instant::now());
    }

    pub fn consumers_to_wake(&mut self) -> Vec<Arc<Notify>> {
        self.state.consumers_to_wake()
    }
}

/// Wakes consumers outside the lock.
pub fn wake(consumers: Vec<Arc<Notify>>) {
    consumers.iter().for_each(|notify| notify.notify_one());
}

/// What a group is made of, new or restored.
#[derive(Debug)]
pub struct GroupParts {
    pub id: GroupId,
    pub pattern: Pattern,
    pub name: GroupName,
    pub state: GroupState,
    pub declared: bool,
}

impl QueueGroup {
    /// A new, empty group's parts.
    pub fn fresh(
        id: GroupId,
        pattern: Pattern,
        name: GroupName,
        settings: GroupSettings,
        declared: bool,
        context: &GroupContext,
    ) -> GroupParts {
        let state = GroupState::new(settings, Instant::now())
            .numbering_deliveries_from(context.first_delivery);
        GroupParts {
            id,
            pattern,
            name,
            state,
            declared,
        }
    }

    /// Creates a group and starts its timer. Needs a Tokio runtime.
    pub fn start(parts: GroupParts, context: &GroupContext) -> Arc<Self> {
        let GroupParts {
            id,
            pattern,
            name,
            state,
            declared,
        } = parts;
        let group = Arc::new(Self {
            id,
            pattern,
            name,
            declared: AtomicBool::new(declared),
            locked: Mutex::new(Locked {
                state,
                armed: None,
                closed: false,
                journaled: context.journal.is_some(),
            }),
            timer: Arc::new(Notify::new()),
            closed: CancellationToken::new(),
            housekeeping: context.housekeeping.clone(),
            idle_timeout: context.idle_timeout,
            journal: context.journal.clone(),
        });
        tokio::spawn(run_timer(
            Arc::downgrade(&group),
            Arc::clone(&group.timer),
            group.closed.clone(),
        ));
        group
    }

    /// Makes the group permanent: it no longer expires when idle. Recorded even when it already
    /// was: the receipt then also stands for an identical declaration still being written, so a
    /// second DeclareGroup never returns before the first one's record is durable.
    pub fn mark_declared(&self) -> Receipt {
        let receipt = {
            let _locked = self.locked.lock();
            self.declared.store(true, Ordering::Relaxed);
            self.record(|| Event::GroupDeclared { id: self.id })
        };
        // The timer may be sleeping towards an idle expiry that no longer applies; let it re-plan.
        self.timer.notify_one();
        receipt
    }

    /// Restates the group and everything it holds, so that older records can go (see
    /// `MemoryBroker::reclaim`). Under the lock, so the restatement sits between the changes before
    /// and after it. Returns the receipt of the last record; nothing for a deleted group.
    pub fn restate(&self) -> Vec<Receipt> {
        /// Messages per record, and their footprint: a bound on one record's size, far under a
        /// frame's (a single message is never larger than a Publish request, which durable mode
        /// keeps under a frame, see `Config::validate`).
        const CHUNK_MESSAGES: usize = 512;
        const CHUNK_BYTES: usize = 4 << 20;
        let locked = self.locked.lock();
        if locked.closed {
            return Vec::new();
        }
        let state = &locked.state;
        let mut receipts = vec![self.record(|| Event::GroupRestated {
            id: self.id,
            pattern: self.pattern.clone(),
            name: self.name.clone(),
            settings: state.settings().clone(),
            declared: self.declared.load(Ordering::Relaxed),
            next_position: state.next_position(),
        })];
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        let held = state.held(Instant::now(), SystemTime::now());
        let count = held.len();
        for (index, (position, held)) in held.into_iter().enumerate() {
            chunk_bytes += held.message.footprint();
            chunk.push((position, held));
            let full = chunk.len() >= CHUNK_MESSAGES || chunk_bytes >= CHUNK_BYTES;
            if full || index + 1 == count {
                let held = std::mem::take(&mut chunk);
                chunk_bytes = 0;
                receipts.push(self.record(|| Event::Restated {
                    group: self.id,
                    held,
                }));
            }
        }
        receipts
    }

    /// Records `event` if the broker keeps a journal. Called under the group's lock.
    pub fn record(&self, event: impl FnOnce() -> Event) -> Receipt {
        journal::record(self.journal.as_ref(), event)
    }

    /// The idle timeout that applies: none for declared groups.
    fn idle_timeout(&self) -> Option<Duration> {
        (!self.declared.load(Ordering::Relaxed)).then_some(self.idle_timeout)
    }

    pub fn settings(&self) -> GroupSettings {
        self.locked.lock().state.settings().clone()
    }

    pub fn lock(&self) -> MutexGuard<'_, Locked> {
        self.locked.lock()
    }

    /// Adds a consumer and returns its stream of deliveries.
    pub fn attach(
        self: &Arc<Self>,
        terms: ConsumerTerms,
        shutdown: CancellationToken,
    ) -> Result<EventStream<Delivery>, BrokerError> {
        let notify = Arc::new(Notify::new());
        let consumer = {
            let mut locked = self.locked.lock();
            if locked.closed {
                return Err(BrokerError::GroupDeleted {
                    group: self.name.to_string(),
                });
            }
            locked.state.attach(terms, Arc::clone(&notify)).map_err(
                |AttachRefusal::ExclusiveTaken| BrokerError::ExclusiveTaken {
                    group: self.name.to_string(),
                },
            )?
        };
        // Anything already waiting is there for the new consumer to take.
        notify.notify_one();
        let attachment = Attachment {
            group: Arc::clone(self),
            consumer,
            notify,
            shutdown,
            taken: VecDeque::new(),
            recording: VecDeque::new(),
        };
        Ok(Box::pin(futures_util::stream::unfold(
            Some(attachment),
            |attachment| async move {
                let mut attachment = attachment?;
                match attachment.next().await {
                    Ok(delivery) => Some((Ok(delivery), Some(attachment))),
                    Err(error) => Some((Err(error), None)),
                }
            },
        )))
    }

    /// Settles deliveries of this group alike, under one lock and (for acks) one record. Returns
    /// which of them were not outstanding (by index), what to await before saying the rest are
    /// settled, and the dead letters they made, for the caller to forward.
    pub fn settle(&self, deliveries: &[u64], action: Settle) -> SettleOutcome {
        let mut outcome = SettleOutcome {
            unknown: Vec::new(),
            receipt: Receipt::done(),
            forwards: Vec::new(),
        };
        let wakes = {
            let mut locked = self.locked.lock();
            let now = Instant::now();
            let mut acked = Vec::new();
            for (index, &delivery) in deliveries.iter().enumerate() {
                let settled = match locked.state.settle(delivery, action, now) {
                    Ok(settled) => settled,
                    Err(NotOutstanding) => {
                        outcome.unknown.push(index);
                        continue;
                    }
                };
                let position = settled.position;
                match (action, settled.dead) {
                    (_, Some(dead)) => {
                        let (receipt, forwards) = self.dispose(&mut locked, vec![dead]);
                        outcome.later(receipt);
                        outcome.forwards.extend(forwards);
                    }
                    (Settle::Ack, None) => acked.push(position),
                    (Settle::Nack { delay }, None) => {
                        let until = (!delay.is_zero()).then(|| SystemTime::now() + delay);
                        outcome.later(self.record(|| Event::Nacked {
                            group: self.id,
                            position,
                            until,
                        }));
                    }
                    (Settle::Reject | Settle::Extend, None) => {}
                }
            }
            if !acked.is_empty() {
                outcome.later(self.record(|| Event::Acked {
                    group: self.id,
                    positions: acked,
                }));
            }
            self.rearm(&mut locked);
            locked.state.consumers_to_wake()
        };
        wake(wakes);
        outcome
    }

    /// The delivery id a consumer sees: the group's number and the delivery's, in hex.
    pub fn delivery_id(&self, delivery: u64) -> String {
        format!("{:x}.{:x}", self.id, delivery)
    }

    /// The message of `delivery` while it is in flight.
    pub fn in_flight_message(&self, delivery: u64) -> Option<Message> {
        self.locked
            .lock()
            .state
            .in_flight_message(delivery)
            .cloned()
    }

    /// Splits a delivery id into group and delivery numbers; `None` for anything malformed.
    pub fn parse_delivery_id(id: &str) -> Option<(GroupId, u64)> {
        let (group, delivery) = id.split_once('.')?;
        let group = u64::from_str_radix(group, 16).ok()?;
        let delivery = u64::from_str_radix(delivery, 16).ok()?;
        Some((group, delivery))
    }

    pub fn info(&self) -> GroupInfo {
        let locked = self.locked.lock();
        let state = &locked.state;
        let oldest = state.oldest();
        GroupInfo {
            pattern: self.pattern.clone(),
            group: self.name.clone(),
            mode: state.settings().mode,
            ready: state.waiting() as u64,
            in_flight: state.in_flight() as u64,
            consumers: u32::try_from(state.consumers()).unwrap_or(u32::MAX),
            counters: state.stats(),
            bytes: state.bytes(),
            oldest_ready: oldest.ready,
            oldest_unacked: oldest.unacked,
        }
    }

    pub fn counters(&self) -> GroupCounters {
        self.locked.lock().state.stats()
    }

    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        self.locked.lock().state.consumers_listed()
    }

    /// Whether the group has been idle for its whole idle timeout (never, for declared groups).
    fn is_expired(&self, locked: &Locked, now: Instant) -> bool {
        self.idle_timeout().is_some_and(|timeout| {
            locked
                .state
                .idle_since()
                .is_some_and(|since| since + timeout <= now)
        })
    }

    /// Deletes the group's messages and ends its consumers' streams. From here on `enqueue` stores
    /// nothing, so a publish racing the deletion is not told it stored a message that is gone.
    pub fn close(&self) -> usize {
        let dropped = {
            let mut locked = self.locked.lock();
            locked.closed = true;
            locked.state.clear()
        };
        self.closed.cancel();
        dropped
    }

    /// Closes the group if it is still idle past its timeout, checked and closed under one lock so
    /// that a message published meanwhile either keeps the group or is refused by it.
    pub fn close_if_expired(&self, now: Instant) -> bool {
        {
            let mut locked = self.locked.lock();
            if !self.is_expired(&locked, now) {
                return false;
            }
            locked.closed = true;
        }
        self.closed.cancel();
        true
    }

    /// Hands `consumer` what it may take now: one delivery, or with a journal as many as its prefetch
    /// allows under one record (so a consumer pays one fsync per batch, not per message), with the
    /// receipt to await before handing them over.
    fn take(&self, consumer: ConsumerId) -> Option<(Vec<Delivery>, Receipt)> {
        let (handouts, receipt) = {
            let mut locked = self.locked.lock();
            let now = Instant::now();
            let mut handouts = Vec::new();
            while let Some(handout) = locked.state.take(consumer, now) {
                handouts.push(handout);
                if !locked.journaled {
                    break;
                }
            }
            match handouts.is_empty() {
                false => {
                    self.rearm(&mut locked);
                    let receipt = self.record(|| Event::Delivered {
                        group: self.id,
                        positions: handouts.iter().map(|handout| handout.position).collect(),
                    });
                    (handouts, receipt)
                }
                true => {
                    // This consumer was woken but cannot take (it filled its prefetch meanwhile, or
                    // stands by): pass the wake-up on to consumers that can, so a waiting message
                    // never sits while one of them idles.
                    let wakes = locked.state.consumers_to_wake();
                    drop(locked);
                    wake(wakes);
                    return None;
                }
            }
        };
        let deliveries = handouts
            .into_iter()
            .map(|handout| Delivery {
                message: handout.message,
                delivery_id: self.delivery_id(handout.delivery),
                attempt: handout.attempt,
            })
            .collect();
        Some((deliveries, receipt))
    }

    fn detach(&self, consumer: ConsumerId) {
        let (forwards, wakes) = {
            let mut locked = self.locked.lock();
            let dead = locked.state.detach(consumer, Instant::now());
            let (_, forwards) = self.dispose(&mut locked, dead);
            self.rearm(&mut locked);
            (forwards, locked.state.consumers_to_wake())
        };
        wake(wakes);
        self.send_forwards(forwards);
    }

    /// Restores what a replayed group's dead letters need: their forwarding, or their discarding.
    pub fn dispose_restored(&self, dead: Vec<DeadLetter>) {
        let forwards = {
            let mut locked = self.locked.lock();
            self.dispose(&mut locked, dead).1
        };
        self.send_forwards(forwards);
    }

    /// Runs when the timer fires: returns expired deliveries and reports idleness. Returns when the
    /// timer should look again.
    fn on_timer(&self, now: Instant) -> Option<Instant> {
        let (forwards, wakes, next, expired) = {
            let mut locked = self.locked.lock();
            let dead = locked.state.expire(now);
            let (_, forwards) = self.dispose(&mut locked, dead);
            let next = self.next_wakeup(&locked.state);
            locked.armed = next;
            let expired = self.is_expired(&locked, now);
            (forwards, locked.state.consumers_to_wake(), next, expired)
        };
        wake(wakes);
        self.send_forwards(forwards);
        if expired {
            // The broker may be gone already; then there is nobody to tell.
            let _ = self.housekeeping.send(Housekeeping::Idle(self.id));
        }
        next
    }

    fn next_wakeup(&self, state: &GroupState) -> Option<Instant> {
        let idle = self
            .idle_timeout()
            .and_then(|timeout| state.idle_since().map(|since| since + timeout));
        state.next_deadline().into_iter().chain(idle).min()
    }

    /// Wakes the timer if the state now needs it sooner than it planned.
    fn rearm(&self, locked: &mut Locked) {
        let wanted = self.next_wakeup(&locked.state);
        let sooner = match (wanted, locked.armed) {
            (Some(wanted), Some(armed)) => wanted < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if sooner {
            locked.armed = wanted;
            self.timer.notify_one();
        }
    }

    /// Under the lock: discards dead letters (recorded) when the group has no dead-letter topic, or
    /// makes the forwards that will move them to it. Returns the receipt of the last discard.
    fn dispose(&self, locked: &mut Locked, dead: Vec<DeadLetter>) -> (Receipt, Vec<Forward>) {
        let mut receipt = Receipt::done();
        if dead.is_empty() {
            return (receipt, Vec::new());
        }
        let Some(topic) = locked.state.settings().dead_letter_topic.clone() else {
            for letter in dead {
                tracing::debug!(group = %self.name, id = %letter.message.id(), reason = letter.reason.as_str(), "discarded: no dead-letter topic");
                locked.forget(letter.position);
                receipt = self.record(|| Event::DeadLettered {
                    group: self.id,
                    position: letter.position,
                    forwarded: None,
                });
            }
            return (receipt, Vec::new());
        };
        let forwards = dead
            .into_iter()
            .map(|letter| Forward {
                source: self.id,
                position: letter.position,
                letter: letter
                    .reason
                    .letter(&letter.message, &topic, &self.name, letter.attempts),
                id: letter.message.id(),
            })
            .collect();
        (receipt, forwards)
    }

    /// Hands forwards to the broker's housekeeping task.
    fn send_forwards(&self, forwards: Vec<Forward>) {
        for forward in forwards {
            // The broker may be gone already; then its groups and their messages are gone too.
            let _ = self.housekeeping.send(Housekeeping::DeadLetter(forward));
        }
    }
}

impl Drop for QueueGroup {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// One consumer's membership. Dropping it (the stream ended or was dropped) returns what it held.
struct Attachment {
    group: Arc<QueueGroup>,
    consumer: ConsumerId,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
    /// Taken and durable, not yet handed over.
    taken: VecDeque<Delivery>,
    /// Taken, each batch under one record that is not durable yet, oldest first. A consumer takes
    /// again while earlier records are written, so its deliveries are not one fsync apart.
    recording: VecDeque<(Vec<Delivery>, Durable)>,
}

/// A delivery record's wait.
type Durable = Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>>;

/// Batches a consumer may have waiting for their records at once.
const RECORDING_BATCHES: usize = 8;

impl Attachment {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        loop {
            if let Some(delivery) = self.taken.pop_front() {
                return Ok(delivery);
            }
            while self.recording.len() < RECORDING_BATCHES
                && let Some((deliveries, receipt)) = self.group.take(self.consumer)
            {
                if receipt.is_done() && self.recording.is_empty() {
                    self.taken.extend(deliveries);
                    break;
                }
                self.recording
                    .push_back((deliveries, Box::pin(receipt.durable())));
            }
            if !self.taken.is_empty() {
                continue;
            }
            // Dropped while waiting (the consumer left), what it took returns with detach.
            let Self {
                group,
                notify,
                shutdown,
                recording,
                taken,
                ..
            } = self;
            let oldest = async {
                match recording.front_mut() {
                    Some((_, durable)) => durable.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
                () = group.closed.cancelled() => return Err(BrokerError::GroupDeleted {
                    group: group.name.to_string(),
                }),
                durable = oldest => {
                    durable?;
                    if let Some((deliveries, _)) = recording.pop_front() {
                        taken.extend(deliveries);
                    }
                }
                () = notify.notified() => {}
            }
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.group.detach(self.consumer);
    }
}

/// Sleeps until the group's next deadline, or until told of an earlier one; ends with the group.
async fn run_timer(group: Weak<QueueGroup>, timer: Arc<Notify>, closed: CancellationToken) {
    loop {
        let next = match group.upgrade() {
            Some(group) => group.on_timer(Instant::now()),
            None => return,
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = closed.cancelled() => return,
            () = timer.notified() => {}
            () = sleep => {}
        }
    }
}
