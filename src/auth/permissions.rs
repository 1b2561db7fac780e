//! Permissions: allow and deny patterns per action, with deny winning, as in NATS.
//!
//! A token's rule for an action has an optional allow list and a deny list. No allow list means
//! every topic is allowed (NATS's default when a token has no permissions block); an empty one means
//! none is. A topic or pattern matching any deny entry is refused whatever the allow list says.

use std::fmt;

use crate::topic::{Pattern, Topic};

/// What a token may be allowed to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish, and Request (a request is published to its topic).
    Publish,
    Subscribe,
    Consume,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Publish => "publish to",
            Self::Subscribe => "subscribe to",
            Self::Consume => "consume from",
        })
    }
}

/// Why a call was refused: the identity, what it tried, on what, and the request field that named it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    #[error("{field}: token {identity} may not {action} {target}")]
    Topic {
        identity: String,
        action: Action,
        target: String,
        field: String,
    },
    #[error("token {identity} is not an admin token; admin calls need \"admin\": true")]
    NotAdmin { identity: String },
}

/// The allow and deny lists of one action.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// `None`: every topic is allowed, before `deny` applies. `Some(empty)`: nothing is.
    allow: Option<Vec<Pattern>>,
    deny: Vec<Pattern>,
}

impl Rule {
    pub fn new(allow: Option<Vec<Pattern>>, deny: Vec<Pattern>) -> Self {
        Self { allow, deny }
    }

    /// Whether the rule allows every topic (nothing listed): checks against it can be skipped.
    pub fn permits_all(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// Whether a message may go to `topic`: some allowed pattern matches it and no denied one does.
    pub fn permits_topic(&self, topic: &Topic) -> bool {
        !self.deny.iter().any(|denied| denied.matches(topic))
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|allowed| allowed.matches(topic)))
    }

    /// Whether a subscription or group on `pattern` is allowed: one allowed pattern covers every topic
    /// it matches, and no denied pattern shares a topic with it. Deliveries are not filtered one by
    /// one, so a pattern that could see a denied topic is refused as a whole.
    pub fn permits_pattern(&self, pattern: &Pattern) -> bool {
        !self.deny.iter().any(|denied| denied.overlaps(pattern))
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|allowed| allowed.covers(pattern)))
    }
}

/// Everything one token may do.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub publish: Rule,
    pub subscribe: Rule,
    pub consume: Rule,
    /// Whether the Admin service (declare, delete and list groups) is open to it.
    pub admin: bool,
}

impl Permissions {
    /// Every action on every topic, and admin: what a caller gets when authentication is off.
    pub fn all() -> Self {
        Self {
            admin: true,
            ..Self::default()
        }
    }

    pub fn rule(&self, action: Action) -> &Rule {
        match action {
            Action::Publish => &self.publish,
            Action::Subscribe => &self.subscribe,
            Action::Consume => &self.consume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::TopicLimits;

    const LIMITS: TopicLimits = TopicLimits {
        max_bytes: 64,
        max_tokens: 8,
    };

    fn patterns(texts: &[&str]) -> Vec<Pattern> {
        texts
            .iter()
            .map(|text| Pattern::parse(text, LIMITS).unwrap())
            .collect()
    }

    fn topic(text: &str) -> Topic {
        Topic::parse(text, LIMITS).unwrap()
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text, LIMITS).unwrap()
    }

    #[test]
    fn no_allow_list_allows_everything_not_denied() {
        let rule = Rule::new(None, patterns(&["secret.>"]));
        assert!(rule.permits_topic(&topic("orders.created")));
        assert!(!rule.permits_topic(&topic("secret.keys")));
        assert!(Rule::default().permits_pattern(&pattern(">")));
    }

    #[test]
    fn an_empty_allow_list_allows_nothing() {
        let rule = Rule::new(Some(Vec::new()), Vec::new());
        assert!(!rule.permits_topic(&topic("orders.created")));
        assert!(!rule.permits_pattern(&pattern("orders.*")));
    }

    #[test]
    fn deny_wins_over_allow() {
        let rule = Rule::new(
            Some(patterns(&["orders.>"])),
            patterns(&["orders.internal.>"]),
        );
        assert!(rule.permits_topic(&topic("orders.eu.created")));
        assert!(!rule.permits_topic(&topic("orders.internal.audit")));
        assert!(!rule.permits_topic(&topic("payments.settled")));
    }

    #[test]
    fn a_pattern_needs_one_covering_allow_and_no_overlapping_deny() {
        let rule = Rule::new(
            Some(patterns(&["orders.>"])),
            patterns(&["orders.internal.>"]),
        );
        assert!(rule.permits_pattern(&pattern("orders.eu.*")));
        // Could see orders.internal.x: refused as a whole rather than filtered.
        assert!(!rule.permits_pattern(&pattern("orders.>")));
        assert!(!rule.permits_pattern(&pattern("orders.*.audit")));
        // Matches more than the allow list covers.
        assert!(!rule.permits_pattern(&pattern(">")));
    }

    #[test]
    fn denials_name_the_field_and_the_topic() {
        let denied = Denied::Topic {
            identity: "orders-service".into(),
            action: Action::Publish,
            target: "secret.keys".into(),
            field: "messages[2].topic".into(),
        };
        assert_eq!(
            denied.to_string(),
            "messages[2].topic: token orders-service may not publish to secret.keys"
        );
    }
}
