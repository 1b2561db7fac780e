//! A publisher that batches: messages queue up and go out as one Publish call, in order, one batch at
//! a time. A batch holds what queued up while the previous call was in flight, up to `max_batch`
//! messages or as many bytes as one gRPC message may hold; with a `linger`, the first message also
//! waits that long for company. So batches grow with the load, and a lone message goes out at once.
//!
//! Backpressure instead of unbounded buffering: at most `max_pending` messages wait; past that,
//! [`Publisher::publish`] waits for room. A batch is all or nothing on the broker, so when a batch
//! fails every message in it gets the error.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    client::Client,
    error::{Error, Result},
    message::{OutgoingMessage, Published},
};

/// Options of a [`Publisher`]. Made by [`Client::publisher`].
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    client: Client,
    max_batch: usize,
    linger: Duration,
    max_pending: usize,
}

impl PublisherBuilder {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            max_batch: 500,
            linger: Duration::ZERO,
            max_pending: 10_000,
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

    /// Starts the publisher's background task. Needs a Tokio runtime.
    pub fn build(self) -> Publisher {
        let (commands, queue) = mpsc::channel(self.max_pending);
        tokio::spawn(run_publisher(
            self.client,
            queue,
            self.max_batch,
            self.linger,
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

/// Builds batches from the queue and sends them one after another, so order is kept.
async fn run_publisher(
    client: Client,
    mut commands: mpsc::Receiver<Command>,
    max_batch: usize,
    linger: Duration,
) {
    let max_bytes = client.max_message_bytes;
    // A message that did not fit the previous batch: the first of the next one.
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(command) => command,
            None => match commands.recv().await {
                Some(command) => command,
                None => return,
            },
        };
        let mut batch = Batch::default();
        batch.absorb(first);
        let deadline = Instant::now() + linger;
        while !batch.is_due(max_batch) {
            // Without a linger, only what is already queued joins (no timer: even an expired one
            // would wait for the timer's next millisecond tick).
            let command = if linger.is_zero() {
                match commands.try_recv() {
                    Ok(command) => Some(command),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                tokio::select! {
                    // Biased: everything already queued joins before the linger can end the batch.
                    biased;
                    command = commands.recv() => command,
                    () = tokio::time::sleep_until(deadline) => break,
                }
            };
            match command {
                Some(command) if batch.fits(&command, max_bytes) => batch.absorb(command),
                Some(command) => {
                    carried = Some(command);
                    break;
                }
                None => break,
            }
        }
        let Batch {
            messages,
            outcomes,
            waiters,
            bytes: _,
        } = batch;
        if !messages.is_empty() {
            let count = messages.len();
            match client.publish_batch(messages).await {
                Ok(published) if published.len() == count => {
                    for (done, published) in outcomes.into_iter().zip(published) {
                        let _ = done.send(Ok(published));
                    }
                }
                Ok(published) => {
                    let message = format!(
                        "the broker answered {} of {count} messages",
                        published.len()
                    );
                    fail_all(outcomes, &tonic::Status::internal(message));
                }
                Err(Error::Status(status)) => fail_all(outcomes, &status),
                Err(error) => {
                    let code = error.code().unwrap_or(tonic::Code::Unknown);
                    fail_all(outcomes, &tonic::Status::new(code, error.to_string()));
                }
            }
        }
        for done in waiters {
            let _ = done.send(());
        }
    }
}

/// Hands every message of a failed batch its own copy of the broker's status, code and message as the
/// broker sent them (so the error reads the same as from [`Client::publish_batch`]).
fn fail_all(outcomes: Vec<oneshot::Sender<Result<Published>>>, status: &tonic::Status) {
    for done in outcomes {
        let _ = done.send(Err(Error::Status(status.clone())));
    }
}
