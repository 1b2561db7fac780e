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
//!
//! A pull made before the connection came back (to the same server or another) may have been
//! forgotten with the old connection, and it would be noticed only once it should have expired.
//! So a pull that has heard nothing for [`LOST_AFTER`] since a reconnect ends as
//! [`PullEnded::Lost`], and its consumer closes it as above and pulls again at once. One that
//! survived and has messages delivers on; one that survived with nothing to deliver is idle, and
//! closing it is safe.

use std::time::Duration;

use async_nats::{
    Client, StatusCode, Subscriber,
    jetstream::{self, consumer::PullConsumer, consumer::pull::BatchConfig},
};
use futures_util::StreamExt;
use tokio::{
    sync::watch,
    time::{Instant, timeout_at},
};

use crate::error::BrokerError;

use super::unavailable;

/// What a pull ended with other than its messages.
#[derive(Debug, thiserror::Error)]
pub enum PullEnded {
    /// A status JetStream answered it with.
    #[error("the pull ended with status {status}: {description}")]
    Status {
        status: StatusCode,
        description: String,
    },
    /// Nothing came for [`LOST_AFTER`] since the connection came back.
    #[error("the pull was quiet since the connection came back, and may be lost with the old one")]
    Lost,
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
/// How long a pull may hear nothing after the connection came back before it counts as lost:
/// time for the client to subscribe again and a surviving pull's next delivery to arrive.
const LOST_AFTER: Duration = Duration::from_millis(250);

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
    /// How many times the connection was made, seen as of the pull's start; `None` once the
    /// broker that counts them is gone.
    reconnects: Option<watch::Receiver<u64>>,
    /// Since when the connection is back with nothing heard from the pull.
    quiet_since_reconnect: Option<Instant>,
}

impl Pull {
    /// Asks `consumer` for up to `count` messages, waiting at the server for up to `expires`.
    /// Pulls ask for no idle heartbeats: a pull that is lost to a leader change is noticed when
    /// it expires, and one lost to a reconnect once `reconnects` counts one (the module's doc).
    pub async fn start(
        client: &Client,
        context: &jetstream::Context,
        consumer: &PullConsumer,
        count: usize,
        expires: Duration,
        mut reconnects: watch::Receiver<u64>,
    ) -> Result<Self, BrokerError> {
        reconnects.mark_unchanged();
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
            reconnects: Some(reconnects),
            quiet_since_reconnect: None,
        })
    }

    /// The next message pulled; `None` once the pull has all it asked for, or expired.
    ///
    /// Cancel-safe: a message is taken from the subscription only when it is returned.
    pub async fn next(&mut self) -> Option<Result<jetstream::Message, PullEnded>> {
        while !self.ended && self.remaining > 0 {
            let until = match self.quiet_since_reconnect {
                Some(since) => (since + LOST_AFTER).min(self.given_up),
                None => self.given_up,
            };
            let watching = match (self.reconnects.as_mut(), self.quiet_since_reconnect) {
                (Some(reconnects), None) => Some(reconnects),
                _ => None,
            };
            let reconnected = async move {
                match watching {
                    Some(reconnects) => reconnects.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let subscriber = &mut self.subscriber;
            let heard = tokio::select! {
                heard = timeout_at(until, subscriber.next()) => heard,
                counting = reconnected => {
                    match counting {
                        true => self.quiet_since_reconnect = Some(Instant::now()),
                        false => self.reconnects = None,
                    }
                    continue;
                }
            };
            let Ok(Some(message)) = heard else {
                if self.quiet_since_reconnect.is_some() && Instant::now() < self.given_up {
                    return Some(Err(PullEnded::Lost));
                }
                self.ended = true;
                break;
            };
            self.quiet_since_reconnect = None;
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
                    return Some(Err(PullEnded::Status {
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
                // Quiet since a reconnect: the server may still have it.
                Ok(Some(Err(PullEnded::Lost))) | Err(_) => break,
                // The server ended the pull: nothing more comes to it.
                Ok(_) => return delivered,
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
