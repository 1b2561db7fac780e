//! The errors a broker reports to its callers. They name what was wrong; the transport maps each kind
//! to a status code in one table (`transport::status`).

use std::{error::Error as StdError, time::Duration};

/// Why a broker operation failed. Nothing here names a transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The caller sent something malformed; `field` is the path of the offending input.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// Publishing the batch would push a group past its `max_length`; nothing was routed.
    #[error(
        "messages[{index}]: group {group} is full ({max_length} messages); nothing in the batch was published"
    )]
    GroupFull {
        index: usize,
        group: String,
        max_length: u32,
        /// The batch alone holds more than the group ever may, so waiting for room is pointless.
        never_fits: bool,
    },
    /// Publishing the batch would push a group past its `max_bytes`; nothing was routed.
    #[error(
        "messages[{index}]: group {group} is full ({max_bytes} bytes, max_bytes); nothing in the batch was published"
    )]
    GroupBytesFull {
        index: usize,
        group: String,
        max_bytes: u64,
        /// As in `GroupFull`.
        never_fits: bool,
    },
    /// An exclusive group already has its one active consumer.
    #[error(
        "group {group} is exclusive and already has an active consumer (consume with standby to wait)"
    )]
    ExclusiveTaken { group: String },
    /// The group exists with other settings than the ones asked for.
    #[error("group {group} exists with {setting} {existing}, not {requested}")]
    GroupConflict {
        group: String,
        setting: &'static str,
        existing: String,
        requested: String,
    },
    #[error("group {group} on {pattern} not found")]
    GroupNotFound { group: String, pattern: String },
    /// The group was deleted while this consumer was attached.
    #[error("group {group} was deleted")]
    GroupDeleted { group: String },
    /// A request found no subscription and no group on its topic.
    #[error("no responders for topic {topic}")]
    NoResponders { topic: String },
    #[error("no reply within {} ms", .0.as_millis())]
    RequestTimedOut(Duration),
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// The messages the broker holds take its whole memory budget; nothing of the batch was routed.
    #[error(
        "the broker's messages take {used} of its {limit} bytes (max_memory_bytes); nothing in the batch was published"
    )]
    MemoryFull { used: usize, limit: usize },
    /// Opening one more subscription or consumer would pass `max_subscriptions`.
    #[error("{limit} subscriptions and consumers are open, the broker's limit (max_subscriptions)")]
    TooManyStreams { limit: usize },
    /// The data directory's disk is full: nothing of the call was stored or acknowledged, and the
    /// durable store takes no more writes.
    #[error("the data directory's disk is full, nothing was stored: {reason}")]
    DiskFull { reason: String },
    /// A write or fsync of the durable store failed, now or earlier: nothing that depended on it was
    /// acknowledged, and the store takes no more writes (a retried fsync proves nothing).
    #[error("the durable store failed, nothing was stored: {reason}")]
    StorageFailed { reason: String },
    /// Cluster mode: the NATS cluster did not answer or refused, so the call's outcome is what its
    /// text says (a publish that fails here was not acknowledged and may be retried).
    #[error("the NATS cluster is unavailable: {reason}")]
    ClusterUnavailable { reason: String },
    /// The backend in use does not do this yet; the text says what instead.
    #[error("{what}")]
    Unsupported { what: String },
}

impl From<crate::storage::CommitError> for BrokerError {
    /// What a durable backend reports when its log refused a record.
    fn from(error: crate::storage::CommitError) -> Self {
        use crate::storage::CommitError;
        match error {
            CommitError::DiskFull(reason) => Self::DiskFull { reason },
            CommitError::Closed => Self::ShuttingDown,
            CommitError::TooLarge { bytes, limit } => Self::invalid(
                "messages",
                format!("the batch takes {bytes} bytes on disk, more than the limit of {limit}"),
            ),
            other => Self::StorageFailed {
                reason: other.to_string(),
            },
        }
    }
}

impl BrokerError {
    /// Shorthand for an [`BrokerError::InvalidArgument`] about `field`.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

/// `error` and each of its causes, joined by ": " on one line.
pub fn with_causes(error: &dyn StdError) -> String {
    let text = error.to_string();
    match error.source() {
        Some(cause) => append_causes(text, cause),
        None => text,
    }
}

/// Appends each cause in the chain, skipping one the text already ends with (many errors print
/// their source as part of their own message).
pub fn append_causes(mut text: String, first: &dyn StdError) -> String {
    let mut cause = Some(first);
    while let Some(error) = cause {
        let line = error.to_string();
        if !line.is_empty() && !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = error.source();
    }
    text.replace('\n', " ")
}
