//! Durable storage: the write-ahead log's format, its files and its recovery. Plain Rust with one
//! job: it records frames of bytes and gives them back after a crash. It names no router, no gRPC
//! and no message type; what a frame holds is the durable backend's business.
//!
//! The log is one sequence of frames spread over segment files (`DIR/<first sequence>.wal`), each
//! frame written and fsynced by one commit. Recovery reads the segments back in order, keeps every
//! frame up to a torn tail (a last frame that a crash cut short, which was never acknowledged), and
//! refuses, naming the file and offset, damage anywhere else: it never guesses and never starts
//! silently with less. After a failed write or fsync the log takes no more writes ("fsyncgate": a
//! retried fsync can report success for pages the kernel already dropped).
//!
//! Space is reclaimed from the front: the durable backend restates what is still live after a
//! rotation, then the segments before it are removed, oldest first.

mod committer;
mod data_dir;
mod format;
mod fs;
mod log;
mod recovery;
#[cfg(test)]
mod sim;
mod stats;
#[cfg(test)]
mod tests;

use std::{io, path::PathBuf};

pub use committer::{CommitError, Committed, Committer, MAX_RECORD_BYTES, Pending, records};
pub use data_dir::{DataDir, DataDirError};
pub use fs::{FileSystem, LogFile, OsFileSystem};
pub use log::{Log, LogOptions, Usage};
pub use recovery::{Recovered, RecoveryMode};
pub use stats::{CommitStats, HistogramSnapshot};

/// Why the log could not do what was asked. The durable backend maps these to `BrokerError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("cannot {operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Damage that is not a torn tail: recovery stops here rather than guess.
    #[error("the log is damaged in {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("a frame of {bytes} bytes is more than the limit of {limit}")]
    FrameTooLarge { bytes: usize, limit: usize },
    /// An earlier write or fsync failed; nothing after it is accepted.
    #[error("the log takes no more writes after an earlier failure: {0}")]
    Stopped(String),
}

impl StorageError {
    fn io(operation: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            operation,
            path,
            source,
        }
    }
}
