//! Queue groups in cluster mode: each is a durable pull consumer on the stream, named by a digest
//! of its pattern and name (a consumer name cannot hold `.`, `*` or `>`), with its settings in the
//! consumer's metadata. So every node finds every group, and a group outlives every node.
//!
//! Groups that Consume made are removed once idle ([`keep_up`]), as in memory.
//!
//! Each node keeps a copy of the groups it has seen, refreshed every [`REFRESH`] and at once when
//! it may have missed a change ([`super::view`]): a publish counts the groups it reached from it,
//! and one that reaches none stays out of the stream.
//! What a node counted (deliveries, acks, …) is its own; the stream's numbers (ready, in flight)
//! are the cluster's.

use std::{
    collections::HashMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{
    consumer::{self, AckPolicy, DeliverPolicy, pull},
    context::ConsumerInfoErrorKind,
};
use futures_util::TryStreamExt;
use parking_lot::{Mutex, RwLock};

use super::{Shared, census, unavailable};
use crate::{
    broker::{ConsumeMode, GroupCounters, GroupInfo, GroupSpec},
    error::BrokerError,
    memory::group_state::GroupSettings,
    topic::{GroupName, Pattern, Topic, TopicLimits},
};

/// How often a node reads the cluster's groups again.
const REFRESH: Duration = Duration::from_secs(2);
/// How long a consumer's count may lag the stream's acknowledgement of a publish.
const COUNT_LAG: Duration = Duration::from_millis(20);
/// Pull requests a group's consumer keeps waiting at most, across all nodes: each Switchyard
/// consumer keeps one or two. NATS's default (512) would cap a group's consumers.
const MAX_WAITING: i64 = 8192;

/// A group as the cluster knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The JetStream consumer's name.
    pub consumer: String,
    pub pattern: Pattern,
    pub group: GroupName,
    pub settings: GroupSettings,
    pub declared: bool,
}

/// This node's copy of the groups, and what it counted for each.
#[derive(Debug, Default)]
pub struct Groups {
    known: RwLock<HashMap<String, Arc<Known>>>,
    /// How many times `known` was changed one group at a time (a notice, a call on this node):
    /// a full read that such a change overtook must not undo it.
    changes: AtomicU64,
    counters: Mutex<HashMap<String, GroupCounters>>,
    /// What each group holds, at least: as JetStream last said plus what this node published to it
    /// since, less what it settled here. How `max_length` is checked without a round trip per
    /// publish; it errs high, so a refusal is checked against JetStream first.
    held: Mutex<HashMap<String, u64>>,
}

/// A batch that would take a group past its `max_length`, by this node's estimate.
#[derive(Debug)]
pub struct Over {
    pub index: usize,
    pub group: Arc<Known>,
    pub never_fits: bool,
}

impl Groups {
    /// The pattern of the group whose JetStream consumer is `consumer`, if this node knows it.
    pub fn pattern_of(&self, consumer: &str) -> Option<Pattern> {
        let known = self.known.read();
        known.get(consumer).map(|group| group.pattern.clone())
    }

