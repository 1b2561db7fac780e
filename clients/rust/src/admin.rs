//! Group administration: declare, delete, list.

use std::time::Duration;

use crate::{
    client::{Client, bounded},
    consumer::ConsumeMode,
    error::Result,
    pb,
};

/// A group's settings and counters, as the broker lists them.
pub type GroupInfo = pb::GroupInfo;

/// The settings of a group to declare.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
/// use switchyard_client::GroupConfig;
///
/// let workers = GroupConfig::new("images.resize", "workers")
///     .max_deliveries(3)
///     .dead_letter_topic("images.dead");
/// client.admin().declare_group(workers).await?;
/// for group in client.admin().list_groups().await? {
///     println!("{} {}: {} ready", group.topic, group.group, group.ready);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GroupConfig {
    request: pb::DeclareGroupRequest,
}

impl GroupConfig {
    /// A group named `group` on the pattern `topic`, with the broker's defaults for everything else.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            request: pb::DeclareGroupRequest {
                topic: topic.into(),
                group: group.into(),
                ..pb::DeclareGroupRequest::default()
            },
        }
    }

    /// Shared (default) or exclusive; fixed for the group's lifetime.
    pub fn mode(mut self, mode: ConsumeMode) -> Self {
        self.request.mode = mode.to_pb().into();
        self
    }

    /// Messages the group may hold; a publish past it fails. Default: the broker's.
    pub fn max_length(mut self, max: u32) -> Self {
        self.request.max_length = max;
        self
    }

    /// What the group's messages may take, counted as the broker's memory budget counts them (payload
    /// plus a fixed overhead per message); a publish past it fails. Default: no limit in bytes.
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.request.max_bytes = max;
        self
    }

    /// How long a delivery may stay unacked before it is redelivered (whole milliseconds). Default: the
    /// broker's.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.request.ack_deadline_ms = u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX);
        self
    }

    /// Deliveries before a failing message is dead-lettered. Default unlimited.
    pub fn max_deliveries(mut self, max: u32) -> Self {
        self.request.max_deliveries = max;
        self
    }

    /// Where rejected messages, and messages past `max_deliveries`, are published. Default: none (they
    /// are dropped).
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.request.dead_letter_topic = topic.into();
        self
    }
}

/// The Admin service. Made by [`Client::admin`].
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates a group, or succeeds if an identical one exists.
    pub async fn declare_group(&self, config: GroupConfig) -> Result<()> {
        let mut admin = self.client.admin.clone();
        let request = self.client.timed(config.request);
        bounded(self.client.call_timeout, admin.declare_group(request)).await?;
        Ok(())
    }

    /// Deletes a group and its messages.
    pub async fn delete_group(
        &self,
        topic: impl Into<String>,
        group: impl Into<String>,
    ) -> Result<()> {
        let mut admin = self.client.admin.clone();
        let request = self.client.timed(pb::DeleteGroupRequest {
            topic: topic.into(),
            group: group.into(),
        });
        bounded(self.client.call_timeout, admin.delete_group(request)).await?;
        Ok(())
    }

    /// Every group with its settings and counters, sorted by pattern and name.
    pub async fn list_groups(&self) -> Result<Vec<GroupInfo>> {
        let mut admin = self.client.admin.clone();
        let request = self.client.timed(pb::ListGroupsRequest {});
        let response = bounded(self.client.call_timeout, admin.list_groups(request)).await?;
        Ok(response.groups)
    }
}
