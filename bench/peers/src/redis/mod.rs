//! The Redis side of `redis-peer`: connections, and the commands each scenario sends (pub/sub,
//! streams with a consumer group, lists for request/reply).

mod connection;
mod fanout;
mod publish;
mod queue;
mod reqreply;
mod streams;

use crate::clock::Start;
use crate::config::{Args, Broker, Scenario};
use crate::report::Counts;

/// redis-peer's names and the help of its broker-specific flags.
pub static BROKER: Broker = Broker {
    name: "redis",
    program: "redis-peer",
    server: "redis-server",
    default_url: "redis://127.0.0.1:6379",
    server_help: "The redis-server to load (7.0 or later: reqreply uses BLMPOP)",
    consumers_help: "Workers in the stream's consumer group, each on its own connection",
    responders_help: "Responders popping the one request list, each on its own connection (reqreply)",
    prefetch_help: "Unacked messages per worker (queue, exclusive): the COUNT of each XREADGROUP, \
                    whose entries are all acked with the next read",
    storage_help: None,
};

/// Runs the scenario `args` names.
pub async fn run(args: &Args, start: Start) -> Result<Counts, String> {
    match args.scenario {
        Scenario::Fanout => fanout::run(args, start).await,
        Scenario::Queue | Scenario::Exclusive => queue::run(args, start).await,
        Scenario::ReqReply => reqreply::run(args, start).await,
    }
}
