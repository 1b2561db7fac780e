//! Rebuilding the groups from the journal's events: what each group holds, each message's attempts
//! and delay, as they were at the last durable event. Plain Rust, no files: the durable backend
//! decodes the events and hands them here in order.
//!
//! What was in flight at the crash is simply held with its attempts counted: the broker hands it out
//! again as a redelivery. An event about a group or message that is gone (deleted since, or settled
//! by an earlier event) changes nothing, so replaying is idempotent per event.

use std::{
    collections::{BTreeMap, HashMap},
    time::SystemTime,
};

use super::{Event, GroupCopy, GroupId, Position};
use crate::{
    memory::group_state::GroupSettings,
    message::{Message, MessageId},
    topic::{GroupName, Pattern},
};

/// The state the events describe.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The latest run's epoch; the next run takes the one after.
    pub epoch: u64,
    pub groups: BTreeMap<GroupId, RecoveredGroup>,
    /// Above every group id ever used, so a new group never takes an old one's id.
    pub next_group: GroupId,
    /// Events applied, for the recovery log line.
    pub events: u64,
    /// Frames before this were removed on purpose, after a restatement.
    pub reclaimed_before: u64,
    /// Restated messages by id: a message several groups hold is restated once per group, and is
    /// kept (and charged) once.
    restated: HashMap<MessageId, Message>,
}

#[derive(Debug)]
pub struct RecoveredGroup {
    pub pattern: Pattern,
    pub name: GroupName,
    pub settings: GroupSettings,
    pub declared: bool,
    /// By position, so publish order is kept.
    pub messages: BTreeMap<Position, Held>,
    /// Above every position ever used in the group.
    pub next_position: Position,
}

/// A message a group held.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub message: Message,
    /// Deliveries made, including one in flight at the crash.
    pub attempts: u32,
    /// Nacked with a delay: not to be delivered before this.
    pub until: Option<SystemTime>,
}

