//! What the gRPC edge counts for monitoring: the connections open, the streams open by RPC, and how
//! publishes and Ack calls ended by status code. The broker behind the seam knows none of this; the transport and
//! the connection limiter bump these counters, and the HTTP listener reads them.
//!
//! Everything here is touched once per connection, stream or call, never per message.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use parking_lot::Mutex;

/// The streaming RPCs, counted while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Subscribe,
    Consume,
    PublishStream,
    RequestStream,
}

impl StreamKind {
    pub const ALL: [Self; 4] = [
        Self::Subscribe,
        Self::Consume,
        Self::PublishStream,
        Self::RequestStream,
    ];

    /// The RPC's name, as a metric label and a JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Consume => "consume",
            Self::PublishStream => "publish_stream",
            Self::RequestStream => "request_stream",
        }
    }
}

/// gRPC status codes run from 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

/// Calls counted by the gRPC status code they ended with.
#[derive(Debug, Default)]
struct ByCode([AtomicU64; CODES]);

impl ByCode {
    fn count(&self, code: i32) {
        // A code gRPC does not define counts as UNKNOWN (2).
        let index = usize::try_from(code)
            .ok()
            .filter(|&code| code < CODES)
            .unwrap_or(2);
        self.0[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The codes seen so far, with their counts.
    fn seen(&self) -> Vec<(i32, u64)> {
        (0..CODES)
            .filter_map(|code| {
                let count = self.0[code].load(Ordering::Relaxed);
                (count > 0).then_some((code as i32, count))
            })
            .collect()
    }
}

/// The edge's counters, shared by the transport, the connection limiter and the HTTP listener.
#[derive(Debug)]
pub struct Activity {
    streams: [AtomicU64; StreamKind::ALL.len()],
    /// Publish calls (and PublishStream batches) by the status code they ended with.
    publishes: ByCode,
    /// Ack calls by the status code they ended with: beside the groups' settlement counts, how well
    /// clients batch their settlements.
    acks: ByCode,
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    /// By peer address, to find a stream's connection.
    peers: Mutex<HashMap<SocketAddr, Arc<Connection>>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    next_connection: AtomicU64,
    started: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            streams: Default::default(),
            publishes: ByCode::default(),
            acks: ByCode::default(),
            connections: Mutex::default(),
            peers: Mutex::default(),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            next_connection: AtomicU64::new(1),
            started: Instant::now(),
        }
    }
}

/// One client connection, while it is open.
#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub peer: Option<SocketAddr>,
    pub since: Instant,
    streams: AtomicU64,
}

impl Connection {
    /// Streams this connection has open now.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }
}

/// A connection's place in [`Activity`]; dropping it (with the socket) removes it.
#[derive(Debug)]
pub struct Registered {
    activity: Arc<Activity>,
    connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.activity.connections.lock().remove(&self.connection.id);
        if let Some(peer) = self.connection.peer {
            // Only its own entry: a new connection from the same address may have taken it.
            let mut peers = self.activity.peers.lock();
            if peers
                .get(&peer)
                .is_some_and(|found| Arc::ptr_eq(found, &self.connection))
            {
                peers.remove(&peer);
            }
        }
    }
}

/// An open stream, counted until dropped (with the response stream).
#[derive(Debug)]
pub struct OpenStream {
    activity: Arc<Activity>,
    kind: StreamKind,
    connection: Option<Arc<Connection>>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.activity.streams[self.kind as usize].fetch_sub(1, Ordering::Relaxed);
        if let Some(connection) = &self.connection {
            connection.streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Activity {
    /// Counts a connection accepted from `peer`, open until the returned guard is dropped.
    pub fn connected(self: &Arc<Self>, peer: Option<SocketAddr>) -> Registered {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id: self.next_connection.fetch_add(1, Ordering::Relaxed),
            peer,
            since: Instant::now(),
            streams: AtomicU64::new(0),
        });
        self.connections
            .lock()
            .insert(connection.id, Arc::clone(&connection));
        if let Some(peer) = peer {
            self.peers.lock().insert(peer, Arc::clone(&connection));
        }
        Registered {
            activity: Arc::clone(self),
            connection,
        }
    }

    /// Counts a connection closed at once because `max_connections` was reached.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream of `kind` opened by the client at `peer`, open until the guard is dropped.
    pub fn stream_opened(
        self: &Arc<Self>,
        kind: StreamKind,
        peer: Option<SocketAddr>,
    ) -> OpenStream {
        self.streams[kind as usize].fetch_add(1, Ordering::Relaxed);
        let connection = peer.and_then(|peer| self.peers.lock().get(&peer).cloned());
        if let Some(connection) = &connection {
            connection.streams.fetch_add(1, Ordering::Relaxed);
        }
        OpenStream {
            activity: Arc::clone(self),
            kind,
            connection,
        }
    }

    /// Counts a publish call (or PublishStream batch) that ended with status `code` (0 is OK).
    pub fn publish_ended(&self, code: i32) {
        self.publishes.count(code);
    }

    /// Counts an Ack call that ended with status `code`.
    pub fn ack_ended(&self, code: i32) {
        self.acks.count(code);
    }

    /// Streams open now, by RPC.
    pub fn streams(&self) -> Vec<(StreamKind, u64)> {
        StreamKind::ALL
            .iter()
            .map(|&kind| (kind, self.streams[kind as usize].load(Ordering::Relaxed)))
            .collect()
    }

    /// Publishes by status code, the codes seen so far only.
    pub fn publishes(&self) -> Vec<(i32, u64)> {
        self.publishes.seen()
    }

    /// Ack calls by status code, the codes seen so far only.
    pub fn acks(&self) -> Vec<(i32, u64)> {
        self.acks.seen()
    }

    /// The connections open now, oldest first.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        let mut open: Vec<Arc<Connection>> = self.connections.lock().values().cloned().collect();
        open.sort_by_key(|connection| connection.id);
        open
    }

    /// Connections accepted and refused since the start.
    pub fn connection_totals(&self) -> (u64, u64) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Since when the server has run.
    pub fn started(&self) -> Instant {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_count_on_their_connection_until_dropped() {
        let activity = Arc::new(Activity::default());
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let registered = activity.connected(Some(peer));
        let stream = activity.stream_opened(StreamKind::Consume, Some(peer));
        let other = activity.stream_opened(StreamKind::Subscribe, None);
        assert_eq!(activity.connections()[0].streams(), 1);
        assert_eq!(activity.streams()[1], (StreamKind::Consume, 1));
        drop(stream);
        drop(other);
        assert_eq!(activity.connections()[0].streams(), 0);
        assert!(activity.streams().iter().all(|(_, open)| *open == 0));
        drop(registered);
        assert!(activity.connections().is_empty());
        assert_eq!(activity.connection_totals(), (1, 0));
    }

    #[test]
    fn publishes_count_by_code_and_clamp_unknown_codes() {
        let activity = Activity::default();
        activity.publish_ended(0);
        activity.publish_ended(0);
        activity.publish_ended(8);
        activity.publish_ended(99);
        assert_eq!(activity.publishes(), [(0, 2), (2, 1), (8, 1)]);
        assert!(activity.acks().is_empty(), "acks are counted apart");
        activity.ack_ended(5);
        assert_eq!(activity.acks(), [(5, 1)]);
    }
}
