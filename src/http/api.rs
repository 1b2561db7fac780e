//! The JSON API the dashboard reads, and scripts and `switchyard top` can too: `/api/overview`,
//! `/api/groups`, `/api/group?topic=&group=`, `/api/subscriptions` and `/api/connections`.
//! docs/observability.md describes every field. Ages and durations are seconds; rates are per second
//! over the last second, from the [`History`].

use std::time::Instant;

use serde::Serialize;

use super::{
    history::{GroupRates, History, Rates, Sample},
    snapshot::Snapshot,
};
use crate::broker::{ConsumerInfo, GroupInfo};

#[derive(Debug, Serialize)]
pub struct Overview {
    version: &'static str,
    uptime_seconds: f64,
    durable: bool,
    totals: Totals,
    rates: Option<Rates>,
    queued: Queued,
    counts: Counts,
    memory: Memory,
    streams: serde_json::Map<String, serde_json::Value>,
    publish_outcomes: serde_json::Map<String, serde_json::Value>,
    requests: Requests,
    journal: Option<Journal>,
    history: HistoryView,
}

#[derive(Debug, Serialize)]
struct Totals {
    published: u64,
    published_bytes: u64,
    delivered: u64,
    acked: u64,
    nacked: u64,
    redelivered: u64,
    dead_lettered: u64,
    subscription_delivered: u64,
    gaps: u64,
}

#[derive(Debug, Serialize)]
struct Queued {
    ready: u64,
    in_flight: u64,
}

#[derive(Debug, Serialize)]
struct Counts {
    groups: usize,
    subscriptions: u64,
    connections: usize,
}

#[derive(Debug, Serialize)]
struct Memory {
    used_bytes: u64,
    limit_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Requests {
    answered: u64,
    no_responders: u64,
    timed_out: u64,
    late_replies: u64,
}

#[derive(Debug, Serialize)]
struct Journal {
    bytes: u64,
    segments: u64,
    fsyncs: u64,
    records: u64,
    recovery_seconds: f64,
}

#[derive(Debug, Serialize)]
struct HistoryView {
    interval_seconds: f64,
    samples: Vec<Sample>,
}

/// The overview, with the history's samples after `since` (Unix ms), or all of them.
pub fn overview(snapshot: &Snapshot, history: &History, since: Option<u64>) -> Overview {
    let stats = &snapshot.stats;
    let (ready, in_flight) = snapshot.queued();
    let subscription_totals = snapshot
        .subscriptions
        .iter()
        .fold((0, 0), |(delivered, gaps), pattern| {
            (delivered + pattern.delivered, gaps + pattern.gaps)
        });
    let by_name = |entries: Vec<(String, u64)>| {
        entries
            .into_iter()
            .map(|(name, count)| (name, count.into()))
            .collect()
    };
    Overview {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: snapshot.uptime.as_secs_f64(),
        durable: stats.journal.is_some(),
        totals: Totals {
            published: stats.published,
            published_bytes: stats.published_bytes,
            delivered: stats.groups.delivered,
            acked: stats.groups.acked,
            nacked: stats.groups.nacked,
            redelivered: stats.groups.redelivered,
            dead_lettered: stats.groups.dead_lettered(),
            subscription_delivered: subscription_totals.0,
            gaps: subscription_totals.1,
        },
        rates: history.rates(),
        queued: Queued { ready, in_flight },
        counts: Counts {
            groups: snapshot.groups.len(),
            subscriptions: snapshot.subscribers(),
            connections: snapshot.connections.len(),
        },
        memory: Memory {
            used_bytes: stats.memory_used,
            limit_bytes: stats.memory_limit,
        },
        streams: by_name(
            snapshot
                .streams
                .iter()
                .map(|&(kind, open)| (kind.name().to_owned(), open))
                .collect(),
        ),
        publish_outcomes: by_name(
            snapshot
                .publishes
                .iter()
                .map(|&(code, count)| (super::snapshot::code_name(code), count))
                .collect(),
        ),
        requests: Requests {
            answered: stats.requests.answered,
            no_responders: stats.requests.no_responders,
            timed_out: stats.requests.timed_out,
            late_replies: stats.requests.late_replies,
        },
        journal: stats.journal.as_ref().map(|journal| Journal {
            bytes: journal.bytes,
            segments: journal.segments,
            fsyncs: journal.fsyncs,
            records: journal.records,
            recovery_seconds: journal.recovery.as_secs_f64(),
        }),
        history: HistoryView {
            interval_seconds: super::history::INTERVAL.as_secs_f64(),
            samples: history.samples_after(since.unwrap_or(0)),
        },
    }
}

#[derive(Debug, Serialize)]
pub struct Groups {
    groups: Vec<Group>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    topic: String,
    group: String,
    mode: String,
    ready: u64,
    in_flight: u64,
    consumers: u32,
    bytes: u64,
    oldest_ready_seconds: Option<f64>,
    oldest_unacked_seconds: Option<f64>,
    delivered: u64,
    acked: u64,
    nacked: u64,
    redelivered: u64,
    dead_lettered: DeadLettered,
    rates: Option<GroupRates>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "consumers_attached")]
    attached: Option<Vec<Consumer>>,
}

