//! Reading the log back at start: every frame, in order, up to a torn tail, which is cut off; damage
//! anywhere else stops recovery with the file and offset, unless a repair was asked for.
//!
//! What counts as a torn tail: a crash can cut short only the last frame written (one commit's
//! write, not yet fsynced, so never acknowledged), at the end of the last segment; and a segment
//! created just before the crash may have no whole header yet. So an invalid frame in the last
//! segment is a torn tail when no valid frame follows it anywhere in that segment. A valid frame
//! after it means the damage is in the middle of the log, where acknowledged frames live: that, or
//! an invalid frame in any earlier segment, or a gap in the sequence between segments, is damage.

use std::path::{Path, PathBuf};

use super::{
    StorageError,
    format::{self, FRAME_HEADER_LEN, HEADER_LEN, SegmentHeader},
    fs::FileSystem,
};

/// What recovery does with damage that is not a torn tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to start, naming the file and offset.
    Strict,
    /// Cut the log at the damage, dropping it and everything after (later segments too), and go
    /// on. Only when an operator asks: what is dropped may have been acknowledged.
    Repair,
}

/// What recovery found, besides the frames it handed over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The sequence the next frame takes.
    pub next_sequence: u64,
    /// Frames handed over.
    pub frames: u64,
    /// Bytes cut from the end: a torn tail (or, under [`RecoveryMode::Repair`], the damage and what
    /// followed it).
    pub dropped_bytes: u64,
    /// What was cut and why, one line each, for the log.
    pub warnings: Vec<String>,
    /// Bytes of the segment files read, before anything was cut.
    pub read_bytes: u64,
    /// Segment files read.
    pub segments: u64,
}

/// The segment files of `dir`, by their first sequence.
pub(super) fn segments<F: FileSystem>(
    fs: &F,
    dir: &Path,
) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found: Vec<(u64, PathBuf)> = fs
        .list(dir)
        .map_err(StorageError::io("list", dir))?
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let first = name.strip_suffix(".wal")?.parse().ok()?;
            Some((first, path))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Name of the segment whose first frame is `first_sequence`.
pub(super) fn segment_path(dir: &Path, first_sequence: u64) -> PathBuf {
    dir.join(format!("{first_sequence:020}.wal"))
}

/// Reads every frame of the log in `dir` in order, handing each to `visit`, and cuts a torn tail (or
/// damage, in repair mode) so that appending can go on after the last good frame.
pub fn recover<F: FileSystem>(
    fs: &F,
    dir: &Path,
    mode: RecoveryMode,
    mut visit: impl FnMut(u64, &[u8]),
) -> Result<Recovered, StorageError> {
    let segments = segments(fs, dir)?;
    let mut recovered = Recovered {
        next_sequence: segments.first().map_or(1, |(first, _)| *first),
        ..Recovered::default()
    };
    for (index, (named_first, path)) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        let bytes = fs.read(path).map_err(StorageError::io("read", path))?;
        recovered.read_bytes += bytes.len() as u64;
        recovered.segments += 1;
        let damage = |offset: usize, reason: String| StorageError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        let Some(header) = SegmentHeader::decode(&bytes) else {
            // A segment's header is synced before any frame goes in, so a bad header with nothing
            // after it is a creation the crash cut short.
            if last && bytes.len() <= HEADER_LEN {
                fs.remove(path).map_err(StorageError::io("remove", path))?;
                fs.sync_dir(dir).map_err(StorageError::io("sync", dir))?;
                recovered.dropped_bytes += bytes.len() as u64;
                recovered.warnings.push(format!(
                    "removed {}: a segment whose creation a crash cut short ({} bytes)",
                    path.display(),
                    bytes.len()
                ));
                break;
            }
            let error = damage(0, "the segment header does not check".into());
            return repair_or_fail(fs, dir, mode, &segments[index..], 0, error, &mut recovered);
        };
        if header.first_sequence != *named_first || header.first_sequence != recovered.next_sequence
        {
            let reason = format!(
                "the segment starts at frame {} where frame {} was due",
                header.first_sequence, recovered.next_sequence
            );
            return repair_or_fail(
                fs,
                dir,
                mode,
                &segments[index..],
                0,
                damage(0, reason),
                &mut recovered,
            );
        }
        let mut offset = HEADER_LEN;
        let first_frame = recovered.frames;
        while offset < bytes.len() {
            let expected = recovered.next_sequence;
            match format::decode_frame(header.salt, &bytes[offset..]) {
                Some(frame) if frame.sequence == expected => {
                    visit(frame.sequence, frame.payload);
                    recovered.frames += 1;
                    recovered.next_sequence += 1;
                    offset += frame.len;
                }
                _ => {
                    let torn = last && !valid_frame_after(header.salt, &bytes, offset, expected);
                    if torn {
                        cut(fs, dir, path, offset)?;
                        let dropped = bytes.len() - offset;
                        recovered.dropped_bytes += dropped as u64;
                        recovered.warnings.push(format!(
                            "cut a torn tail of {dropped} bytes from {} at byte {offset}: a write \
                             that a crash cut short (never acknowledged), or damage to the last \
                             frame, which looks the same",
                            path.display()
                        ));
                        return Ok(recovered);
                    }
                    let reason = format!("frame {expected} does not check");
                    let error = damage(offset, reason);
                    return repair_or_fail(
                        fs,
                        dir,
                        mode,
                        &segments[index..],
                        offset,
                        error,
                        &mut recovered,
                    );
                }
            }
        }
        if last && recovered.frames == first_frame {
            // Created, then the power went before its first frame: nothing to keep, and the next
            // segment will want its name.
            cut(fs, dir, path, HEADER_LEN)?;
        } else if last {
            // Its frames were read back and will be built on, but the process that wrote the last
            // of them may have died between its write and its fsync (kill -9 keeps the page
            // cache): made durable now, before anything new is acknowledged after them.
            fs.sync_file(path)
                .map_err(StorageError::io("fsync", path))?;
            fs.sync_dir(dir).map_err(StorageError::io("fsync", dir))?;
        }
    }
    Ok(recovered)
}

