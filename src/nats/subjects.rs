//! Where Switchyard's names live in NATS: every subject starts with the deployment's prefix, then
//! a letter that says which path it is on.
//!
//! - `P.t.TOPIC`: messages some group may read, captured by the stream `P` (every group) and read
//!   by subscribers;
//! - `P.r.TOPIC`: messages and requests that no group reads, read by subscribers only: outside
//!   the stream, and for a request NATS's no-responders status says at once that nobody listens;
//! - `P.q.GROUP.TOPIC`: a request to `TOPIC` handed straight to a node with a consumer of the
//!   shared group whose JetStream consumer is `GROUP` (see `direct`), outside the stream;
//! - `P.i.NODE.ID`: replies, for the inbox `_INBOX.NODE.ID` of a request made on node `NODE`;
//! - `P._n.*`: what nodes say to each other (a group changed; what each node counted).
//!
//! Topic tokens and the `*` / `>` wildcards are NATS's own, so a pattern is a subject filter as is.
//! A subscriber reads both of the first two paths through one subscription, `P.*.PATTERN`, so that
//! a publisher's messages reach it in order whichever path each took; what else that matches
//! (another path's subjects) it drops ([`Subjects::published_topic_of`]).

use crate::topic::{INBOX_PREFIX, Pattern, Topic};

#[derive(Debug, Clone)]
pub struct Subjects {
    /// `P.`
    prefix: String,
    messages: String,
    requests: String,
    inboxes: String,
    direct: String,
    nodes: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: format!("{prefix}."),
            messages: format!("{prefix}.t."),
            requests: format!("{prefix}.r."),
            inboxes: format!("{prefix}.i."),
            direct: format!("{prefix}.q."),
            nodes: format!("{prefix}._n."),
        }
    }

    /// Where a node says that a group was made, changed or deleted.
    pub fn group_changes(&self) -> String {
        format!("{}groups", self.nodes)
    }

    /// A subscription's probe subject (see `fanout`).
    pub fn probe(&self, node: &str, subscription: u64) -> String {
        format!("{}probe.{node}.{subscription}", self.nodes)
    }

    /// Where a node takes settlements of its deliveries that clients sent to other nodes.
    pub fn settle(&self, node: &str) -> String {
        format!("{}settle.{node}", self.nodes)
    }

    /// Where a node sends itself echoes (see `echo`).
    pub fn echo(&self, node: &str) -> String {
        format!("{}echo.{node}", self.nodes)
    }

    /// Where a node says it is there.
    pub fn hello(&self) -> String {
        format!("{}hello", self.nodes)
    }

    /// Where a node asks every node to reach a probe.
    pub fn reach(&self) -> String {
        format!("{}reach", self.nodes)
    }

    /// Where a node asks every node for what it counted.
    pub fn census(&self) -> String {
        format!("{}census", self.nodes)
    }

    /// The subject a message to `topic` is published on: a reply's own for an inbox.
    pub fn topic(&self, topic: &Topic) -> String {
        match topic.as_str().strip_prefix(INBOX_PREFIX) {
            Some(inbox) => format!("{}{inbox}", self.inboxes),
            None => format!("{}{topic}", self.messages),
        }
    }

    /// The subject a message or request to `topic` that no group reads is published on: outside
    /// the stream (a reply's own for an inbox).
    pub fn core(&self, topic: &Topic) -> String {
        match topic.as_str().strip_prefix(INBOX_PREFIX) {
            Some(inbox) => format!("{}{inbox}", self.inboxes),
            None => format!("{}{topic}", self.requests),
        }
    }

    /// Where a request to `topic` goes to be handed straight to a consumer of the shared group
    /// whose JetStream consumer is `group`.
    pub fn direct(&self, group: &str, topic: &Topic) -> String {
        format!("{}{group}.{topic}", self.direct)
    }

    /// What the nodes with consumers of that group read, as one queue group.
    pub fn direct_group(&self, group: &str) -> String {
        format!("{}{group}.>", self.direct)
    }

    /// The topic of a request handed straight to `group`, as text still to be parsed.
    pub fn direct_topic_of<'a>(&self, group: &str, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(&self.direct)?
            .strip_prefix(group)?
            .strip_prefix('.')
    }

    /// The one filter a subscriber to `pattern` reads: both paths a message may take. It matches
    /// other paths' subjects too, which [`Subjects::published_topic_of`] tells apart.
    pub fn subscription(&self, pattern: &Pattern) -> String {
        format!("{}*.{pattern}", self.prefix)
    }

    /// The topic of a message that a subscriber reads: one on either path a message may take.
    pub fn published_topic_of(&self, subject: &str) -> Option<String> {
        subject
            .strip_prefix(&self.messages)
            .or_else(|| subject.strip_prefix(&self.requests))
            .map(str::to_owned)
    }

    /// A group's filter on the stream.
    pub fn group_filter(&self, pattern: &Pattern) -> String {
        format!("{}{pattern}", self.messages)
    }

    /// What the stream captures: every message.
    pub fn stream(&self) -> String {
        format!("{}>", self.messages)
    }

    /// What one node reads for the replies to its requests.
    pub fn node_inboxes(&self, node: &str) -> String {
        format!("{}{node}.*", self.inboxes)
    }

    /// The topic a subject carries, as text still to be parsed: what came in from NATS.
    pub fn topic_of(&self, subject: &str) -> Option<String> {
        if let Some(topic) = self.published_topic_of(subject) {
            return Some(topic);
        }
        let inbox = subject.strip_prefix(&self.inboxes)?;
        Some(format!("{INBOX_PREFIX}{inbox}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn topics_inboxes_and_requests_map_to_subjects_and_back() {
        let limits = Config::default().topic_limits();
        let subjects = Subjects::new("sy");
        let topic = Topic::parse("orders.eu", limits).unwrap();
        assert_eq!(subjects.topic(&topic), "sy.t.orders.eu");
        assert_eq!(subjects.core(&topic), "sy.r.orders.eu");
        let inbox = Topic::new_inbox_under("n1");
        let subject = subjects.topic(&inbox);
        assert!(subject.starts_with("sy.i.n1."), "{subject}");
        assert_eq!(subjects.core(&inbox), subject);
        for subject in [subject, "sy.t.orders.eu".into(), "sy.r.orders.eu".into()] {
            let back = subjects.topic_of(&subject).unwrap();
            assert!(back == "orders.eu" || back == inbox.as_str(), "{back}");
        }
        assert_eq!(subjects.topic_of("other.t.x"), None);
        let pattern = Pattern::parse("orders.*", limits).unwrap();
        assert_eq!(subjects.subscription(&pattern), "sy.*.orders.*");
        // What else a subscription's filter matches is not a published message.
        assert_eq!(
            subjects.published_topic_of("sy.r.orders.eu").as_deref(),
            Some("orders.eu")
        );
        assert_eq!(subjects.published_topic_of("sy.i.orders.eu"), None);
        assert_eq!(subjects.published_topic_of("sy._n.orders.eu"), None);
        assert_eq!(subjects.stream(), "sy.t.>");
        let direct = subjects.direct("g1", &topic);
        assert_eq!(direct, "sy.q.g1.orders.eu");
        assert_eq!(subjects.direct_group("g1"), "sy.q.g1.>");
        assert_eq!(subjects.direct_topic_of("g1", &direct), Some("orders.eu"));
        assert_eq!(subjects.direct_topic_of("g", &direct), None);
        assert_eq!(subjects.published_topic_of(&direct), None);
        assert_eq!(subjects.node_inboxes("n1"), "sy.i.n1.*");
    }
}
