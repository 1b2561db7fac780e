//! What the nodes of one deployment tell each other over core NATS (`P._n.*`):
//!
//! - **Group changes.** A node that makes, changes or deletes a group tells every node, with the
//!   group's settings, and waits (as for a census) until they have taken it: so once a declaration
//!   or a Consume returns, a publish or a request on any node knows of the group. A node that may
//!   have missed a notice reads the groups again at once (view.rs), and a refresh every two
//!   seconds is the backstop.
//! - **The census.** Counters and consumers live on the node that has them. Listing the groups
//!   or a group's consumers asks every node and sums what they answer within [`GATHER`].
//! - **Presence.** Each node says hello every [`HELLO`]; a node heard from within [`PRESENT`]
//!   is expected to answer every question to all nodes, which stops waiting once they all have
//!   (and at least [`SETTLE`] has passed, in case a new one answers too).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Shared, groups, unavailable};
use crate::{
    broker::{ConsumerInfo, GroupCounters},
    error::BrokerError,
};

/// The longest a census waits for answers.
const GATHER: Duration = Duration::from_millis(250);
/// The least a census waits, even once the nodes it expects have answered: a new node answers too.
const SETTLE: Duration = Duration::from_millis(20);
/// How often a node says hello.
const HELLO: Duration = Duration::from_secs(1);
/// How long a new node waits for the others to answer its greeting: as long as a hello takes to
/// come round. Every node must have heard of it, and it of them, before it serves: a node that
/// tells of a group change waits only for the nodes it has heard of, and one that has not taken
/// the change could send the group's messages past the stream.
const GREET: Duration = HELLO.saturating_add(SETTLE);
/// How long a node counts as present after its last hello.
const PRESENT: Duration = Duration::from_secs(4);
/// How long a group change is told again to a node present that has not taken it.
const CHANGE_WAIT: Duration = Duration::from_secs(1);
/// How often a node checks that it is not stalled.
const WATCH: Duration = Duration::from_millis(100);
/// How late a check may come before this node counts itself as stalled: with [`WATCH`], under
/// [`CHANGE_WAIT`], so that a node too stalled to answer a change in time finds out.
const STALL: Duration = Duration::from_millis(500);

/// What one node has of each group it knows, by the group's consumer name.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NodeCensus {
    pub groups: HashMap<String, GroupCensus>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GroupCensus {
    pub counters: GroupCounters,
    pub consumers: Vec<ConsumerCensus>,
    /// Consumes on their way to the group: it may not be made yet, or they are not attached.
    #[serde(default)]
    pub joining: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerCensus {
    pub id: u64,
    pub prefetch: u32,
    pub in_flight: u32,
    pub ack_deadline_ms: u64,
    /// False for an exclusive group's standbys.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl From<&ConsumerCensus> for ConsumerInfo {
    fn from(consumer: &ConsumerCensus) -> Self {
        Self {
            id: consumer.id,
            prefetch: consumer.prefetch,
            in_flight: consumer.in_flight,
            ack_deadline: Duration::from_millis(consumer.ack_deadline_ms),
            active: consumer.active,
        }
    }
}

/// The whole cluster's census: every node's, summed by group.
#[derive(Debug, Default)]
pub struct Census {
    pub groups: HashMap<String, GroupCensus>,
    /// Whether every node present answered: a census without a slow node's answer lists fewer
    /// consumers than there are, which is enough for a listing but not to find a group idle.
    pub complete: bool,
}

/// The nodes heard from lately, by name, with when.
#[derive(Debug, Default)]
pub struct Nodes(Mutex<HashMap<String, Instant>>);

impl Nodes {
    fn heard(&self, node: &str) {
        self.0.lock().insert(node.to_owned(), Instant::now());
    }

    /// How many nodes should answer a question to all of them (this one included).
    fn present(&self) -> usize {
        self.names().len().max(1)
    }

    /// The nodes heard from within [`PRESENT`].
    fn names(&self) -> HashSet<String> {
        let mut nodes = self.0.lock();
        nodes.retain(|_, heard| heard.elapsed() < PRESENT);
        nodes.keys().cloned().collect()
    }
}

/// Starts answering the census and reading group changes, for as long as the broker runs.
pub async fn listen(shared: &Arc<Shared>) -> Result<(), async_nats::SubscribeError> {
    let client = &shared.client;
    let mut census = client.subscribe(shared.subjects.census()).await?;
    let mut changes = client.subscribe(shared.subjects.group_changes()).await?;
    let mut reaches = client.subscribe(shared.subjects.reach()).await?;
    let mut hellos = client.subscribe(shared.subjects.hello()).await?;
    shared.census_nodes.heard(&shared.node);
    tokio::spawn(say_hello(Arc::downgrade(shared)));
    tokio::spawn(watch_stalls(Arc::downgrade(shared)));
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                asked = census.next() => {
                    let (Some(asked), Some(shared)) = (asked, weak.upgrade()) else { return };
                    let Some(reply) = asked.reply else { continue };
                    let answer = serde_json::to_vec(&shared.local_census()).unwrap_or_default();
                    let _ = shared.client.publish(reply, answer.into()).await;
                }
                hello = hellos.next() => {
                    let (Some(hello), Some(shared)) = (hello, weak.upgrade()) else { return };
                    shared.census_nodes.heard(&String::from_utf8_lossy(&hello.payload));
                    if let Some(reply) = hello.reply {
                        // A new node's greeting: it waits for every node's name.
                        let name = Bytes::copy_from_slice(shared.node.as_bytes());
                        let _ = shared.client.publish(reply, name).await;
                    }
                }
                asked = reaches.next() => {
                    let (Some(asked), Some(shared)) = (asked, weak.upgrade()) else { return };
                    let Some(reply) = asked.reply else { continue };
                    let probe = String::from_utf8_lossy(&asked.payload).into_owned();
                    tokio::spawn(async move {
                        if reach_probe(&shared, probe).await {
                            let _ = shared.client.publish(reply, Bytes::new()).await;
                        }
                    });
                }
                changed = changes.next() => {
                    let (Some(changed), Some(shared)) = (changed, weak.upgrade()) else { return };
                    if let Ok(notice) = serde_json::from_slice::<Change>(&changed.payload) {
                        groups::take_change(&shared, &notice.consumer, notice.group.as_ref());
                    }
                    if let Some(reply) = changed.reply {
                        let name = Bytes::copy_from_slice(shared.node.as_bytes());
                        let _ = shared.client.publish(reply, name).await;
                    }
                }
            }
        }
    });
    Ok(())
}

