//! The broker being measured, either started by the bench (this executable, `serve` on a loopback
//! port the kernel picks, killed when the run ends) or found at a given URL. The CPU time it and this
//! process spend is sampled by `switchyard_loadgen::cpu`, which the peers use too.
//!
//! A durable broker started by the bench gets a fresh data directory and is stopped with SIGTERM, so
//! that it logs what its journal did (fsyncs and the records they carried), which the report shows.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use switchyard::ready::Ready;

use super::Failure;

/// How long a started broker has to say it serves.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a durable broker has to stop after SIGTERM (its shutdown grace and then some).
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// What the durable journal logs when it closes (`src/durable/mod.rs`).
const JOURNAL_CLOSED: &str = "journal closed: ";

/// What a durable broker's journal did over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    pub fsyncs: u64,
    pub records: u64,
}
const READY_POLL: Duration = Duration::from_millis(20);

/// The broker a run measures. A broker this command started is killed when this is dropped, so it
/// never outlives the run, even when the run fails or is interrupted.
#[derive(Debug)]
pub struct BrokerUnderTest {
    url: String,
    /// Its processes, for their CPU: the child this started, or those --broker-pid gave.
    pids: Vec<u32>,
    child: Option<Child>,
    /// The started broker's ready file: it cannot remove it itself once killed.
    ready_file: Option<PathBuf>,
    /// The data directory of a durable broker the bench started, removed at the end.
    data_dir: Option<PathBuf>,
    /// Forwards a durable broker's stderr, picking out its journal's figures.
    stderr: Option<StderrReader>,
}

/// The thread that copies a broker's stderr, and what it found of the journal's figures.
type StderrReader = (JoinHandle<()>, Arc<Mutex<Option<JournalStats>>>);

impl BrokerUnderTest {
    /// A broker someone else runs, with its process id if it is known.
    pub fn given(url: &str, pids: Vec<u32>) -> Self {
        Self {
            url: url.to_owned(),
            pids,
            child: None,
            ready_file: None,
            data_dir: None,
            stderr: None,
        }
    }

    /// Starts `switchyard serve` (this executable) on `127.0.0.1:0` and waits for its ready file,
    /// which names the port it got: no free-port race. Its warnings and errors go to this command's
    /// stderr.
    ///
    /// With `data_parent`, the broker is durable, on a fresh directory made inside it.
    pub async fn spawn(data_parent: Option<&Path>) -> Result<Self, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| Failure::new(format!("cannot find this executable: {error}")))?;
        let ready_file = ready_file_path();
        let mut command = Command::new(&executable);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "off",
                "--ready-file",
            ])
            .arg(&ready_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let data_dir = match data_parent {
            Some(parent) => {
                let dir = parent.join(unique_name("data"));
                std::fs::create_dir(&dir).map_err(|error| {
                    Failure::new(format!("cannot create {}: {error}", dir.display()))
                })?;
                command.arg("--data-dir").arg(&dir).stderr(Stdio::piped());
                if std::env::var_os("RUST_LOG").is_none() {
                    command.env("RUST_LOG", "warn,switchyard::durable=info");
                }
                Some(dir)
            }
            None => None,
        };
        // The broker measured runs with the defaults: a variable meant for this client command (or
        // a config file named by SWITCHYARD_CONFIG) must not change what is compared.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SWITCHYARD_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().map_err(|error| {
            Failure::new(format!("cannot start {}: {error}", executable.display()))
        })?;
        let stderr = child.stderr.take().map(forward_stderr);
        let mut broker = Self {
            url: String::new(),
            pids: vec![child.id()],
            child: Some(child),
            ready_file: Some(ready_file.clone()),
            data_dir,
            stderr,
        };
        // Dropping `broker` on an error kills what is left of it.
        let ready = broker
            .wait_until_ready(&ready_file)
            .await
            .map_err(|error| Failure::new(format!("cannot start a broker: {error}")))?;
        broker.url = format!("http://{}", ready.listen);
        Ok(broker)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process to report CPU for, when known.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Polls for the ready file until the broker writes it, exits, or [`READY_LIMIT`] passes.
    async fn wait_until_ready(&mut self, ready_file: &Path) -> Result<Ready, String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(format!("it exited with {status}"));
            }
            // The broker writes the file whole (then renames it), so one that parses is complete.
            if let Ok(text) = std::fs::read_to_string(ready_file) {
                let ready: Ready = serde_json::from_str(&text)
                    .map_err(|error| format!("its ready file does not parse: {error}"))?;
                // The file is this run's own, but a pid that is not our child's means it is not.
                return match self.pids == [ready.pid] {
                    true => Ok(ready),
                    false => Err(format!(
                        "its ready file names another process, {}",
                        ready.pid
                    )),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it did not write {} within {} s",
                    ready_file.display(),
                    READY_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Ends the run: a durable broker the bench started is stopped with SIGTERM (then killed, if it
    /// takes too long) and its journal's figures are returned; any other is left to `Drop`.
    pub fn finish(mut self) -> Option<JournalStats> {
        let (reader, stats) = self.stderr.take()?;
        let child = self.child.as_mut()?;
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).ok()?)?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_LIMIT;
        while self.exit_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(READY_POLL);
        }
        drop(self);
        // The pipe closes when the broker is gone, so the reader ends.
        let _ = reader.join();
        stats.lock().ok().and_then(|stats| *stats)
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for BrokerUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it has exited already; then `wait` reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(path) = self.ready_file.take() {
            // Absent if the broker never got to write it.
            let _ = std::fs::remove_file(path);
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Copies a broker's stderr to this process's, line by line, keeping the journal's closing figures.
fn forward_stderr(stderr: std::process::ChildStderr) -> StderrReader {
    let stats = Arc::new(Mutex::new(None));
    let found = Arc::clone(&stats);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(std::io::stderr(), "{line}");
            if let Some(parsed) = parse_journal_closed(&line)
                && let Ok(mut slot) = found.lock()
            {
                *slot = Some(parsed);
            }
        }
    });
    (reader, stats)
}

/// `journal closed: N fsyncs carried M records`, anywhere in a log line.
fn parse_journal_closed(line: &str) -> Option<JournalStats> {
    let rest = &line[line.find(JOURNAL_CLOSED)? + JOURNAL_CLOSED.len()..];
    let mut words = rest.split_whitespace();
    let fsyncs = words.next()?.parse().ok()?;
    let records = words.nth(2)?.parse().ok()?;
    Some(JournalStats { fsyncs, records })
}

/// A ready file of this process's own in the temporary directory; the broker removes it at shutdown.
fn ready_file_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.ready.json", unique_name("ready")))
}

/// A name of this process's own.
fn unique_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("switchyard-bench-{what}-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_line_is_read_back() {
        let line = "2026-12-01T23:17:26Z  INFO switchyard::durable: journal closed: 5 fsyncs carried \
                    12 records frames=5 records=12";
        assert_eq!(
            parse_journal_closed(line),
            Some(JournalStats {
                fsyncs: 5,
                records: 12
            })
        );
        assert_eq!(parse_journal_closed("journal closed: five"), None);
    }
}
