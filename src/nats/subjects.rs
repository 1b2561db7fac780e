//! Where Switchyard's names live in NATS: every subject starts with the deployment's prefix, then
//! a letter that says which path it is on.
//!
//! - `P.t.TOPIC`: messages, captured by the stream `P` (every group) and read by subscribers;
//! - `P.r.TOPIC`: requests that no group can take, read by subscribers only, so that NATS's
//!   no-responders status says at once that nobody listens;
//! - `P.i.NODE.ID`: replies, for the inbox `_INBOX.NODE.ID` of a request made on node `NODE`;
//! - `P._n.*`: what nodes say to each other (a group changed; what each node counted).
//!
//! Topic tokens and the `*` / `>` wildcards are NATS's own, so a pattern is a subject filter as is.

use crate::topic::{INBOX_PREFIX, Pattern, Topic};

#[derive(Debug, Clone)]
pub struct Subjects {
    messages: String,
    requests: String,
    inboxes: String,
    nodes: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Self {
            messages: format!("{prefix}.t."),
            requests: format!("{prefix}.r."),
            inboxes: format!("{prefix}.i."),
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

    /// The subject a request that no group takes is published on.
    pub fn request(&self, topic: &Topic) -> String {
        format!("{}{topic}", self.requests)
    }

    /// The filters a subscriber to `pattern` reads: messages and requests.
    pub fn subscription(&self, pattern: &Pattern) -> [String; 2] {
        [
            format!("{}{pattern}", self.messages),
            format!("{}{pattern}", self.requests),
        ]
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
        if let Some(topic) = subject
            .strip_prefix(&self.messages)
            .or_else(|| subject.strip_prefix(&self.requests))
        {
            return Some(topic.to_owned());
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
        assert_eq!(subjects.request(&topic), "sy.r.orders.eu");
        let inbox = Topic::new_inbox_under("n1");
        let subject = subjects.topic(&inbox);
        assert!(subject.starts_with("sy.i.n1."), "{subject}");
        for subject in [subject, "sy.t.orders.eu".into(), "sy.r.orders.eu".into()] {
            let back = subjects.topic_of(&subject).unwrap();
            assert!(back == "orders.eu" || back == inbox.as_str(), "{back}");
        }
        assert_eq!(subjects.topic_of("other.t.x"), None);
        let pattern = Pattern::parse("orders.*", limits).unwrap();
        assert_eq!(
            subjects.subscription(&pattern),
            ["sy.t.orders.*", "sy.r.orders.*"]
        );
        assert_eq!(subjects.stream(), "sy.t.>");
        assert_eq!(subjects.node_inboxes("n1"), "sy.i.n1.*");
    }
}