    /// The groups known to store a message on `topic`.
    pub fn matching(&self, topic: &Topic) -> u32 {
        let known = self.known.read();
        let count = known
            .values()
            .filter(|group| group.pattern.matches(topic))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The one group known to read `topic`, if there is exactly one and it is shared: a request to
    /// it may be handed straight to one of its consumers (see `direct`).
    pub fn sole_shared_reader(&self, topic: &Topic) -> Option<Arc<Known>> {
        let known = self.known.read();
        let mut matching = known.values().filter(|group| group.pattern.matches(topic));
        let group = matching.next()?;
        let shared = group.settings.mode == ConsumeMode::Shared;
        (shared && matching.next().is_none()).then(|| Arc::clone(group))
    }

    /// Counts a batch on `topics` into the groups it reaches, all or nothing: the groups each
    /// message reaches, or the first message that one would not have room for.
    pub fn admit(&self, topics: &[&Topic]) -> Result<Vec<u32>, Over> {
        let known = self.known.read();
        let mut held = self.held.lock();
        let mut added: HashMap<&str, u64> = HashMap::new();
        let mut reached = Vec::with_capacity(topics.len());
        for (index, topic) in topics.iter().enumerate() {
            let mut groups = 0;
            for group in known.values().filter(|group| group.pattern.matches(topic)) {
                let adding = added.entry(group.consumer.as_str()).or_default();
                *adding += 1;
                let now = held.get(&group.consumer).copied().unwrap_or(0);
                if now + *adding > u64::from(group.settings.max_length) {
                    let in_batch = topics.iter().filter(|t| group.pattern.matches(t)).count();
                    return Err(Over {
                        index,
                        group: Arc::clone(group),
                        never_fits: in_batch as u64 > u64::from(group.settings.max_length),
                    });
                }
                groups += 1;
            }
            reached.push(groups);
        }
        for (consumer, adding) in added {
            *held.entry(consumer.to_owned()).or_default() += adding;
        }
        Ok(reached)
    }

    /// One message left `consumer`'s group here (acked, or dead-lettered).
    pub fn released(&self, consumer: &str) {
        if let Some(held) = self.held.lock().get_mut(consumer) {
            *held = held.saturating_sub(1);
        }
    }

    /// What JetStream says `consumer`'s group holds now.
    pub fn holds(&self, consumer: &str, messages: u64) {
        self.held.lock().insert(consumer.to_owned(), messages);
    }

    /// Adds to what this node counted for `consumer`'s group.
    pub fn count(&self, consumer: &str, add: impl FnOnce(&mut GroupCounters)) {
        add(self.counters.lock().entry(consumer.to_owned()).or_default());
    }

    /// Every group's counts on this node, deleted groups included.
    pub fn counters(&self) -> GroupCounters {
        let mut total = GroupCounters::default();
        for counters in self.counters.lock().values() {
            total.add(counters);
        }
        total
    }

    /// What this node counted, by group.
    pub fn all_counters(&self) -> Vec<(String, GroupCounters)> {
        let counters = self.counters.lock();
        counters
            .iter()
            .map(|(name, counters)| (name.clone(), *counters))
            .collect()
    }

    fn remember(&self, known: Known) -> Arc<Known> {
        let known = Arc::new(known);
        let mut all = self.known.write();
        all.insert(known.consumer.clone(), Arc::clone(&known));
        self.changes.fetch_add(1, Ordering::SeqCst);
        known
    }

    fn forget(&self, consumer: &str) {
        let mut all = self.known.write();
        all.remove(consumer);
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Replaces the copy with a full read that began when `changes` was `began`. If a group
    /// changed since, the read may predate it, so the read only adds the groups the copy lacks
    /// (one deleted meanwhile may come back until the next read, which only sends its messages
    /// through the stream).
    fn replace(&self, read: HashMap<String, Arc<Known>>, began: u64) {
        let mut all = self.known.write();
        if self.changes.load(Ordering::SeqCst) == began {
            *all = read;
            return;
        }
        for (consumer, known) in read {
            all.entry(consumer).or_insert(known);
        }
    }
}

/// The consumer name of the group `group` on `pattern`.
pub fn consumer_name(pattern: &Pattern, group: &GroupName) -> String {
    let key = format!("{pattern}\n{group}");
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sy-{hex}")
}

mod key {
    pub const PATTERN: &str = "switchyard.pattern";
    pub const GROUP: &str = "switchyard.group";
    pub const MODE: &str = "switchyard.mode";
    pub const MAX_LENGTH: &str = "switchyard.max_length";
    pub const MAX_BYTES: &str = "switchyard.max_bytes";
    pub const ACK_DEADLINE_MS: &str = "switchyard.ack_deadline_ms";
    pub const MAX_DELIVERIES: &str = "switchyard.max_deliveries";
    pub const DEAD_LETTER_TOPIC: &str = "switchyard.dead_letter_topic";
    pub const DECLARED: &str = "switchyard.declared";
}

impl Known {
    fn metadata(&self) -> HashMap<String, String> {
        let settings = &self.settings;
        let optional = |value: Option<String>| value.unwrap_or_default();
        HashMap::from([
            (key::PATTERN.into(), self.pattern.to_string()),
            (key::GROUP.into(), self.group.to_string()),
            (key::MODE.into(), settings.mode.to_string()),
            (key::MAX_LENGTH.into(), settings.max_length.to_string()),
            (
                key::MAX_BYTES.into(),
                optional(settings.max_bytes.map(|max| max.to_string())),
            ),
            (
                key::ACK_DEADLINE_MS.into(),
                settings.ack_deadline.as_millis().to_string(),
            ),
            (
                key::MAX_DELIVERIES.into(),
                optional(settings.max_deliveries.map(|max| max.to_string())),
            ),
            (
                key::DEAD_LETTER_TOPIC.into(),
                optional(settings.dead_letter_topic.as_ref().map(Topic::to_string)),
            ),
            (key::DECLARED.into(), self.declared.to_string()),
        ])
    }

    /// The group a consumer's metadata describes; `None` for a consumer Switchyard did not make.
    fn from_metadata(
        consumer: &str,
        metadata: &HashMap<String, String>,
        limits: TopicLimits,
    ) -> Option<Self> {
        let get = |key: &str| metadata.get(key).map(String::as_str);
        let optional = |key: &str| get(key).filter(|value| !value.is_empty());
        let mode = match get(key::MODE)? {
            "exclusive" => ConsumeMode::Exclusive,
            _ => ConsumeMode::Shared,
        };
        let dead_letter_topic = match optional(key::DEAD_LETTER_TOPIC) {
            Some(topic) => Some(Topic::parse(topic, limits).ok()?),
            None => None,
        };
        Some(Self {
            consumer: consumer.to_owned(),
            pattern: Pattern::parse(get(key::PATTERN)?, limits).ok()?,
            // Names were checked against the limit when the group was made.
            group: GroupName::parse(get(key::GROUP)?, usize::MAX).ok()?,
            settings: GroupSettings {
                mode,
                max_length: get(key::MAX_LENGTH)?.parse().ok()?,
                max_bytes: optional(key::MAX_BYTES).and_then(|max| max.parse().ok()),
                ack_deadline: Duration::from_millis(get(key::ACK_DEADLINE_MS)?.parse().ok()?),
                max_deliveries: optional(key::MAX_DELIVERIES).and_then(|max| max.parse().ok()),
                dead_letter_topic,
            },
            declared: get(key::DECLARED) == Some("true"),
        })
    }

    fn from_info(info: &consumer::Info, limits: TopicLimits) -> Option<Self> {
        Self::from_metadata(&info.name, &info.config.metadata, limits)
    }

    fn consumer_config(&self, shared: &Shared) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            description: Some(format!(
                "Switchyard group {} on {}",
                self.group, self.pattern
            )),
            // A group holds what is published while it exists, not what came before it.
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.settings.ack_deadline,
            // Redelivery limits and dead letters are Switchyard's: JetStream's MaxDeliver only
            // stops delivering, and leaves the message in the stream.
            max_deliver: -1,
            filter_subject: shared.subjects.group_filter(&self.pattern),
            max_waiting: MAX_WAITING,
            max_ack_pending: -1,
            metadata: self.metadata(),
            ..Default::default()
        }
    }
}

