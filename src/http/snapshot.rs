//! The broker's state at one moment, as the metrics, the JSON API and the history read it: taken
//! once per request (or sample) from the broker and the edge's counters.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    activity::{Activity, Connection, StreamKind},
    broker::{Broker, BrokerStats, GroupInfo, SubscriptionInfo},
    error::BrokerError,
};

#[derive(Debug)]
pub struct Snapshot {
    pub taken: SystemTime,
    /// The same moment on the monotonic clock, for rates.
    pub at: Instant,
    pub uptime: Duration,
    pub groups: Vec<GroupInfo>,
    pub subscriptions: Vec<SubscriptionInfo>,
    pub stats: BrokerStats,
    pub streams: Vec<(StreamKind, u64)>,
    /// Publish calls by status code.
    pub publishes: Vec<(i32, u64)>,
    /// Ack calls by status code.
    pub acks: Vec<(i32, u64)>,
    pub connections: Vec<Arc<Connection>>,
    /// Connections accepted and refused since the start.
    pub connection_totals: (u64, u64),
}

impl Snapshot {
    pub async fn take<B: Broker>(broker: &B, activity: &Activity) -> Result<Self, BrokerError> {
        // Before anything is read: what follows is at least this fresh.
        let (taken, at) = (SystemTime::now(), Instant::now());
        let groups = broker.list_groups().await?;
        Ok(Self {
            taken,
            at,
            uptime: activity.started().elapsed(),
            groups,
            subscriptions: broker.list_subscriptions(),
            stats: broker.stats(),
            streams: activity.streams(),
            publishes: activity.publishes(),
            acks: activity.acks(),
            connections: activity.connections(),
            connection_totals: activity.connection_totals(),
        })
    }

    /// Messages waiting and in flight, over every group.
    pub fn queued(&self) -> (u64, u64) {
        self.groups
            .iter()
            .fold((0, 0), |(ready, in_flight), group| {
                (ready + group.ready, in_flight + group.in_flight)
            })
    }

    /// Subscriptions open, over every pattern.
    pub fn subscribers(&self) -> u64 {
        self.subscriptions
            .iter()
            .map(|pattern| u64::from(pattern.subscribers))
            .sum()
    }

    /// How long ago `at` was, as of this snapshot: zero for a time ahead (a clock step).
    pub fn age(&self, at: Option<SystemTime>) -> Option<Duration> {
        at.map(|at| self.taken.duration_since(at).unwrap_or_default())
    }
}

/// A gRPC status code's name as gRPC's own metrics write it (`OK`, `InvalidArgument`, ...).
pub fn code_name(code: i32) -> String {
    match code {
        0 => "OK".to_owned(),
        code => format!("{:?}", tonic::Code::from_i32(code)),
    }
}
