//! The metrics a scrape returns, built from the broker's state at that moment: no metric is looked
//! up or hashed on the publish or delivery path, and a deleted group's series are gone with it.
//! `prometheus-client` does the encoding (OpenMetrics text, which Prometheus reads).
//!
//! Per group (labels `topic`, `group`, `mode`): `switchyard_group_ready`, `_in_flight`,
//! `_consumers`, `_bytes`, and the counters `_delivered_total`, `_acked_total`,
//! `_redelivered_total`, `_dead_lettered_total` (since the broker started). Broker-wide:
//! `switchyard_groups` and `switchyard_build_info`.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    broker::{Broker, GroupInfo},
    error::BrokerError,
};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    topic: String,
    group: String,
    mode: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Why a scrape could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot list the groups: {0}")]
    Broker(#[from] BrokerError),
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// What one metric reads of a group.
type Read = fn(&GroupInfo) -> u64;
/// A metric's name, help text and what it reads.
type Described = (&'static str, &'static str, Read);

/// Gauges and counters of one kind, one series per group.
struct PerGroup {
    gauges: Vec<(Family<GroupLabels, Gauge>, Read)>,
    counters: Vec<(Family<GroupLabels, Counter>, Read)>,
}

impl PerGroup {
    fn register(registry: &mut Registry) -> Self {
        let gauges: [Described; 4] = [
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
            ("switchyard_group_consumers", "Consumers attached", |g| {
                u64::from(g.consumers)
            }),
            (
                "switchyard_group_bytes",
                "What the held messages are charged, in bytes",
                |g| g.bytes,
            ),
        ];
        let counters: [Described; 4] = [
            (
                "switchyard_group_delivered",
                "Deliveries made, redeliveries included",
                |g| g.delivered,
            ),
            ("switchyard_group_acked", "Messages acked", |g| g.acked),
            (
                "switchyard_group_redelivered",
                "Deliveries that were not the first",
                |g| g.redelivered,
            ),
            (
                "switchyard_group_dead_lettered",
                "Messages rejected or out of deliveries",
                |g| g.dead_lettered,
            ),
        ];
        Self {
            gauges: families(registry, gauges),
            counters: families(registry, counters),
        }
    }

    fn record(&self, group: &GroupInfo) {
        let labels = GroupLabels {
            topic: group.pattern.to_string(),
            group: group.group.to_string(),
            mode: group.mode.to_string(),
        };
        for (family, value) in &self.gauges {
            let value = i64::try_from(value(group)).unwrap_or(i64::MAX);
            family.get_or_create(&labels).set(value);
        }
        for (family, value) in &self.counters {
            family.get_or_create(&labels).inc_by(value(group));
        }
    }
}

/// Registers one family per description.
fn families<M>(
    registry: &mut Registry,
    described: [Described; 4],
) -> Vec<(Family<GroupLabels, M>, Read)>
where
    Family<GroupLabels, M>: prometheus_client::registry::Metric + Clone + Default,
{
    described
        .into_iter()
        .map(|(name, help, read)| {
            let family = Family::<GroupLabels, M>::default();
            registry.register(name, help, family.clone());
            (family, read)
        })
        .collect()
}

/// The broker's metrics now, as OpenMetrics text.
pub async fn render<B: Broker>(broker: &B) -> Result<String, ScrapeError> {
    let groups = broker.list_groups().await?;
    let mut registry = Registry::default();
    let per_group = PerGroup::register(&mut registry);
    groups.iter().for_each(|group| per_group.record(group));
    let count = Gauge::<i64>::default();
    count.set(i64::try_from(groups.len()).unwrap_or(i64::MAX));
    registry.register("switchyard_groups", "Queue groups that exist", count);
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
        .set(1);
    registry.register("switchyard_build_info", "The running version", build);
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}
