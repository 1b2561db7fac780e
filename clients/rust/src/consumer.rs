//! Queue-group consumers: a `Stream` of [`Delivery`]s whose settlements are batched into few Ack calls.
//!
//! Settling is fire-and-forget: `ack`, `nack`, `reject` and `extend` queue the id, and a background
//! task sends what is queued as one Ack call (at most `ack_batch` ids). It sends at once while fewer
//! than four calls are in flight, and while four are, new settlements queue up and go together in the
//! next: batches grow with the load without delaying anything when the load is light. Each unsent ack holds a prefetch
//! slot on the broker, so waiting to batch would cap a consumer at `prefetch` per wait. A delivery dropped without being settled is nacked, so a forgotten ack costs one
//! redelivery now instead of a stalled slot until the ack deadline. Dropping the [`Consumer`] sends the
//! queued settlements before it closes the server stream, so nothing acked is redelivered for lack of
//! a flush. Once the consumer is gone, a delivery dropped unsettled is no longer nacked: the broker
//! takes back everything the consumer held when its stream closes.

use std::{
    any::Any,
    collections::BTreeMap,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_core::Stream;
use futures_util::FutureExt;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    batching::{Next, next_to_join},
    client::{Client, Transport, bounded},
    error::{Error, Result},
    message::Message,
    pb::{self, broker_client::BrokerClient},
    reconnect::{ItemStream, Resumed, open_resumable},
};

/// How a group hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumeMode {
    /// Competing consumers: each message to one of them.
    #[default]
    Shared,
    /// One active consumer, in order; others are refused or stand by.
    Exclusive,
}

impl ConsumeMode {
    pub(crate) fn to_pb(self) -> pb::ConsumeMode {
        match self {
            Self::Shared => pb::ConsumeMode::Shared,
            Self::Exclusive => pb::ConsumeMode::Exclusive,
        }
    }
}

/// Options of a consumer. Made by [`Client::consume`].
#[derive(Debug, Clone)]
pub struct ConsumerBuilder {
    client: Client,
    request: pb::ConsumeRequest,
    ack_batch: usize,
    ack_linger: Duration,
    on_disconnect: OnDisconnect,
}

/// A callback of [`ConsumerBuilder::on_disconnect`].
type DisconnectCallback = Arc<dyn Fn(&tonic::Status) + Send + Sync>;

/// What a consumer calls when its connection drops, before it rejoins.
#[derive(Clone, Default)]
struct OnDisconnect(Option<DisconnectCallback>);

impl std::fmt::Debug for OnDisconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<fn>)"
        } else {
            "None"
        })
    }
}

impl ConsumerBuilder {
    pub(crate) fn new(client: Client, topic: String, group: String) -> Self {
        Self {
            client,
            request: pb::ConsumeRequest {
                topic,
                group,
                ..pb::ConsumeRequest::default()
            },
            ack_batch: 256,
            ack_linger: Duration::ZERO,
            on_disconnect: OnDisconnect::default(),
        }
    }

    /// Called with the status each time the connection drops, before the consumer rejoins by
    /// itself. The stream does not end and yields nothing for it: what the consumer held goes back
    /// to the group, is redelivered, and its settlements fail as unknown. Without it, a drop is only
    /// logged (at debug).
    pub fn on_disconnect(
        mut self,
        callback: impl Fn(&tonic::Status) + Send + Sync + 'static,
    ) -> Self {
        self.on_disconnect = OnDisconnect(Some(Arc::new(callback)));
        self
    }

    /// Shared (default) or exclusive. Must match the group's mode if it exists.
    pub fn mode(mut self, mode: ConsumeMode) -> Self {
        self.request.mode = mode.to_pb().into();
        self
    }

    /// Most unacked deliveries at once. 0 (default) means the broker's default.
    pub fn prefetch(mut self, prefetch: u32) -> Self {
        self.request.prefetch = prefetch;
        self
    }

