//! One subscriber's bounded buffer, and the stream that drains it.
//!
//! Slow-consumer policy: a publisher never waits for a subscriber. When a subscriber's buffer holds
//! its limit of messages, or of bytes, newer messages are dropped for it alone and counted; the count
//! is delivered as a `Gap` at the place where the messages went missing, as soon as there is room
//! again or the buffer has drained. So a subscriber always learns exactly how much it lost, and
//! where. The limits are NATS's pending limits: 65,536 messages and 64 MiB by default, so a
//! subscriber that keeps up on average rides out long bursts, and one that stalls holds a bounded
//! amount whatever its messages weigh.

use std::{collections::VecDeque, sync::Arc};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    broker::{EventStream, SubscriptionEvent},
    error::BrokerError,
    message::Message,
};

/// Slots an empty buffer keeps; a larger ring is shrunk to this once drained.
const SHRINK_ABOVE: usize = 1024;

/// The buffer between publishers (many) and one subscription stream.
#[derive(Debug)]
pub struct SubscriberQueue {
    /// A `parking_lot` mutex, not a Tokio one: it is held only to push or pop, never across `.await`.
    state: Mutex<QueueState>,
    /// Wakes the stream. `notify_one` keeps a permit when the stream is busy, so no push is missed.
    notify: Notify,
    limits: BufferLimits,
}

/// How much one subscriber's buffer may hold.
#[derive(Debug, Clone, Copy)]
pub struct BufferLimits {
    pub messages: usize,
    /// Counted as the memory budget counts a message ([`Message::footprint`]).
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<SubscriptionEvent>,
    /// Messages in `events`: gaps do not count against the limits.
    messages: usize,
    /// The footprints of the messages in `events`.
    bytes: usize,
    /// Messages dropped since the last event that was queued.
    missed: u64,
    /// Since the subscription began, for monitoring: kept here, under the lock already taken.
    counts: SubscriberCounts,
}

/// What a subscription (or several) counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberCounts {
    /// Messages waiting in the buffer now.
    pub buffered: u64,
    /// Messages handed to the stream.
    pub delivered: u64,
    /// Messages dropped because the buffer was full.
    pub gaps: u64,
    /// Times the buffer overflowed: each starts a run of drops that ends in one `Gap`.
    pub slow_events: u64,
}

impl SubscriberCounts {
    pub fn add(&mut self, other: &Self) {
        self.buffered += other.buffered;
        self.delivered += other.delivered;
        self.gaps += other.gaps;
        self.slow_events += other.slow_events;
    }
}

impl SubscriberQueue {
    pub fn new(limits: BufferLimits) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
            limits,
        }
    }

    /// Offers a message whose [`Message::footprint`] is `footprint` (worked out once by the caller
    /// for all the subscribers it offers the message to); drops it and counts the loss when the
    /// buffer is full. Never blocks. A message larger than the byte limit on its own still goes into
    /// an empty buffer: refusing it would make it a gap for every subscriber forever.
    pub fn offer(&self, message: &Message, footprint: usize) {
        debug_assert_eq!(footprint, message.footprint(), "take subtracts the same");
        {
            let mut state = self.state.lock();
            let full = state.messages >= self.limits.messages
                || (state.messages > 0
                    && state.bytes.saturating_add(footprint) > self.limits.bytes);
            if full {
                if state.missed == 0 {
                    state.counts.slow_events += 1;
                }
                state.missed += 1;
                state.counts.gaps += 1;
                return;
            }
            if state.missed > 0 {
                let missed = std::mem::take(&mut state.missed);
                state.events.push_back(SubscriptionEvent::Gap { missed });
            }
            state
                .events
                .push_back(SubscriptionEvent::Message(message.clone()));
            state.messages += 1;
            state.bytes += footprint;
        }
        self.notify.notify_one();
    }

    /// What this subscription counted so far.
    pub fn counts(&self) -> SubscriberCounts {
        let state = self.state.lock();
        SubscriberCounts {
            buffered: state.messages as u64,
            ..state.counts
        }
    }

    /// Takes the next event: a queued one, or a gap for losses after the last queued message.
    fn take(&self) -> Option<SubscriptionEvent> {
        let mut state = self.state.lock();
        match state.events.pop_front() {
            Some(event) => {
                if let SubscriptionEvent::Message(message) = &event {
                    state.messages -= 1;
                    state.counts.delivered += 1;
                    // The same footprint as when it was offered: a message never changes.
                    state.bytes -= message.footprint();
                }
                // A burst may have grown the ring to the message limit (16 bytes a slot: 1 MiB at
                // 65,536); once it drains, give that back rather than keep it for the
                // subscription's life.
                if state.events.is_empty() && state.events.capacity() > SHRINK_ABOVE {
                    state.events.shrink_to(SHRINK_ABOVE);
                }
                Some(event)
            }
            None if state.missed > 0 => Some(SubscriptionEvent::Gap {
                missed: std::mem::take(&mut state.missed),
            }),
            None => None,
        }
    }

    /// Waits for the next event, or for shutdown.
    async fn next(&self, shutdown: &CancellationToken) -> Result<SubscriptionEvent, BrokerError> {
        loop {
            if let Some(event) = self.take() {
                return Ok(event);
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
                () = self.notify.notified() => {}
            }
        }
    }
}

