//! A publisher that batches: messages queue up and go out in batches, in order, on one PublishStream,
//! with up to `max_in_flight` batches sent ahead of the broker's answers. A batch holds what queued
//! up while the stream was full, up to `max_batch` messages or as many bytes as one gRPC message may
//! hold; with a `linger`, the first message also waits that long for company. So batches grow with
//! the load, and a lone message goes out at once.
//!
//! Backpressure instead of unbounded buffering: at most `max_pending` messages wait; past that,
//! [`Publisher::publish`] waits for room. A batch is all or nothing on the broker, so when a batch
//! fails every message in it gets the error.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    batching::{Next, next_to_join},
    client::Client,
    error::{Error, Result},
    message::{OutgoingMessage, Published},
    publish_stream::{Answer, FRAME_ENVELOPE, FRAMES, PublishStream},
};

/// Options of a [`Publisher`]. Made by [`Client::publisher`].
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    client: Client,
    max_batch: usize,
    linger: Duration,
    max_pending: usize,
    max_in_flight: usize,
    wait_for_room: bool,
}

impl PublisherBuilder {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            max_batch: 500,
            linger: Duration::ZERO,
            max_pending: 10_000,
            max_in_flight: 16,
            wait_for_room: false,
        }
    }

    /// Most messages in one Publish call. Default 500; keep it within the broker's batch limit
    /// (`--max-batch-messages`). A batch is also cut before it would outgrow one gRPC message (the
    /// client's [`max_message_bytes`](crate::ClientBuilder::max_message_bytes)), so messages that are
    /// valid alone are never failed for having been batched together.
    pub fn max_batch(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self
    }

    /// How long the first message of a batch waits for company. Default 0: a batch is what queued up
    /// while the previous call was in flight.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Most messages waiting to be sent before `publish` waits for room. Default 10 000.
    pub fn max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// Batches sent ahead of the broker's answers. Default 16, at most 255. More keeps a fast broker
    /// busy across the round trip; 1 sends each batch only once the previous one is answered.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.clamp(1, FRAMES - 1);
        self
    }

    /// When a group or the broker's memory is full, have the broker hold each batch until there is room
    /// instead of refusing it with RESOURCE_EXHAUSTED: backpressure then reaches [`Publisher::publish`]
    /// through `max_pending`. A batch waits at most the broker's `--max-publish-wait` and this
    /// client's call timeout; one that runs out of time fails and is not published. A batch larger
    /// than a group's `max_length` (or `max_bytes`) could never fit and is refused at once: keep
    /// `max_batch` within it. Default off.
    pub fn wait_for_room(mut self, wait: bool) -> Self {
        self.wait_for_room = wait;
        self
    }

    /// Starts the publisher's background task. Needs a Tokio runtime.
    pub fn build(self) -> Publisher {
        let (commands, queue) = mpsc::channel(self.max_pending);
        tokio::spawn(run_publisher(
            self.client,
            queue,
            self.max_batch,
            self.linger,
            self.max_in_flight,
            self.wait_for_room,
        ));
        Publisher { commands }
    }
}

/// A batching publisher; clones share one queue. It stops when every clone is dropped, after sending
/// what is queued.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
/// use switchyard_client::OutgoingMessage;
///
/// let publisher = client.publisher().max_batch(500).build();
/// let mut pending = Vec::new();
/// for n in 0..10_000 {
///     pending.push(publisher.publish(OutgoingMessage::new("metrics.cpu", n.to_string())).await?);
/// }
/// for published in pending {
///     published.await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    commands: mpsc::Sender<Command>,
}

// Nearly every command is a publish: boxing it to shrink the rare flush would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Command {
    Publish {
        message: OutgoingMessage,
        /// What the message adds to a Publish request, measured by the caller's task.
        size: usize,
        done: oneshot::Sender<Result<Published>>,
    },
    Flush(oneshot::Sender<()>),
}

/// A queued message; resolves to its [`Published`] once its batch is acknowledged.
#[derive(Debug)]
pub struct PendingPublish {
    outcome: oneshot::Receiver<Result<Published>>,
}

impl Future for PendingPublish {
    type Output = Result<Published>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.outcome)
            .poll(cx)
            .map(|outcome| outcome.unwrap_or(Err(Error::Closed)))
    }
}

