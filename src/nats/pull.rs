//! One pull request to a JetStream consumer, which a consumer that goes closes at the server
//! once what is on its way has come.
//!
//! async-nats has this as `pull::Batch`, but a `Batch` hides its subscription: the only way to end
//! it is to drop it, and until then JetStream keeps the pull waiting and hands it the next
//! messages published. A pull is closed by taking away its interest (unsubscribing), and what
//! the server sent before it heard of that is dropped on the way, to come back only when the
//! group's AckWait passes. So a consumer that goes first reads its pull until it has been quiet
//! for a while, taken by the pace it was delivering at, and only then unsubscribes. An idle pull
//! is closed at once, so that what is published next is not delivered to a consumer that went;
//! one that was busy is read on, so that nothing on its way is lost.

use std::time::Duration;

use async_nats::{
    Client, StatusCode, Subscriber,
    jetstream::{self, consumer::PullConsumer, consumer::pull::BatchConfig},
};
use futures_util::StreamExt;
use tokio::time::{Instant, timeout_at};

use crate::error::BrokerError;

use super::unavailable;

/// What a pull ended with other than its messages: a status JetStream answered it with.
#[derive(Debug, thiserror::Error)]
#[error("the pull ended with status {status}: {description}")]
pub struct PullEnded {
    status: StatusCode,
    description: String,
}

/// How long past its expiry a pull is given up without the server's word that it expired: a
/// pull lost to a reconnect or a leader change never hears it.
const EXPIRY_SLACK: Duration = Duration::from_secs(1);
/// A closing pull counts as quiet once this many of its mean gaps between deliveries passed
/// without one: then nothing is likely on its way.
const QUIET_GAPS: u32 = 16;
/// The least and the most a closing pull must have been quiet for.
const QUIET_LEAST: Duration = Duration::from_millis(5);
const QUIET_MOST: Duration = Duration::from_millis(100);

/// A pull under way: at most `remaining` more messages, until `expires` passes at the server.
#[derive(Debug)]
pub struct Pull {
    subscriber: Subscriber,
    context: jetstream::Context,
    remaining: usize,
    /// When the pull is given up, heard of or not.
    given_up: Instant,
    ended: bool,
    started: Instant,
    delivered: u32,
    /// When the last message came, or the pull started.
    last: Instant,
}

impl Pull {
    /// Asks `consumer` for up to `count` messages, waiting at the server for up to `expires`.
    /// Pulls ask for no idle heartbeats: a pull that is lost (a leader change, a reconnect) is
    /// noticed when it expires.
    pub async fn start(
        client: &Client,
        context: &jetstream::Context,
        consumer: &PullConsumer,
        count: usize,
        expires: Duration,
    ) -> Result<Self, BrokerError> {
        let started = Instant::now();
        let given_up = started + expires + EXPIRY_SLACK;
        let inbox = client.new_inbox();
        let subscriber = client.subscribe(inbox.clone()).await.map_err(unavailable)?;
        let request = BatchConfig {
            batch: count,
            expires: Some(expires),
            ..BatchConfig::default()
        };
        consumer
            .request_batch(request, inbox.into())
            .await
            .map_err(unavailable)?;
        Ok(Self {
            subscriber,
            context: context.clone(),
            remaining: count,
            given_up,
            ended: false,
            started,
            delivered: 0,
            last: started,
        })
    }

    /// The next message pulled; `None` once the pull has all it asked for, or expired.
    ///
    /// Cancel-safe: a message is taken from the subscription only when it is returned.
    pub async fn next(&mut self) -> Option<Result<jetstream::Message, PullEnded>> {
        while !self.ended && self.remaining > 0 {
            let Ok(Some(message)) = timeout_at(self.given_up, self.subscriber.next()).await else {
                self.ended = true;
                break;
            };
            match message.status.unwrap_or(StatusCode::OK) {
                StatusCode::OK => {
                    self.remaining -= 1;
                    self.delivered = self.delivered.saturating_add(1);
                    self.last = Instant::now();
                    return Some(Ok(delivered(&self.context, message)));
                }
                StatusCode::IDLE_HEARTBEAT => {}
                // Expired (408), or nothing to deliver to a no-wait pull (404).
                StatusCode::TIMEOUT | StatusCode::NOT_FOUND => self.ended = true,
                status => {
                    self.ended = true;
                    let description = message.description.unwrap_or_default();
                    return Some(Err(PullEnded {
                        status,
                        description,
                    }));
                }
            }
        }
        None
    }

    /// Closes the pull at the server and returns what was delivered to it meanwhile, waiting
    /// at most `within` (the connection may be down).
    pub async fn close(mut self, within: Duration) -> Vec<jetstream::Message> {
        let until = Instant::now() + within;
        let mut delivered = Vec::new();
        loop {
            let quiet_until = (self.last + self.quiet()).min(until);
            match timeout_at(quiet_until, self.next()).await {
                Ok(Some(Ok(message))) => delivered.push(message),
                // The server ended the pull: nothing more comes to it.
                Ok(_) => return delivered,
                Err(_) => break,
            }
        }
        if self.subscriber.drain().await.is_err() {
            return delivered;
        }
        // What was read before the unsubscribe went out; the subscription ends after it.
        let read = async {
            while let Some(message) = self.subscriber.next().await {
                if message.status.is_none_or(|status| status == StatusCode::OK) {
                    delivered.push(self::delivered(&self.context, message));
                }
            }
        };
        let _ = timeout_at(until, read).await;
        delivered
    }

    /// How long this pull must go without a delivery to count as quiet.
    fn quiet(&self) -> Duration {
        quiet_after(self.delivered, self.last - self.started)
    }
}

/// How long a pull that had `delivered` messages over `span` must go without one to count as
/// quiet: [`QUIET_GAPS`] of its mean gaps, within bounds.
fn quiet_after(delivered: u32, span: Duration) -> Duration {
    let gap = match delivered {
        0 => Duration::ZERO,
        n => span / n,
    };
    gap.saturating_mul(QUIET_GAPS)
        .clamp(QUIET_LEAST, QUIET_MOST)
}

/// A message delivered to a pull, as JetStream's: it can say its delivery count.
fn delivered(context: &jetstream::Context, message: async_nats::Message) -> jetstream::Message {
    jetstream::Message {
        message,
        context: context.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_pull_is_quiet_soonest_and_a_busy_one_by_its_pace() {
        let ms = Duration::from_millis;
        assert_eq!(quiet_after(0, ms(4_000)), QUIET_LEAST, "nothing delivered");
        assert_eq!(
            quiet_after(3, Duration::from_micros(300)),
            QUIET_LEAST,
            "a burst at once"
        );
        assert_eq!(quiet_after(250, ms(1_000)), ms(64), "one every 4 ms");
        assert_eq!(
            quiet_after(1, ms(4_000)),
            QUIET_MOST,
            "one after a long wait"
        );
        assert_eq!(
            quiet_after(u32::MAX, Duration::MAX),
            QUIET_MOST,
            "no overflow"
        );
    }
}
