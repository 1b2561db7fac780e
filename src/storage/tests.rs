//! The log under crashes, damage and failing calls, on the simulated disk (and once on real files).
//!
//! The invariants, whatever happens: every frame whose commit returned `Ok` comes back, in order,
//! and nothing comes back that was never committed; a frame whose commit failed may come back only
//! whole; damage in the middle of the log is refused, never skipped.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{
    Log, LogOptions, OsFileSystem, RecoveryMode, StorageError,
    fs::FileSystem,
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

#[test]
fn a_segment_whose_creation_was_cut_short_is_removed() {
    let fs = SimFileSystem::default();
    let mut log = open(&fs, 1 << 20);
    log.commit(b"kept").unwrap();
    drop(log);
    // The next opening starts a new segment; its header's fsync fails and the power goes.
    let mut log = open(&fs, 1 << 20);
    fs.fail_syncs(1);
    assert!(log.commit(b"lost").is_err());
    fs.crash(3);
    let (frames, _) = recover(&fs, &dir(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames, vec![(1, b"kept".to_vec())]);
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
        // The last commit, under way when the power goes.
        let in_flight = payload(u64::MAX, 64);
        match failure {
            0 => fs.fail_syncs(1),
            1 => fs.fail_appends(1),
            _ => fs.fail_syncs(2),
        }
        prop_assert!(log.commit(&in_flight).is_err());
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
        let fs = SimFileSystem::default();
        let mut log = open(&fs, segment_bytes);
        let written: Vec<_> = (1..=count)
            .map(|n| (log.commit(&payload(n, 30)).unwrap(), payload(n, 30)))
            .collect();
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
        let fs = SimFileSystem::default();
        let mut log = open(&fs, segment_bytes);
        let written: Vec<_> = (1..=count)
            .map(|n| (log.commit(&payload(n, 30)).unwrap(), payload(n, 30)))
            .collect();
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
