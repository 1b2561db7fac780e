//! Messages as the broker sees them: what a publisher hands in, and what the broker stamps and routes.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, LazyLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use triomphe::ThinArc;

use crate::{
    budget::{MemoryBudget, footprint},
    topic::Topic,
};

/// A message id: a UUID v7, so ids sort by publish time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The id's 16 bytes, as the journal stores them.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }

    /// Writes the id as it is shown (lowercase, hyphenated) into `buf`, without allocating.
    pub fn write_text(self, buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
        self.0.hyphenated().encode_lower(buf)
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// A message a publisher asks the broker to route: validated, not yet stamped with id and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub topic: Topic,
    pub payload: Bytes,
    pub headers: HashMap<String, String>,
    pub key: String,
    pub reply_to: Option<Topic>,
    pub correlation_id: String,
}

impl NewMessage {
    /// What the message will be charged against the memory budget once stamped: the same as
    /// [`Message::footprint`].
    pub fn footprint(&self) -> usize {
        let optional_text = self.key.len()
            + self.correlation_id.len()
            + self
                .reply_to
                .as_ref()
                .map_or(0, |topic| topic.as_str().len());
        footprint(self.payload.len(), &self.headers, optional_text)
    }

    /// A message with only a topic and a payload.
    pub fn new(topic: Topic, payload: impl Into<Bytes>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            headers: HashMap::new(),
            key: String::new(),
            reply_to: None,
            correlation_id: String::new(),
        }
    }
}

/// A routed message: a cheap handle (one pointer) to one shared allocation holding its fields and
/// its payload. Every subscriber and group that gets the message holds a clone of the handle, so a
/// fan-out copies a pointer, not the payload.
///
/// Kept small because a queue holds one per waiting message. The payload lives in the same
/// allocation as the fields (triomphe's `ThinArc`, whose count has no weak half): with the payload
/// in a `Bytes` of its own, a queued 128-byte message took 282 bytes of RSS, three allocations'
/// worth of headers and handles (BENCHMARKS.md). The fields most messages leave empty (headers, key,
/// reply_to, correlation_id) live in one optional box.
///
/// A message charged to the broker's [`MemoryBudget`] gives its charge back once, when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Message(ThinArc<Fields, u8>);

#[derive(Debug)]
struct Fields {
    id: MessageId,
    topic: Topic,
    /// Nanoseconds since the Unix epoch: half the size of a `SystemTime`.
    published_at_nanos: u64,
    extras: Option<Box<Extras>>,
    /// Held for its `Drop`, which gives the charge back.
    #[expect(dead_code, reason = "read only by its Drop")]
    charge: Option<Charge>,
}

/// What a message was charged, and to which budget; given back when the message's fields go.
#[derive(Debug)]
struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// The fields of a [`Message`] that are usually empty.
#[derive(Debug, Clone, PartialEq)]
struct Extras {
    headers: HashMap<String, String>,
    key: String,
    reply_to: Option<Topic>,
    correlation_id: String,
}

/// What `headers()` lends for a message without any.
static NO_HEADERS: LazyLock<HashMap<String, String>> = LazyLock::new(HashMap::new);

impl Message {
    /// Stamps a new message with a fresh id and the current time.
    pub fn stamp(new: NewMessage) -> Self {
        Self::stamp_as(new, MessageId::new(), SystemTime::now(), None)
    }

    /// Stamps a new message with a fresh id and the current time, tied to `budget`, which the caller
    /// has already charged the message's [`NewMessage::footprint`]: dropping the last handle gives it
    /// back.
    pub fn stamp_charged(new: NewMessage, budget: &Arc<MemoryBudget>) -> Self {
        Self::stamp_as(new, MessageId::new(), SystemTime::now(), Some(budget))
    }

