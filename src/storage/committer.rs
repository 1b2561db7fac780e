//! Group commit: one thread owns the log, and every record handed to it while it was busy goes into
//! its next frame, so one `write` and one `fdatasync` acknowledge them all.
//!
//! The committer is a dedicated OS thread, not a tokio task: it blocks in `fdatasync`, and a blocked
//! worker would stall every connection scheduled on it. It sleeps on its channel, takes the first
//! record that comes, then everything else already waiting, writes them as one frame and syncs at
//! once, with no timer and no linger: a lone publisher pays one fsync, a crowd shares one. The
//! callers await a oneshot answer, so the tokio side never blocks. The model is RabbitMQ's Ra WAL and
//! raft-engine's write barrier, in their simplest form.
//!
//! A frame's payload is its records back to back, each behind its length (u32, little-endian).

use std::{sync::Arc, time::Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::{FileSystem, Log, StorageError, stats::CommitStats};

/// Records gathered into one frame at most: a bound on one write, so that a flood of small
/// records cannot build a frame past the format's limit.
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// The largest record a frame takes (after its length).
pub const MAX_RECORD_BYTES: usize = MAX_FRAME_BYTES - 4;

/// Why a record was not committed. Cloned to every record of a failed frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The disk is full (ENOSPC); nothing of the frame is acknowledged, and the log stops.
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// A write or fsync failed, now or before: the log takes no more writes.
    #[error("the log failed: {0}")]
    Failed(String),
    /// The record alone is larger than a frame may be.
    #[error("a record of {bytes} bytes is more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// The committer is gone (the broker is shutting down).
    #[error("the log is closed")]
    Closed,
}

impl From<StorageError> for CommitError {
    fn from(error: StorageError) -> Self {
        match &error {
            StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                Self::DiskFull(error.to_string())
            }
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// Where a committed record is: the frame that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub sequence: u64,
}

/// What the thread is asked, in the order asked.
enum Request {
    Record {
        record: Vec<u8>,
        done: oneshot::Sender<Result<Committed, CommitError>>,
    },
    /// Seal the segment being written; answers with the sequence the next frame takes.
    Rotate(oneshot::Sender<u64>),
    /// Remove the segments before a sequence.
    RemoveBefore {
        sequence: u64,
        done: oneshot::Sender<Result<(), CommitError>>,
    },
}

/// A submitted record's answer, to await.
#[must_use = "a record is acknowledged only once its answer is Ok"]
pub struct Pending(oneshot::Receiver<Result<Committed, CommitError>>);

impl Pending {
    pub async fn wait(self) -> Result<Committed, CommitError> {
        self.0.await.unwrap_or(Err(CommitError::Closed))
    }
}

/// Hands records to the committer thread. Cheap to clone; the thread ends when the last handle is
/// dropped, after committing what was already handed over.
#[derive(Clone)]
pub struct Committer {
    requests: mpsc::UnboundedSender<Request>,
    stats: Arc<CommitStats>,
    /// Why the log stopped, once a commit failed.
    failure: watch::Receiver<Option<String>>,
}

impl Committer {
    /// Starts the thread that owns `log`.
    pub fn start<F: FileSystem>(log: Log<F>) -> std::io::Result<Self> {
        let (requests, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(CommitStats::default());
        stats.usage(log.usage());
        let (failed, failure) = watch::channel(None);
        // Detached: it ends by itself once the last handle (and so the last sender) is gone.
        std::thread::Builder::new()
            .name("switchyard-wal".into())
            .spawn({
                let stats = Arc::clone(&stats);
                move || run(log, receiver, &stats, &failed)
            })?;
        Ok(Self {
            requests,
            stats,
            failure,
        })
    }

    /// Resolves with the reason once a commit has failed (and so the log takes no more writes).
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.clone();
        let reason = match failure.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            // The thread is gone without failing: the committer is closing.
            None => std::future::pending().await,
        }
    }

    /// Commits `record`: resolves once it is on disk (fsynced) in a frame, or with why not.
    pub async fn commit(&self, record: Vec<u8>) -> Result<Committed, CommitError> {
        self.submit(record)?.wait().await
    }

