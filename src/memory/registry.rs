//! The queue groups that exist: created by Consume or DeclareGroup, found by (pattern, name) or by
//! the id in a delivery id, removed by DeleteGroup or when an undeclared group has been idle.
//!
//! Lock order, everywhere: registry, then index, then a group. The registry lock is taken only to
//! create, attach to or remove a group, never on the publish path.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::{
    Shared,
    group::{GroupId, GroupParts, QueueGroup},
    group_state::GroupSettings,
    route::Target,
    sublist::EntryId,
};
use crate::{
    broker::{ConsumeMode, ConsumeSpec, ConsumerInfo, GroupCounters, GroupInfo, GroupSpec},
    error::BrokerError,
    journal::{self, Event, Receipt},
    topic::{GroupName, Pattern},
};

type GroupKey = (Pattern, GroupName);

#[derive(Debug, Default)]
pub struct Registry {
    /// By (pattern, name), with each group's place in the index.
    by_key: Mutex<HashMap<GroupKey, (Arc<QueueGroup>, EntryId)>>,
    /// By id, for acks: sharded so settling never waits on group creation.
    by_id: DashMap<GroupId, Arc<QueueGroup>>,
    next_id: AtomicU64,
    /// The counters of groups that are gone, so the broker's totals never go down.
    retired: Mutex<GroupCounters>,
}

impl Registry {
    pub fn by_id(&self, id: GroupId) -> Option<Arc<QueueGroup>> {
        self.by_id.get(&id).map(|entry| Arc::clone(entry.value()))
    }

    /// Finds or creates the group a consumer names and runs `attach` on it while the group cannot be
    /// removed, so an idle group is never expired under a consumer that is joining it.
    pub fn for_consumer<T>(
        &self,
        shared: &Shared,
        spec: &ConsumeSpec,
        attach: impl FnOnce(&Arc<QueueGroup>) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let mut by_key = self.by_key.lock();
        let key = (spec.pattern.clone(), spec.group.clone());
        if let Some((group, _)) = by_key.get(&key) {
            let mode = group.settings().mode;
            if mode != spec.mode {
                return Err(conflict(&spec.group, "mode", mode, spec.mode));
            }
            return attach(group);
        }
        let settings = GroupSettings::made_by_consume(spec.mode, &shared.config);
        // Not awaited: nothing is stored in the group before its record, and a consumer is live-only.
        let (group, _) = self.create(shared, &mut by_key, key, settings, false);
        attach(&group)
    }

    /// Creates a declared group, or accepts an identical existing one. A group made earlier by
    /// Consume with default settings becomes declared when declared with those same settings.
    /// Returns what to await before saying so.
    pub fn declare(&self, shared: &Shared, spec: GroupSpec) -> Result<Receipt, BrokerError> {
        let settings = GroupSettings::declared(&spec, &shared.config);
        let mut by_key = self.by_key.lock();
        let key = (spec.pattern, spec.group);
        if let Some((group, _)) = by_key.get(&key) {
            let existing = group.settings();
            return match existing.first_difference(&settings) {
                Some((setting, was, asked)) => Err(BrokerError::GroupConflict {
                    group: key.1.to_string(),
                    setting,
                    existing: was,
                    requested: asked,
                }),
                None => Ok(group.mark_declared()),
            };
        }
        let (_, receipt) = self.create(shared, &mut by_key, key, settings, true);
        Ok(receipt)
    }

    /// Puts back a group rebuilt from the journal, under the id it had.
    pub fn restore(&self, shared: &Shared, parts: GroupParts) -> Arc<QueueGroup> {
        let mut by_key = self.by_key.lock();
        self.next_id.fetch_max(parts.id + 1, Ordering::Relaxed);
        let key = (parts.pattern.clone(), parts.name.clone());
        self.insert(shared, &mut by_key, key, parts)
    }

    /// Numbers new groups from `next` on, above every id the journal has seen.
    pub fn number_from(&self, next: GroupId) {
        self.next_id.fetch_max(next, Ordering::Relaxed);
    }

    pub fn delete(
        &self,
        shared: &Shared,
        pattern: &Pattern,
        name: &GroupName,
    ) -> Result<Receipt, BrokerError> {
        let mut by_key = self.by_key.lock();
        let key = (pattern.clone(), name.clone());
        let Some((group, entry)) = by_key.remove(&key) else {
            return Err(BrokerError::GroupNotFound {
                group: name.to_string(),
                pattern: pattern.to_string(),
            });
        };
        let dropped = group.close();
        let receipt = self.unlink(shared, &group, entry);
        tracing::debug!(group = %name, pattern = %pattern, dropped, "group deleted");
        Ok(receipt)
    }

