//! The journal's events as bytes: a tag, then the fields, little-endian, with LEB128 varints for
//! numbers that are usually small (positions, group ids, counts, lengths). The format is ours, like
//! the log's framing: a queued 128-byte message costs about 40 bytes more on disk, and nothing that
//! a general encoder would add (field tags, schemas) is needed between one broker and its own log.
//! A record that does not decode stops recovery: it passed its frame's checksum, so it is a bug or a
//! log from another version, and guessing would be worse than refusing.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use crate::{
    broker::ConsumeMode,
    budget::MemoryBudget,
    journal::{Event, GroupCopy, Held},
    memory::group_state::GroupSettings,
    message::{Message, MessageId, NewMessage},
    topic::{GroupName, Pattern, Topic, TopicLimits},
};

/// Names as they were accepted when recorded: a stricter limit configured since must not make the
/// log unreadable.
const ANY_NAME: TopicLimits = TopicLimits {
    max_bytes: usize::MAX,
    max_tokens: usize::MAX,
};

const EPOCH: u8 = 1;
const GROUP_CREATED: u8 = 2;
const GROUP_DECLARED: u8 = 3;
const GROUP_DELETED: u8 = 4;
const PUBLISHED: u8 = 5;
const DELIVERED: u8 = 6;
const ACKED: u8 = 7;
const NACKED: u8 = 8;
const DEAD_LETTERED: u8 = 9;
const RECLAIMING: u8 = 10;
const GROUP_RESTATED: u8 = 11;
const RESTATED: u8 = 12;

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable record: {0}")]
pub struct DecodeError(String);

/// `event` as a record of its own.
pub fn encoded(event: &Event) -> Vec<u8> {
    let mut record = Vec::with_capacity(64);
    encode(event, &mut record);
    record
}

pub fn encode(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Epoch(epoch) => {
            out.push(EPOCH);
            out.extend_from_slice(&epoch.to_le_bytes());
        }
        Event::GroupCreated {
            id,
            pattern,
            name,
            settings,
            declared,
        } => {
            out.push(GROUP_CREATED);
            encode_group(out, *id, pattern, name, settings, *declared);
        }
        Event::GroupRestated {
            id,
            pattern,
            name,
            settings,
            declared,
            next_position,
        } => {
            out.push(GROUP_RESTATED);
            encode_group(out, *id, pattern, name, settings, *declared);
            varint(out, *next_position);
        }
        Event::Restated { group, held } => {
            out.push(RESTATED);
            varint(out, *group);
            varint(out, held.len() as u64);
            for (position, held) in held {
                varint(out, *position);
                encode_message(out, &held.message);
                varint(out, u64::from(held.attempts));
                optional(out, held.until.map(since_epoch), |out, at| {
                    out.extend_from_slice(&at.to_le_bytes());
                });
            }
        }
        Event::Reclaiming { before } => {
            out.push(RECLAIMING);
            varint(out, *before);
        }
        Event::GroupDeclared { id } => {
            out.push(GROUP_DECLARED);
            varint(out, *id);
        }
        Event::GroupDeleted { id } => {
            out.push(GROUP_DELETED);
            varint(out, *id);
        }
        Event::Published { messages, copies } => {
            out.push(PUBLISHED);
            varint(out, messages.len() as u64);
            messages
                .iter()
                .for_each(|message| encode_message(out, message));
            encode_copies(out, copies);
        }
        Event::Delivered { group, positions } => {
            out.push(DELIVERED);
            varint(out, *group);
            varint(out, positions.len() as u64);
            positions.iter().for_each(|position| varint(out, *position));
        }
        Event::Acked { group, positions } => {
            out.push(ACKED);
            varint(out, *group);
            varint(out, positions.len() as u64);
            positions.iter().for_each(|position| varint(out, *position));
        }
        Event::Nacked {
            group,
            position,
            until,
        } => {
            out.push(NACKED);
            varint(out, *group);
            varint(out, *position);
            optional(out, until.map(since_epoch), |out, at| {
                out.extend_from_slice(&at.to_le_bytes());
            });
        }
        Event::DeadLettered {
            group,
            position,
            forwarded,
        } => {
            out.push(DEAD_LETTERED);
            varint(out, *group);
            varint(out, *position);
            optional(out, forwarded.as_ref(), |out, (letter, copies)| {
                encode_message(out, letter);
                encode_copies(out, copies);
            });
        }
    }
}

