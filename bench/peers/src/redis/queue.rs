//! queue and exclusive: Redis Streams with one consumer group.
//!
//! - stream `bench.queue` / `bench.exclusive`, made empty at the start with its group `workers`
//!   (`XGROUP CREATE ... 0 MKSTREAM`) and deleted at the end. Redis keeps it in memory; the
//!   server runs with no persistence (compare.sh starts it with `--save '' --appendonly no`).
//! - publishers: `XADD key MAXLEN ~ N * p PAYLOAD`, pipelined (see `publish`). An acked entry
//!   stays in a stream until trimmed, so the stream is capped at N = max(4 × `--window`,
//!   100,000) entries, approximately: the publishers are never more than `--window` entries ahead
//!   of the workers' reads, so only entries already delivered can be trimmed.
//! - workers: `--consumers` (queue) or 1 (exclusive) consumers of the group, each on its own
//!   connection, reading `XREADGROUP GROUP workers NAME COUNT --prefetch BLOCK 100 STREAMS key >`
//!   and acking everything a read returned with one `XACK` sent in the same pipeline as the next
//!   read (and once more at the end), as a batching client does.
//! - exclusive: a single consumer reads the stream in order; order is checked.
//!
//! The load, the credit window and the counting (a message is delivered when a worker receives
//! it) are [`crate::queue`]'s.

use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use super::connection;
use super::publish::{self, Command, Setup};
use super::streams;
use crate::clock::Start;
use crate::config::Args;
use crate::queue::{self, MAX_ERRORS_IN_A_ROW, Member, Problems};
use crate::report::Counts;
use switchyard_loadgen::credit::Credit;
use switchyard_loadgen::measure::Tracker;

const GROUP: &str = "workers";
/// How long one XREADGROUP waits for entries, in milliseconds: how late a worker sees the stop.
const BLOCK_MS: u64 = 100;
/// The least the stream is trimmed to.
const MIN_STREAM_LENGTH: usize = 100_000;

pub async fn run(args: &Args, start: Start) -> Result<Counts, String> {
    let key = if queue::is_exclusive(args) {
        "bench.exclusive"
    } else {
        "bench.queue"
    };
    let mut admin = connection::open(&args.server, "admin").await?;
    // A stream left by an interrupted run would hand its old entries to this one.
    connection::delete(&mut admin, &[key]).await?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<Value>(&mut admin)
        .await
        .map_err(|e| format!("cannot create group {GROUP} on stream {key}: {e}"))?;
    let counts = consume(args, start, key).await;
    report_unsettled(&mut admin, key).await;
    // Best effort: the run's result does not depend on it.
    let _ = connection::delete(&mut admin, &[key]).await;
    counts
}

async fn consume(args: &Args, start: Start, key: &'static str) -> Result<Counts, String> {
    let workers = queue::workers(args);
    let mut readers = Vec::with_capacity(workers);
    for index in 0..workers {
        let name = format!("consumer-{index}");
        readers.push(Reader {
            connection: connection::open(&args.server, &name).await?,
            key,
            name,
            prefetch: args.prefetch as usize,
        });
    }
    let setup = Setup {
        key,
        command: Command::Append {
            max_len: (args.window as usize)
                .saturating_mul(4)
                .max(MIN_STREAM_LENGTH),
        },
    };
    let publishers = publish::connect(&args.server, args.publishers.into(), setup).await?;
    queue::consume(args, start, readers, publishers).await
}

/// Says on stderr if the group still has entries delivered but not acked.
async fn report_unsettled(admin: &mut MultiplexedConnection, key: &str) {
    // XPENDING's summary form: [count, smallest id, greatest id, per-consumer counts].
    let pending = redis::cmd("XPENDING")
        .arg(key)
        .arg(GROUP)
        .query_async::<Value>(admin)
        .await;
    match pending {
        Ok(Value::Array(summary)) => match summary.first() {
            Some(Value::Int(0)) => {}
            Some(Value::Int(left)) => {
                eprintln!("redis-peer: {left} entries were left unacked in stream {key}")
            }
            _ => eprintln!("redis-peer: XPENDING {key}: unexpected reply"),
        },
        Ok(_) => eprintln!("redis-peer: XPENDING {key}: unexpected reply"),
        Err(err) => eprintln!("redis-peer: cannot read stream {key}'s pending entries: {err}"),
    }
}

/// One consumer of the group, on its own connection.
struct Reader {
    connection: MultiplexedConnection,
    key: &'static str,
    /// Its consumer name in the group.
    name: String,
    prefetch: usize,
}

impl queue::Worker for Reader {
    async fn run(
        mut self,
        mut tracker: Tracker,
        mut credit: Credit,
        stop: CancellationToken,
    ) -> Member {
        let mut problems = Problems::default();
        // The ids of the last read, acked with the next.
        let mut unacked: Vec<Vec<u8>> = Vec::with_capacity(self.prefetch);
        let mut errors_in_a_row = 0;
        while !stop.is_cancelled() {
            // About to wait: give the credit back first.
            credit.give();
            let mut pipe = redis::pipe();
            if !unacked.is_empty() {
                pipe.cmd("XACK")
                    .arg(self.key)
                    .arg(GROUP)
                    .arg(&unacked)
                    .ignore();
            }
            pipe.cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.name)
                .arg("COUNT")
                .arg(self.prefetch)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(self.key)
                .arg(">");
            let read = pipe
                .query_async::<(Value,)>(&mut self.connection)
                .await
                .map_err(|e| format!("a read failed: {e}"))
                .and_then(|(reply,)| streams::entries(reply));
            let entries = match read {
                Ok(entries) => entries,
                Err(error) => {
                    problems.note(|| error);
                    errors_in_a_row += 1;
                    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                        break;
                    }
                    continue;
                }
            };
            errors_in_a_row = 0;
            unacked.clear();
            for entry in entries {
                tracker.record(&entry.payload);
                credit.received(1);
                unacked.push(entry.id);
            }
        }
        if !unacked.is_empty() {
            let acked = redis::cmd("XACK")
                .arg(self.key)
                .arg(GROUP)
                .arg(&unacked)
                .query_async::<Value>(&mut self.connection)
                .await;
            if let Err(error) = acked {
                problems.note(|| format!("an ack failed: {error}"));
            }
        }
        Member { tracker, problems }
    }
}
