//! fanout: Redis pub/sub. The publishers PUBLISH (pipelined, see `publish`) to the channel
//! `bench.fanout`; `--subscribers` connections SUBSCRIBE to it (the scenario itself is
//! [`crate::fanout`]'s).
//!
//! Redis tells a subscriber nothing when it falls behind: past its output buffer limit the server
//! closes the connection. A subscriber whose connection ended early is an error, not counted for
//! loss, and stops holding the publishers back.

use redis::Msg;
use redis::aio::PubSubStream;

use super::connection;
use super::publish::{self, Command, Setup};
use crate::clock::Start;
use crate::config::Args;
use crate::fanout::{self, Missing, Subscription, Trouble};
use crate::report::Counts;

const CHANNEL: &str = "bench.fanout";

pub async fn run(args: &Args, start: Start) -> Result<Counts, String> {
    let mut subscriptions = Vec::new();
    for index in 0..args.subscribers {
        let mut subscriber =
            connection::subscriber(&args.server, &format!("subscriber-{index}")).await?;
        // Returns once Redis confirmed the subscription, so the first publish cannot miss it.
        subscriber
            .subscribe(CHANNEL)
            .await
            .map_err(|e| format!("cannot subscribe to {CHANNEL}: {e}"))?;
        subscriptions.push(Channel(subscriber.into_on_message()));
    }
    let setup = Setup {
        key: CHANNEL,
        command: Command::Publish,
    };
    let publishers = publish::connect(&args.server, args.publishers.into(), setup).await?;
    fanout::deliver(args, start, subscriptions, publishers).await
}

/// A connection subscribed to the channel.
struct Channel(PubSubStream);

impl Subscription for Channel {
    type Messages = PubSubStream;
    const ENDED_EARLY: &'static str = "a subscriber's connection ended early";

    fn messages(&mut self) -> &mut PubSubStream {
        &mut self.0
    }

    fn payload(message: &Msg) -> &[u8] {
        message.get_payload_bytes()
    }

    fn trouble(&self) -> Option<Trouble> {
        None
    }

    fn missing(&self, ended: bool) -> Missing {
        if ended {
            Missing::Uncounted
        } else {
            Missing::Lost
        }
    }
}
