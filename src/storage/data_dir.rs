//! The data directory: checked before anything is written to it, and locked for one broker at a
//! time, so that a second broker started on the same directory stops at once instead of writing
//! into the first one's log.
//!
//! The lock is an advisory `flock` on `DIR/LOCK`, held for as long as the [`DataDir`] lives; the
//! kernel releases it when the process ends, however it ends, so a broker killed with SIGKILL never
//! leaves a stale lock. The file also names the holder's pid, for the refusal's message. `rustix`
//! is the call: std's `File::try_lock` needs a newer Rust than the workspace supports.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use rustix::{fs::FlockOperation, io::Errno};

/// Why a data directory cannot be used. Each names the directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    #[error("data directory {}: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error(
        "data directory {} is in use by another broker{}",
        path.display(),
        holder.as_deref().map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse {
        path: PathBuf,
        holder: Option<String>,
    },
}

/// A data directory this process holds the lock of.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the lock: closing the file releases it.
    _lock: File,
}

impl DataDir {
    /// Checks that `path` is a directory this process can write, and takes its lock.
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        let unusable = |reason: String| DataDirError::Unusable {
            path: path.to_owned(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(|error| unusable(error.to_string()))?;
        if !metadata.is_dir() {
            return Err(unusable("not a directory".into()));
        }
        let lock_path = path.join("LOCK");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|error| unusable(format!("cannot write in it: {error}")))?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_owned()).filter(|pid| !pid.is_empty());
                return Err(DataDirError::InUse {
                    path: path.to_owned(),
                    holder,
                });
            }
            Err(error) => {
                return Err(unusable(format!(
                    "cannot lock {}: {error}",
                    lock_path.display()
                )));
            }
        }
        let pid = std::process::id().to_string();
        lock.set_len(0)
            .and_then(|()| lock.seek(SeekFrom::Start(0)))
            .and_then(|_| lock.write_all(pid.as_bytes()))
            .map_err(|error| unusable(format!("cannot write {}: {error}", lock_path.display())))?;
        // LOCK may be left from an earlier broker, so opening it proves nothing about creating
        // files here, which every new segment needs.
        let probe = path.join(".write-check");
        File::create(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|error| unusable(format!("cannot create files in it: {error}")))?;
        let log_dir = path.join("wal");
        std::fs::create_dir_all(&log_dir)
            .and_then(|()| File::open(path)?.sync_all())
            .map_err(|error| unusable(format!("cannot create {}: {error}", log_dir.display())))?;
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the write-ahead log's segments live (created, and its name synced, by `open`).
    pub fn log_dir(&self) -> PathBuf {
        self.path.join("wal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let temp = tempfile::tempdir().unwrap();
        let first = DataDir::open(temp.path()).unwrap();
        let error = DataDir::open(temp.path()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&temp.path().display().to_string()), "{text}");
        assert!(text.contains("in use"), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(first);
        DataDir::open(temp.path()).unwrap();
    }

    #[test]
    fn a_path_that_is_no_directory_is_named() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        for path in [file, temp.path().join("missing")] {
            let error = DataDir::open(&path).unwrap_err();
            assert!(matches!(error, DataDirError::Unusable { .. }));
            assert!(error.to_string().contains(&path.display().to_string()));
        }
    }
}