/// Finds the group a consumer joins, creating it with the defaults if it is not there.
pub async fn for_consumer(
    shared: &Shared,
    pattern: &Pattern,
    group: &GroupName,
    mode: ConsumeMode,
) -> Result<Arc<Known>, BrokerError> {
    let wanted = Known {
        consumer: consumer_name(pattern, group),
        pattern: pattern.clone(),
        group: group.clone(),
        settings: GroupSettings::made_by_consume(mode, &shared.config),
        declared: false,
    };
    ensure(shared, wanted, |existing| {
        if existing.settings.mode == mode {
            return Ok(None);
        }
        Err(BrokerError::GroupConflict {
            group: existing.group.to_string(),
            setting: "mode",
            existing: existing.settings.mode.to_string(),
            requested: mode.to_string(),
        })
    })
    .await
}

/// Creates a declared group, or accepts an identical one (declaring it, if Consume made it).
pub async fn declare(shared: &Shared, spec: GroupSpec) -> Result<(), BrokerError> {
    if spec.max_bytes.is_some() {
        return Err(BrokerError::Unsupported {
            what: "max_bytes is not available in cluster mode: JetStream does not count a group's \
                   bytes; use max_length"
                .into(),
        });
    }
    let wanted = Known {
        consumer: consumer_name(&spec.pattern, &spec.group),
        settings: GroupSettings::declared(&spec, &shared.config),
        pattern: spec.pattern,
        group: spec.group,
        declared: true,
    };
    let settings = wanted.settings.clone();
    ensure(shared, wanted, |existing| {
        if let Some((setting, was, asked)) = existing.settings.first_difference(&settings) {
            return Err(BrokerError::GroupConflict {
                group: existing.group.to_string(),
                setting,
                existing: was,
                requested: asked,
            });
        }
        Ok((!existing.declared).then(|| Known {
            declared: true,
            ..existing.clone()
        }))
    })
    .await
    .map(drop)
}

