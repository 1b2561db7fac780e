//! The machine-readable half of every error status: `google.rpc` details in the
//! `grpc-status-details-bin` trailer, so a client matches on a stable reason instead of a message's
//! text (which stays as it is, for people and grpcurl).
//!
//! - `ErrorInfo`: a `reason` from the table below, in domain [`DOMAIN`], with metadata naming what
//!   it is about (topic, group, limit, ...). The reasons are a contract: README "Errors" lists them,
//!   and a reason once published keeps its meaning.
//! - `BadRequest`: for invalid input, the field's path (`messages[2].topic`) and what is wrong.
//! - `RetryInfo`: where waiting helps (a full group or memory that may drain, a broker shutting down
//!   that a client should leave for another).

use std::{collections::HashMap, time::Duration};

use tonic_types::ErrorDetails;

use crate::{auth::Denied, error::BrokerError};

/// The `ErrorInfo.domain` of every reason here.
pub const DOMAIN: &str = "switchyard.dev";

/// How long a client is told to wait before trying again where waiting helps: a group or the
/// memory budget drains as consumers ack.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One error's details.
struct Details {
    reason: &'static str,
    metadata: HashMap<String, String>,
    field: Option<(String, String)>,
    retry: bool,
}

impl Details {
    fn new(reason: &'static str) -> Self {
        Self {
            reason,
            metadata: HashMap::new(),
            field: None,
            retry: false,
        }
    }

    fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.metadata.insert(key.to_owned(), value.to_string());
        self
    }

    fn retry(mut self, helps: bool) -> Self {
        self.retry = helps;
        self
    }

    fn into_error_details(self) -> ErrorDetails {
        let mut details = ErrorDetails::new();
        details.set_error_info(self.reason, DOMAIN, self.metadata);
        if let Some((field, description)) = self.field {
            details.add_bad_request_violation(field, description);
        }
        if self.retry {
            details.set_retry_info(Some(RETRY_AFTER));
        }
        details
    }
}

/// The details of a broker error. Every variant has its own reason.
pub fn of_broker(error: &BrokerError) -> ErrorDetails {
    let details = match error {
        BrokerError::InvalidArgument { field, reason } => Details {
            field: Some((field.clone(), reason.clone())),
            ..Details::new("INVALID_ARGUMENT").with("field", field)
        },
        BrokerError::GroupFull {
            index,
            group,
            max_length,
            never_fits,
        } => Details::new("GROUP_FULL")
            .with("group", group)
            .with("index", index)
            .with("max_length", max_length)
            .retry(!never_fits),
        BrokerError::GroupBytesFull {
            index,
            group,
            max_bytes,
            never_fits,
        } => Details::new("GROUP_BYTES_FULL")
            .with("group", group)
            .with("index", index)
            .with("max_bytes", max_bytes)
            .retry(!never_fits),
        BrokerError::ExclusiveTaken { group } => {
            Details::new("GROUP_EXCLUSIVE_TAKEN").with("group", group)
        }
        BrokerError::GroupConflict {
            group,
            setting,
            existing,
            requested,
        } => {
            let reason = match *setting {
                "mode" => "MODE_MISMATCH",
                _ => "GROUP_CONFLICT",
            };
            Details::new(reason)
                .with("group", group)
                .with("setting", setting)
                .with("existing", existing)
                .with("requested", requested)
        }
        BrokerError::GroupNotFound { group, pattern } => Details::new("UNKNOWN_GROUP")
            .with("group", group)
            .with("topic", pattern),
        BrokerError::GroupDeleted { group } => Details::new("GROUP_DELETED").with("group", group),
        BrokerError::NoResponders { topic } => Details::new("NO_RESPONDERS").with("topic", topic),
        BrokerError::RequestTimedOut(timeout) => {
            Details::new("REQUEST_TIMED_OUT").with("timeout_ms", timeout.as_millis())
        }
        BrokerError::ShuttingDown => Details::new("SHUTTING_DOWN").retry(true),
        BrokerError::MemoryFull { used, limit } => Details::new("MEMORY_FULL")
            .with("used", used)
            .with("limit", limit)
            .retry(true),
        BrokerError::TooManyStreams { limit } => {
            Details::new("TOO_MANY_STREAMS").with("limit", limit)
        }
        BrokerError::DiskFull { .. } => Details::new("DISK_FULL"),
        BrokerError::StorageFailed { .. } => Details::new("STORAGE_FAILED"),
        BrokerError::ClusterUnavailable { .. } => Details::new("CLUSTER_UNAVAILABLE").retry(true),
        BrokerError::Unsupported { .. } => Details::new("UNSUPPORTED"),
    };
    details.into_error_details()
}

