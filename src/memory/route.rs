//! Routing a batch of messages to subscriptions, groups and waiting requests, all or nothing.
//!
//! The order of the steps is what makes a batch atomic without a global lock: targets are collected
//! under the index's shared lock, then every group involved is locked (in group-id order, so two
//! batches can never deadlock), checked for room and filled, and only then are subscribers offered
//! their copies. Offering to a subscriber cannot fail, so nothing after the check can refuse.

use std::sync::Arc;

use super::{
    Shared,
    group::{self, GroupId, QueueGroup},
    subscriber::SubscriberQueue,
};
use crate::{broker::Published, error::BrokerError, message::Message};

/// An entry of the index.
#[derive(Debug, Clone)]
pub enum Target {
    Subscriber(Arc<SubscriberQueue>),
    Group(Arc<QueueGroup>),
}

/// Whether a group's `max_length` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Publishing: a full group refuses the whole batch.
    Checked,
    /// Dead letters: already accepted once, so they are stored even past `max_length`.
    Forced,
}

/// Where one message goes.
#[derive(Default)]
struct Route {
    subscribers: Vec<Arc<SubscriberQueue>>,
    groups: Vec<GroupId>,
}

/// How many messages of the batch go to the group at `slot`, and their footprint.
fn batch_share(slots: &[Vec<usize>], messages: &[Message], slot: usize) -> (usize, u64) {
    slots
        .iter()
        .zip(messages)
        .filter(|(message_slots, _)| message_slots.contains(&slot))
        .fold((0, 0), |(count, bytes), (_, message)| {
            (count + 1, bytes + message.footprint() as u64)
        })
}

impl Shared {
    pub(super) fn route(
        &self,
        messages: &[Message],
        admission: Admission,
    ) -> Result<Vec<Published>, BrokerError> {
        let mut routes: Vec<Route> = Vec::with_capacity(messages.len());
        let mut groups: Vec<Arc<QueueGroup>> = Vec::new();
        {
            let index = self.index.read();
            for message in messages {
                let mut route = Route::default();
                index.for_each_match(message.topic(), |target| match target {
                    Target::Subscriber(queue) => route.subscribers.push(Arc::clone(queue)),
                    Target::Group(group) => {
                        // A batch to one topic meets the same groups message after message: keep
                        // one handle each instead of a clone per message for the dedup to drop.
                        if !groups.iter().any(|known| known.id == group.id) {
                            groups.push(Arc::clone(group));
                        }
                        route.groups.push(group.id);
                    }
                });
                routes.push(route);
            }
        }
        groups.sort_by_key(|group| group.id);
        // Where each message's groups sit in the sorted list, and so in the list of locks. Every id
        // in a route was pushed to `groups`, so each search finds it.
        let slots: Vec<Vec<usize>> = routes
            .iter()
            .map(|route| {
                route
                    .groups
                    .iter()
                    .filter_map(|id| groups.binary_search_by_key(id, |group| group.id).ok())
                    .collect()
            })
            .collect();

        let mut stored = vec![0u32; messages.len()];
        let wakes = {
            let mut locks: Vec<_> = groups.iter().map(|group| group.lock()).collect();
            if admission == Admission::Checked {
                let mut wanted = vec![(0usize, 0u64); groups.len()];
                for (index, message_slots) in slots.iter().enumerate() {
                    if message_slots.is_empty() {
                        continue;
                    }
                    let footprint = messages[index].footprint() as u64;
                    for &slot in message_slots {
                        let (count, bytes) = &mut wanted[slot];
                        *count += 1;
                        *bytes += footprint;
                        let fits_count = locks[slot].has_room_for(*count);
                        if fits_count && locks[slot].has_bytes_for(*bytes) {
                            continue;
                        }
                        // What the whole batch asks of this group: more than it may ever hold, and
                        // waiting for room is pointless.
                        let (total, total_bytes) = batch_share(&slots, messages, slot);
                        let group = groups[slot].name.to_string();
                        return Err(if fits_count {
                            let max_bytes = locks[slot].max_bytes().unwrap_or_default();
                            BrokerError::GroupBytesFull {
                                index,
                                group,
                                max_bytes,
                                never_fits: total_bytes > max_bytes,
                            }
                        } else {
                            let max_length = locks[slot].max_length();
                            BrokerError::GroupFull {
                                index,
                                group,
                                max_length,
                                never_fits: total > max_length as usize,
                            }
                        });
                    }
                }
            }
            for (index, message_slots) in slots.iter().enumerate() {
                for &slot in message_slots {
                    if locks[slot].enqueue(messages[index].clone()) {
                        stored[index] += 1;
                    }
                }
            }
            locks
                .iter_mut()
                .flat_map(|locked| locked.consumers_to_wake())
                .collect::<Vec<_>>()
        };
        group::wake(wakes);

        let published = messages
            .iter()
            .zip(routes)
            .zip(stored)
            .map(|((message, route), groups)| {
                if !route.subscribers.is_empty() {
                    let footprint = message.footprint();
                    route
                        .subscribers
                        .iter()
                        .for_each(|queue| queue.offer(message, footprint));
                }
                let replied = message.topic().is_inbox() && self.replies.deliver(message);
                Published {
                    id: message.id(),
                    subscribers: route.subscribers.len() as u32 + u32::from(replied),
                    groups,
                }
            })
            .collect();
        Ok(published)
    }
}