    /// Ack deadline of this consumer's deliveries (whole milliseconds). Default: the group's.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.request.ack_deadline_ms = u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX);
        self
    }

    /// Exclusive groups: wait to take over instead of being refused while another consumer is active.
    pub fn standby(mut self, standby: bool) -> Self {
        self.request.standby = standby;
        self
    }

    /// Settlement batching: at most `max` ids per Ack call, and how long the first queued id waits for
    /// company before the call goes out. Defaults 256 and 0 (no wait: settlements that queue up while
    /// a call is in flight make the next batch). Keep `max` within the broker's `--max-ack-ids` (10 000 by default): the
    /// broker refuses a larger call whole.
    pub fn ack_batching(mut self, max: usize, linger: Duration) -> Self {
        self.ack_batch = max.max(1);
        self.ack_linger = linger;
        self
    }

    /// Joins the group. Refusals (bad names, an exclusive group taken, another mode) are errors here.
    pub async fn subscribe(self) -> Result<Consumer> {
        let broker = self.client.broker.clone();
        let request = self.request.clone();
        let reopen = move || {
            let (mut broker, request) = (broker.clone(), request.clone());
            async move {
                broker
                    .consume(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
            .boxed()
        };
        let deliveries = open_resumable(self.client.call_timeout, Box::new(reopen)).await?;
        let (commands, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_settler(
            self.client.broker.clone(),
            self.client.call_timeout,
            queue,
            self.ack_batch,
            self.ack_linger,
        ));
        Ok(Consumer {
            deliveries: Some(deliveries),
            settler: Settler {
                commands,
                consumer_left: Arc::default(),
            },
            on_disconnect: self.on_disconnect,
        })
    }
}

/// A member of a queue group: a `Stream` of [`Delivery`]s. Ends after an error item when the broker
/// ends the stream for good (the group was deleted, for instance). When the connection drops, it
/// rejoins by itself without an item (see [`ConsumerBuilder::on_disconnect`]), and the broker
/// redelivers what was in flight.
///
/// Settle deliveries before dropping (or closing) their consumer: once it is gone, what it held is
/// back in the group, and a later ack of one of its deliveries is ignored as unknown.
pub struct Consumer {
    deliveries: Option<ItemStream<pb::Delivery>>,
    settler: Settler,
    on_disconnect: OnDisconnect,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Consumer {
    /// Sends every settlement queued so far and waits for the broker to have it (or for the Ack call
    /// to fail, which is logged: the broker then redelivers). The flush is queued by this call; the
    /// future only waits, and borrows nothing, so it can be awaited from any task.
    pub fn flush(&self) -> impl Future<Output = ()> + Send + 'static {
        let (done, flushed) = oneshot::channel();
        let queued = self.settler.send(Command::Flush(done));
        async move {
            if queued {
                let _ = flushed.await;
            }
        }
    }

    /// Sends queued settlements, then leaves the group; returns once both are done. What is still
    /// unsettled is redelivered to the group's other consumers.
    pub async fn close(mut self) {
        self.leave();
        // Queued after the retirement: answered once the settlements went out and the stream closed.
        self.flush().await;
    }

    /// Hands the server stream to the settler, which closes it after sending what is queued, so acks
    /// made just before are not overtaken by the broker taking their deliveries back.
    fn leave(&mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            self.settler.consumer_left.store(true, Ordering::Relaxed);
            self.settler.send(Command::Retire(Box::new(deliveries)));
        }
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(deliveries) = this.deliveries.as_mut() else {
            return Poll::Ready(None);
        };
        let settler = &this.settler;
        loop {
            let delivery = match ready!(deliveries.as_mut().poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                Some(Ok(Resumed::Item(delivery))) => delivery,
                Some(Ok(Resumed::Disconnected(status))) => {
                    tracing::debug!(%status, "consumer reconnecting");
                    if let Some(callback) = &this.on_disconnect.0 {
                        callback(&status);
                    }
                    continue;
                }
            };
            let Some(message) = delivery.message else {
                return Poll::Ready(Some(Err(Error::Status(tonic::Status::internal(
                    "the broker sent a delivery without a message",
                )))));
            };
            return Poll::Ready(Some(Ok(Delivery {
                message: message.into(),
                id: delivery.delivery_id,
                attempt: delivery.attempt,
                settler: Some(settler.clone()),
            })));
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.leave();
    }
}

/// One message handed to this consumer. Settle it with exactly one of [`Delivery::ack`],
/// [`Delivery::nack`] or [`Delivery::reject`]; dropping it unsettled nacks it (unless its consumer
/// has already left the group, which returned it to the group anyway).
pub struct Delivery {
    message: Message,
    id: String,
    attempt: u32,
    /// `None` once settled.
    settler: Option<Settler>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("message", &self.message)
            .finish()
    }
}

