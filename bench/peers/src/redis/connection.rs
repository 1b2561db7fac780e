//! Connections to redis-server: one per benchmark participant, as in `switchyard bench`.
//!
//! A multiplexed connection pipelines whatever its users send concurrently. Workers and responders
//! park in blocking reads (XREADGROUP BLOCK, BLMPOP) on their own connection, so the client's
//! response timeout is off: each blocking command carries its own, well under a second.

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, Value};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn client(server: &str) -> Result<Client, String> {
    Client::open(server).map_err(|e| format!("bad server address {server}: {e}"))
}

/// A new multiplexed connection to `server`, for `who`.
pub async fn open(server: &str, who: &str) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None);
    client(server)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("cannot connect {who} to {server}: {e}"))
}

/// A new connection to `server` in subscriber mode.
pub async fn subscriber(server: &str, who: &str) -> Result<PubSub, String> {
    client(server)?
        .get_async_pubsub()
        .await
        .map_err(|e| format!("cannot connect {who} to {server}: {e}"))
}

/// Deletes `keys` left by an interrupted run (or this one).
pub async fn delete(connection: &mut MultiplexedConnection, keys: &[&str]) -> Result<(), String> {
    redis::cmd("DEL")
        .arg(keys)
        .query_async::<Value>(connection)
        .await
        .map(drop)
        .map_err(|e| format!("cannot delete {keys:?}: {e}"))
}

/// The bytes of a bulk string, or `None` for any other reply.
pub fn bulk(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        _ => None,
    }
}

/// The items of an array reply, or `None` for any other reply.
pub fn array(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}
