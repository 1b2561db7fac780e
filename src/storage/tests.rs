//! The log under crashes, damage and failing calls, on the simulated disk (and once on real files).
//!
//! The invariants, whatever happens: every frame whose commit returned `Ok` comes back, in order,
//! and nothing comes back that was never committed; a frame whose commit failed may come back only
//! whole; damage in the middle of the log is refused, never skipped.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{
    Log, LogOptions, OsFileSystem, RecoveryMode, StorageError,
    fs::{FileSystem, LogFile},
    recovery::{self, segments},
    sim::SimFileSystem,
};

fn dir() -> PathBuf {
    PathBuf::from("/data")
}

fn payload(n: u64, size: usize) -> Vec<u8> {
    let mut bytes = n.to_le_bytes().to_vec();
    bytes.resize(size.max(8), (n % 251) as u8);
    bytes
}

/// Frames as recovery hands them over: sequence and payload.
type Frames = Vec<(u64, Vec<u8>)>;

/// Every frame of the log in `dir`, and what recovery said.
fn recover<F: FileSystem>(
    fs: &F,
    dir: &Path,
    mode: RecoveryMode,
) -> Result<(Frames, super::Recovered), StorageError> {
    let mut frames = Vec::new();
    let recovered = recovery::recover(fs, dir, mode, |sequence, payload| {
        frames.push((sequence, payload.to_vec()))
    })?;
    Ok((frames, recovered))
}

fn open<F: FileSystem + Clone>(fs: &F, segment_bytes: u64) -> Log<F> {
    let options = LogOptions { segment_bytes };
    Log::open(fs.clone(), &dir(), options, RecoveryMode::Strict, |_, _| {})
        .unwrap()
        .0
}

/// A log of `count` committed 30-byte frames in segments of `segment_bytes`, and what was written.
fn committed(count: u64, segment_bytes: u64) -> (SimFileSystem, Frames) {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, segment_bytes);
    let written = (1..=count)
        .map(|n| (log.commit(&payload(n, 30)).unwrap(), payload(n, 30)))
        .collect();
    (fs, written)
}

#[test]
fn frames_come_back_in_order_across_segments_and_reopenings() {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, 300);
    let mut written = Vec::new();
    for n in 1..=20 {
        let sequence = log.commit(&payload(n, 40)).unwrap();
        written.push((sequence, payload(n, 40)));
    }
    assert!(
        segments(&fs, &dir()).unwrap().len() > 3,
        "small segments rotate"
    );
    drop(log);
    let mut log = open(&fs, 300);
    assert_eq!(log.next_sequence(), 21);
    written.push((log.commit(b"after").unwrap(), b"after".to_vec()));
    let (frames, recovered) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames, written);
    assert_eq!(recovered.dropped_bytes, 0);
    assert_eq!(recovered.next_sequence, 22);
}

#[test]
fn removing_before_a_rotation_keeps_the_frames_after_it_and_survives_a_crash() {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, 1 << 20);
    for n in 1..=5 {
        log.commit(&payload(n, 30)).unwrap();
    }
    let before = log.rotate();
    assert_eq!(before, 6);
    let kept: Frames = (6..=8)
        .map(|n| (log.commit(&payload(n, 30)).unwrap(), payload(n, 30)))
        .collect();
    let used = log.usage();
    assert_eq!(used.segments, 2);
    log.remove_before(before).unwrap();
    assert_eq!(log.usage().segments, 1);
    assert!(log.usage().bytes < used.bytes);
    // Removing again, or before a sequence inside the segment being written, removes nothing.
    log.remove_before(7).unwrap();
    assert_eq!(log.usage().segments, 1);
    drop(log);
    fs.crash(7);
    let (frames, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
    assert_eq!(
        frames, kept,
        "the removal was durable, the frames after it too"
    );
}

#[test]
fn the_real_file_system_keeps_what_was_committed() {
    let temp = tempfile::tempdir().unwrap();
    let options = LogOptions { segment_bytes: 256 };
    let (mut log, _) = Log::open(
        OsFileSystem,
        temp.path(),
        options,
        RecoveryMode::Strict,
        |_, _| {},
    )
    .unwrap();
    for n in 1..=10 {
        log.commit(&payload(n, 50)).unwrap();
    }
    drop(log);
    let (frames, _) = recover(&OsFileSystem, temp.path(), RecoveryMode::Strict).unwrap();
    let expected: Vec<_> = (1..=10).map(|n| (n, payload(n, 50))).collect();
    assert_eq!(frames, expected);
}

