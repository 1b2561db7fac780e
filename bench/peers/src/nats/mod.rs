//! The NATS side of `nats-peer`: connections, and the calls each scenario makes through
//! async-nats (core pub/sub, JetStream, request/reply).

mod connection;
mod fanout;
mod publish;
mod queue;
mod reqreply;

use crate::clock::Start;
use crate::config::{Args, Broker, Scenario};
use crate::report::Counts;

/// nats-peer's names and the help of its broker-specific flags.
pub static BROKER: Broker = Broker {
    name: "nats",
    program: "nats-peer",
    server: "nats-server",
    default_url: "nats://127.0.0.1:4222",
    server_help: "The nats-server to load; queue and exclusive need it started with JetStream (`-js`)",
    consumers_help: "Workers sharing the queue's pull consumer, each on its own connection",
    responders_help: "Responders in the queue group, each on its own connection (reqreply)",
    prefetch_help: "Unacked messages per worker (queue, exclusive): its pull batch; the consumer's \
                    max_ack_pending is this times the workers",
    storage_help: Some(
        "The JetStream storage of the queue's stream (queue, exclusive): memory, or file, which \
         the server syncs to disk as its `sync_interval` says",
    ),
};

/// Runs the scenario `args` names, then says on stderr what happened to the connections.
pub async fn run(args: &Args, start: Start) -> Result<Counts, String> {
    let events = connection::Events::default();
    let counts = match args.scenario {
        Scenario::Fanout => fanout::run(args, &events, start).await?,
        Scenario::Queue | Scenario::Exclusive => queue::run(args, &events, start).await?,
        Scenario::ReqReply => reqreply::run(args, &events, start).await?,
    };
    let (slow, disconnects, errors) = events.totals();
    if slow + disconnects + errors > 0 {
        eprintln!(
            "{}: connection events: {slow} slow consumer, {disconnects} disconnects, {errors} errors",
            BROKER.program
        );
    }
    Ok(counts)
}