/// The details of a call its token may not make.
pub fn of_denied(denied: &Denied) -> ErrorDetails {
    let details = match denied {
        Denied::Topic {
            identity,
            action,
            target,
            field,
        } => Details {
            field: Some((field.clone(), format!("may not {action} {target}"))),
            ..Details::new("PERMISSION_DENIED")
                .with("token", identity)
                .with("action", format!("{action:?}").to_lowercase())
                .with("topic", target)
        },
        Denied::NotAdmin { identity } => Details::new("NOT_ADMIN").with("token", identity),
    };
    details.into_error_details()
}

/// The details of a call without a known token.
pub fn unauthenticated() -> ErrorDetails {
    Details::new("UNAUTHENTICATED").into_error_details()
}

/// The reasons, for the docs test and the clients' tables: every one of them, in one place.
pub const REASONS: &[&str] = &[
    "INVALID_ARGUMENT",
    "GROUP_FULL",
    "GROUP_BYTES_FULL",
    "GROUP_EXCLUSIVE_TAKEN",
    "MODE_MISMATCH",
    "GROUP_CONFLICT",
    "UNKNOWN_GROUP",
    "GROUP_DELETED",
    "NO_RESPONDERS",
    "REQUEST_TIMED_OUT",
    "SHUTTING_DOWN",
    "MEMORY_FULL",
    "TOO_MANY_STREAMS",
    "DISK_FULL",
    "STORAGE_FAILED",
    "CLUSTER_UNAVAILABLE",
    "UNSUPPORTED",
    "PERMISSION_DENIED",
    "NOT_ADMIN",
    "UNAUTHENTICATED",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    fn reason(details: &ErrorDetails) -> String {
        details
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default()
    }

    /// One error of every kind has a listed reason of its own, in the one domain.
    #[test]
    fn every_error_has_its_own_listed_reason() {
        let group = || "g".to_owned();
        let broker = [
            BrokerError::invalid("messages[2].topic", "empty"),
            BrokerError::GroupFull {
                index: 0,
                group: group(),
                max_length: 1,
                never_fits: false,
            },
            BrokerError::GroupBytesFull {
                index: 0,
                group: group(),
                max_bytes: 1,
                never_fits: true,
            },
            BrokerError::ExclusiveTaken { group: group() },
            BrokerError::GroupConflict {
                group: group(),
                setting: "mode",
                existing: "shared".into(),
                requested: "exclusive".into(),
            },
            BrokerError::GroupConflict {
                group: group(),
                setting: "max_length",
                existing: "1".into(),
                requested: "2".into(),
            },
            BrokerError::GroupNotFound {
                group: group(),
                pattern: "t".into(),
            },
            BrokerError::GroupDeleted { group: group() },
            BrokerError::NoResponders { topic: "t".into() },
            BrokerError::RequestTimedOut(Duration::from_secs(1)),
            BrokerError::ShuttingDown,
            BrokerError::MemoryFull { used: 1, limit: 1 },
            BrokerError::TooManyStreams { limit: 1 },
            BrokerError::DiskFull { reason: "x".into() },
            BrokerError::StorageFailed { reason: "x".into() },
            BrokerError::ClusterUnavailable { reason: "x".into() },
            BrokerError::Unsupported { what: "x".into() },
        ];
        let denied = [
            Denied::Topic {
                identity: "app".into(),
                action: Action::Publish,
                target: "t".into(),
                field: "messages[0].topic".into(),
            },
            Denied::NotAdmin {
                identity: "app".into(),
            },
        ];
        let mut seen: Vec<String> = broker
            .iter()
            .map(|error| reason(&of_broker(error)))
            .collect();
        seen.extend(denied.iter().map(|denied| reason(&of_denied(denied))));
        seen.push(reason(&unauthenticated()));
        assert_eq!(
            seen, REASONS,
            "each kind its own reason, and REASONS lists them in order"
        );
        let details = of_broker(&broker[0]);
        assert_eq!(
            details.error_info().map(|info| info.domain.as_str()),
            Some(DOMAIN)
        );
        let violation = &details
            .bad_request()
            .expect("a field violation")
            .field_violations[0];
        assert_eq!(violation.field, "messages[2].topic");
        assert!(
            of_broker(&broker[1]).retry_info().is_some(),
            "a group may drain"
        );
        assert!(
            of_broker(&broker[2]).retry_info().is_none(),
            "never fits: waiting is pointless"
        );
    }
}