/// Turns a queue into the subscription's stream. `registration` is dropped with the stream, and its
/// `Drop` removes the subscription from the index. After a shutdown error the stream ends.
pub fn subscription_stream<R: Send + 'static>(
    queue: Arc<SubscriberQueue>,
    registration: R,
    shutdown: CancellationToken,
) -> EventStream<SubscriptionEvent> {
    let state = Some((queue, registration, shutdown));
    Box::pin(futures_util::stream::unfold(state, |state| async move {
        let (queue, registration, shutdown) = state?;
        match queue.next(&shutdown).await {
            Ok(event) => Some((Ok(event), Some((queue, registration, shutdown)))),
            Err(error) => Some((Err(error), None)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{
        message::NewMessage,
        topic::{Topic, TopicLimits},
    };

    fn message(n: u8) -> Message {
        let limits = TopicLimits {
            max_bytes: 64,
            max_tokens: 4,
        };
        let topic = Topic::parse("t", limits).unwrap();
        Message::stamp(NewMessage::new(topic, Bytes::from(vec![n])))
    }

    fn queue(messages: usize) -> SubscriberQueue {
        SubscriberQueue::new(BufferLimits {
            messages,
            bytes: usize::MAX,
        })
    }

    fn offer(queue: &SubscriberQueue, message: &Message) {
        queue.offer(message, message.footprint());
    }

    fn drain(queue: &SubscriberQueue) -> Vec<String> {
        std::iter::from_fn(|| queue.take())
            .map(|event| match event {
                SubscriptionEvent::Message(m) => format!("m{}", m.payload()[0]),
                SubscriptionEvent::Gap { missed } => format!("gap{missed}"),
            })
            .collect()
    }

    #[test]
    fn overflow_becomes_a_gap_where_the_loss_happened() {
        let queue = queue(2);
        (1..=5).for_each(|n| offer(&queue, &message(n)));
        assert_eq!(queue.take().map(|_| ()), Some(()));
        offer(&queue, &message(6));
        assert_eq!(drain(&queue), ["m2", "gap3", "m6"]);
        let counts = queue.counts();
        assert_eq!(
            (counts.delivered, counts.gaps, counts.slow_events),
            (3, 3, 1)
        );
    }

    #[test]
    fn a_trailing_loss_is_reported_once_drained() {
        let queue = queue(1);
        (1..=4).for_each(|n| offer(&queue, &message(n)));
        assert_eq!(drain(&queue), ["m1", "gap3"]);
        assert!(queue.take().is_none());
    }

    #[test]
    fn the_byte_limit_drops_like_the_message_limit_and_frees_with_each_take() {
        let one = message(1).footprint();
        let queue = SubscriberQueue::new(BufferLimits {
            messages: 100,
            bytes: 2 * one,
        });
        (1..=4).for_each(|n| offer(&queue, &message(n)));
        assert_eq!(queue.take().map(|_| ()), Some(()));
        // One message's room again: 5 fits, 6 does not.
        (5..=6).for_each(|n| offer(&queue, &message(n)));
        assert_eq!(drain(&queue), ["m2", "gap2", "m5", "gap1"]);
        assert_eq!(queue.state.lock().bytes, 0);
    }

    #[test]
    fn a_message_larger_than_the_byte_limit_still_reaches_an_empty_buffer() {
        let queue = SubscriberQueue::new(BufferLimits {
            messages: 100,
            bytes: 1,
        });
        (1..=2).for_each(|n| offer(&queue, &message(n)));
        assert_eq!(drain(&queue), ["m1", "gap1"]);
    }

    #[tokio::test]
    async fn the_stream_ends_with_shutdown() {
        use futures_util::StreamExt;
        let queue = Arc::new(queue(4));
        offer(&queue, &message(1));
        let shutdown = CancellationToken::new();
        let mut stream = subscription_stream(Arc::clone(&queue), (), shutdown.clone());
        assert!(matches!(
            stream.next().await,
            Some(Ok(SubscriptionEvent::Message(_)))
        ));
        shutdown.cancel();
        assert_eq!(stream.next().await, Some(Err(BrokerError::ShuttingDown)));
        assert_eq!(stream.next().await, None);
    }
}
