//! A live queue group: its state machine behind a lock, the consumers' streams, and the timer that
//! returns expired deliveries. Dead letters and idleness are reported to the broker's housekeeping task
//! over a channel, so a group never needs a handle to the broker that owns it.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
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
    broker::{Delivery, EventStream, GroupInfo},
    error::BrokerError,
    message::{Message, MessageId, NewMessage},
    topic::{GroupName, Pattern},
};

/// Broker-wide number of a group instance. Delivery ids carry it, so an Ack finds its group without a
/// search, and ids of a deleted group never settle anything in a new one of the same name.
pub type GroupId = u64;

/// What groups tell the broker's housekeeping task.
#[derive(Debug)]
pub enum Housekeeping {
    /// Route this message, past any `max_length`: it was accepted once and must not be lost now. It
    /// keeps the id of the message it was made from.
    DeadLetter(NewMessage, MessageId),
    /// The group has been idle for its idle timeout; remove it if it still is.
    Idle(GroupId),
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
}

/// The state under the group's lock.
#[derive(Debug)]
pub struct Locked {
    state: GroupState,
    /// When the timer will next look: an earlier deadline must wake it.
    armed: Option<Instant>,
    closed: bool,
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

    /// Stores a message; `false` if the group was deleted meanwhile and the message was not stored.
    pub fn enqueue(&mut self, message: Message) -> bool {
        if !self.closed {
            self.state.enqueue(message);
        }
        !self.closed
    }

    pub fn consumers_to_wake(&mut self) -> Vec<Arc<Notify>> {
        self.state.consumers_to_wake()
    }
}

/// Wakes consumers outside the lock.
pub fn wake(consumers: Vec<Arc<Notify>>) {
    consumers.iter().for_each(|notify| notify.notify_one());
}

impl QueueGroup {
    /// Creates a group and starts its timer. Needs a Tokio runtime.
    pub fn start(
        id: GroupId,
        pattern: Pattern,
        name: GroupName,
        settings: GroupSettings,
        declared: bool,
        idle_timeout: Duration,
        housekeeping: mpsc::UnboundedSender<Housekeeping>,
    ) -> Arc<Self> {
        let group = Arc::new(Self {
            id,
            pattern,
            name,
            declared: AtomicBool::new(declared),
            locked: Mutex::new(Locked {
                state: GroupState::new(settings, Instant::now()),
                armed: None,
                closed: false,
            }),
            timer: Arc::new(Notify::new()),
            closed: CancellationToken::new(),
            housekeeping,
            idle_timeout,
        });
        tokio::spawn(run_timer(
            Arc::downgrade(&group),
            Arc::clone(&group.timer),
            group.closed.clone(),
        ));
        group
    }

    /// Makes the group permanent: it no longer expires when idle.
    pub fn mark_declared(&self) {
        self.declared.store(true, Ordering::Relaxed);
        // The timer may be sleeping towards an idle expiry that no longer applies; let it re-plan.
        self.timer.notify_one();
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
        };
        Ok(Box::pin(futures_util::stream::unfold(
            Some(attachment),
            |attachment| async move {
                let attachment = attachment?;
                match attachment.next().await {
                    Ok(delivery) => Some((Ok(delivery), Some(attachment))),
                    Err(error) => Some((Err(error), None)),
                }
            },
        )))
    }

    /// Settles one delivery; `false` if it was not outstanding.
    pub fn settle(&self, delivery: u64, action: Settle) -> bool {
        let (outcome, wakes) = {
            let mut locked = self.locked.lock();
            let outcome = locked.state.settle(delivery, action, Instant::now());
            self.rearm(&mut locked);
            (outcome, locked.state.consumers_to_wake())
        };
        wake(wakes);
        match outcome {
            Ok(dead) => {
                self.forward_dead_letters(dead.into_iter().collect());
                true
            }
            Err(NotOutstanding) => false,
        }
    }

    /// The delivery id a consumer sees: the group's number and the delivery's, in hex.
    pub fn delivery_id(&self, delivery: u64) -> String {
        format!("{:x}.{:x}", self.id, delivery)
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
        let stats = state.stats();
        GroupInfo {
            pattern: self.pattern.clone(),
            group: self.name.clone(),
            mode: state.settings().mode,
            ready: state.waiting() as u64,
            in_flight: state.in_flight() as u64,
            consumers: u32::try_from(state.consumers()).unwrap_or(u32::MAX),
            delivered: stats.delivered,
            acked: stats.acked,
            redelivered: stats.redelivered,
            dead_lettered: stats.dead_lettered,
            bytes: state.bytes(),
        }
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

    fn take(&self, consumer: ConsumerId) -> Option<Delivery> {
        let handout = {
            let mut locked = self.locked.lock();
            match locked.state.take(consumer, Instant::now()) {
                Some(handout) => {
                    self.rearm(&mut locked);
                    handout
                }
                None => {
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
        Some(Delivery {
            message: handout.message,
            delivery_id: self.delivery_id(handout.delivery),
            attempt: handout.attempt,
        })
    }

    fn detach(&self, consumer: ConsumerId) {
        let (dead, wakes) = {
            let mut locked = self.locked.lock();
            let dead = locked.state.detach(consumer, Instant::now());
            self.rearm(&mut locked);
            (dead, locked.state.consumers_to_wake())
        };
        wake(wakes);
        self.forward_dead_letters(dead);
    }

    /// Runs when the timer fires: returns expired deliveries and reports idleness. Returns when the
    /// timer should look again.
    fn on_timer(&self, now: Instant) -> Option<Instant> {
        let (dead, wakes, next, expired) = {
            let mut locked = self.locked.lock();
            let dead = locked.state.expire(now);
            let next = self.next_wakeup(&locked.state);
            locked.armed = next;
            let expired = self.is_expired(&locked, now);
            (dead, locked.state.consumers_to_wake(), next, expired)
        };
        wake(wakes);
        self.forward_dead_letters(dead);
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

    /// Sends dead letters to the dead-letter topic, or drops them (counted) when the group has none.
    fn forward_dead_letters(&self, dead: Vec<DeadLetter>) {
        if dead.is_empty() {
            return;
        }
        let Some(topic) = self.settings().dead_letter_topic else {
            for letter in &dead {
                tracing::debug!(group = %self.name, id = %letter.message.id(), reason = letter.reason.as_str(), "discarded: no dead-letter topic");
            }
            return;
        };
        for letter in dead {
            let original = &letter.message;
            let mut headers = original.headers().clone();
            headers.insert("x-dead-letter-reason".into(), letter.reason.as_str().into());
            headers.insert("x-original-topic".into(), original.topic().to_string());
            headers.insert("x-dead-letter-group".into(), self.name.to_string());
            headers.insert("x-delivery-attempts".into(), letter.attempts.to_string());
            let forwarded = NewMessage {
                topic: topic.clone(),
                payload: original.payload_bytes(),
                headers,
                key: original.key().to_owned(),
                reply_to: original.reply_to().cloned(),
                correlation_id: original.correlation_id().to_owned(),
            };
            // The broker may be gone already; then its groups and their messages are gone too.
            let _ = self
                .housekeeping
                .send(Housekeeping::DeadLetter(forwarded, original.id()));
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
}

impl Attachment {
    async fn next(&self) -> Result<Delivery, BrokerError> {
        loop {
            if let Some(delivery) = self.group.take(self.consumer) {
                return Ok(delivery);
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
                () = self.group.closed.cancelled() => return Err(BrokerError::GroupDeleted {
                    group: self.group.name.to_string(),
                }),
                () = self.notify.notified() => {}
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
