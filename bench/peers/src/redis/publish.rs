//! How a Redis publisher sends (the loop itself is [`crate::publish`]'s).
//!
//! Each publisher works as a batching client does: its loop stamps messages and queues them, and
//! a sender task writes whatever has queued up as one pipeline (PUBLISH for fanout, XADD for queue
//! and exclusive), keeping up to [`PIPELINES_IN_FLIGHT`] pipelines on the wire. A message counts
//! as accepted once Redis has answered its command: for PUBLISH, the message went out to the
//! subscribers; for XADD, it is in the stream. The multiplexed connection writes commands in the
//! order they are queued, so each publisher's messages reach Redis in sequence order.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connection;
use crate::clock::Clock;
use crate::publish::{Load, Outlet, Publisher, Publishers, Tally};
use switchyard_loadgen::credit::Window;

/// Pipelines a publisher has sent and not yet had answered.
const PIPELINES_IN_FLIGHT: usize = 4;
/// Most commands in one pipeline.
const MAX_BATCH: usize = 256;

/// What a publisher sends.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    /// `PUBLISH key payload`.
    Publish,
    /// `XADD key MAXLEN ~ max_len * p payload`.
    Append { max_len: usize },
}

/// What every publisher of a run sends: the command, and the channel (fanout) or stream (queue,
/// exclusive) it names.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub key: &'static str,
    pub command: Command,
}

/// One connection per publisher, made before the clock starts, to send `setup`'s command.
pub async fn connect(
    server: &str,
    count: usize,
    setup: Setup,
) -> Result<Publishers<RedisPublisher>, String> {
    let mut publishers = Vec::with_capacity(count);
    for index in 0..count {
        publishers.push(RedisPublisher {
            connection: connection::open(server, &format!("publisher-{index}")).await?,
            setup,
        });
    }
    Ok(Publishers::new(publishers))
}

/// A connected publisher.
pub struct RedisPublisher {
    connection: MultiplexedConnection,
    setup: Setup,
}

impl Publisher for RedisPublisher {
    type Outlet = RedisOutlet;

    fn open(self, _load: Load, clock: Clock, window: &Window) -> RedisOutlet {
        let (outgoing, queue) = mpsc::unbounded_channel();
        let sender = Sender {
            connection: self.connection,
            setup: self.setup,
            clock,
            window: window.clone(),
        };
        RedisOutlet {
            outgoing,
            sending: tokio::spawn(sender.run(queue)),
        }
    }
}

/// A stamped message waiting for the sender task.
struct Outgoing {
    seq: u64,
    sent_at: u64,
    payload: Bytes,
}

/// One publisher's queue to its sender task.
pub struct RedisOutlet {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    sending: JoinHandle<Tally>,
}

impl Outlet for RedisOutlet {
    async fn send(&mut self, seq: u64, sent_at: u64, payload: Bytes) {
        // The sender task lives until this end is dropped.
        let _ = self.outgoing.send(Outgoing {
            seq,
            sent_at,
            payload,
        });
    }

    async fn finish(self) -> Tally {
        drop(self.outgoing);
        self.sending.await.unwrap_or_default()
    }
}

/// Writes queued messages as pipelines and counts Redis's answers, in order.
struct Sender {
    connection: MultiplexedConnection,
    setup: Setup,
    clock: Clock,
    window: Window,
}

impl Sender {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Outgoing>) -> Tally {
        let mut tally = Tally::default();
        let mut in_flight = FuturesOrdered::new();
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                Some((batch, answer)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.count(&mut tally, batch, answer);
                }
                first = queue.recv(), if open && in_flight.len() < PIPELINES_IN_FLIGHT => {
                    let Some(first) = first else {
                        open = false;
                        continue;
                    };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    in_flight.push_back(self.send(batch));
                }
                else => break,
            }
        }
        tally
    }

    /// One pipeline of the batch's commands; resolves to the batch and Redis's answer.
    fn send(
        &self,
        batch: Vec<Outgoing>,
    ) -> impl Future<Output = (Vec<Outgoing>, redis::RedisResult<Value>)> + use<> {
        let mut pipe = redis::pipe();
        for message in &batch {
            match self.setup.command {
                Command::Publish => pipe
                    .cmd("PUBLISH")
                    .arg(self.setup.key)
                    .arg(&message.payload[..]),
                Command::Append { max_len } => pipe
                    .cmd("XADD")
                    .arg(self.setup.key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(max_len)
                    .arg("*")
                    .arg("p")
                    .arg(&message.payload[..]),
            };
        }
        let mut connection = self.connection.clone();
        async move {
            let answer = pipe.query_async::<Value>(&mut connection).await;
            (batch, answer)
        }
    }

    /// Counts a batch answered (or failed) as a whole.
    fn count(&self, tally: &mut Tally, batch: Vec<Outgoing>, answer: redis::RedisResult<Value>) {
        match answer {
            Ok(_) => {
                tally.accepted += batch.len() as u64;
                tally.in_window += batch
                    .iter()
                    .filter(|message| self.clock.in_window(message.sent_at))
                    .count() as u64;
            }
            Err(error) => {
                tally.failed.extend(batch.iter().map(|message| message.seq));
                tally.first_error.get_or_insert_with(|| error.to_string());
                self.window.give_back(batch.len());
            }
        }
    }
}