#[test]
fn a_failed_write_or_fsync_is_never_followed_by_an_ok() {
    for fail_sync in [false, true] {
        let fs = SimFileSystem::default();
        let mut log = open(&fs, 1 << 20);
        log.commit(b"one").unwrap();
        if fail_sync {
            fs.fail_syncs(1);
        } else {
            fs.fail_appends(1);
        }
        assert!(matches!(log.commit(b"two"), Err(StorageError::Io { .. })));
        // The disk works again, but the log does not pretend: a retried fsync proves nothing.
        assert!(matches!(
            log.commit(b"three"),
            Err(StorageError::Stopped(_))
        ));
    }
}

/// A kernel may make a new name durable before the file's bytes: a last segment with a name and
/// part of a header is a creation the crash cut short, and is removed so that its name is free.
#[test]
fn a_segment_whose_creation_was_cut_short_is_removed() {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, 1 << 20);
    log.commit(b"kept").unwrap();
    drop(log);
    let partial = recovery::segment_path(&dir(), 2);
    let mut file = fs.create_new(&partial).unwrap();
    file.append(&b"SYWAL001-half"[..]).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(&dir()).unwrap();
    fs.crash(3);
    let (frames, recovered) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames, vec![(1, b"kept".to_vec())]);
    assert_eq!(recovered.dropped_bytes, 13);
    assert_eq!(fs.file_len(&partial), 0, "removed");
    let mut log = open(&fs, 1 << 20);
    assert_eq!(log.commit(b"next").unwrap(), 2);
}

/// kill -9 between a frame's write and its fsync leaves the frame in the page cache: the next
/// broker reads it back and builds on it, so it must make it durable before acknowledging more.
/// Otherwise a later power loss would tear the middle of the log.
#[test]
fn frames_read_back_after_a_kill_are_made_durable_before_more_are_acknowledged() {
    for seed in 0..50 {
        let fs = SimFileSystem::default();
        let mut log = open(&fs, 1 << 20);
        log.commit(b"one").unwrap();
        fs.fail_syncs(1);
        assert!(log.commit(b"written, not synced").is_err());
        drop(log); // the process dies; the page cache stays
        let mut log = open(&fs, 1 << 20);
        let (_, previous) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
        assert_eq!(previous.frames, 2);
        log.commit(b"three").unwrap();
        fs.crash(seed);
        let (frames, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
        let payloads: Vec<&[u8]> = frames.iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(
            payloads,
            [&b"one"[..], b"written, not synced", b"three"],
            "seed {seed}"
        );
    }
}

/// Bytes that are no log at all, where a segment should be: recovery refuses them (or cuts them
/// as a torn tail), but never hands over a frame that was not written, nor panics.
#[test]
fn garbage_in_a_segment_is_never_a_frame() {
    for seed in 0u64..200 {
        let fs = SimFileSystem::default();
        let mut log = open(&fs, 1 << 20);
        let written: Vec<_> = (1..=5)
            .map(|n| (log.commit(&payload(n, 40)).unwrap(), payload(n, 40)))
            .collect();
        let (_, path) = segments(&fs, &dir()).unwrap().remove(0);
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let len = fs.file_len(&path);
        let from = 28 + (seed as usize % (len - 28));
        for at in from..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            fs.flip_bit(&path, at, (state % 8) as u8);
        }
        match recover(&fs, &dir(), RecoveryMode::Strict) {
            Ok((frames, _)) => assert_eq!(&frames[..], &written[..frames.len()], "seed {seed}"),
            Err(StorageError::Corrupt { offset, .. }) => assert!(offset >= 28, "seed {seed}"),
            Err(other) => panic!("seed {seed}: {other}"),
        }
    }
}