impl Delivery {
    /// The delivered message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The OpenTelemetry context the message was created in: [`Message::trace_context`]. Needs the
    /// `otel` feature.
    #[cfg(feature = "otel")]
    pub fn trace_context(&self) -> opentelemetry::Context {
        self.message.trace_context()
    }

    /// The id that settles this delivery (a redelivery has a new one).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// 1 on the first delivery, 2 on the first redelivery, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Done: the broker removes the message.
    pub fn ack(mut self) {
        self.settle(Action::Ack);
    }

    /// Failed: the broker redelivers the message after `delay`.
    pub fn nack(mut self, delay: Duration) {
        self.settle(Action::Nack(delay));
    }

    /// Poison: the broker sends the message to the group's dead-letter topic (or drops it).
    pub fn reject(mut self) {
        self.settle(Action::Reject);
    }

    /// Still working: restart the ack deadline.
    pub fn extend(&self) {
        if let Some(settler) = &self.settler {
            settler.send(Command::Settle(Action::Extend, self.id.clone()));
        }
    }

    fn settle(&mut self, action: Action) {
        if let Some(settler) = self.settler.take() {
            settler.send(Command::Settle(action, std::mem::take(&mut self.id)));
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let consumer_left = self
            .settler
            .as_ref()
            .is_some_and(|settler| settler.consumer_left.load(Ordering::Relaxed));
        if !consumer_left {
            self.settle(Action::Nack(Duration::ZERO));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ack,
    Nack(Duration),
    Reject,
    Extend,
}

enum Command {
    Settle(Action, String),
    Flush(oneshot::Sender<()>),
    /// Keep this (the server stream) alive until what is queued is sent, then drop it.
    Retire(Box<dyn Any + Send>),
}

/// The queue to the settling task. Unbounded, but bounded in practice by the prefetch: one command
/// per delivery, and a consumer never holds more than `prefetch` of them.
#[derive(Clone)]
struct Settler {
    commands: mpsc::UnboundedSender<Command>,
    /// Set when the consumer leaves the group. A nack of a delivery dropped after that would race
    /// the broker taking the delivery back, and could hand it to this departing consumer once more.
    consumer_left: Arc<AtomicBool>,
}

impl Settler {
    /// `false` if the settling task is gone (only when its runtime shut down).
    fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }
}

/// Settlements waiting to be sent, grouped as the Ack call wants them, and who waits for them.
#[derive(Default)]
struct Batch {
    ack: Vec<String>,
    reject: Vec<String>,
    extend: Vec<String>,
    /// One Ack call carries one nack delay, so nacks are grouped by delay in milliseconds.
    nack: BTreeMap<u32, Vec<String>>,
    len: usize,
    /// Told when the batch is sent.
    waiters: Vec<oneshot::Sender<()>>,
    /// Dropped when the batch is sent.
    retired: Vec<Box<dyn Any + Send>>,
}

impl Batch {
    fn absorb(&mut self, command: Command) {
        match command {
            Command::Settle(action, id) => self.add(action, id),
            Command::Flush(done) => self.waiters.push(done),
            Command::Retire(stream) => self.retired.push(stream),
        }
    }

    /// Whether to send now rather than wait for more: full, or someone waits for it.
    fn is_due(&self, max: usize) -> bool {
        self.len >= max || !self.waiters.is_empty() || !self.retired.is_empty()
    }

    fn add(&mut self, action: Action, id: String) {
        self.len += 1;
        match action {
            Action::Ack => self.ack.push(id),
            Action::Reject => self.reject.push(id),
            Action::Extend => self.extend.push(id),
            Action::Nack(delay) => {
                let millis = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
                self.nack.entry(millis).or_default().push(id);
            }
        }
    }

    /// The Ack calls that carry this batch: one with the acks, rejects, extends and undelayed nacks
    /// (those of dropped deliveries), and one per other nack delay. A delay stays out of the first
    /// call because the broker refuses a whole call whose delay is over its limit, and that must not
    /// take the acks down with it.
    fn requests(&mut self) -> Vec<pb::AckRequest> {
        if self.len == 0 {
            return Vec::new();
        }
        self.len = 0;
        let mut nacks = std::mem::take(&mut self.nack);
        let first = pb::AckRequest {
            ack_ids: std::mem::take(&mut self.ack),
            nack_ids: nacks.remove(&0).unwrap_or_default(),
            nack_delay_ms: 0,
            reject_ids: std::mem::take(&mut self.reject),
            extend_ids: std::mem::take(&mut self.extend),
        };
        let delayed = nacks
            .into_iter()
            .map(|(nack_delay_ms, nack_ids)| pb::AckRequest {
                nack_ids,
                nack_delay_ms,
                ..pb::AckRequest::default()
            });
        let has_ids = |request: &pb::AckRequest| {
            !(request.ack_ids.is_empty()
                && request.nack_ids.is_empty()
                && request.reject_ids.is_empty()
                && request.extend_ids.is_empty())
        };
        std::iter::once(first)
            .filter(has_ids)
            .chain(delayed)
            .collect()
    }
}

/// Ack calls of one consumer in flight at once. Against a durable broker an Ack returns only once
/// it is fsynced; with one call at a time, the acks made meanwhile would hold their prefetch slots
/// for that fsync too.
const ACK_CALLS_IN_FLIGHT: usize = 4;

/// Collects settlements and sends them in batches until every sender is gone. Up to
/// [`ACK_CALLS_IN_FLIGHT`] batches are in flight at once; a batch someone waits for (a flush, or
/// a stream to close after it) goes only after every batch before it has been answered, so "sent"
/// means everything queued before it too.
async fn run_settler(
    broker: BrokerClient<Transport>,
    call_timeout: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
    max_batch: usize,
    linger: Duration,
) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(first) = commands.recv().await {
        let mut batch = Batch::default();
        batch.absorb(first);
        let deadline = Instant::now() + linger;
        let mut closed = false;
        while !batch.is_due(max_batch) {
            match next_to_join(&mut commands, linger, deadline).await {
                Next::Joins(command) => batch.absorb(command),
                Next::BatchEnds => break,
                Next::Closed => {
                    closed = true;
                    break;
                }
            }
        }
        // Finished calls are reaped as they come, so the set holds only what is in flight.
        while in_flight.try_join_next().is_some() {}
        let awaited = !batch.waiters.is_empty() || !batch.retired.is_empty() || closed;
        let requests = batch.requests();
        if awaited {
            while in_flight.join_next().await.is_some() {}
            send_settlements(broker.clone(), call_timeout, requests).await;
        } else {
            while in_flight.len() >= ACK_CALLS_IN_FLIGHT {
                in_flight.join_next().await;
            }
            in_flight.spawn(send_settlements(broker.clone(), call_timeout, requests));
        }
        drop(std::mem::take(&mut batch.retired));
        batch.waiters.drain(..).for_each(|done| {
            let _ = done.send(());
        });
        if closed {
            return;
        }
    }
    // Every sender is gone: what is in flight still goes out.
    while in_flight.join_next().await.is_some() {}
}

/// Sends the Ack calls of one batch, in order.
async fn send_settlements(
    broker: BrokerClient<Transport>,
    call_timeout: Duration,
    requests: Vec<pb::AckRequest>,
) {
    for request in requests {
        let mut broker = broker.clone();
        match bounded(call_timeout, broker.ack(request)).await {
            Ok(response) if !response.unknown_ids.is_empty() => {
                tracing::debug!(unknown = ?response.unknown_ids, "settled ids the broker did not know");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "settlements not sent; the broker will redeliver them");
            }
        }
    }
}