/// Finds `wanted`'s consumer or creates it. An existing one goes through `accept`, which refuses
/// it or says what to update it to.
async fn ensure(
    shared: &Shared,
    wanted: Known,
    accept: impl Fn(&Known) -> Result<Option<Known>, BrokerError>,
) -> Result<Arc<Known>, BrokerError> {
    let limits = shared.config.topic_limits();
    // Two nodes may create the same group at once: the loser reads the winner's.
    for _ in 0..3 {
        match shared.stream.consumer_info(&wanted.consumer).await {
            Ok(info) => {
                let existing = Known::from_info(&info, limits).ok_or_else(|| {
                    unavailable(format!(
                        "consumer {} has no Switchyard metadata",
                        wanted.consumer
                    ))
                })?;
                let known = match accept(&existing)? {
                    Some(updated) => {
                        shared
                            .stream
                            .update_consumer(updated.consumer_config(shared))
                            .await
                            .map_err(unavailable)?;
                        census::changed(shared, &updated.consumer, Some(updated.metadata())).await;
                        updated
                    }
                    None => existing,
                };
                return Ok(shared.groups.remember(known));
            }
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
                match shared
                    .stream
                    .create_consumer_strict(wanted.consumer_config(shared))
                    .await
                {
                    Ok(_) => {
                        census::changed(shared, &wanted.consumer, Some(wanted.metadata())).await;
                        return Ok(shared.groups.remember(wanted));
                    }
                    Err(error)
                        if error.kind()
                            == async_nats::jetstream::stream::ConsumerCreateStrictErrorKind::AlreadyExists => {}
                    Err(error) => return Err(unavailable(error)),
                }
            }
            Err(error) => return Err(unavailable(error)),
        }
    }
    Err(unavailable(format!(
        "group {} kept changing while it was read",
        wanted.group
    )))
}

/// The group `group` on `pattern`, or `GroupNotFound`.
pub async fn find(
    shared: &Shared,
    pattern: &Pattern,
    group: &GroupName,
) -> Result<Arc<Known>, BrokerError> {
    let name = consumer_name(pattern, group);
    match shared.stream.consumer_info(&name).await {
        Ok(info) => Known::from_info(&info, shared.config.topic_limits())
            .map(|known| shared.groups.remember(known))
            .ok_or_else(|| not_found(pattern, group)),
        Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
            Err(not_found(pattern, group))
        }
        Err(error) => Err(unavailable(error)),
    }
}

