//! The metrics a scrape returns, built from a [`Snapshot`] of the broker at that moment: no metric
//! is looked up or hashed on the publish or delivery path, and a deleted group's series are gone
//! with it. `prometheus-client` does the encoding (OpenMetrics text, which Prometheus reads).
//! docs/observability.md lists every series.

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{MetricType, counter::Counter, family::Family, gauge::Gauge},
    registry::{Metric, Registry},
};

use super::snapshot::{Snapshot, code_name};
use crate::broker::{GroupInfo, Histogram};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    topic: String,
    group: String,
    mode: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLetterLabels {
    topic: String,
    group: String,
    mode: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PatternLabels {
    pattern: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A histogram counted elsewhere (the journal's committer), encoded as it stands.
#[derive(Debug)]
struct Counted(Histogram);

impl EncodeMetric for Counted {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder adds the buckets up itself, and writes `+Inf` for a bound of `f64::MAX` (as
        // its own histograms end).
        let buckets: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|&(bound, count)| (if bound.is_finite() { bound } else { f64::MAX }, count))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.0.sum, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A per-group series: its name, help text, and what it reads of a group.
type Described<T> = (&'static str, &'static str, fn(&GroupInfo) -> T);

/// A registry being filled for one scrape.
struct Scrape(Registry);

impl Scrape {
    fn add(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.0.register(name, help, metric);
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        let gauge = Gauge::<i64>::default();
        gauge.set(clamp(value));
        self.add(name, help, gauge);
    }

    fn seconds(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Seconds::default();
        gauge.set(value);
        self.add(name, help, gauge);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        self.add(name, help, counter);
    }

    /// One family of metrics `M`, one series per label set, each set from its value by `set`.
    fn family<L, M, V>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (L, V)>,
        set: impl Fn(&M, V),
    ) where
        L: Labels,
        M: Default + std::fmt::Debug + Send + Sync + 'static,
        Family<L, M>: Metric,
    {
        let family = Family::<L, M>::default();
        for (labels, value) in series {
            set(&family.get_or_create(&labels), value);
        }
        self.add(name, help, family);
    }

    fn gauges<L>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (L, u64)>)
    where
        L: Labels,
    {
        self.family(name, help, series, |gauge: &Gauge, value| {
            gauge.set(clamp(value));
        });
    }

    fn seconds_by<L>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (L, f64)>)
    where
        L: Labels,
    {
        self.family(name, help, series, |gauge: &Seconds, value| {
            gauge.set(value);
        });
    }

    fn counters<L>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (L, u64)>)
    where
        L: Labels,
    {
        self.family(name, help, series, |counter: &Counter, value| {
            counter.inc_by(value);
        });
    }
}

/// What a family's label set must be.
trait Labels:
    EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static
{
}

impl<T> Labels for T where
    T: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static
{
}

/// A gauge of seconds (a float).
type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn group_labels(group: &GroupInfo) -> GroupLabels {
    GroupLabels {
        topic: group.pattern.to_string(),
        group: group.group.to_string(),
        mode: group.mode.to_string(),
    }
}

/// The snapshot as OpenMetrics text.
pub fn render(snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
    let mut scrape = Scrape(Registry::default());
    groups(&mut scrape, snapshot);
    subscriptions(&mut scrape, snapshot);
    broker_wide(&mut scrape, snapshot);
    journal(&mut scrape, snapshot);
    let mut text = String::new();
    encode(&mut text, &scrape.0)?;
    Ok(text)
}