/// Says hello at once, asking every node to answer with its name, and takes the answers and
/// hellos that come within [`GREET`]: so that a new node knows which nodes to expect from its
/// first question to all of them, even those too busy to answer at once. Runs beside the node's
/// first second of serving: its questions to all nodes wait for it, and until it ends the node
/// does not trust its copy of the groups ([`View`](super::view::View)).
pub async fn greet(shared: Arc<Shared>) {
    let name = Bytes::copy_from_slice(shared.node.as_bytes());
    let client = &shared.client;
    let until = Instant::now() + GREET;
    let inbox = client.new_inbox();
    if let Ok(mut answers) = client.subscribe(inbox.clone()).await {
        let _ = client
            .publish_with_reply(shared.subjects.hello(), inbox, name)
            .await;
        while let Ok(Some(answer)) = tokio::time::timeout_at(until, answers.next()).await {
            shared
                .census_nodes
                .heard(&String::from_utf8_lossy(&answer.payload));
        }
    }
    // The whole round, answers or not: the others' hellos come meanwhile, and they hear of this
    // node from its own.
    tokio::time::sleep_until(until).await;
    // Every node knows of this one now: a full read that begins after that is complete.
    shared.view.introduced();
    groups::refresh(&shared).await;
    shared.greeted.cancel();
}

/// Watches for this node stalling, until the broker is gone: a tick of [`WATCH`] that comes
/// [`STALL`] late means the node may have sat on a group change past [`CHANGE_WAIT`].
async fn watch_stalls(shared: std::sync::Weak<Shared>) {
    let mut ticks = tokio::time::interval(WATCH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        let late = last.elapsed().saturating_sub(WATCH);
        if late > STALL {
            tracing::debug!(?late, "this node stalled; it reads the groups again");
            shared.view.lost();
        }
        last = Instant::now();
    }
}

/// Says hello to the other nodes until the broker is gone or shut down.
async fn say_hello(shared: std::sync::Weak<Shared>) {
    let mut ticks = tokio::time::interval(HELLO);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        let name = Bytes::copy_from_slice(shared.node.as_bytes());
        let _ = shared.client.publish(shared.subjects.hello(), name).await;
    }
}

/// A group change as nodes tell it: the group's consumer name, and its metadata unless it was
/// deleted.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    consumer: String,
    group: Option<HashMap<String, String>>,
}

