//! How a NATS publisher sends (the loop itself is [`crate::publish`]'s).
//!
//! fanout publishes with core NATS: a publish is done once it is in the client's buffer, and a
//! final flush (PING/PONG) proves the server has read them all. queue and exclusive publish to
//! JetStream: every publish gets the stream's ack, awaited in order on a separate task so that the
//! publishing loop only queues, like a fast client pipelining its publishes.

use async_nats::Client;
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connection::{Connection, Events};
use crate::clock::Clock;
use crate::publish::{Load, Outlet, Publisher, Publishers, Tally};
use switchyard_loadgen::credit::Window;

/// Core NATS or JetStream publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Core,
    JetStream,
}

/// One connection per publisher, made before the clock starts, to send to `subject` in `mode`.
pub async fn connect(
    server: &str,
    count: usize,
    events: &Events,
    subject: &'static str,
    mode: Mode,
) -> Result<Publishers<NatsPublisher>, String> {
    let mut publishers = Vec::with_capacity(count);
    for index in 0..count {
        let connection = Connection::open(server, &format!("publisher-{index}"), events).await?;
        publishers.push(NatsPublisher {
            client: connection.client,
            subject,
            mode,
        });
    }
    Ok(Publishers::new(publishers))
}

/// A connected publisher.
pub struct NatsPublisher {
    client: Client,
    subject: &'static str,
    mode: Mode,
}

impl Publisher for NatsPublisher {
    type Outlet = NatsOutlet;

    fn open(self, load: Load, clock: Clock, window: &Window) -> NatsOutlet {
        let (answers, queue) = mpsc::unbounded_channel();
        let confirming = tokio::spawn(confirm(queue, clock, window.clone()));
        let context = (self.mode == Mode::JetStream).then(|| {
            jetstream::ContextBuilder::new()
                .max_ack_inflight(load.window.max(2_500) * 2)
                .backpressure_on_inflight(true)
                .build(self.client.clone())
        });
        NatsOutlet {
            client: self.client,
            subject: self.subject,
            context,
            answers,
            confirming,
            core: Tally::default(),
            clock,
            window: window.clone(),
        }
    }
}

/// One publisher's connection, and its JetStream acks awaited on their own task.
pub struct NatsOutlet {
    client: Client,
    subject: &'static str,
    context: Option<jetstream::Context>,
    /// JetStream publishes waiting for their ack, in order.
    answers: mpsc::UnboundedSender<(u64, u64, PublishAckFuture)>,
    confirming: JoinHandle<Tally>,
    /// Core publishes, and JetStream publishes that failed before they had an ack to wait for.
    core: Tally,
    clock: Clock,
    window: Window,
}

impl Outlet for NatsOutlet {
    async fn send(&mut self, seq: u64, sent_at: u64, payload: Bytes) {
        match &self.context {
            Some(context) => match context.publish(self.subject, payload).await {
                // The confirming task lives until this sender is dropped.
                Ok(ack) => drop(self.answers.send((seq, sent_at, ack))),
                Err(error) => {
                    self.core.fail(seq, error);
                    self.window.give_back(1);
                }
            },
            None => match self.client.publish(self.subject, payload).await {
                Ok(()) => self.core.accept(&self.clock, sent_at),
                Err(error) => {
                    self.core.fail(seq, error);
                    self.window.give_back(1);
                }
            },
        }
    }

    async fn finish(self) -> Tally {
        let Self {
            client,
            context,
            answers,
            confirming,
            mut core,
            ..
        } = self;
        drop(answers);
        let mut tally = confirming.await.unwrap_or_default();
        if context.is_none() {
            if let Err(error) = client.flush().await {
                core.first_error
                    .get_or_insert_with(|| format!("the final flush failed: {error}"));
            }
            tally = core;
        } else {
            tally.failed.extend(core.failed);
            tally.first_error = tally.first_error.or(core.first_error);
        }
        tally
    }
}

/// Awaits each JetStream publish's ack, in order, and counts them.
async fn confirm(
    mut queue: mpsc::UnboundedReceiver<(u64, u64, PublishAckFuture)>,
    clock: Clock,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    while let Some((seq, sent_at, ack)) = queue.recv().await {
        match ack.await {
            Ok(_) => tally.accept(&clock, sent_at),
            Err(error) => {
                tally.fail(seq, error);
                window.give_back(1);
            }
        }
    }
    tally
}