#[derive(Debug, Serialize)]
struct DeadLettered {
    rejected: u64,
    max_deliveries: u64,
}

#[derive(Debug, Serialize)]
struct Consumer {
    id: u64,
    prefetch: u32,
    in_flight: u32,
    ack_deadline_seconds: f64,
    active: bool,
}

pub fn group(snapshot: &Snapshot, history: &History, group: &GroupInfo) -> Group {
    let age = |at| snapshot.age(at).map(|age| age.as_secs_f64());
    Group {
        topic: group.pattern.to_string(),
        group: group.group.to_string(),
        mode: group.mode.to_string(),
        ready: group.ready,
        in_flight: group.in_flight,
        consumers: group.consumers,
        bytes: group.bytes,
        oldest_ready_seconds: age(group.oldest_ready),
        oldest_unacked_seconds: age(group.oldest_unacked),
        delivered: group.counters.delivered,
        acked: group.counters.acked,
        nacked: group.counters.nacked,
        redelivered: group.counters.redelivered,
        dead_lettered: DeadLettered {
            rejected: group.counters.rejected,
            max_deliveries: group.counters.exhausted,
        },
        rates: history.group_rates(group),
        attached: None,
    }
}

pub fn groups(snapshot: &Snapshot, history: &History) -> Groups {
    Groups {
        groups: snapshot
            .groups
            .iter()
            .map(|info| group(snapshot, history, info))
            .collect(),
    }
}

/// One group with its consumers.
pub fn group_detail(mut group: Group, consumers: Vec<ConsumerInfo>) -> Group {
    group.attached = Some(
        consumers
            .into_iter()
            .map(|consumer| Consumer {
                id: consumer.id,
                prefetch: consumer.prefetch,
                in_flight: consumer.in_flight,
                ack_deadline_seconds: consumer.ack_deadline.as_secs_f64(),
                active: consumer.active,
            })
            .collect(),
    );
    group
}

#[derive(Debug, Serialize)]
pub struct Subscriptions {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Serialize)]
struct Pattern {
    pattern: String,
    subscribers: u32,
    buffered: u64,
    delivered: u64,
    gaps: u64,
    slow_events: u64,
}

pub fn subscriptions(snapshot: &Snapshot) -> Subscriptions {
    Subscriptions {
        patterns: snapshot
            .subscriptions
            .iter()
            .map(|info| Pattern {
                pattern: info.pattern.to_string(),
                subscribers: info.subscribers,
                buffered: info.buffered,
                delivered: info.delivered,
                gaps: info.gaps,
                slow_events: info.slow_events,
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
pub struct Connections {
    connections: Vec<Connection>,
}

#[derive(Debug, Serialize)]
struct Connection {
    id: u64,
    peer: Option<String>,
    connected_seconds: f64,
    streams: u64,
}

pub fn connections(snapshot: &Snapshot, now: Instant) -> Connections {
    Connections {
        connections: snapshot
            .connections
            .iter()
            .map(|connection| Connection {
                id: connection.id,
                peer: connection.peer.map(|peer| peer.to_string()),
                connected_seconds: now.duration_since(connection.since).as_secs_f64(),
                streams: connection.streams(),
            })
            .collect(),
    }
}
