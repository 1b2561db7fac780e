//! nats-peer: `switchyard bench`'s scenarios against a nats-server (see the `peers` crate).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    peers::program::main(&peers::nats::BROKER, peers::nats::run).await
}