fn not_found(pattern: &Pattern, group: &GroupName) -> BrokerError {
    BrokerError::GroupNotFound {
        group: group.to_string(),
        pattern: pattern.to_string(),
    }
}

/// Deletes the group and what it holds; its consumers on every node end with `GroupDeleted`.
pub async fn delete(
    shared: &Shared,
    pattern: &Pattern,
    group: &GroupName,
) -> Result<(), BrokerError> {
    let name = consumer_name(pattern, group);
    match shared.stream.delete_consumer(&name).await {
        Ok(_) => {}
        Err(error) => {
            let missing = matches!(
                error.kind(),
                async_nats::jetstream::stream::ConsumerErrorKind::JetStream(ref js)
                    if js.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND
            );
            return Err(match missing {
                true => not_found(pattern, group),
                false => unavailable(error),
            });
        }
    }
    forget(shared, &name);
    census::changed(shared, &name, None).await;
    Ok(())
}

fn forget(shared: &Shared, name: &str) {
    shared.groups.forget(name);
    shared.consumers.group_deleted(name);
}

/// Takes a change a node told of: the group of consumer `name` is now `metadata`'s, or deleted.
pub fn take_change(shared: &Shared, name: &str, metadata: Option<&HashMap<String, String>>) {
    let limits = shared.config.topic_limits();
    match metadata {
        Some(metadata) => {
            if let Some(known) = Known::from_metadata(name, metadata, limits) {
                shared.groups.remember(known);
            }
        }
        None => forget(shared, name),
    }
}

/// Every group in the cluster, with the stream's numbers and what every node counted.
pub async fn list(shared: &Shared) -> Result<Vec<GroupInfo>, BrokerError> {
    let infos = read_all(shared).await?;
    let census = census::gather(shared).await?;
    let mut listed: Vec<GroupInfo> = infos
        .iter()
        .map(|(known, info)| {
            let counted = census.groups.get(&known.consumer);
            // JetStream counts a nacked message as pending until it is redelivered, and one a
            // node pulled as pending at once: in flight is what consumers hold, the rest waits.
            let in_flight: u64 = counted.map_or(0, |group| {
                group
                    .consumers
                    .iter()
                    .map(|consumer| u64::from(consumer.in_flight))
                    .sum()
            });
            GroupInfo {
                pattern: known.pattern.clone(),
                group: known.group.clone(),
                mode: known.settings.mode,
                ready: held_by(info).saturating_sub(in_flight),
                in_flight,
                consumers: counted.map_or(0, |group| {
                    u32::try_from(group.consumers.len()).unwrap_or(u32::MAX)
                }),
                counters: counted.map(|group| group.counters).unwrap_or_default(),
                bytes: 0,
                oldest_ready: None,
                oldest_unacked: None,
            }
        })
        .collect();
    listed.sort_by(|a, b| (&a.pattern, &a.group).cmp(&(&b.pattern, &b.group)));
    Ok(listed)
}

/// What a group holds: waiting and in flight.
fn held_by(info: &consumer::Info) -> u64 {
    info.num_pending + info.num_ack_pending as u64
}

/// Reads what `group` holds from JetStream, for a publish that may not fit by the estimate. A
/// consumer's count follows the stream a moment after a publish is acknowledged, so a count lower
/// than the estimate is read once more, a moment later, before it is believed.
pub async fn reread_held(shared: &Shared, group: &Known) -> Result<(), BrokerError> {
    let estimate = shared.groups.held.lock().get(&group.consumer).copied();
    for read in 0..2 {
        match shared.stream.consumer_info(&group.consumer).await {
            Ok(info) => {
                let held = held_by(&info);
                if read == 0 && estimate.is_some_and(|estimate| held < estimate) {
                    tokio::time::sleep(COUNT_LAG).await;
                    continue;
                }
                shared.groups.holds(&group.consumer, held);
            }
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
                forget(shared, &group.consumer);
            }
            Err(error) => return Err(unavailable(error)),
        }
        break;
    }
    Ok(())
}