/// Reads one record. Messages are charged to `budget`, as if just published.
pub fn decode(bytes: &[u8], budget: &Arc<MemoryBudget>) -> Result<Event, DecodeError> {
    let mut reader = Reader { bytes, budget };
    let event = match reader.byte()? {
        EPOCH => Event::Epoch(reader.u64()?),
        GROUP_CREATED => {
            let group = reader.group()?;
            Event::GroupCreated {
                id: group.id,
                pattern: group.pattern,
                name: group.name,
                settings: group.settings,
                declared: group.declared,
            }
        }
        GROUP_RESTATED => {
            let group = reader.group()?;
            Event::GroupRestated {
                id: group.id,
                pattern: group.pattern,
                name: group.name,
                settings: group.settings,
                declared: group.declared,
                next_position: reader.varint()?,
            }
        }
        RESTATED => {
            let group = reader.varint()?;
            let count = reader.count()?;
            let held = (0..count)
                .map(|_| {
                    let position = reader.varint()?;
                    let held = Held {
                        message: reader.message()?,
                        attempts: reader.u32()?,
                        until: reader.optional(Reader::u64)?.map(after_epoch),
                    };
                    Ok((position, held))
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            Event::Restated { group, held }
        }
        RECLAIMING => Event::Reclaiming {
            before: reader.varint()?,
        },
        GROUP_DECLARED => Event::GroupDeclared {
            id: reader.varint()?,
        },
        GROUP_DELETED => Event::GroupDeleted {
            id: reader.varint()?,
        },
        PUBLISHED => {
            let count = reader.count()?;
            let messages = (0..count)
                .map(|_| reader.message())
                .collect::<Result<Vec<_>, _>>()?;
            let copies = reader.copies()?;
            Event::Published { messages, copies }
        }
        DELIVERED => Event::Delivered {
            group: reader.varint()?,
            positions: reader.positions()?,
        },
        ACKED => Event::Acked {
            group: reader.varint()?,
            positions: reader.positions()?,
        },
        NACKED => Event::Nacked {
            group: reader.varint()?,
            position: reader.varint()?,
            until: reader.optional(Reader::u64)?.map(after_epoch),
        },
        DEAD_LETTERED => {
            let group = reader.varint()?;
            let position = reader.varint()?;
            let forwarded = reader.optional(|reader| Ok((reader.message()?, reader.copies()?)))?;
            Event::DeadLettered {
                group,
                position,
                forwarded,
            }
        }
        other => return Err(DecodeError(format!("unknown record tag {other}"))),
    };
    if !reader.bytes.is_empty() {
        return Err(DecodeError(format!(
            "{} bytes after the record",
            reader.bytes.len()
        )));
    }
    Ok(event)
}

fn encode_message(out: &mut Vec<u8>, message: &Message) {
    out.extend_from_slice(message.id().as_bytes());
    out.extend_from_slice(&since_epoch(message.published_at()).to_le_bytes());
    text(out, message.topic().as_str());
    bytes(out, message.payload());
    let headers = message.headers();
    let extras = !headers.is_empty()
        || !message.key().is_empty()
        || message.reply_to().is_some()
        || !message.correlation_id().is_empty();
    out.push(u8::from(extras));
    if extras {
        varint(out, headers.len() as u64);
        for (name, value) in headers {
            text(out, name);
            text(out, value);
        }
        text(out, message.key());
        optional(out, message.reply_to(), |out, topic| {
            text(out, topic.as_str())
        });
        text(out, message.correlation_id());
    }
}

fn encode_group(
    out: &mut Vec<u8>,
    id: u64,
    pattern: &Pattern,
    name: &GroupName,
    settings: &GroupSettings,
    declared: bool,
) {
    varint(out, id);
    text(out, pattern.as_str());
    text(out, name.as_str());
    out.push(match settings.mode {
        ConsumeMode::Shared => 0,
        ConsumeMode::Exclusive => 1,
    });
    varint(out, u64::from(settings.max_length));
    optional(out, settings.max_bytes, varint);
    varint(out, nanos(settings.ack_deadline));
    optional(out, settings.max_deliveries.map(u64::from), varint);
    optional(out, settings.dead_letter_topic.as_ref(), |out, topic| {
        text(out, topic.as_str());
    });
    out.push(u8::from(declared));
}

fn encode_copies(out: &mut Vec<u8>, copies: &[GroupCopy]) {
    varint(out, copies.len() as u64);
    for copy in copies {
        varint(out, u64::from(copy.message));
        varint(out, copy.group);
        varint(out, copy.position);
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn text(out: &mut Vec<u8>, value: &str) {
    bytes(out, value.as_bytes());
}

fn optional<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(value) => {
            out.push(1);
            write(out, value);
        }
        None => out.push(0),
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, nanos)
}

fn after_epoch(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// A group's identity and settings, as created or restated.
struct GroupRecord {
    id: u64,
    pattern: Pattern,
    name: GroupName,
    settings: GroupSettings,
    declared: bool,
}

/// Reads a record from the front.
struct Reader<'a> {
    bytes: &'a [u8],
    budget: &'a Arc<MemoryBudget>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError(format!(
                "{count} bytes wanted, {} left",
                self.bytes.len()
            )));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 64 bits".into()))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| DecodeError(format!("{value} does not fit 32 bits")))
    }

    /// A count of things that follow, each at least a byte: never more than the bytes left, so a
    /// bad count cannot make a huge allocation.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let count = self.varint()?;
        usize::try_from(count)
            .ok()
            .filter(|&count| count <= self.bytes.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "a count of {count} with {} bytes left",
                    self.bytes.len()
                ))
            })
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.varint()?;
        let length =
            usize::try_from(length).map_err(|_| DecodeError(format!("a length of {length}")))?;
        self.take(length)
    }

    fn text(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|error| DecodeError(error.to_string()))
    }

    fn topic(&mut self) -> Result<Topic, DecodeError> {
        Topic::parse(self.text()?, ANY_NAME).map_err(self.bad("topic"))
    }

    fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(DecodeError(format!("option flag {other}"))),
        }
    }

    fn bad<E: std::fmt::Display>(&self, what: &'static str) -> impl FnOnce(E) -> DecodeError {
        move |error| DecodeError(format!("{what}: {error}"))
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        let mut id = [0; 16];
        id.copy_from_slice(self.take(16)?);
        let published_at = UNIX_EPOCH + Duration::from_nanos(self.u64()?);
        let topic = self.topic()?;
        let payload = Bytes::copy_from_slice(self.bytes()?);
        let mut new = NewMessage::new(topic, payload);
        if self.byte()? != 0 {
            let count = self.count()?;
            let mut headers = HashMap::with_capacity(count);
            for _ in 0..count {
                let name = self.text()?.to_owned();
                headers.insert(name, self.text()?.to_owned());
            }
            new.headers = headers;
            new.key = self.text()?.to_owned();
            new.reply_to = self.optional(Reader::topic)?;
            new.correlation_id = self.text()?.to_owned();
        }
        self.budget.force_charge(new.footprint());
        Ok(Message::stamp_as(
            new,
            MessageId::from_bytes(id),
            published_at,
            Some(self.budget),
        ))
    }

    fn group(&mut self) -> Result<GroupRecord, DecodeError> {
        let id = self.varint()?;
        let pattern = Pattern::parse(self.text()?, ANY_NAME).map_err(self.bad("pattern"))?;
        let name = GroupName::parse(self.text()?, usize::MAX).map_err(self.bad("group"))?;
        let mode = match self.byte()? {
            0 => ConsumeMode::Shared,
            1 => ConsumeMode::Exclusive,
            other => return Err(DecodeError(format!("unknown mode {other}"))),
        };
        let settings = GroupSettings {
            mode,
            max_length: self.u32()?,
            max_bytes: self.optional(Reader::varint)?,
            ack_deadline: Duration::from_nanos(self.varint()?),
            max_deliveries: self.optional(Reader::u32)?,
            dead_letter_topic: self.optional(Reader::topic)?,
        };
        Ok(GroupRecord {
            id,
            pattern,
            name,
            settings,
            declared: self.byte()? != 0,
        })
    }

    fn positions(&mut self) -> Result<Vec<u64>, DecodeError> {
        let count = self.count()?;
        (0..count).map(|_| self.varint()).collect()
    }

    fn copies(&mut self) -> Result<Vec<GroupCopy>, DecodeError> {
        let count = self.count()?;
        (0..count)
            .map(|_| {
                Ok(GroupCopy {
                    message: self.u32()?,
                    group: self.varint()?,
                    position: self.varint()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn topic(text: &str) -> Topic {
        Topic::parse(text, ANY_NAME).unwrap()
    }

    fn message(payload: &[u8], extras: bool) -> Message {
        let mut new = NewMessage::new(topic("jobs.a"), payload.to_vec());
        if extras {
            new.headers.insert("h".into(), "v".into());
            new.key = "k".into();
            new.reply_to = Some(topic("_INBOX.x"));
            new.correlation_id = "c".into();
        }
        Message::stamp(new)
    }

    fn settings_for_restated() -> GroupSettings {
        GroupSettings {
            mode: ConsumeMode::Shared,
            max_length: 1,
            max_bytes: Some(1),
            ack_deadline: Duration::from_secs(1),
            max_deliveries: None,
            dead_letter_topic: Some(topic("d")),
        }
    }

    fn round_trip(event: &Event) -> Event {
        let mut bytes = Vec::new();
        encode(event, &mut bytes);
        decode(&bytes, &Arc::new(MemoryBudget::new(usize::MAX))).unwrap()
    }

    #[test]
    fn every_kind_of_record_reads_back_as_written() {
        let settings = GroupSettings {
            mode: ConsumeMode::Exclusive,
            max_length: 7,
            max_bytes: Some(1 << 40),
            ack_deadline: Duration::from_millis(1500),
            max_deliveries: Some(3),
            dead_letter_topic: Some(topic("dead.jobs")),
        };
        let copy = GroupCopy {
            message: 1,
            group: 300,
            position: u64::MAX,
        };
        let events = [
            Event::Epoch(u64::MAX),
            Event::GroupCreated {
                id: 9,
                pattern: Pattern::parse("jobs.*.>", ANY_NAME).unwrap(),
                name: GroupName::parse("workers", 64).unwrap(),
                settings,
                declared: true,
            },
            Event::GroupDeclared { id: 1 },
            Event::GroupDeleted { id: 2 },
            Event::Published {
                messages: vec![message(b"a", false), message(&[0; 300], true)],
                copies: vec![copy, GroupCopy { message: 0, ..copy }],
            },
            Event::Delivered {
                group: 3,
                positions: vec![0, 1, 1 << 50],
            },
            Event::Acked {
                group: 4,
                positions: vec![5, 1 << 45],
            },
            Event::Nacked {
                group: 4,
                position: 6,
                until: Some(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789)),
            },
            Event::Nacked {
                group: 4,
                position: 6,
                until: None,
            },
            Event::DeadLettered {
                group: 4,
                position: 7,
                forwarded: Some((message(b"dead", true), vec![copy])),
            },
            Event::DeadLettered {
                group: 4,
                position: 8,
                forwarded: None,
            },
            Event::Reclaiming { before: 1 << 33 },
            Event::GroupRestated {
                id: 9,
                pattern: Pattern::parse("jobs.>", ANY_NAME).unwrap(),
                name: GroupName::parse("w", 64).unwrap(),
                settings: GroupSettings {
                    dead_letter_topic: None,
                    max_bytes: None,
                    ..settings_for_restated()
                },
                declared: false,
                next_position: 77,
            },
            Event::Restated {
                group: 9,
                held: vec![
                    (
                        3,
                        Held {
                            message: message(b"r", true),
                            attempts: 2,
                            until: Some(UNIX_EPOCH + Duration::from_secs(1 << 31)),
                        },
                    ),
                    (
                        4,
                        Held {
                            message: message(b"s", false),
                            attempts: 0,
                            until: None,
                        },
                    ),
                ],
            },
        ];
        for event in &events {
            assert_eq!(&round_trip(event), event);
        }
    }

    #[test]
    fn a_queued_small_message_costs_little_on_disk() {
        let event = Event::Published {
            messages: vec![message(&[7; 128], false)],
            copies: vec![GroupCopy {
                message: 0,
                group: 3,
                position: 1_000_000,
            }],
        };
        let mut bytes = Vec::new();
        encode(&event, &mut bytes);
        assert!(bytes.len() <= 128 + 48, "{} bytes", bytes.len());
    }

    proptest! {
        /// Whatever the bytes, decoding returns an error or an event, never panics or allocates
        /// without bound.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, &Arc::new(MemoryBudget::new(usize::MAX)));
        }

        /// Every prefix of a valid record short of the whole is refused.
        #[test]
        fn a_cut_record_is_refused(cut in 0usize..60) {
            let event = Event::Published {
                messages: vec![message(b"payload", true)],
                copies: vec![GroupCopy { message: 0, group: 1, position: 2 }],
            };
            let mut bytes = Vec::new();
            encode(&event, &mut bytes);
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode(&bytes[..cut], &Arc::new(MemoryBudget::new(usize::MAX))).is_err());
        }
    }
}
