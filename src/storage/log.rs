//! Appending to the log: one frame per commit, written and fsynced before the commit returns, in
//! segment files of a bounded size. A new segment's file, header and directory entry are synced
//! before a frame goes in, so recovery never finds frames in a file a crash could forget.
//!
//! The caller batches: one commit carries whatever a group of publishers and acks handed over
//! meanwhile (the committer that gathers them comes with the durable backend). So the cost per
//! commit (a `write` and an `fdatasync`) is shared by everything in its frame.

use std::path::{Path, PathBuf};

use super::{
    StorageError,
    format::{self, FRAME_HEADER_LEN, HEADER_LEN, SegmentHeader},
    fs::{FileSystem, LogFile},
    recovery::{self, Recovered, RecoveryMode},
};

/// How the log lays out its files.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// A segment takes frames until it holds this many bytes; the frame that would pass it opens
    /// a new segment (a frame larger than this gets a segment of its own).
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The log of one data directory, open for appending.
pub struct Log<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    options: LogOptions,
    segment: Option<Segment<F::File>>,
    next_sequence: u64,
    /// Reused for every frame, so a commit allocates nothing once it has grown.
    frame: Vec<u8>,
    /// Why writing stopped, once a write or fsync failed.
    stopped: Option<String>,
    /// What the segment files take, and how many there are: what reclaiming space looks at.
    usage: Usage,
}

/// The log's files, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub segments: u64,
}

/// The segment being appended to.
struct Segment<File> {
    path: PathBuf,
    file: File,
    salt: u64,
    len: u64,
    frames: u64,
}

impl<F: FileSystem> Log<F> {
    /// Recovers the log in `dir` (handing every frame to `visit`, in order) and opens it to append
    /// after the last good frame. Appending starts in a new segment, so a file that recovery cut
    /// is never written again.
    pub fn open(
        fs: F,
        dir: &Path,
        options: LogOptions,
        mode: RecoveryMode,
        visit: impl FnMut(u64, &[u8]),
    ) -> Result<(Self, Recovered), StorageError> {
        let recovered = recovery::recover(&fs, dir, mode, visit)?;
        let log = Self {
            fs,
            dir: dir.to_owned(),
            options,
            segment: None,
            next_sequence: recovered.next_sequence,
            frame: Vec::new(),
            stopped: None,
            usage: Usage {
                bytes: recovered.read_bytes.saturating_sub(recovered.dropped_bytes),
                segments: recovered.segments,
            },
        };
        Ok((log, recovered))
    }

    /// The sequence the next commit's frame takes.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Seals the segment being written: the next frame opens a new one, numbered by the sequence
    /// returned. Every frame before that sequence is in an older segment.
    pub fn rotate(&mut self) -> u64 {
        self.segment = None;
        self.next_sequence
    }

    /// Deletes every segment whose frames all come before `sequence`, oldest first (so that a crash
    /// in the middle leaves the newer part of the log, never a gap), then syncs the directory. Only
    /// for frames that nothing needs any more: the caller has restated what they held.
    pub fn remove_before(&mut self, sequence: u64) -> Result<(), StorageError> {
        if let Some(reason) = &self.stopped {
            return Err(StorageError::Stopped(reason.clone()));
        }
        let segments = recovery::segments(&self.fs, &self.dir)?;
        let firsts: Vec<u64> = segments.iter().map(|(first, _)| *first).collect();
        for (index, (first, path)) in segments.iter().enumerate() {
            // A segment ends where the next begins; the one being written is never removed.
            let end = firsts.get(index + 1).copied().unwrap_or(u64::MAX);
            let current = self
                .segment
                .as_ref()
                .is_some_and(|segment| &segment.path == path);
            if end > sequence || current || *first >= sequence {
                break;
            }
            let len = self.fs.len(path).unwrap_or_default();
            self.fs
                .remove(path)
                .map_err(StorageError::io("remove", path))?;
            // One at a time: unsynced unlinks may reach the disk in any order, and a newer one
            // without an older one would leave a gap that recovery refuses.
            self.fs
                .sync_dir(&self.dir)
                .map_err(StorageError::io("fsync", &self.dir))?;
            self.usage.bytes = self.usage.bytes.saturating_sub(len);
            self.usage.segments = self.usage.segments.saturating_sub(1);
        }
        Ok(())
    }

    /// Writes `payload` as one frame and fsyncs it. When this returns `Ok`, the frame survives any
    /// crash; after an `Err`, it may or may not, and the log takes no more writes.
    pub fn commit(&mut self, payload: &[u8]) -> Result<u64, StorageError> {
        if let Some(reason) = &self.stopped {
            return Err(StorageError::Stopped(reason.clone()));
        }
        let frame_len = (FRAME_HEADER_LEN + payload.len()) as u64;
        let full = self.segment.as_ref().is_none_or(|segment| {
            segment.frames > 0 && segment.len + frame_len > self.options.segment_bytes
        });
        if full {
            self.open_segment().map_err(|error| self.stop(error))?;
        }
        let sequence = self.next_sequence;
        self.frame.clear();
        let Some(segment) = self.segment.as_mut() else {
            unreachable!("a segment was opened above");
        };
        format::encode_frame(segment.salt, sequence, payload, &mut self.frame)?;
        let written = segment
            .file
            .append(&self.frame)
            .map_err(StorageError::io("write", &segment.path))
            .and_then(|()| {
                segment
                    .file
                    .sync_data()
                    .map_err(StorageError::io("fsync", &segment.path))
            });
        if let Err(error) = written {
            return Err(self.stop(error));
        }
        segment.len += frame_len;
        segment.frames += 1;
        self.usage.bytes += frame_len;
        self.next_sequence += 1;
        Ok(sequence)
    }

    /// Starts a segment at the next sequence: creates it, writes and syncs its header, then syncs
    /// the directory so that its name survives a crash too.
    fn open_segment(&mut self) -> Result<(), StorageError> {
        let path = recovery::segment_path(&self.dir, self.next_sequence);
        let salt = uuid::Uuid::new_v4().as_u64_pair().0;
        let header = SegmentHeader {
            salt,
            first_sequence: self.next_sequence,
        };
        let mut file = self
            .fs
            .create_new(&path)
            .map_err(StorageError::io("create", &path))?;
        file.append(&header.encode())
            .map_err(StorageError::io("write", &path))?;
        file.sync_data().map_err(StorageError::io("fsync", &path))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(StorageError::io("fsync", &self.dir))?;
        self.segment = Some(Segment {
            path,
            file,
            salt,
            len: HEADER_LEN as u64,
            frames: 0,
        });
        self.usage.bytes += HEADER_LEN as u64;
        self.usage.segments += 1;
        Ok(())
    }

    /// Stops the log for good and returns `error`: after a failed write or fsync, what the kernel
    /// holds of the file is unknown, and a retried fsync may report success for pages it dropped.
    fn stop(&mut self, error: StorageError) -> StorageError {
        if self.stopped.is_none() {
            self.stopped = Some(error.to_string());
        }
        error
    }
}
