//! The `switchyard` executable as a child process: a client command against a server, and
//! `switchyard serve` as a broker process that tells the test where it listens through its ready
//! file (`--listen 127.0.0.1:0`: the kernel picks the port and the broker keeps it, so no port is
//! ever guessed or released for someone else to take).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::Duration,
};

use switchyard::ready::Ready;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{
    SLACK,
    child::{ChildProcess, Output},
    faults,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The longest a broker process may take from its start to its ready file, on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(15);
/// How often the ready file is looked for.
const READY_POLL: Duration = Duration::from_millis(20);

/// `switchyard ARGS`, with none of the environment's `SWITCHYARD_*` settings nor `RUST_LOG`: what a
/// child is configured with is what its test says, wherever the suite runs. The HTTP listener is
/// off unless the test asks (`--http`): brokers of parallel tests would all want its default port.
pub fn switchyard<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SWITCHYARD_") {
            command.env_remove(name);
        }
    }
    command.env("SWITCHYARD_HTTP", "off");
    command
}

/// A client command, `switchyard ARGS`, talking to `server` (a URL, given as `SWITCHYARD_SERVER`).
pub fn cli(server: &str, args: &[&str]) -> Command {
    let mut command = switchyard(args);
    command.env("SWITCHYARD_SERVER", server);
    command
}

/// Runs `command` to completion (bounded by [`super::child::EXIT_LIMIT`]) with `stdin` as its input.
pub async fn run(command: Command, stdin: Option<&[u8]>) -> Output {
    ChildProcess::spawn(command, stdin).finish().await
}

/// A broker process, ready to serve; killed if the test ends before it exits.
pub struct BrokerProcess {
    process: ChildProcess,
    /// Where it listens, from its ready file.
    pub addr: SocketAddr,
    /// Where its HTTP listener listens, if it has one.
    pub http: Option<SocketAddr>,
    ready_file: PathBuf,
    /// Holds the ready file; removed with it.
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts `switchyard serve --listen 127.0.0.1:0 EXTRA_ARGS` and waits until it serves.
    pub async fn start(extra_args: &[&str]) -> Self {
        let mut command = switchyard(["serve", "--listen", "127.0.0.1:0"]);
        command.args(extra_args);
        Self::launch(command).await
    }

    /// Starts `command`, which must run a broker, and waits until it serves: until its ready file
    /// appears (within [`START_LIMIT`]), failing with its stderr if it exits first.
    ///
    /// The ready file is named by `SWITCHYARD_READY_FILE` rather than `--ready-file`, so that any
    /// way of starting a broker (`serve`, or plain `switchyard` with serve flags) takes it.
    pub async fn launch(mut command: Command) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the ready file");
        let ready_file = dir.path().join("ready.json");
        if !command
            .get_envs()
            .any(|(name, value)| name == "RUST_LOG" && value.is_some())
        {
            // Enough to see what the broker did when a test fails.
            command.env("RUST_LOG", "info");
        }
        command.env("SWITCHYARD_READY_FILE", &ready_file);
        let mut process = ChildProcess::spawn(command, None);
        let deadline = Instant::now() + START_LIMIT;
        let ready = loop {
            // The broker writes the file beside its path and renames it: it is whole once it exists.
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                break serde_json::from_str::<Ready>(&text).unwrap_or_else(|error| {
                    process.fail(&format!(
                        "the ready file is not a Ready ({error}): {text:?}"
                    ))
                });
            }
            if let Some(status) = process.exited() {
                process.fail(&format!("exited with {status} before it was ready"));
            }
            if Instant::now() >= deadline {
                process.fail(&format!(
                    "no ready file at {} within {START_LIMIT:?}",
                    ready_file.display()
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        };
        if ready.pid != process.id() {
            process.fail(&format!(
                "the ready file names pid {}, not {}",
                ready.pid,
                process.id()
            ));
        }
        Self {
            process,
            addr: ready.listen,
            http: ready.http,
            ready_file,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new HTTP/2 connection to the broker, bounded like every other test connection.
    pub async fn channel(&self) -> Channel {
        faults::connect(self.addr).await
    }

    pub fn ready_file(&self) -> &Path {
        &self.ready_file
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.process.terminate();
    }

    /// Waits up to `limit` for the broker to exit.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        self.process.exit_within(limit).await
    }

    /// SIGKILL (no handler runs, nothing is flushed), then everything it printed once it has exited:
    /// a crash, for the tests of what a broker keeps across one.
    pub async fn kill(self) -> Output {
        self.process.kill().await
    }

    /// SIGTERM, then everything it printed once it has exited (within its shutdown grace, which is
    /// `grace`, plus [`SLACK`]).
    pub async fn stop(self, grace: Duration) -> Output {
        self.terminate();
        self.process.finish_within(grace + SLACK).await
    }

    /// Panics with `what`, followed by the broker's stderr.
    pub fn fail(&self, what: &str) -> ! {
        self.process.fail(what)
    }

    /// Resident memory, in bytes (VmRSS of /proc/PID/status).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|error| self.fail(&format!("cannot read /proc/PID/status: {error}")));
        let kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| self.fail("no VmRSS in /proc/PID/status"));
        kb * 1024
    }
}