impl Publisher {
    /// Queues a message, waiting while `max_pending` messages are already queued.
    pub async fn publish(&self, message: OutgoingMessage) -> Result<PendingPublish> {
        let message = message.carrying_current_trace();
        let (done, outcome) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                size: message.encoded_len_in_batch(),
                message,
                done,
            })
            .await
            .map_err(|_| Error::Closed)?;
        Ok(PendingPublish { outcome })
    }

    /// Waits until everything queued before this call has been sent and answered.
    pub async fn flush(&self) -> Result<()> {
        let (done, flushed) = oneshot::channel();
        self.commands
            .send(Command::Flush(done))
            .await
            .map_err(|_| Error::Closed)?;
        flushed.await.map_err(|_| Error::Closed)
    }
}

/// One batch in the making.
#[derive(Default)]
struct Batch {
    messages: Vec<OutgoingMessage>,
    outcomes: Vec<oneshot::Sender<Result<Published>>>,
    waiters: Vec<oneshot::Sender<()>>,
    /// Encoded size of the Publish request so far.
    bytes: usize,
}

impl Batch {
    /// Whether `command` may join: its message would not take the batch past `max_bytes`. A first
    /// message always fits, so one too big on its own goes alone, to be refused on its own.
    fn fits(&self, command: &Command, max_bytes: usize) -> bool {
        match command {
            Command::Publish { size, .. } => {
                self.messages.is_empty() || self.bytes + size <= max_bytes
            }
            Command::Flush(_) => true,
        }
    }

    fn absorb(&mut self, command: Command) {
        match command {
            Command::Publish {
                message,
                size,
                done,
            } => {
                self.bytes += size;
                self.messages.push(message);
                self.outcomes.push(done);
            }
            Command::Flush(done) => self.waiters.push(done),
        }
    }

    /// Full, or someone waits for it.
    fn is_due(&self, max: usize) -> bool {
        self.messages.len() >= max || !self.waiters.is_empty()
    }
}

/// A batch sent on the stream and not answered yet.
struct Sent {
    sequence: u64,
    count: usize,
    outcomes: Vec<oneshot::Sender<Result<Published>>>,
    /// Flushes that wait for this batch (and so for every batch before it).
    waiters: Vec<oneshot::Sender<()>>,
    /// When the broker's silence fails it: the client's call timeout after sending.
    deadline: Instant,
}

impl Sent {
    fn settle(self, answer: std::result::Result<Vec<Published>, tonic::Status>) {
        match answer {
            Ok(published) if published.len() == self.count => {
                for (done, published) in self.outcomes.into_iter().zip(published) {
                    let _ = done.send(Ok(published));
                }
            }
            Ok(published) => {
                let message = format!(
                    "the broker answered {} of {} messages",
                    published.len(),
                    self.count
                );
                fail_all(self.outcomes, &tonic::Status::internal(message));
            }
            Err(status) => fail_all(self.outcomes, &status),
        }
        for done in self.waiters {
            let _ = done.send(());
        }
    }
}

