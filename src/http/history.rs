//! The last minutes of the broker, sampled once a second, for the dashboard's charts and every
//! rate the JSON API reports: a fresh page shows the recent past at once, and `switchyard top`
//! and scripts get rates without keeping state of their own.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant, UNIX_EPOCH},
};

use parking_lot::Mutex;
use serde::Serialize;

use super::snapshot::Snapshot;
use crate::broker::GroupInfo;

/// How often the sampler looks.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept: ten minutes at one a second.
const KEPT: usize = 600;

/// Per-second rates of the broker's counters, over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    pub published: f64,
    pub delivered: f64,
    pub acked: f64,
    pub redelivered: f64,
}

/// One point of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Unix time in milliseconds.
    pub t: u64,
    #[serde(flatten)]
    pub rates: Rates,
    pub ready: u64,
    pub in_flight: u64,
}

/// A group's rates over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GroupRates {
    pub delivered: f64,
    pub acked: f64,
}

type GroupKey = (String, String);

/// Counters as of the last sample, to take rates from.
#[derive(Debug, Clone)]
struct Totals {
    at: Instant,
    published: u64,
    delivered: u64,
    acked: u64,
    redelivered: u64,
    groups: HashMap<GroupKey, (u64, u64)>,
}

#[derive(Debug, Default)]
struct State {
    samples: VecDeque<Sample>,
    last: Option<Totals>,
    rates: Option<Rates>,
    group_rates: HashMap<GroupKey, GroupRates>,
}

#[derive(Debug, Default)]
pub struct History(Mutex<State>);

fn key(group: &GroupInfo) -> GroupKey {
    (group.pattern.to_string(), group.group.to_string())
}

/// `(now - before) / seconds`, never negative: a counter that went down (a group deleted and made
/// again) is a rate of zero, not a negative one.
fn rate(now: u64, before: u64, seconds: f64) -> f64 {
    now.saturating_sub(before) as f64 / seconds
}

impl History {
    /// Takes in `snapshot`: a new sample once there is an earlier one to compare.
    pub fn record(&self, snapshot: &Snapshot) {
        let at = snapshot.at;
        let stats = &snapshot.stats;
        let totals = Totals {
            at,
            published: stats.published,
            delivered: stats.groups.delivered,
            acked: stats.groups.acked,
            redelivered: stats.groups.redelivered,
            groups: snapshot
                .groups
                .iter()
                .map(|group| (key(group), (group.counters.delivered, group.counters.acked)))
                .collect(),
        };
        let mut state = self.0.lock();
        // The same snapshot twice (the sampler and a page share them) is nothing new.
        if state.last.as_ref().is_some_and(|last| last.at >= at) {
            return;
        }
        if let Some(last) = &state.last {
            let seconds = at.duration_since(last.at).as_secs_f64().max(1e-3);
            let rates = Rates {
                published: rate(totals.published, last.published, seconds),
                delivered: rate(totals.delivered, last.delivered, seconds),
                acked: rate(totals.acked, last.acked, seconds),
                redelivered: rate(totals.redelivered, last.redelivered, seconds),
            };
            state.group_rates = totals
                .groups
                .iter()
                .map(|(key, &(delivered, acked))| {
                    let (was_delivered, was_acked) =
                        last.groups.get(key).copied().unwrap_or((delivered, acked));
                    let rates = GroupRates {
                        delivered: rate(delivered, was_delivered, seconds),
                        acked: rate(acked, was_acked, seconds),
                    };
                    (key.clone(), rates)
                })
                .collect();
            let (ready, in_flight) = snapshot.queued();
            let t = snapshot
                .taken
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64);
            if state.samples.len() == KEPT {
                state.samples.pop_front();
            }
            state.samples.push_back(Sample {
                t,
                rates,
                ready,
                in_flight,
            });
            state.rates = Some(rates);
        }
        state.last = Some(totals);
    }

    /// The broker's rates over the last interval; `None` before two samples.
    pub fn rates(&self) -> Option<Rates> {
        self.0.lock().rates
    }

    /// A group's rates over the last interval; `None` for a group not seen twice yet.
    pub fn group_rates(&self, group: &GroupInfo) -> Option<GroupRates> {
        self.0.lock().group_rates.get(&key(group)).copied()
    }

    /// The samples kept that were taken after `t` (Unix ms), oldest first; all of them for 0.
    pub fn samples_after(&self, t: u64) -> Vec<Sample> {
        let state = self.0.lock();
        let first = state.samples.partition_point(|sample| sample.t <= t);
        state.samples.range(first..).copied().collect()
    }
}