/// Tells every node that the group of consumer `name` changed to `group` (`None`: deleted), and
/// waits until every node present has taken it, telling again for up to [`CHANGE_WAIT`]. A node
/// that does not answer by then is stalled or cut off: it finds itself so and reads the groups
/// again (view.rs), and until it has, it sends every message through the stream.
pub async fn changed(shared: &Shared, name: &str, group: Option<HashMap<String, String>>) {
    let notice = Change {
        consumer: name.to_owned(),
        group,
    };
    let notice = Bytes::from(serde_json::to_vec(&notice).unwrap_or_default());
    let subject = shared.subjects.group_changes();
    let deadline = Instant::now() + CHANGE_WAIT;
    loop {
        let answers = match ask_all(shared, subject.clone(), notice.clone(), SETTLE).await {
            Ok(answers) => answers,
            Err(error) => {
                tracing::debug!(%error, "cannot tell the other nodes of a group change");
                return;
            }
        };
        let answered: HashSet<String> = answers
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        let mut missing = shared.census_nodes.names();
        missing.retain(|node| !answered.contains(node));
        if missing.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(nodes = ?missing, group = %name, "nodes did not take a group change in time");
            return;
        }
    }
}

/// Has every node reach `probe`, a subject just subscribed to, and waits until they have (as for
/// a census): then every node's server knows of what was subscribed before it.
pub async fn reach(shared: &Shared, probe: String) {
    // Once the nodes there now have reached it, no settling time is waited: a node that starts
    // meanwhile learns of the subscription through its server's routes like any other, which
    // [`SETTLE`]'s 20 ms did not hasten, and every subscription paid them.
    if let Err(error) = ask_all(
        shared,
        shared.subjects.reach(),
        probe.into(),
        Duration::ZERO,
    )
    .await
    {
        tracing::debug!(%error, "cannot have the nodes reach a new subscription");
    }
}

/// Requests `probe` until its subscriber answers: `false` if it did not within [`GATHER`].
async fn reach_probe(shared: &Shared, probe: String) -> bool {
    let deadline = Instant::now() + GATHER;
    while Instant::now() < deadline {
        let asked = shared.client.request(probe.clone(), Bytes::new());
        if let Ok(Ok(_)) = tokio::time::timeout(GATHER, asked).await {
            return true;
        }
        // No responders: this node's server does not know the probe yet.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Asks every node for its census and sums the answers.
pub async fn gather(shared: &Shared) -> Result<Census, BrokerError> {
    let answers = ask_all(shared, shared.subjects.census(), Bytes::new(), SETTLE).await?;
    let mut census = Census {
        complete: answers.len() >= shared.census_nodes.present(),
        ..Census::default()
    };
    for answer in answers {
        let Ok(node) = serde_json::from_slice::<NodeCensus>(&answer) else {
            // An answer this node cannot read counts as none.
            census.complete = false;
            continue;
        };
        for (name, group) in node.groups {
            let sum = census.groups.entry(name).or_default();
            sum.counters.add(&group.counters);
            sum.consumers.extend(group.consumers);
            sum.joining = sum.joining.saturating_add(group.joining);
        }
    }
    Ok(census)
}

/// Sends `payload` to every node on `subject` and collects their answers: until as many nodes
/// as last time have answered and `settle` has passed, or [`GATHER`] has.
async fn ask_all(
    shared: &Shared,
    subject: String,
    payload: Bytes,
    settle: Duration,
) -> Result<Vec<Bytes>, BrokerError> {
    // Until then this node does not know how many answers to expect.
    shared.greeted.cancelled().await;
    let client = &shared.client;
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.map_err(unavailable)?;
    client
        .publish_with_reply(subject, inbox, payload)
        .await
        .map_err(unavailable)?;
    let started = Instant::now();
    let expected = shared.census_nodes.present();
    let mut answered = Vec::new();
    loop {
        let enough = answered.len() >= expected;
        let limit = match enough {
            true => settle,
            false => GATHER,
        };
        let wait = limit.saturating_sub(started.elapsed());
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, answers.next()).await {
            Ok(Some(answer)) => answered.push(answer.payload),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(answered)
}

impl Shared {
    /// What this node has of each group.
    fn local_census(&self) -> NodeCensus {
        let mut groups: HashMap<String, GroupCensus> = self
            .groups
            .all_counters()
            .into_iter()
            .map(|(name, counters)| {
                let group = GroupCensus {
                    counters,
                    ..GroupCensus::default()
                };
                (name, group)
            })
            .collect();
        for (name, consumer) in self.consumers.census() {
            groups.entry(name).or_default().consumers.push(consumer);
        }
        for (name, joining) in self.consumers.joining() {
            groups.entry(name).or_default().joining = joining;
        }
        NodeCensus { groups }
    }
}
