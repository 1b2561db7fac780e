//! Durable mode (`--data-dir`): the journal of the in-memory broker's groups, kept in the data
//! directory's write-ahead log.
//!
//! The broker's state stays in memory, as RabbitMQ's Ra and BookKeeper keep their indexes; what
//! makes it durable is that every change to a group is a record in one append-only log, handed to
//! the group-commit thread ([`crate::storage::Committer`]) in the order the routers made the
//! changes, and acknowledged to clients only once fsynced. At start the log is replayed
//! ([`crate::journal::replay`]) and the groups are rebuilt from it. This module is the glue: it
//! opens and locks the directory, decodes what recovery reads back ([`codec`]), and encodes what the
//! routers record.

mod codec;

use std::{fmt, path::Path, pin::Pin, sync::Arc, time::Instant};

use crate::{
    broker::{Histogram, JournalStats},
    budget::MemoryBudget,
    error::BrokerError,
    journal::{Answer, Event, Journal, Receipt, replay::Recovered},
    storage::{
        Committer, DataDir, DataDirError, HistogramSnapshot, Log, LogOptions, OsFileSystem,
        RecoveryMode, StorageError, Usage, records,
    },
};

/// Why a data directory could not be opened. Each names the directory or the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the log in {} has a record that cannot be read, in frame {frame}: {reason}", dir.display())]
    Record {
        dir: std::path::PathBuf,
        frame: u64,
        reason: String,
    },
    #[error(
        "the log in {} starts at frame {first}, but nothing says the frames before it were \
         reclaimed: segment files are missing (restore them, or start with an empty directory)",
        dir.display()
    )]
    Missing { dir: std::path::PathBuf, first: u64 },
    #[error("cannot start the log's writer thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write to the log in {}: {error}", dir.display())]
    Write {
        dir: std::path::PathBuf,
        error: BrokerError,
    },
}

/// The journal of a data directory: records go to its log's committer.
pub struct DurableJournal {
    committer: Committer,
    /// How long opening took: locking, replaying and the first record.
    recovery: std::time::Duration,
    /// Held for the lock: the directory is this broker's until the journal goes.
    _dir: DataDir,
}

impl fmt::Debug for DurableJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableJournal").finish_non_exhaustive()
    }
}

impl Journal for DurableJournal {
    fn record(&self, event: Event) -> Receipt {
        match self.committer.submit(codec::encoded(&event)) {
            Ok(pending) => Receipt::waiting(pending),
            Err(error) => Receipt::refused(error.into()),
        }
    }

    fn failed(&self) -> Pin<Box<dyn Future<Output = String> + Send>> {
        let committer = self.committer.clone();
        Box::pin(async move { committer.failed().await })
    }

    fn usage(&self) -> Usage {
        self.committer.stats().disk_usage()
    }

    fn stats(&self) -> JournalStats {
        let stats = self.committer.stats();
        let usage = stats.disk_usage();
        let (fsyncs, records) = stats.frames_and_records();
        JournalStats {
            bytes: usage.bytes,
            segments: usage.segments,
            records,
            fsyncs,
            fsync_seconds: histogram(stats.fsync_seconds()),
            batch_records: histogram(stats.batch_records()),
            recovery: self.recovery,
        }
    }

    fn rotate(&self) -> Answer<u64> {
        let committer = self.committer.clone();
        Box::pin(async move { committer.rotate().await.map_err(BrokerError::from) })
    }

    fn remove_before(&self, mark: u64) -> Answer<()> {
        let committer = self.committer.clone();
        Box::pin(async move {
            committer
                .remove_before(mark)
                .await
                .map_err(BrokerError::from)
        })
    }
}

fn histogram(snapshot: HistogramSnapshot) -> Histogram {
    Histogram {
        buckets: snapshot.buckets,
        count: snapshot.count,
        sum: snapshot.sum,
    }
}

impl Drop for DurableJournal {
    fn drop(&mut self) {
        let (frames, records) = self.committer.stats().frames_and_records();
        tracing::info!(
            frames,
            records,
            "journal closed: {frames} fsyncs carried {records} records"
        );
    }
}

/// A data directory opened: its journal, and the groups its log describes (messages charged to
/// the budget given), with this run's epoch already recorded.
pub struct Opened {
    pub journal: Arc<DurableJournal>,
    pub recovered: Recovered,
}

/// Locks `path`, replays its log and records the start of a new run.
pub async fn open(
    path: &Path,
    repair: bool,
    segment_bytes: u64,
    budget: &Arc<MemoryBudget>,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let dir = DataDir::open(path)?;
    let log_dir = dir.log_dir();
    let mode = if repair {
        RecoveryMode::Repair
    } else {
        RecoveryMode::Strict
    };
    let mut recovered = Recovered::default();
    let mut undecodable: Option<(u64, String)> = None;
    let mut first_frame = None;
    let (log, read) = Log::open(
        OsFileSystem,
        &log_dir,
        LogOptions { segment_bytes },
        mode,
        |frame, payload| {
            first_frame.get_or_insert(frame);
            if undecodable.is_some() {
                return;
            }
            let Some(found) = records(payload) else {
                undecodable = Some((frame, "not a sequence of records".into()));
                return;
            };
            for record in found {
                match codec::decode(record, budget) {
                    Ok(event) => recovered.apply(event),
                    Err(error) => {
                        undecodable = Some((frame, error.to_string()));
                        return;
                    }
                }
            }
        },
    )?;
    if let Some((frame, reason)) = undecodable {
        return Err(OpenError::Record {
            dir: log_dir,
            frame,
            reason,
        });
    }
    // Segments go from the front only after a restatement that says so; a log that starts later
    // without one has lost its beginning.
    if let Some(first) = first_frame
        && first > 1
        && recovered.reclaimed_before < first
    {
        return Err(OpenError::Missing {
            dir: log_dir,
            first,
        });
    }
    for warning in &read.warnings {
        tracing::warn!("{warning}");
    }
    let committer = Committer::start(log).map_err(OpenError::Thread)?;
    recovered.epoch += 1;
    committer
        .commit(codec::encoded(&Event::Epoch(recovered.epoch)))
        .await
        .map_err(|error| OpenError::Write {
            dir: log_dir.clone(),
            error: error.into(),
        })?;
    let journal = Arc::new(DurableJournal {
        committer,
        recovery: started.elapsed(),
        _dir: dir,
    });
    tracing::info!(
        dir = %path.display(),
        epoch = recovered.epoch,
        frames = read.frames,
        records = recovered.events,
        groups = recovered.groups.len(),
        messages = recovered.held_messages(),
        dropped_bytes = read.dropped_bytes,
        elapsed = ?started.elapsed(),
        "data directory recovered"
    );
    Ok(Opened { journal, recovered })
}
