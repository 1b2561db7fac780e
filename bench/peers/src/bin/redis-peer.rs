//! redis-peer: `switchyard bench`'s scenarios against a redis-server (see the `peers` crate).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    peers::program::main(&peers::redis::BROKER, peers::redis::run).await
}
