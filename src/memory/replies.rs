//! Request/reply: requests waiting on their inboxes, and the routing of replies to them.
//!
//! A reply is any message published to a waiting inbox with the request's correlation id. The first
//! one wins; anything published to an inbox nobody waits on (too late, or a wrong correlation id) is
//! dropped and counted.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use dashmap::DashMap;
use tokio::sync::oneshot;

use crate::{message::Message, topic::Topic};

#[derive(Debug, Default)]
pub struct ReplyRouter {
    /// Sharded, so concurrent requests on different inboxes do not contend.
    waiting: DashMap<Topic, Waiting>,
    unmatched: AtomicU64,
}

#[derive(Debug)]
struct Waiting {
    correlation_id: String,
    reply: oneshot::Sender<Message>,
}

/// A request waiting for its reply. Dropping it (timeout, cancelled call) stops the wait.
#[derive(Debug)]
pub struct PendingReply {
    router: Arc<ReplyRouter>,
    inbox: Topic,
    reply: oneshot::Receiver<Message>,
}

impl ReplyRouter {
    /// Starts waiting on `inbox` for a reply carrying `correlation_id`.
    pub fn wait_for(self: &Arc<Self>, inbox: Topic, correlation_id: String) -> PendingReply {
        let (sender, reply) = oneshot::channel();
        self.waiting.insert(
            inbox.clone(),
            Waiting {
                correlation_id,
                reply: sender,
            },
        );
        PendingReply {
            router: Arc::clone(self),
            inbox,
            reply,
        }
    }

    /// Hands a message published to an inbox to the request waiting there. `true` if one took it.
    pub fn deliver(&self, message: &Message) -> bool {
        let taken = self.waiting.remove_if(message.topic(), |_, waiting| {
            waiting.correlation_id == message.correlation_id()
        });
        // The receiver may have just given up; then this reply is as late as any other.
        let accepted =
            taken.is_some_and(|(_, waiting)| waiting.reply.send(message.clone()).is_ok());
        match accepted {
            true => true,
            false => {
                let unmatched = self.unmatched.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(topic = %message.topic(), unmatched, "reply dropped: no request waiting");
                false
            }
        }
    }

    /// Ends the wait on `inbox` without a reply: its [`PendingReply::reply`] gives `None`. Cluster
    /// mode's answer to NATS saying nobody received the request. `true` if one was waiting.
    pub fn refuse(&self, inbox: &Topic) -> bool {
        self.waiting.remove(inbox).is_some()
    }

    /// Whether a request is waiting on `inbox`.
    pub fn is_waiting(&self, inbox: &Topic) -> bool {
        self.waiting.contains_key(inbox)
    }

    /// Replies dropped because no request was waiting for them.
    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }
}

impl PendingReply {
    /// Waits for the reply. `None` if the router was dropped, or the wait [`ReplyRouter::refuse`]d.
    pub async fn reply(&mut self) -> Option<Message> {
        (&mut self.reply).await.ok()
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.router.waiting.remove(&self.inbox);
    }
}
