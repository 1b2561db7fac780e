//! One NATS connection per benchmark participant, and the connection events it had: a subscriber
//! whose connection dropped messages or broke no longer says anything about the server's delivery
//! to subscribers that keep up, as in `switchyard bench`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::{Client, ConnectOptions, Event, ServerError};

/// What happened to one connection.
#[derive(Debug, Default)]
pub struct Counters {
    /// Times a subscription could not take a message: the client's buffer for it was full (and
    /// async-nats dropped the message), or the server cut a slow consumer off. NATS tells the
    /// subscriber no more than that; Switchyard sends it a `Gap` with the count.
    pub slow_consumer: AtomicU64,
    pub disconnects: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    /// Whether messages may have gone missing on this connection for reasons of its own.
    pub fn troubled(&self) -> bool {
        self.slow_consumer.load(Ordering::Relaxed) > 0
            || self.disconnects.load(Ordering::Relaxed) > 0
    }
}

/// Every connection of the run, for the totals printed at the end.
#[derive(Debug, Default)]
pub struct Events {
    /// A `std` mutex: locked only to add a connection and to sum at the end, never across `.await`.
    connections: Mutex<Vec<Arc<Counters>>>,
}

impl Events {
    /// (slow-consumer events, disconnects, errors) over every connection.
    pub fn totals(&self) -> (u64, u64, u64) {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        connections.iter().fold((0, 0, 0), |(s, d, e), c| {
            (
                s + c.slow_consumer.load(Ordering::Relaxed),
                d + c.disconnects.load(Ordering::Relaxed),
                e + c.errors.load(Ordering::Relaxed),
            )
        })
    }
}

/// A connected client and its event counters.
pub struct Connection {
    pub client: Client,
    pub counters: Arc<Counters>,
}

impl Connection {
    /// Connects to `server` as `name`. A comma-separated list names a cluster's servers, of
    /// which the client picks one at random, as async-nats does.
    pub async fn open(server: &str, name: &str, events: &Events) -> Result<Self, String> {
        let servers = server
            .split(',')
            .map(|url| url.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--server {server}: {e}"))?;
        let counters = Arc::new(Counters::default());
        let counting = Arc::clone(&counters);
        let client = ConnectOptions::new()
            .name(name)
            .event_callback(move |event| {
                let counters = Arc::clone(&counting);
                async move {
                    let counter = match event {
                        Event::SlowConsumer(_)
                        | Event::ServerError(ServerError::SlowConsumer(_)) => {
                            &counters.slow_consumer
                        }
                        Event::Disconnected => &counters.disconnects,
                        Event::ServerError(_) | Event::ClientError(_) => &counters.errors,
                        _ => return,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .connect(servers)
            .await
            .map_err(|e| format!("cannot connect {name} to {server}: {e}"))?;
        events
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::clone(&counters));
        Ok(Self { client, counters })
    }
}