    /// Stamps a message with a given id and time (a dead letter keeps the id it was published with),
    /// charged to `budget` when there is one, as [`Message::stamp_charged`].
    pub fn stamp_as(
        new: NewMessage,
        id: MessageId,
        published_at: SystemTime,
        budget: Option<&Arc<MemoryBudget>>,
    ) -> Self {
        let charge = budget.map(|budget| Charge {
            budget: Arc::clone(budget),
            bytes: new.footprint(),
        });
        let NewMessage {
            topic,
            payload,
            headers,
            key,
            reply_to,
            correlation_id,
        } = new;
        // Checked field by field: comparing with a default `Extras` built a map and showed in a
        // fan-out profile (7 % of the broker).
        let has_extras = !headers.is_empty()
            || !key.is_empty()
            || reply_to.is_some()
            || !correlation_id.is_empty();
        let published_at_nanos = published_at.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        });
        let fields = Fields {
            id,
            topic,
            published_at_nanos,
            extras: has_extras.then(|| {
                Box::new(Extras {
                    headers,
                    key,
                    reply_to,
                    correlation_id,
                })
            }),
            charge,
        };
        Self(ThinArc::from_header_and_slice(fields, &payload))
    }

    fn fields(&self) -> &Fields {
        &self.0.header.header
    }

    pub fn id(&self) -> MessageId {
        self.fields().id
    }

    pub fn topic(&self) -> &Topic {
        &self.fields().topic
    }

    pub fn payload(&self) -> &[u8] {
        &self.0.slice
    }

    /// The payload as `Bytes` that share this message's allocation instead of copying it.
    pub fn payload_bytes(&self) -> Bytes {
        Bytes::from_owner(PayloadOf(self.clone()))
    }

    /// What the message is charged against the memory budget.
    pub fn footprint(&self) -> usize {
        let optional_text = self.key().len()
            + self.correlation_id().len()
            + self.reply_to().map_or(0, |topic| topic.as_str().len());
        footprint(self.payload().len(), self.headers(), optional_text)
    }

    pub fn published_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.fields().published_at_nanos)
    }

    /// The headers; empty if none.
    pub fn headers(&self) -> &HashMap<String, String> {
        self.fields()
            .extras
            .as_ref()
            .map_or(&NO_HEADERS, |extras| &extras.headers)
    }

    /// The application key, empty if none.
    pub fn key(&self) -> &str {
        self.fields()
            .extras
            .as_ref()
            .map_or("", |extras| &extras.key)
    }

    /// Where a reply goes, if this is a request.
    pub fn reply_to(&self) -> Option<&Topic> {
        self.fields()
            .extras
            .as_ref()
            .and_then(|extras| extras.reply_to.as_ref())
    }

    /// The correlation id, empty if none.
    pub fn correlation_id(&self) -> &str {
        self.fields()
            .extras
            .as_ref()
            .map_or("", |extras| &extras.correlation_id)
    }

    /// Whether both handles are to the same message.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.0.ptr() == other.0.ptr()
    }
}

/// Compares content: id, topic, payload, time and the optional fields (not the charge).
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        let (mine, theirs) = (self.fields(), other.fields());
        mine.id == theirs.id
            && mine.topic == theirs.topic
            && mine.published_at_nanos == theirs.published_at_nanos
            && mine.extras == theirs.extras
            && self.payload() == other.payload()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id())
            .field("topic", self.topic())
            .field("payload_bytes", &self.payload().len())
            .finish_non_exhaustive()
    }
}

/// Lends a message's payload to `Bytes`, keeping the message alive while the bytes are.
struct PayloadOf(Message);

impl AsRef<[u8]> for PayloadOf {
    fn as_ref(&self) -> &[u8] {
        self.0.payload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::TopicLimits;

    fn topic(text: &str) -> Topic {
        let limits = TopicLimits {
            max_bytes: 256,
            max_tokens: 16,
        };
        Topic::parse(text, limits).unwrap()
    }

    #[test]
    fn a_plain_message_keeps_no_extras() {
        let message = Message::stamp(NewMessage::new(topic("a.b"), "x"));
        assert!(message.fields().extras.is_none());
        assert!(message.headers().is_empty());
        assert_eq!((message.key(), message.correlation_id()), ("", ""));
        assert_eq!(message.reply_to(), None);
    }

    #[test]
    fn stamping_keeps_every_extra() {
        let mut new = NewMessage::new(topic("a.b"), "x");
        new.headers.insert("h".into(), "v".into());
        new.key = "k".into();
        new.reply_to = Some(topic("_INBOX.1"));
        new.correlation_id = "c".into();
        let message = Message::stamp(new);
        assert_eq!(message.headers()["h"], "v");
        assert_eq!((message.key(), message.correlation_id()), ("k", "c"));
        assert_eq!(message.reply_to(), Some(&topic("_INBOX.1")));
    }
}