/// Reads every group from the stream and replaces this node's copy with them.
async fn read_all(shared: &Shared) -> Result<Vec<(Known, consumer::Info)>, BrokerError> {
    let limits = shared.config.topic_limits();
    let began = shared.view.begin_read();
    let changes = shared.groups.changes.load(Ordering::SeqCst);
    let infos: Vec<consumer::Info> = shared
        .stream
        .consumers()
        .try_collect()
        .await
        .map_err(unavailable)?;
    let mut found: Vec<(Known, consumer::Info)> = infos
        .into_iter()
        .filter_map(|info| Known::from_info(&info, limits).map(|known| (known, info)))
        .collect();
    // JetStream's list leaves out a consumer that did not answer its leader in time (under load):
    // a group this node knows is dropped only once JetStream says it is not there.
    let absent: Vec<String> = {
        let known = shared.groups.known.read();
        known
            .keys()
            .filter(|name| !found.iter().any(|(listed, _)| &listed.consumer == *name))
            .cloned()
            .collect()
    };
    for name in absent {
        match shared.stream.consumer_info(&name).await {
            Ok(info) => found.extend(Known::from_info(&info, limits).map(|known| (known, info))),
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {}
            Err(error) => return Err(unavailable(error)),
        }
    }
    let copy = found
        .iter()
        .map(|(known, _)| (known.consumer.clone(), Arc::new(known.clone())))
        .collect();
    shared.groups.replace(copy, changes);
    // Never lowered here: JetStream's counts lag its stream by a few milliseconds, so a read made
    // just after a publish can miss it, and a lowered estimate would admit past `max_length`.
    // A refusal by the estimate is checked against JetStream first (`reread_held`), which waits
    // out that lag; that is where an estimate comes down.
    let mut held = shared.groups.held.lock();
    *held = found
        .iter()
        .map(|(known, info)| {
            let estimate = held.get(&known.consumer).copied().unwrap_or(0);
            (known.consumer.clone(), held_by(info).max(estimate))
        })
        .collect();
    drop(held);
    shared.view.read(began);
    Ok(found)
}

/// Reads the groups once, logging a failure (the next refresh tries again).
pub async fn refresh(shared: &Shared) {
    if let Err(error) = read_all(shared).await {
        tracing::warn!(%error, "cannot read the cluster's groups");
    }
}

