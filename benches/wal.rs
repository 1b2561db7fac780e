//! Group commit on the real disk: how many records a second the write-ahead log makes durable, and
//! how many records each fsync carries, with 1 to 256 writers that each wait for their record's
//! acknowledgement before handing over the next (as publishers waiting for their Publish do).
//!
//! Run with `cargo bench --bench wal` (optionally `-- DIR` to measure another file system than the
//! temporary directory's). It prints a Markdown table. Every record is fsynced before its writer
//! hears back, so the figures are what durable mode can acknowledge, not what the disk can absorb.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use switchyard::storage::{Committer, Log, LogOptions, OsFileSystem, RecoveryMode};

/// Records of 128 bytes plus a few bytes of framing, as a queued message of the benchmarks is.
const RECORD_BYTES: usize = 160;
const RUN: Duration = Duration::from_secs(3);

fn main() {
    let base = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("| writers | records/s | fsyncs/s | records per fsync | MB/s |");
    println!("|---:|---:|---:|---:|---:|");
    for writers in [1, 4, 16, 64, 256] {
        let dir = match &base {
            Some(base) => tempfile::tempdir_in(base),
            None => tempfile::tempdir(),
        }
        .expect("a directory to write in");
        let (log, _) = Log::open(
            OsFileSystem,
            dir.path(),
            LogOptions::default(),
            RecoveryMode::Strict,
            |_, _| {},
        )
        .expect("an empty log");
        let committer = Committer::start(log).expect("the committer thread");
        let started = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..writers)
                .map(|_| {
                    let committer = committer.clone();
                    tokio::spawn(async move {
                        let record = vec![0x5a; RECORD_BYTES];
                        while started.elapsed() < RUN {
                            committer
                                .commit(record.clone())
                                .await
                                .expect("a commit on a healthy disk");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("a writer");
            }
        });
        let seconds = started.elapsed().as_secs_f64();
        let (frames, records) = committer.stats().frames_and_records();
        println!(
            "| {writers} | {:.0} | {:.0} | {:.1} | {:.1} |",
            records as f64 / seconds,
            frames as f64 / seconds,
            records as f64 / frames.max(1) as f64,
            (records as usize * (RECORD_BYTES + 4)) as f64 / seconds / 1e6,
        );
    }
}