/// Cuts `path` to `offset` bytes, durably; removes it instead when that would leave only its
/// header, so that a segment file always holds a frame.
fn cut<F: FileSystem>(fs: &F, dir: &Path, path: &Path, offset: usize) -> Result<(), StorageError> {
    if offset > HEADER_LEN {
        return fs
            .truncate(path, offset as u64)
            .map_err(StorageError::io("truncate", path));
    }
    fs.remove(path).map_err(StorageError::io("remove", path))?;
    fs.sync_dir(dir).map_err(StorageError::io("fsync", dir))
}

/// Whether a frame that checks, numbered after `expected`, starts anywhere after `offset`.
///
/// A bit flipped in a frame's body leaves its length right, so the next frame is looked for there
/// first. Otherwise every offset is tried, but only one whose sequence field is one that could
/// follow gets its checksum worked out, and the checksums' total work is bounded: a tail built to
/// make this scan slow (bytes a client chose, torn by a crash) is refused as damage rather than
/// hanging recovery. Refusing is the safe side: nothing is dropped without an operator's repair.
fn valid_frame_after(salt: u64, bytes: &[u8], offset: usize, expected: u64) -> bool {
    let later = |sequence: u64, remaining: usize| {
        sequence > expected && sequence - expected <= (remaining / FRAME_HEADER_LEN) as u64 + 1
    };
    let next_by_length = bytes
        .get(offset..offset + 4)
        .and_then(|length| usize::try_from(u32::from_le_bytes(length.try_into().ok()?)).ok())
        .and_then(|length| offset.checked_add(FRAME_HEADER_LEN)?.checked_add(length));
    if let Some(next) = next_by_length
        && let Some(frame) = bytes
            .get(next..)
            .and_then(|rest| format::decode_frame(salt, rest))
        && later(frame.sequence, bytes.len() - offset)
    {
        return true;
    }
    let mut budget = 4 * bytes.len() + (1 << 20);
    for start in offset + 1..bytes.len().saturating_sub(FRAME_HEADER_LEN - 1) {
        let rest = &bytes[start..];
        let sequence = u64::from_le_bytes(rest[8..16].try_into().unwrap_or_default());
        let length = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
        if !later(sequence, rest.len()) || length > rest.len() - FRAME_HEADER_LEN {
            continue;
        }
        if length > budget {
            return true;
        }
        budget -= length;
        if format::decode_frame(salt, rest).is_some() {
            return true;
        }
    }
    false
}

/// Under [`RecoveryMode::Strict`], `error`. Under repair, cuts the first of `from` at `offset`
/// (removing it when that leaves no frame) and removes the segments after it.
fn repair_or_fail<F: FileSystem>(
    fs: &F,
    dir: &Path,
    mode: RecoveryMode,
    from: &[(u64, PathBuf)],
    offset: usize,
    error: StorageError,
    recovered: &mut Recovered,
) -> Result<Recovered, StorageError> {
    if mode == RecoveryMode::Strict {
        return Err(error);
    }
    for (index, (_, path)) in from.iter().enumerate() {
        let len = fs.read(path).map_err(StorageError::io("read", path))?.len();
        if index == 0 {
            cut(fs, dir, path, offset)?;
            recovered.dropped_bytes += (len - offset.min(len)) as u64;
        } else {
            fs.remove(path).map_err(StorageError::io("remove", path))?;
            recovered.dropped_bytes += len as u64;
        }
    }
    fs.sync_dir(dir).map_err(StorageError::io("sync", dir))?;
    recovered.warnings.push(format!(
        "repaired: {error}; dropped {} bytes from there on",
        recovered.dropped_bytes
    ));
    Ok(std::mem::take(recovered))
}
