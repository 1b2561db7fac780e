//! The file operations the log needs, behind a small trait: the real one on `std::fs`, and (in
//! tests) a simulated disk that keeps synced and unsynced bytes apart, to crash at any point and to
//! fail any call. As in raft-engine's `FileSystem`, only the operations the log uses are here.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// A directory of log files.
pub trait FileSystem: Send + Sync + 'static {
    type File: LogFile;

    /// Creates `path`, which must not exist, for appending. The new name is durable only after
    /// [`FileSystem::sync_dir`] of its directory.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// How many bytes `path` holds.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Cuts `path` to `len` bytes, durably (the cut is synced before this returns).
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes everything in `path` durable, whoever wrote it (`fsync`).
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Removes `path`; durable after [`FileSystem::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The files directly in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Makes the names in `dir` (created and removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file being appended to.
pub trait LogFile: Send {
    /// Writes all of `bytes` at the end. Not durable until [`LogFile::sync_data`].
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The operating system's files.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFileSystem;

impl FileSystem for OsFileSystem {
    type File = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).create_new(true).open(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).open(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        std::fs::metadata(path).map(|metadata| metadata.len())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // On Linux a directory opened read-only can be fsynced, which makes its entries durable.
        File::open(dir)?.sync_all()
    }
}

impl LogFile for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}