fn groups(scrape: &mut Scrape, snapshot: &Snapshot) {
    let groups = &snapshot.groups;
    let by_group = |read: fn(&GroupInfo) -> u64| {
        groups
            .iter()
            .map(move |group| (group_labels(group), read(group)))
    };
    scrape.gauge(
        "switchyard_groups",
        "Queue groups that exist",
        groups.len() as u64,
    );
    let gauges: [Described<u64>; 4] = [
        (
            "switchyard_group_ready",
            "Messages waiting to be delivered",
            |g| g.ready,
        ),
        (
            "switchyard_group_in_flight",
            "Messages delivered and not yet settled",
            |g| g.in_flight,
        ),
        (
            "switchyard_group_consumers",
            "Consumers attached, standbys included",
            |g| u64::from(g.consumers),
        ),
        (
            "switchyard_group_bytes",
            "What the held messages are charged, in bytes",
            |g| g.bytes,
        ),
    ];
    for (name, help, read) in gauges {
        scrape.gauges(name, help, by_group(read));
    }
    let counters: [Described<u64>; 4] = [
        (
            "switchyard_group_delivered",
            "Deliveries made, redeliveries included",
            |g| g.counters.delivered,
        ),
        ("switchyard_group_acked", "Messages acked", |g| {
            g.counters.acked
        }),
        ("switchyard_group_nacked", "Deliveries nacked", |g| {
            g.counters.nacked
        }),
        (
            "switchyard_group_redelivered",
            "Deliveries that were not a message's first",
            |g| g.counters.redelivered,
        ),
    ];
    for (name, help, read) in counters {
        scrape.counters(name, help, by_group(read));
    }
    let dead = groups.iter().flat_map(|group| {
        let GroupLabels {
            topic,
            group: name,
            mode,
        } = group_labels(group);
        [
            ("rejected", group.counters.rejected),
            ("max_deliveries", group.counters.exhausted),
        ]
        .map(|(reason, count)| {
            let labels = DeadLetterLabels {
                topic: topic.clone(),
                group: name.clone(),
                mode: mode.clone(),
                reason,
            };
            (labels, count)
        })
    });
    scrape.counters(
        "switchyard_group_dead_lettered",
        "Messages that left as dead letters, by reason",
        dead,
    );
    let ages: [Described<Option<std::time::SystemTime>>; 2] = [
        (
            "switchyard_group_oldest_ready_age_seconds",
            "Age of the oldest message waiting to be delivered (0 if none)",
            |g| g.oldest_ready,
        ),
        (
            "switchyard_group_oldest_unacked_age_seconds",
            "Age of the oldest message not yet acked, waiting or in flight (0 if none)",
            |g| g.oldest_unacked,
        ),
    ];
    for (name, help, read) in ages {
        let series = groups.iter().map(|group| {
            let age = snapshot.age(read(group)).unwrap_or_default();
            (group_labels(group), age.as_secs_f64())
        });
        scrape.seconds_by(name, help, series);
    }
}

fn subscriptions(scrape: &mut Scrape, snapshot: &Snapshot) {
    let patterns = &snapshot.subscriptions;
    scrape.gauge(
        "switchyard_subscriptions",
        "Subscriptions open, over every pattern",
        snapshot.subscribers(),
    );
    let by_pattern = |read: fn(&crate::broker::SubscriptionInfo) -> u64| {
        patterns.iter().map(move |info| {
            let labels = PatternLabels {
                pattern: info.pattern.to_string(),
            };
            (labels, read(info))
        })
    };
    scrape.gauges(
        "switchyard_subscription_subscribers",
        "Subscriptions open to the pattern",
        by_pattern(|s| u64::from(s.subscribers)),
    );
    scrape.gauges(
        "switchyard_subscription_buffered",
        "Messages waiting in the pattern's subscriber buffers",
        by_pattern(|s| s.buffered),
    );
    scrape.counters(
        "switchyard_subscription_delivered",
        "Messages handed to the pattern's subscribers",
        by_pattern(|s| s.delivered),
    );
    scrape.counters(
        "switchyard_subscription_gaps",
        "Messages dropped for the pattern's subscribers because they were too slow",
        by_pattern(|s| s.gaps),
    );
    scrape.counters(
        "switchyard_subscription_slow_events",
        "Times a subscriber's buffer overflowed (each starts a gap)",
        by_pattern(|s| s.slow_events),
    );
}