    /// Hands `record` to the committer now, in this order among the records of this thread, and
    /// returns what to await for its answer. For callers that must fix the order of their records
    /// before they can await (under a lock, say).
    pub fn submit(&self, record: Vec<u8>) -> Result<Pending, CommitError> {
        let limit = MAX_RECORD_BYTES;
        if record.len() > limit {
            let bytes = record.len();
            return Err(CommitError::TooLarge { bytes, limit });
        }
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::Record { record, done })
            .map_err(|_| CommitError::Closed)?;
        Ok(Pending(answer))
    }

    /// Seals the segment being written, after every record submitted before: what is submitted
    /// afterwards goes to newer segments. Returns the first sequence of those.
    pub async fn rotate(&self) -> Result<u64, CommitError> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::Rotate(done))
            .map_err(|_| CommitError::Closed)?;
        answer.await.map_err(|_| CommitError::Closed)
    }

    /// Removes every segment wholly before `sequence` (see [`Log::remove_before`]).
    pub async fn remove_before(&self, sequence: u64) -> Result<(), CommitError> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::RemoveBefore { sequence, done })
            .map_err(|_| CommitError::Closed)?;
        answer.await.map_err(|_| CommitError::Closed)?
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }
}

/// The thread: gather, write one frame, answer everyone in it; until every sender is gone.
fn run<F: FileSystem>(
    mut log: Log<F>,
    mut receiver: mpsc::UnboundedReceiver<Request>,
    stats: &CommitStats,
    failed: &watch::Sender<Option<String>>,
) {
    let mut frame = Vec::new();
    let mut waiting = Vec::new();
    // A request that did not fit in the last frame, or must come after it, opens the next round.
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match receiver.blocking_recv() {
                Some(request) => request,
                None => return,
            },
        };
        let (record, done) = match first {
            Request::Record { record, done } => (record, done),
            Request::Rotate(done) => {
                let _ = done.send(log.rotate());
                continue;
            }
            Request::RemoveBefore { sequence, done } => {
                let removed = log.remove_before(sequence).map_err(CommitError::from);
                stats.usage(log.usage());
                let _ = done.send(removed);
                continue;
            }
        };
        frame.clear();
        push_record(&mut frame, &record);
        waiting.push(done);
        while let Ok(request) = receiver.try_recv() {
            match request {
                Request::Record { record, done }
                    if frame.len() + 4 + record.len() <= MAX_FRAME_BYTES =>
                {
                    push_record(&mut frame, &record);
                    waiting.push(done);
                }
                other => {
                    carried = Some(other);
                    break;
                }
            }
        }
        let started = Instant::now();
        let outcome = log
            .commit(&frame)
            .map(|sequence| Committed { sequence })
            .map_err(CommitError::from);
        match &outcome {
            Ok(_) => {
                stats.usage(log.usage());
                stats.committed(waiting.len(), started.elapsed());
            }
            Err(error) if failed.borrow().is_none() => {
                failed.send_replace(Some(error.to_string()));
            }
            Err(_) => {}
        }
        for done in waiting.drain(..) {
            // A caller that gave up waiting is no reason to stop.
            let _ = done.send(outcome.clone());
        }
    }
}

fn push_record(frame: &mut Vec<u8>, record: &[u8]) {
    // Cannot truncate: a record is at most MAX_FRAME_BYTES, checked by `commit`.
    frame.extend_from_slice(&(record.len() as u32).to_le_bytes());
    frame.extend_from_slice(record);
}

/// The records of a frame's payload, in order; `None` if the payload is not records back to back
/// (which a frame that passed its checksum never is, unless written by something else).
pub fn records(mut payload: &[u8]) -> Option<Vec<&[u8]>> {
    let mut found = Vec::new();
    while !payload.is_empty() {
        let length = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
        let length = usize::try_from(length).ok()?;
        found.push(payload.get(4..4 + length)?);
        payload = &payload[4 + length..];
    }
    Some(found)
}
