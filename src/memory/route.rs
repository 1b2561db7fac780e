//! Routing a batch of messages to subscriptions, groups and waiting requests, all or nothing.
//!
//! The order of the steps is what makes a batch atomic without a global lock: targets are collected
//! under the index's shared lock, then every group involved is locked (in group-id order, so two
//! batches can never deadlock), checked for room and filled, and only then are subscribers offered
//! their copies. Offering to a subscriber cannot fail, so nothing after the check can refuse.
//!
//! With a journal, the copies are stored, then recorded, then acknowledged: under the group locks
//! each copy takes its position and the record is handed to the journal, still under the locks, so
//! the journal's order is every group's order. The locks are let go before the record is awaited,
//! and the publisher hears OK only once it is durable. A consumer may take a copy meanwhile, but is
//! handed it only once its own delivery record is durable, and that record comes after this one in
//! the journal, which writes in order and stops at its first failure: so no consumer ever sees a
//! message that is not on disk, and the publish's fsync and the delivery's can be the same one. If
//! the record fails, the copies still waiting are withdrawn (nothing else is written after a
//! failure, so one already taken is never handed over).

use std::sync::Arc;

use super::{
    Shared,
    group::{self, GroupId, QueueGroup},
    replies::ReplyRouter,
    subscriber::SubscriberQueue,
};
use crate::{
    broker::Published,
    error::BrokerError,
    journal::{self, Event, GroupCopy},
    message::Message,
};

/// A dead letter's source while it is routed: let go of in the same step as the copies are stored,
/// under the same locks and in the same record.
pub struct Leaving {
    pub group: Arc<QueueGroup>,
    pub position: u64,
}

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
    /// Routes `messages` and waits until they are durable: [`Shared::stage`], then
    /// [`Staged::finish`].
    pub(super) async fn route(
        &self,
        messages: &[Message],
        admission: Admission,
        leaving: Option<Leaving>,
    ) -> Result<Vec<Published>, BrokerError> {
        self.stage(messages, admission, leaving)?.finish().await
    }

    /// Stores `messages` in their groups and hands the record to the journal, all under the group
    /// locks: from here on the batch has its place in every group and in the journal. What is left
    /// (waiting for the record, offering the messages to subscribers) is the [`Staged`] returned.
    pub(super) fn stage(
        &self,
        messages: &[Message],
        admission: Admission,
        leaving: Option<Leaving>,
    ) -> Result<Staged, BrokerError> {
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
        if let Some(leaving) = &leaving
            && !groups.iter().any(|known| known.id == leaving.group.id)
        {
            groups.push(Arc::clone(&leaving.group));
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
        let mut copies: Vec<(usize, GroupCopy)> = Vec::new();
        let (wakes, receipt) = {
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
                    if let Some(position) = locks[slot].store(messages[index].clone()) {
                        stored[index] += 1;
                        let copy = GroupCopy {
                            message: index as u32,
                            group: groups[slot].id,
                            position,
                        };
                        copies.push((slot, copy));
                    }
                }
            }
            if let Some(leaving) = &leaving
                && let Ok(slot) = groups.binary_search_by_key(&leaving.group.id, |g| g.id)
            {
                locks[slot].forget(leaving.position);
            }
            let receipt = self.record_stored(messages, &copies, leaving.as_ref());
            let wakes = locks
                .iter_mut()
                .flat_map(|locked| locked.consumers_to_wake())
                .collect::<Vec<_>>();
            (wakes, receipt)
        };
        group::wake(wakes);
        Ok(Staged {
            messages: messages.to_vec(),
            routes,
            stored,
            copies,
            groups,
            receipt,
            replies: Arc::clone(&self.replies),
        })
    }

    /// Records what the routing stored: the dead letter's move, or the messages that reached a group.
    fn record_stored(
        &self,
        messages: &[Message],
        copies: &[(usize, GroupCopy)],
        leaving: Option<&Leaving>,
    ) -> journal::Receipt {
        let journal = self.journal.as_ref();
        if let Some(leaving) = leaving {
            return journal::record(journal, || Event::DeadLettered {
                group: leaving.group.id,
                position: leaving.position,
                forwarded: messages.first().map(|letter| {
                    let copies = copies.iter().map(|(_, copy)| *copy).collect();
                    (letter.clone(), copies)
                }),
            });
        }
        if copies.is_empty() {
            return journal::Receipt::done();
        }
        journal::record(journal, || {
            // Only the messages that reached a group, renumbered in the copies.
            let mut included: Vec<Message> = Vec::new();
            let mut numbers = vec![u32::MAX; messages.len()];
            let copies = copies
                .iter()
                .map(|(_, copy)| {
                    let index = copy.message as usize;
                    if numbers[index] == u32::MAX {
                        numbers[index] = included.len() as u32;
                        included.push(messages[index].clone());
                    }
                    GroupCopy {
                        message: numbers[index],
                        ..*copy
                    }
                })
                .collect();
            Event::Published {
                messages: included,
                copies,
            }
        })
    }
}

/// A routed batch whose record may not be durable yet.
pub struct Staged {
    messages: Vec<Message>,
    routes: Vec<Route>,
    stored: Vec<u32>,
    copies: Vec<(usize, GroupCopy)>,
    groups: Vec<Arc<QueueGroup>>,
    receipt: journal::Receipt,
    replies: Arc<ReplyRouter>,
}

impl Staged {
    /// Whether there is nothing to wait for (no journal, or nothing recorded).
    pub fn is_durable(&self) -> bool {
        self.receipt.is_done()
    }

    /// Waits for the batch's record, then offers the messages to subscribers and waiting requests.
    /// If the record failed, the copies still waiting are withdrawn and nobody is offered anything.
    pub async fn finish(self) -> Result<Vec<Published>, BrokerError> {
        let Self {
            messages,
            routes,
            stored,
            copies,
            groups,
            receipt,
            replies,
        } = self;
        if !receipt.is_done()
            && let Err(error) = receipt.durable().await
        {
            for (slot, copy) in &copies {
                groups[*slot].lock().withdraw(copy.position);
            }
            return Err(error);
        }
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
                let replied = message.topic().is_inbox() && replies.deliver(message);
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
