//! The responder side of request/reply: consume requests from a group, run a handler with bounded
//! concurrency, publish each reply to the request's `reply_to` with its `correlation_id`, then ack.
//!
//! A handler error rejects the request (to the group's dead-letter topic, if it has one) and sends no
//! reply, so the requester times out; a reply that cannot be published nacks the request for another
//! try. Requests in a queue group go to one responder each, so responders scale by adding more.
//!
//! With the `otel` feature, each request is handled in a `process` span that continues the request's
//! trace, and the reply carries that span's context (see `trace`).
//!
//! Stopping is graceful: when `serve` returns or its future is dropped, it takes no more requests,
//! lets the handlers still running finish, answer and ack (for at most the ack deadline), and only
//! then leaves the group. Leaving at once would hand those requests back to the group while their
//! answers are on the way, to be handled a second time.

use std::{fmt::Display, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::{
    client::Client,
    consumer::{Consumer, Delivery},
    error::{Error, Result},
    message::{Message, OutgoingMessage},
    publisher::Publisher,
    trace,
};

/// How long a stopped `serve` waits for its running handlers when the group's ack deadline is not
/// known here: the broker's default deadline, after which it redelivers them anyway.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// Options of [`Client::serve_with`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    concurrency: usize,
    ack_deadline: Option<Duration>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            ack_deadline: None,
        }
    }
}

impl ServeOptions {
    /// Requests handled at once (and the consumer's prefetch). Default 16.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long a handler may take before the request goes to another responder. Default: the group's.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.ack_deadline = Some(deadline);
        self
    }
}

impl Client {
    /// Answers requests on `topic` as a member of `group`, with the default options. Runs until the
    /// broker ends the consumer for good (the group was deleted, for instance), and returns that error.
    /// To stop serving, drop the future (or abort its task): requests already being handled are still
    /// answered and acked before the responder leaves the group.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// client
    ///     .serve("svc.echo", "echo", |request| async move {
    ///         Ok::<_, std::convert::Infallible>(request.payload)
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn serve<H, F, R, E>(
        &self,
        topic: impl Into<String>,
        group: impl Into<String>,
        handler: H,
    ) -> Result<()>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<Bytes>,
        E: Display,
    {
        self.serve_with(topic, group, ServeOptions::default(), handler)
            .await
    }

    /// [`Client::serve`] with options.
    pub async fn serve_with<H, F, R, E>(
        &self,
        topic: impl Into<String>,
        group: impl Into<String>,
        options: ServeOptions,
        handler: H,
    ) -> Result<()>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<Bytes>,
        E: Display,
    {
        let prefetch = u32::try_from(options.concurrency).unwrap_or(u32::MAX);
        let group: Arc<str> = group.into().into();
        let mut builder = self.consume(topic, group.as_ref()).prefetch(prefetch);
        if let Some(deadline) = options.ack_deadline {
            builder = builder.ack_deadline(deadline);
        }
        let slots = Arc::new(Semaphore::new(prefetch as usize));
        let mut requests = Draining {
            consumer: Some(builder.subscribe().await?),
            slots: Arc::clone(&slots),
            permits: prefetch,
            grace: options.ack_deadline.unwrap_or(DEFAULT_DRAIN),
        };
        let handler = Arc::new(handler);
        // Replies that are ready together go out in one Publish call.
        let replies = self.publisher().build();
        while let Some(request) = requests.next().await {
            let request = request?;
            // The semaphore is never closed, so acquiring only waits.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return Err(Error::Closed);
            };
            let (client, replies) = (self.clone(), replies.clone());
            let handler = Arc::clone(&handler);
            let processing = trace::Processing::start(request.message(), &group);
            let work = async move { respond(&client, &replies, request, handler.as_ref()).await };
            let work = processing.run(work);
            tokio::spawn(async move {
                work.await;
                drop(slot);
            });
        }
        Ok(())
    }
}

/// The consumer of a running `serve`, which leaves its group gracefully (see the module docs).
struct Draining {
    /// `None` once handed to the task that drains it.
    consumer: Option<Consumer>,
    /// One permit per request being handled; a handler's permit is released after its settlement is
    /// queued, so holding every permit means every settlement is queued.
    slots: Arc<Semaphore>,
    permits: u32,
    /// Longest wait for running handlers.
    grace: Duration,
}

impl Draining {
    async fn next(&mut self) -> Option<Result<Delivery>> {
        self.consumer.as_mut()?.next().await
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Outside a runtime nothing can wait: the consumer leaves at once.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (slots, permits, grace) = (Arc::clone(&self.slots), self.permits, self.grace);
        runtime.spawn(async move {
            // The semaphore is never closed, so this only waits, for at most `grace`.
            let _ = tokio::time::timeout(grace, slots.acquire_many(permits)).await;
            consumer.close().await;
        });
    }
}

async fn respond<H, F, R, E>(client: &Client, replies: &Publisher, request: Delivery, handler: &H)
where
    H: Fn(Message) -> F,
    F: Future<Output = Result<R, E>>,
    R: Into<Bytes>,
    E: Display,
{
    let message = request.message().clone();
    let reply = match handler(message.clone()).await {
        Ok(reply) => reply.into(),
        Err(error) => {
            tracing::warn!(id = %message.id, %error, "handler failed; request rejected");
            trace::record_failure(&error);
            request.reject();
            return;
        }
    };
    if message.reply_to.is_empty() {
        request.ack();
        return;
    }
    let reply =
        OutgoingMessage::new(message.reply_to, reply).correlation_id(message.correlation_id);
    let batched = match replies.publish(reply.clone()).await {
        Ok(pending) => pending.await,
        Err(error) => Err(error),
    };
    // A batch is all or nothing: when it fails, this reply is tried alone, so one bad reply (too
    // large, say) does not send the requests of the good ones round again.
    let published = match batched {
        Ok(published) => Ok(published),
        Err(_) => client.publish_with(reply).await,
    };
    match published {
        Ok(_) => request.ack(),
        Err(error) => {
            tracing::warn!(id = %message.id, %error, "reply not published; request nacked");
            request.nack(Duration::ZERO);
        }
    }
}
