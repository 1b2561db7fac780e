//! A work queue: a pool of workers resizes images from one queue group.
//!
//! Forty resize jobs go to the group `resizers`; four workers share them, each holding a few at a
//! time (its prefetch). Midway, one worker stops without finishing what it holds: its consumer is
//! dropped with jobs unacked, so the broker hands those jobs to the other workers (as attempt 2).
//! Every job is still done exactly once.
//!
//! ```sh
//! cargo run -p switchyard-client --example image_workers -- --server http://127.0.0.1:50051
//! ```

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use support::{BoxError, say, within};
use switchyard_client::{Client, Consumer, OutgoingMessage};
use tokio::{sync::watch, task::JoinSet};

const JOBS: u32 = 40;
const WORKERS: [&str; 4] = ["worker-1", "worker-2", "worker-3", "worker-4"];
/// The worker that stops midway, and after how many finished jobs.
const QUITTER: &str = "worker-2";
const QUITS_AFTER: usize = 3;
/// Jobs each worker holds at once.
const PREFETCH: u32 = 3;

/// What the run did.
#[derive(Debug)]
pub struct Outcome {
    pub jobs: u32,
    /// For each job, every worker that finished it (exactly one, if all went well).
    pub done_by: BTreeMap<u32, Vec<&'static str>>,
    /// Jobs finished on a redelivery (attempt 2 or later).
    pub redelivered: usize,
    /// The job the quitting worker had in hand when it stopped.
    pub abandoned: u32,
}

impl Outcome {
    pub fn lost(&self) -> u32 {
        (0..self.jobs)
            .filter(|job| !self.done_by.contains_key(job))
            .count() as u32
    }

    pub fn done_twice(&self) -> usize {
        self.done_by.values().filter(|by| by.len() > 1).count()
    }
}

/// Shared between the workers: who finished what, and how many on a redelivery.
#[derive(Default)]
struct Ledger {
    done_by: BTreeMap<u32, Vec<&'static str>>,
    redelivered: usize,
}

pub async fn run(client: Client) -> Result<Outcome, BoxError> {
    let topic = format!("{}.images.resize", support::run_token("studio"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Tells the workers that every job is done.
    let (finish, finished) = watch::channel(false);

    let mut workers = JoinSet::new();
    for name in WORKERS {
        let jobs = client
            .consume(topic.clone(), "resizers")
            .prefetch(PREFETCH)
            .subscribe()
            .await?;
        say(
            name,
            format!("joined the resizers, {PREFETCH} jobs at a time"),
        );
        let (ledger, finish, finished) = (Arc::clone(&ledger), finish.clone(), finished.clone());
        workers.spawn(work(name, jobs, ledger, finish, finished));
    }

    let batch = (0..JOBS)
        .map(|job| {
            let (width, height) = (640 + 64 * (job % 10), 480 + 48 * (job % 10));
            OutgoingMessage::new(topic.clone(), format!("img-{job:03}.jpg"))
                .header("job", job.to_string())
                .header("size", format!("{width}x{height}"))
        })
        .collect();
    client.publish_batch(batch).await?;
    say("uploader", format!("queued {JOBS} resize jobs"));

    let mut abandoned = None;
    while let Some(worker) = within("the workers", workers.join_next()).await? {
        abandoned = abandoned.or(worker??);
    }
    let ledger = std::mem::take(&mut *ledger.lock().map_err(|_| "a worker panicked")?);
    let outcome = Outcome {
        jobs: JOBS,
        done_by: ledger.done_by,
        redelivered: ledger.redelivered,
        abandoned: abandoned.ok_or("the quitting worker never quit")?,
    };
    println!(
        "summary: jobs: {} done, {} lost, {} done twice, {} redelivered",
        outcome.done_by.len(),
        outcome.lost(),
        outcome.done_twice(),
        outcome.redelivered
    );
    Ok(outcome)
}

/// One worker: resizes jobs until every job is done, or (the quitter) stops midway. Returns the job
/// it abandoned, if it quit.
async fn work(
    name: &'static str,
    mut jobs: Consumer,
    ledger: Arc<Mutex<Ledger>>,
    finish: watch::Sender<bool>,
    mut finished: watch::Receiver<bool>,
) -> Result<Option<u32>, BoxError> {
    let mut finished_here = 0;
    loop {
        let delivery = tokio::select! {
            delivery = jobs.next() => delivery.ok_or("the consumer ended")??,
            _ = finished.wait_for(|all| *all) => break,
        };
        let job: u32 = delivery
            .message()
            .headers
            .get("job")
            .ok_or("a job without a number")?
            .parse()?;
        if name == QUITTER && finished_here == QUITS_AFTER {
            // Stop as a crashed or killed worker would: the consumer goes away with this job (and
            // whatever else it had prefetched) unacked, and the broker gives them to the others.
            say(
                name,
                format!("stops with job {job} in hand and its prefetched jobs, all unacked"),
            );
            drop(jobs);
            drop(delivery);
            return Ok(Some(job));
        }
        let size = delivery
            .message()
            .headers
            .get("size")
            .cloned()
            .unwrap_or_default();
        // The "resize": a little work that takes longer for bigger images.
        tokio::time::sleep(Duration::from_millis(10 + u64::from(job % 10) * 3)).await;
        let attempt = delivery.attempt();
        let file = String::from_utf8_lossy(&delivery.message().payload).into_owned();
        delivery.ack();
        finished_here += 1;
        let again = if attempt > 1 {
            format!(" (redelivered, attempt {attempt})")
        } else {
            String::new()
        };
        say(
            name,
            format!("resized {file} from {size} to 200x150{again}"),
        );
        let all_done = {
            let mut ledger = ledger.lock().map_err(|_| "a worker panicked")?;
            ledger.done_by.entry(job).or_default().push(name);
            ledger.redelivered += usize::from(attempt > 1);
            ledger.done_by.len() == JOBS as usize
        };
        if all_done {
            finish.send_replace(true);
        }
    }
    jobs.close().await;
    Ok(None)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::main(run).await
}