#[test]
fn a_frame_too_large_is_refused_and_the_log_goes_on() {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, 1 << 20);
    let huge = vec![0; super::format::MAX_PAYLOAD + 1];
    assert!(matches!(
        log.commit(&huge),
        Err(StorageError::FrameTooLarge { .. })
    ));
    log.commit(b"fine").unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Power loss at any point: during a commit's write, its fsync, or a segment's creation. What was
    /// acknowledged comes back; the commit in progress comes back whole or not at all.
    #[test]
    fn power_loss_keeps_every_acknowledged_frame(
        sizes in proptest::collection::vec(0usize..120, 1..40),
        segment_bytes in 64u64..600,
        failure in 0u8..3,
        seed: u64,
        reopen_at in proptest::option::of(0usize..40),
    ) {
        let fs = SimFileSystem::default();
        let mut log = open(&fs, segment_bytes);
        let mut acked = Vec::new();
        for (index, size) in sizes.iter().enumerate() {
            if reopen_at == Some(index) {
                log = open(&fs, segment_bytes);
            }
            let n = index as u64 + 1;
            let sequence = log.commit(&payload(n, *size)).unwrap();
            acked.push((sequence, payload(n, *size)));
        }
        // The last commit, under way when the power goes: its write, its fsync, or (when it opens
        // a segment) the directory's fsync fails.
        let in_flight = payload(u64::MAX, 64);
        match failure {
            0 => fs.fail_syncs(1),
            1 => fs.fail_appends(1),
            _ => fs.fail_dir_syncs(1),
        }
        match log.commit(&in_flight) {
            // Only a commit that opened no segment gets past a failing directory fsync.
            Ok(sequence) if failure == 2 => acked.push((sequence, in_flight.clone())),
            Ok(_) => prop_assert!(false, "a failed write or fsync was acknowledged"),
            Err(_) => {}
        }
        fs.crash(seed);

        let (frames, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
        prop_assert!(frames.len() >= acked.len(), "lost acknowledged frames");
        prop_assert_eq!(&frames[..acked.len()], &acked[..]);
        match &frames[acked.len()..] {
            [] => {}
            [(_, extra)] => prop_assert_eq!(extra, &in_flight),
            more => prop_assert!(false, "unexpected frames: {}", more.len()),
        }
        // And the log goes on from there, across another recovery.
        let mut log = open(&fs, segment_bytes);
        let next = log.commit(b"after").unwrap();
        prop_assert_eq!(next, frames.len() as u64 + 1);
        let (again, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
        prop_assert_eq!(again.len(), frames.len() + 1);
    }

    /// A flipped bit anywhere: recovery keeps exactly the frames before it when it is in the last
    /// frame (a torn tail looks the same), and otherwise refuses, naming the file and offset. Repair
    /// then keeps a prefix of what was written.
    #[test]
    fn a_flipped_bit_is_a_torn_tail_or_a_refusal_never_a_skip(
        count in 1u64..30,
        segment_bytes in 64u64..600,
        segment in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (fs, written) = committed(count, segment_bytes);
        let files = segments(&fs, &dir()).unwrap();
        let (_, path) = &files[segment.index(files.len())];
        let at = offset.index(fs.file_len(path));
        fs.flip_bit(path, at, bit);

        match recover(&fs, &dir(), RecoveryMode::Strict) {
            Ok((frames, recovered)) => {
                prop_assert_eq!(&frames[..], &written[..written.len() - 1]);
                prop_assert!(recovered.dropped_bytes > 0);
            }
            Err(StorageError::Corrupt { path: named, .. }) => prop_assert_eq!(&named, path),
            Err(other) => prop_assert!(false, "unexpected error: {}", other),
        }
        let (frames, _) = recover(&fs, &dir(), RecoveryMode::Repair).unwrap();
        prop_assert!(frames.len() < written.len());
        prop_assert_eq!(&frames[..], &written[..frames.len()]);
        // Repair keeps every frame of the segments before the damaged one (sequences start at 1).
        let before = (files[segment.index(files.len())].0 - 1) as usize;
        prop_assert!(frames.len() >= before, "repair dropped frames before the damaged segment");
    }

    /// A file cut short: the last segment keeps the frames before the cut; any earlier segment cut
    /// short is damage (its frames are missing from the middle of the log).
    #[test]
    fn a_truncated_segment_is_a_torn_tail_only_at_the_end(
        count in 2u64..30,
        segment_bytes in 64u64..400,
        segment in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let (fs, written) = committed(count, segment_bytes);
        let files = segments(&fs, &dir()).unwrap();
        let index = segment.index(files.len());
        let (_, path) = &files[index];
        let len = fs.file_len(path);
        let keep = cut.index(len);
        fs.truncate(path, keep as u64).unwrap();
        let last = index + 1 == files.len();
        match recover(&fs, &dir(), RecoveryMode::Strict) {
            Ok((frames, _)) => {
                prop_assert!(last, "a cut in a segment before the last passed");
                prop_assert_eq!(&frames[..], &written[..frames.len()]);
            }
            Err(StorageError::Corrupt { .. }) => prop_assert!(!last, "a cut at the end refused"),
            Err(other) => prop_assert!(false, "unexpected error: {}", other),
        }
    }
}

mod group_commit {
    use std::time::Duration;

    use super::*;
    use crate::storage::{CommitError, Committer, Pending, records};

    /// Waits (bounded) until the committer thread sits in a held fsync.
    async fn until_a_sync_is_held(fs: &SimFileSystem) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while fs.held_syncs() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the committer reaches its fsync");
    }

    /// A committer that has committed `warm`, then `r0`, whose fsync is held, and `rest` handed
    /// over behind it.
    async fn queued_behind_a_held_fsync(
        rest: impl Iterator<Item = Vec<u8>>,
    ) -> (SimFileSystem, Committer, Pending, Vec<Pending>) {
        let fs = SimFileSystem::default();
        let committer = Committer::start(open(&fs, 1 << 20)).unwrap();
        committer.commit(b"warm".to_vec()).await.unwrap();
        fs.hold_syncs();
        let first = committer.submit(b"r0".to_vec()).unwrap();
        until_a_sync_is_held(&fs).await;
        let rest = rest
            .map(|record| committer.submit(record).unwrap())
            .collect();
        (fs, committer, first, rest)
    }

    /// Everything handed over while an fsync is under way goes into the next frame: one fsync
    /// acknowledges all of it, and recovery gives every record back in the order handed over.
    #[tokio::test]
    async fn records_waiting_behind_an_fsync_share_the_next_one() {
        let (fs, committer, first, rest) =
            queued_behind_a_held_fsync((1..100).map(|n| format!("r{n}").into_bytes())).await;
        fs.release_syncs();
        let first = first.wait().await.unwrap();
        let mut sequences = Vec::new();
        for pending in rest {
            sequences.push(pending.wait().await.unwrap().sequence);
        }
        assert!(
            sequences.iter().all(|s| *s == first.sequence + 1),
            "{sequences:?}"
        );
        assert_eq!(committer.stats().frames_and_records(), (3, 101));

        let (frames, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
        let recovered: Vec<Vec<u8>> = frames
            .iter()
            .flat_map(|(_, payload)| records(payload).unwrap())
            .map(<[u8]>::to_vec)
            .collect();
        let mut expected = vec![b"warm".to_vec()];
        expected.extend((0..100).map(|n| format!("r{n}").into_bytes()));
        assert_eq!(recovered, expected);
    }

    /// A failed fsync fails every record of its frame, every record queued behind it, and every
    /// record after: none of them is acknowledged.
    #[tokio::test]
    async fn a_failed_fsync_acknowledges_nothing_from_then_on() {
        let (fs, committer, first, rest) =
            queued_behind_a_held_fsync((1..10).map(|n| vec![n])).await;
        fs.fail_syncs(1);
        fs.release_syncs();
        assert!(matches!(first.wait().await, Err(CommitError::Failed(_))));
        for pending in rest {
            assert!(matches!(pending.wait().await, Err(CommitError::Failed(_))));
        }
        let later = committer.commit(b"later".to_vec()).await;
        assert!(matches!(later, Err(CommitError::Failed(_))), "{later:?}");
        assert_eq!(committer.stats().frames_and_records(), (1, 1));
    }

    #[tokio::test]
    async fn a_record_larger_than_a_frame_is_refused_at_once() {
        let fs = SimFileSystem::default();
        let committer = Committer::start(open(&fs, 1 << 20)).unwrap();
        let huge = vec![0; 16 * 1024 * 1024];
        assert!(matches!(
            committer.commit(huge).await,
            Err(CommitError::TooLarge { .. })
        ));
        committer.commit(b"fine".to_vec()).await.unwrap();
    }

    #[test]
    fn a_payload_splits_into_its_records_and_a_malformed_one_does_not() {
        let mut payload = Vec::new();
        for record in [&b"a"[..], b"", b"xyz"] {
            payload.extend_from_slice(&(record.len() as u32).to_le_bytes());
            payload.extend_from_slice(record);
        }
        assert_eq!(records(&payload).unwrap(), [&b"a"[..], b"", b"xyz"]);
        assert_eq!(records(&payload[..payload.len() - 1]), None);
    }
}

/// ENOSPC is told apart from other failures, so a full disk can be answered RESOURCE_EXHAUSTED.
#[test]
fn a_full_disk_is_its_own_kind_of_failure() {
    use crate::storage::CommitError;
    let io = |kind| StorageError::Io {
        operation: "write",
        path: dir(),
        source: std::io::Error::from(kind),
    };
    assert!(matches!(
        CommitError::from(io(std::io::ErrorKind::StorageFull)),
        CommitError::DiskFull(_)
    ));
    assert!(matches!(
        CommitError::from(io(std::io::ErrorKind::Other)),
        CommitError::Failed(_)
    ));
}