/// Builds batches from the queue and sends them on one PublishStream, up to `max_in_flight` ahead of
/// their answers. The broker routes and answers a stream's batches in the order sent, so order is kept.
/// A broken stream fails the batches it carried (they may or may not have been routed) and the next
/// batch opens a new one.
async fn run_publisher(
    client: Client,
    mut commands: mpsc::Receiver<Command>,
    max_batch: usize,
    linger: Duration,
    max_in_flight: usize,
    wait_for_room: bool,
) {
    let max_bytes = client.max_message_bytes.saturating_sub(FRAME_ENVELOPE);
    let mut stream: Option<PublishStream> = None;
    let mut in_flight: VecDeque<Sent> = VecDeque::new();
    // A message that did not fit the previous batch: the first of the next one.
    let mut carried = None;
    let mut closed = false;
    while !(closed && carried.is_none() && in_flight.is_empty()) {
        let deadline = in_flight.front().map(|sent| sent.deadline);
        tokio::select! {
            // Answers first: they free room for the next batch.
            biased;
            answer = next_answer(&mut stream), if !in_flight.is_empty() => {
                match answer {
                    Ok(answer) => match in_flight.pop_front() {
                        Some(sent) if sent.sequence == answer.sequence => sent.settle(answer.result),
                        unexpected => {
                            let status = tonic::Status::internal(
                                "the broker answered a PublishStream batch out of order",
                            );
                            in_flight.extend(unexpected);
                            stream = None;
                            fail_in_flight(&mut in_flight, &status);
                        }
                    },
                    Err(status) => {
                        stream = None;
                        fail_in_flight(&mut in_flight, &status);
                    }
                }
            }
            () = sleep_until_some(deadline), if deadline.is_some() => {
                let status = tonic::Status::deadline_exceeded(format!(
                    "no answer within {} ms",
                    client.call_timeout.as_millis()
                ));
                stream = None;
                fail_in_flight(&mut in_flight, &status);
            }
            first = next_command(&mut carried, &mut commands),
                if (carried.is_some() || !closed) && in_flight.len() < max_in_flight => {
                let Some(first) = first else {
                    closed = true;
                    continue;
                };
                let batch = gather(first, &mut commands, &mut carried, max_batch, max_bytes, linger).await;
                let Batch { messages, outcomes, waiters, bytes: _ } = batch;
                if messages.is_empty() {
                    // A flush waits for the last batch sent, or for nothing.
                    match in_flight.back_mut() {
                        Some(last) => last.waiters.extend(waiters),
                        None => waiters.into_iter().for_each(|done| { let _ = done.send(()); }),
                    }
                    continue;
                }
                let count = messages.len();
                let frame = messages.into_iter().map(OutgoingMessage::into_pb).collect();
                let sent = match stream.as_mut() {
                    Some(open) => open.send(frame),
                    None => match PublishStream::open(&client, frame, wait_for_room).await {
                        Ok((open, sequence)) => {
                            stream = Some(open);
                            Ok(sequence)
                        }
                        Err(status) => Err(status),
                    },
                };
                match sent {
                    Ok(sequence) => in_flight.push_back(Sent {
                        sequence,
                        count,
                        outcomes,
                        waiters,
                        deadline: Instant::now() + client.call_timeout,
                    }),
                    Err(status) => {
                        stream = None;
                        fail_in_flight(&mut in_flight, &status);
                        fail_all(outcomes, &status);
                        waiters.into_iter().for_each(|done| { let _ = done.send(()); });
                    }
                }
            }
        }
    }
}

/// The next command: the one carried over from the last batch, or the next one queued.
async fn next_command(
    carried: &mut Option<Command>,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Command> {
    match carried.take() {
        Some(command) => Some(command),
        None => commands.recv().await,
    }
}

/// A batch starting with `first`: what is already queued joins (or, with a linger, what comes before
/// it ends), until the batch is due or the next message would not fit, which is then carried over.
async fn gather(
    first: Command,
    commands: &mut mpsc::Receiver<Command>,
    carried: &mut Option<Command>,
    max_batch: usize,
    max_bytes: usize,
    linger: Duration,
) -> Batch {
    let mut batch = Batch::default();
    batch.absorb(first);
    let deadline = Instant::now() + linger;
    while !batch.is_due(max_batch) {
        match next_to_join(commands, linger, deadline).await {
            Next::Joins(command) if batch.fits(&command, max_bytes) => batch.absorb(command),
            Next::Joins(command) => {
                *carried = Some(command);
                break;
            }
            Next::BatchEnds | Next::Closed => break,
        }
    }
    batch
}

async fn next_answer(
    stream: &mut Option<PublishStream>,
) -> std::result::Result<Answer, tonic::Status> {
    match stream {
        Some(stream) => stream.next_answer().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Fails every batch in flight with `status` (a copy each).
fn fail_in_flight(in_flight: &mut VecDeque<Sent>, status: &tonic::Status) {
    for sent in in_flight.drain(..) {
        sent.settle(Err(status.clone()));
    }
}

/// Hands every message of a failed batch its own copy of the broker's status, code and message as the
/// broker sent them (so the error reads the same as from [`Client::publish_batch`]).
fn fail_all(outcomes: Vec<oneshot::Sender<Result<Published>>>, status: &tonic::Status) {
    for done in outcomes {
        let _ = done.send(Err(Error::Status(status.clone())));
    }
}
