//! fanout: core NATS publish/subscribe, plain (non-queue) subscribers of the subject
//! `bench.fanout` (the scenario itself is [`crate::fanout`]'s).
//!
//! A subscriber whose connection dropped messages (async-nats' per-subscription buffer
//! overflowed, or the server cut it off as a slow consumer) counts what it missed as gaps, not
//! loss; one whose connection broke is not counted for loss; either stops holding the publishers
//! back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::{Message, Subscriber};

use super::connection::{Connection, Counters, Events};
use super::publish::{self, Mode};
use crate::clock::Start;
use crate::config::Args;
use crate::fanout::{self, Missing, Subscription, Trouble};
use crate::report::Counts;

const SUBJECT: &str = "bench.fanout";

pub async fn run(args: &Args, events: &Events, start: Start) -> Result<Counts, String> {
    let mut subscriptions = Vec::new();
    for index in 0..args.subscribers {
        let connection =
            Connection::open(&args.server, &format!("subscriber-{index}"), events).await?;
        let subscription = connection
            .client
            .subscribe(SUBJECT)
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        // The server has the subscription once the flush's PONG is back, so the first publish
        // cannot miss it.
        connection
            .client
            .flush()
            .await
            .map_err(|e| format!("flush: {e}"))?;
        subscriptions.push(Plain {
            messages: subscription,
            counters: connection.counters,
        });
    }
    let publishers = publish::connect(
        &args.server,
        args.publishers.into(),
        events,
        SUBJECT,
        Mode::Core,
    )
    .await?;
    fanout::deliver(args, start, subscriptions, publishers).await
}

/// A plain subscription, and its connection's events.
struct Plain {
    messages: Subscriber,
    counters: Arc<Counters>,
}

impl Subscription for Plain {
    type Messages = Subscriber;
    const ENDED_EARLY: &'static str = "a subscription ended early";

    fn messages(&mut self) -> &mut Subscriber {
        &mut self.messages
    }

    fn payload(message: &Message) -> &[u8] {
        &message.payload
    }

    fn trouble(&self) -> Option<Trouble> {
        let counters = Arc::clone(&self.counters);
        Some(Arc::new(move || counters.troubled()))
    }

    fn missing(&self, ended: bool) -> Missing {
        if self.counters.slow_consumer.load(Ordering::Relaxed) > 0 {
            Missing::Gaps
        } else if !ended && self.counters.disconnects.load(Ordering::Relaxed) == 0 {
            Missing::Lost
        } else {
            Missing::Uncounted
        }
    }
}