fn broker_wide(scrape: &mut Scrape, snapshot: &Snapshot) {
    let stats = &snapshot.stats;
    scrape.counter(
        "switchyard_published_messages",
        "Messages accepted by publishes, requests included",
        stats.published,
    );
    scrape.counter(
        "switchyard_published_bytes",
        "Payload bytes of the messages accepted",
        stats.published_bytes,
    );
    scrape.counters(
        "switchyard_publish_requests",
        "Publish calls and PublishStream frames, by the gRPC status they ended with",
        by_code(&snapshot.publishes),
    );
    scrape.counters(
        "switchyard_ack_requests",
        "Ack calls (each settles a batch of deliveries), by the gRPC status they ended with",
        by_code(&snapshot.acks),
    );
    scrape.gauge(
        "switchyard_memory_used_bytes",
        "What the messages held take, as max_memory_bytes counts it",
        stats.memory_used,
    );
    scrape.gauge(
        "switchyard_memory_limit_bytes",
        "max_memory_bytes",
        stats.memory_limit,
    );
    let (accepted, refused) = snapshot.connection_totals;
    scrape.gauge(
        "switchyard_connections",
        "Client connections open",
        snapshot.connections.len() as u64,
    );
    scrape.counter(
        "switchyard_connections_accepted",
        "Client connections accepted",
        accepted,
    );
    scrape.counter(
        "switchyard_connections_refused",
        "Client connections closed at once because max_connections was reached",
        refused,
    );
    let streams = snapshot.streams.iter().map(|&(kind, open)| {
        let labels = RpcLabels { rpc: kind.name() };
        (labels, open)
    });
    scrape.gauges(
        "switchyard_streams",
        "Streaming calls open, by RPC",
        streams,
    );
    let requests = stats.requests;
    let outcomes = [
        ("answered", requests.answered),
        ("no_responders", requests.no_responders),
        ("timed_out", requests.timed_out),
    ]
    .map(|(outcome, count)| (OutcomeLabels { outcome }, count));
    scrape.counters(
        "switchyard_requests",
        "Requests, by how they ended",
        outcomes,
    );
    scrape.counter(
        "switchyard_late_replies",
        "Replies dropped because no request was waiting for them (too late, or a wrong correlation id)",
        requests.late_replies,
    );
    scrape.seconds(
        "switchyard_uptime_seconds",
        "How long the broker has served",
        snapshot.uptime.as_secs_f64(),
    );
    let build = [(
        VersionLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        1,
    )];
    scrape.gauges("switchyard_build_info", "The running version", build);
}

fn journal(scrape: &mut Scrape, snapshot: &Snapshot) {
    let Some(journal) = &snapshot.stats.journal else {
        return;
    };
    scrape.gauge(
        "switchyard_journal_bytes",
        "What the log's segment files take",
        journal.bytes,
    );
    scrape.gauge(
        "switchyard_journal_segments",
        "The log's segment files",
        journal.segments,
    );
    scrape.counter(
        "switchyard_journal_records",
        "Records written to the log",
        journal.records,
    );
    scrape.counter(
        "switchyard_journal_fsyncs",
        "Frames written and fsynced (one fsync each)",
        journal.fsyncs,
    );
    scrape.add(
        "switchyard_journal_fsync_seconds",
        "Time to write and fsync one frame",
        Counted(journal.fsync_seconds.clone()),
    );
    scrape.add(
        "switchyard_journal_batch_records",
        "Records carried by one fsync",
        Counted(journal.batch_records.clone()),
    );
    scrape.seconds(
        "switchyard_journal_recovery_seconds",
        "How long opening the data directory and replaying its log took at start",
        journal.recovery.as_secs_f64(),
    );
}

/// One series per status code seen, labelled with the code's name.
fn by_code(counts: &[(i32, u64)]) -> impl Iterator<Item = (CodeLabels, u64)> + '_ {
    counts.iter().map(|&(code, count)| {
        let labels = CodeLabels {
            code: code_name(code),
        };
        (labels, count)
    })
}