/// Refreshes this node's copy of the groups, and removes groups made by Consume that have had
/// neither consumers (on any node) nor messages for `group_idle_timeout`, until the broker is gone
/// or shut down. Every node keeps watch; whichever sees a group idle long enough deletes it, and
/// the others' deletes find it gone. Only a census that every node answered can find a group
/// idle, and a Consume counts from before it makes its group (`Joining`, consumer.rs).
pub async fn keep_up(shared: Weak<Shared>) {
    let Some((timeout, view)) = shared
        .upgrade()
        .map(|shared| (shared.config.group_idle_timeout, Arc::clone(&shared.view)))
    else {
        return;
    };
    let tick = (timeout / 4).clamp(Duration::from_millis(50), REFRESH);
    let mut idle_since: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        // A copy that may have missed a change is read again at once (view.rs).
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = view.woken() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        let found = match read_all(&shared).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "cannot read the cluster's groups");
                continue;
            }
        };
        let idle: Vec<&Known> = found
            .iter()
            .filter(|(known, info)| !known.declared && held_by(info) == 0)
            .map(|(known, _)| known)
            .collect();
        if idle.is_empty() {
            idle_since.clear();
            continue;
        }
        // Without every node's answer, a group may have consumers no one counted: none is idle.
        let census = match census::gather(&shared).await {
            Ok(census) if census.complete => census,
            _ => continue,
        };
        let now = tokio::time::Instant::now();
        let mut still_idle = HashMap::new();
        for known in idle {
            let busy = census
                .groups
                .get(&known.consumer)
                .is_some_and(|group| !group.consumers.is_empty() || group.joining > 0);
            if busy {
                continue;
            }
            let since = idle_since.get(&known.consumer).copied().unwrap_or(now);
            if now.duration_since(since) < timeout {
                still_idle.insert(known.consumer.clone(), since);
                continue;
            }
            match delete(&shared, &known.pattern, &known.group).await {
                Ok(()) | Err(BrokerError::GroupNotFound { .. }) => {
                    tracing::debug!(group = %known.group, pattern = %known.pattern, "removed an idle group");
                }
                Err(error) => {
                    tracing::warn!(%error, group = %known.group, "cannot remove an idle group")
                }
            }
        }
        idle_since = still_idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn settings_round_trip_through_consumer_metadata() {
        let limits = Config::default().topic_limits();
        let pattern = Pattern::parse("orders.>", limits).unwrap();
        let group = GroupName::parse("billing_team", 64).unwrap();
        let known = Known {
            consumer: consumer_name(&pattern, &group),
            pattern,
            group,
            settings: GroupSettings {
                mode: ConsumeMode::Shared,
                max_length: 10,
                max_bytes: Some(4096),
                ack_deadline: Duration::from_millis(1500),
                max_deliveries: Some(3),
                dead_letter_topic: Some(Topic::parse("dead.orders", limits).unwrap()),
            },
            declared: true,
        };
        let back = Known::from_metadata(&known.consumer, &known.metadata(), limits);
        assert_eq!(back.as_ref(), Some(&known));
        let unlimited = Known {
            settings: GroupSettings {
                max_bytes: None,
                max_deliveries: None,
                dead_letter_topic: None,
                ..known.settings.clone()
            },
            declared: false,
            ..known.clone()
        };
        let back = Known::from_metadata(&unlimited.consumer, &unlimited.metadata(), limits);
        assert_eq!(back, Some(unlimited));
        assert_eq!(Known::from_metadata("x", &HashMap::new(), limits), None);
    }

    #[test]
    fn a_full_read_that_a_change_overtook_does_not_undo_it() {
        let limits = Config::default().topic_limits();
        let group = |pattern: &str| {
            let pattern = Pattern::parse(pattern, limits).unwrap();
            let group = GroupName::parse("g", 64).unwrap();
            Known {
                consumer: consumer_name(&pattern, &group),
                settings: GroupSettings::made_by_consume(ConsumeMode::Shared, &Config::default()),
                pattern,
                group,
                declared: false,
            }
        };
        let (old, new) = (group("old.*"), group("new.*"));
        let read = |groups: &[&Known]| {
            groups
                .iter()
                .map(|known| (known.consumer.clone(), Arc::new((*known).clone())))
                .collect::<HashMap<_, _>>()
        };
        let topic = Topic::parse("new.x", limits).unwrap();
        let groups = Groups::default();
        groups.remember(old.clone());
        // A read begins, then a notice of a new group comes before the read ends without it.
        let began = groups.changes.load(Ordering::SeqCst);
        groups.remember(new.clone());
        groups.replace(read(&[&old]), began);
        assert_eq!(groups.matching(&topic), 1, "the new group is still known");
        // A read that nothing overtook is the copy.
        let began = groups.changes.load(Ordering::SeqCst);
        groups.replace(read(&[&old]), began);
        assert_eq!(groups.matching(&topic), 0);
    }

    #[test]
    fn consumer_names_are_valid_and_differ_by_pattern_and_group() {
        let limits = Config::default().topic_limits();
        let name = |p: &str, g: &str| {
            consumer_name(
                &Pattern::parse(p, limits).unwrap(),
                &GroupName::parse(g, 64).unwrap(),
            )
        };
        let a = name("orders.*", "workers");
        assert!(
            a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{a}"
        );
        assert_ne!(a, name("orders.>", "workers"));
        assert_ne!(a, name("orders.*", "workers2"));
        assert_eq!(a, name("orders.*", "workers"));
    }
}