    /// Removes an undeclared group that is still idle past its timeout.
    pub fn remove_if_idle(&self, shared: &Shared, id: GroupId) {
        let mut by_key = self.by_key.lock();
        let Some(group) = self.by_id(id) else {
            return;
        };
        if !group.close_if_expired(Instant::now()) {
            return;
        }
        let key = (group.pattern.clone(), group.name.clone());
        if let Some((_, entry)) = by_key.remove(&key) {
            tracing::debug!(group = %group.name, pattern = %group.pattern, "idle group removed");
            // Not awaited: were the record lost, the group would come back empty and expire again.
            let _ = self.unlink(shared, &group, entry);
        }
    }

    /// Every group there is now, listed under the registry lock: a group whose creation is recorded
    /// is in the list (creation records and lists under this lock).
    pub fn groups(&self) -> Vec<Arc<QueueGroup>> {
        self.by_key
            .lock()
            .values()
            .map(|(group, _)| Arc::clone(group))
            .collect()
    }

    /// The consumers of one group, in attach order.
    pub fn consumers(
        &self,
        pattern: &Pattern,
        name: &GroupName,
    ) -> Result<Vec<ConsumerInfo>, BrokerError> {
        let group = self
            .by_key
            .lock()
            .get(&(pattern.clone(), name.clone()))
            .map(|(group, _)| Arc::clone(group))
            .ok_or_else(|| BrokerError::GroupNotFound {
                group: name.to_string(),
                pattern: pattern.to_string(),
            })?;
        Ok(group.consumers())
    }

    /// Every group's counters added up, those of removed groups included.
    pub fn totals(&self) -> GroupCounters {
        // Under the registry lock, as removal moves a group's counts into `retired`: a group is
        // counted once, live or retired, never neither.
        let by_key = self.by_key.lock();
        let mut totals = *self.retired.lock();
        for (group, _) in by_key.values() {
            totals.add(&group.counters());
        }
        totals
    }

    pub fn list(&self) -> Vec<GroupInfo> {
        let mut infos: Vec<GroupInfo> = self.groups().iter().map(|group| group.info()).collect();
        infos.sort_by(|a, b| (&a.pattern, &a.group).cmp(&(&b.pattern, &b.group)));
        infos
    }

    /// Creates a group, recorded before anything can be stored in it.
    fn create(
        &self,
        shared: &Shared,
        by_key: &mut HashMap<GroupKey, (Arc<QueueGroup>, EntryId)>,
        key: GroupKey,
        settings: GroupSettings,
        declared: bool,
    ) -> (Arc<QueueGroup>, Receipt) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let receipt = journal::record(shared.groups.journal.as_ref(), || Event::GroupCreated {
            id,
            pattern: key.0.clone(),
            name: key.1.clone(),
            settings: settings.clone(),
            declared,
        });
        let parts = QueueGroup::fresh(
            id,
            key.0.clone(),
            key.1.clone(),
            settings,
            declared,
            &shared.groups,
        );
        (self.insert(shared, by_key, key, parts), receipt)
    }

    fn insert(
        &self,
        shared: &Shared,
        by_key: &mut HashMap<GroupKey, (Arc<QueueGroup>, EntryId)>,
        key: GroupKey,
        parts: GroupParts,
    ) -> Arc<QueueGroup> {
        let id = parts.id;
        let declared = parts.declared;
        let group = QueueGroup::start(parts, &shared.groups);
        let entry = shared
            .index
            .write()
            .insert(&key.0, Target::Group(Arc::clone(&group)));
        self.by_id.insert(id, Arc::clone(&group));
        tracing::debug!(group = %key.1, pattern = %key.0, declared, "group created");
        by_key.insert(key, (Arc::clone(&group), entry));
        group
    }

    /// Takes a closed group out of the index and the id map, and records that it is gone.
    fn unlink(&self, shared: &Shared, group: &Arc<QueueGroup>, entry: EntryId) -> Receipt {
        shared.index.write().remove(&group.pattern, entry);
        self.by_id.remove(&group.id);
        self.retired.lock().add(&group.counters());
        group.record(|| Event::GroupDeleted { id: group.id })
    }
}

fn conflict(
    group: &GroupName,
    setting: &'static str,
    was: ConsumeMode,
    asked: ConsumeMode,
) -> BrokerError {
    BrokerError::GroupConflict {
        group: group.to_string(),
        setting,
        existing: was.to_string(),
        requested: asked.to_string(),
    }
}
