//! Messages as the broker sees them: what a publisher hands in, and what the broker stamps and routes.

use std::{collections::HashMap, fmt, time::SystemTime};

use bytes::Bytes;

use crate::topic::Topic;

/// A message id: a UUID v7, so ids sort by publish time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
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

/// A routed message. Shared as `Arc<Message>` by every subscriber and group that gets it, so a fan-out
/// copies a pointer, not the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub topic: Topic,
    pub payload: Bytes,
    pub headers: HashMap<String, String>,
    pub key: String,
    pub reply_to: Option<Topic>,
    pub correlation_id: String,
    pub published_at: SystemTime,
}

impl Message {
    /// Stamps a new message with a fresh id and the current time.
    pub fn stamp(new: NewMessage) -> Self {
        Self::stamp_as(new, MessageId::new(), SystemTime::now())
    }

    /// Stamps a message with a given id and time: a dead letter keeps the id it was published with.
    pub fn stamp_as(new: NewMessage, id: MessageId, published_at: SystemTime) -> Self {
        let NewMessage {
            topic,
            payload,
            headers,
            key,
            reply_to,
            correlation_id,
        } = new;
        Self {
            id,
            topic,
            payload,
            headers,
            key,
            reply_to,
            correlation_id,
            published_at,
        }
    }
}