impl Recovered {
    pub fn apply(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Epoch(epoch) => self.epoch = self.epoch.max(epoch),
            Event::GroupCreated {
                id,
                pattern,
                name,
                settings,
                declared,
            } => {
                self.next_group = self.next_group.max(id + 1);
                self.groups.insert(
                    id,
                    RecoveredGroup {
                        pattern,
                        name,
                        settings,
                        declared,
                        messages: BTreeMap::new(),
                        next_position: 0,
                    },
                );
            }
            Event::GroupDeclared { id } => {
                if let Some(group) = self.groups.get_mut(&id) {
                    group.declared = true;
                }
            }
            Event::GroupDeleted { id } => {
                self.groups.remove(&id);
            }
            Event::Published { messages, copies } => self.store(&messages, &copies),
            Event::Delivered { group, positions } => {
                for position in positions {
                    if let Some(held) = self.held(group, position) {
                        held.attempts = held.attempts.saturating_add(1);
                        held.until = None;
                    }
                }
            }
            Event::Acked { group, positions } => {
                for position in positions {
                    self.remove(group, position);
                }
            }
            Event::Nacked {
                group,
                position,
                until,
            } => {
                if let Some(held) = self.held(group, position) {
                    held.until = until;
                }
            }
            Event::DeadLettered {
                group,
                position,
                forwarded,
            } => {
                self.remove(group, position);
                if let Some((letter, copies)) = forwarded {
                    self.store(std::slice::from_ref(&letter), &copies);
                }
            }
            Event::Reclaiming { before } => {
                self.reclaimed_before = self.reclaimed_before.max(before);
            }
            Event::GroupRestated {
                id,
                pattern,
                name,
                settings,
                declared,
                next_position,
            } => {
                self.next_group = self.next_group.max(id + 1);
                let group = self.groups.entry(id).or_insert_with(|| RecoveredGroup {
                    pattern: pattern.clone(),
                    name: name.clone(),
                    settings: settings.clone(),
                    declared,
                    messages: BTreeMap::new(),
                    next_position,
                });
                group.settings = settings;
                group.declared = declared;
                group.next_position = group.next_position.max(next_position);
            }
            Event::Restated { group, held } => {
                let Some(group) = self.groups.get_mut(&group) else {
                    return;
                };
                for (position, mut held) in held {
                    let id = held.message.id();
                    match self.restated.get(&id) {
                        // A dead letter keeps its original's id but is another message.
                        Some(known) if *known == held.message => held.message = known.clone(),
                        _ => {
                            self.restated.insert(id, held.message.clone());
                        }
                    }
                    group.next_position = group.next_position.max(position + 1);
                    group.messages.insert(position, held);
                }
            }
        }
    }

    /// Messages held in all groups.
    pub fn held_messages(&self) -> usize {
        self.groups.values().map(|group| group.messages.len()).sum()
    }

    fn store(&mut self, messages: &[Message], copies: &[GroupCopy]) {
        for copy in copies {
            let (Some(group), Some(message)) = (
                self.groups.get_mut(&copy.group),
                messages.get(copy.message as usize),
            ) else {
                continue;
            };
            group.next_position = group.next_position.max(copy.position + 1);
            group.messages.insert(
                copy.position,
                Held {
                    message: message.clone(),
                    attempts: 0,
                    until: None,
                },
            );
        }
    }

    fn held(&mut self, group: GroupId, position: Position) -> Option<&mut Held> {
        self.groups.get_mut(&group)?.messages.get_mut(&position)
    }

    fn remove(&mut self, group: GroupId, position: Position) {
        if let Some(group) = self.groups.get_mut(&group) {
            group.messages.remove(&position);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        broker::ConsumeMode,
        message::NewMessage,
        topic::{Topic, TopicLimits},
    };

    const LIMITS: TopicLimits = TopicLimits {
        max_bytes: 256,
        max_tokens: 16,
    };

    fn settings() -> GroupSettings {
        GroupSettings {
            mode: ConsumeMode::Shared,
            max_length: 100,
            max_bytes: None,
            ack_deadline: Duration::from_secs(30),
            max_deliveries: None,
            dead_letter_topic: None,
        }
    }

    fn created(id: GroupId) -> Event {
        Event::GroupCreated {
            id,
            pattern: Pattern::parse("jobs.>", LIMITS).unwrap(),
            name: GroupName::parse(&format!("g{id}"), 64).unwrap(),
            settings: settings(),
            declared: false,
        }
    }

    fn message(text: &str) -> Message {
        Message::stamp(NewMessage::new(
            Topic::parse("jobs.a", LIMITS).unwrap(),
            text.to_owned(),
        ))
    }

    fn published(group: GroupId, first: Position, texts: &[&str]) -> Event {
        Event::Published {
            messages: texts.iter().map(|text| message(text)).collect(),
            copies: (0..texts.len() as u32)
                .map(|index| GroupCopy {
                    message: index,
                    group,
                    position: first + u64::from(index),
                })
                .collect(),
        }
    }

    fn payloads(recovered: &Recovered, group: GroupId) -> Vec<(Position, String, u32)> {
        recovered.groups[&group]
            .messages
            .iter()
            .map(|(position, held)| {
                let text = String::from_utf8_lossy(held.message.payload()).into_owned();
                (*position, text, held.attempts)
            })
            .collect()
    }

    #[test]
    fn acked_messages_are_gone_and_deliveries_count_as_attempts() {
        let mut recovered = Recovered::default();
        for event in [
            created(0),
            published(0, 0, &["a", "b", "c"]),
            Event::Delivered {
                group: 0,
                positions: vec![0, 1],
            },
            Event::Acked {
                group: 0,
                positions: vec![0],
            },
            Event::Delivered {
                group: 0,
                positions: vec![1],
            },
        ] {
            recovered.apply(event);
        }
        assert_eq!(
            payloads(&recovered, 0),
            [(1, "b".to_owned(), 2), (2, "c".to_owned(), 0)]
        );
        assert_eq!(recovered.groups[&0].next_position, 3);
        assert_eq!(recovered.next_group, 1);
    }

    #[test]
    fn a_dead_letter_moves_in_one_event() {
        let mut recovered = Recovered::default();
        recovered.apply(created(0));
        recovered.apply(created(1));
        recovered.apply(published(0, 0, &["poison"]));
        recovered.apply(Event::DeadLettered {
            group: 0,
            position: 0,
            forwarded: Some((
                message("poison"),
                vec![GroupCopy {
                    message: 0,
                    group: 1,
                    position: 7,
                }],
            )),
        });
        assert!(recovered.groups[&0].messages.is_empty());
        assert_eq!(payloads(&recovered, 1), [(7, "poison".to_owned(), 0)]);
    }

    #[test]
    fn deleted_groups_and_their_late_events_leave_nothing() {
        let mut recovered = Recovered::default();
        recovered.apply(created(3));
        recovered.apply(published(3, 0, &["a"]));
        recovered.apply(Event::GroupDeleted { id: 3 });
        recovered.apply(Event::Acked {
            group: 3,
            positions: vec![0],
        });
        recovered.apply(published(3, 1, &["b"]));
        assert!(recovered.groups.is_empty());
        assert_eq!(
            recovered.next_group, 4,
            "a deleted group's id is not reused"
        );
    }

    #[test]
    fn a_restatement_replaces_what_came_before_it_and_later_events_apply_on_top() {
        let mut recovered = Recovered::default();
        // What the removed segments held is gone; what remains starts with the restatement.
        recovered.apply(Event::Reclaiming { before: 40 });
        recovered.apply(Event::Acked {
            group: 0,
            positions: vec![0],
        });
        let Event::GroupCreated {
            pattern,
            name,
            settings,
            ..
        } = created(0)
        else {
            unreachable!("created makes a GroupCreated");
        };
        recovered.apply(Event::GroupRestated {
            id: 0,
            pattern,
            name,
            settings,
            declared: true,
            next_position: 9,
        });
        recovered.apply(Event::Restated {
            group: 0,
            held: vec![(
                4,
                Held {
                    message: message("kept"),
                    attempts: 3,
                    until: None,
                },
            )],
        });
        recovered.apply(Event::Delivered {
            group: 0,
            positions: vec![4],
        });
        recovered.apply(published(0, 9, &["new"]));
        assert_eq!(recovered.reclaimed_before, 40);
        assert!(recovered.groups[&0].declared);
        assert_eq!(
            payloads(&recovered, 0),
            [(4, "kept".to_owned(), 4), (9, "new".to_owned(), 0)]
        );
        assert_eq!(recovered.groups[&0].next_position, 10);
    }

    #[test]
    fn a_nack_delay_is_kept_until_the_next_delivery() {
        let mut recovered = Recovered::default();
        let until = SystemTime::now() + Duration::from_secs(60);
        recovered.apply(created(0));
        recovered.apply(published(0, 0, &["a"]));
        recovered.apply(Event::Delivered {
            group: 0,
            positions: vec![0],
        });
        recovered.apply(Event::Nacked {
            group: 0,
            position: 0,
            until: Some(until),
        });
        assert_eq!(recovered.groups[&0].messages[&0].until, Some(until));
        recovered.apply(Event::Delivered {
            group: 0,
            positions: vec![0],
        });
        let held = &recovered.groups[&0].messages[&0];
        assert_eq!((held.until, held.attempts), (None, 2));
    }
}
