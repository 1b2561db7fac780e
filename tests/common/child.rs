//! Any child process a test starts: its stdout and stderr read line by line on threads and kept,
//! every wait on it bounded, and its stderr shown in the message of any failure.
//!
//! The pipes are read to their end whatever the test looks at, so a child never blocks on a full
//! pipe; every line is kept, so a test can wait for a line printed earlier, and a failure can show
//! everything the child said.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use super::WAIT;

/// The longest a child may run before exiting by itself, once a test waits for it to finish: a
/// command's whole run, or a broker's shutdown grace, on a loaded machine.
pub const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// How often an exit is polled for: `std::process::Child` has no way to await it.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// What a child printed on one pipe so far, and whether the pipe has closed.
#[derive(Debug, Default)]
struct Transcript {
    lines: Vec<String>,
    closed: bool,
}

/// One pipe of a child, read on a thread into a [`Transcript`]; `taken` counts the lines a test has
/// taken with [`ChildProcess::next_stdout`].
struct Pipe {
    transcript: watch::Receiver<Transcript>,
    taken: usize,
}

impl Pipe {
    fn read(pipe: impl Read + Send + 'static) -> Self {
        let (writer, transcript) = watch::channel(Transcript::default());
        std::thread::spawn(move || {
            // Split on bytes, not `lines()`: a child may print bytes that are not UTF-8.
            for line in BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                writer.send_modify(|transcript| transcript.lines.push(line));
            }
            writer.send_modify(|transcript| transcript.closed = true);
        });
        Self {
            transcript,
            taken: 0,
        }
    }

    /// Waits (unbounded: callers bound it) until `done` holds for the transcript, and returns what
    /// `done` picked out of it. A reader thread that died counts as a closed pipe.
    async fn until<T>(&mut self, mut done: impl FnMut(&Transcript) -> Option<T>) -> Option<T> {
        let mut found = None;
        let _ = self
            .transcript
            .wait_for(|transcript| {
                found = done(transcript);
                found.is_some() || transcript.closed
            })
            .await;
        found.or_else(|| done(&self.transcript.borrow()))
    }

    /// The next line not taken yet; `None` if the pipe closed first.
    async fn next(&mut self) -> Option<String> {
        let taken = self.taken;
        let line = self
            .until(|transcript| transcript.lines.get(taken).cloned())
            .await;
        if line.is_some() {
            self.taken += 1;
        }
        line
    }

    /// The first line printed so far, or from now on, that contains `needle`; `None` if the pipe
    /// closed without one.
    async fn printed(&mut self, needle: &str) -> Option<String> {
        self.until(|transcript| {
            transcript
                .lines
                .iter()
                .find(|line| line.contains(needle))
                .cloned()
        })
        .await
    }

    async fn closed(&mut self) {
        self.until(|transcript| transcript.closed.then_some(()))
            .await;
    }

    fn all(&self) -> Vec<String> {
        self.transcript.borrow().lines.clone()
    }
}

/// Which pipe a wait watches.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// What a finished child printed, line by line.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

/// A running child; killed (SIGKILL) and reaped when dropped, so none outlives its test.
pub struct ChildProcess {
    child: Child,
    /// The command line, for failure messages.
    describe: String,
    stdout: Pipe,
    stderr: Pipe,
}

impl ChildProcess {
    /// Starts `command` with `stdin` as its whole input (`None`: an empty stdin) and both output
    /// pipes read.
    pub fn spawn(mut command: Command, stdin: Option<&[u8]>) -> Self {
        let describe = describe(&command);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {describe}: {error}"));
        if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
            let input = input.to_vec();
            // A child that stops reading early closes the pipe; that is its business.
            std::thread::spawn(move || pipe.write_all(&input));
        }
        let stdout = Pipe::read(child.stdout.take().expect("stdout is piped"));
        let stderr = Pipe::read(child.stderr.take().expect("stderr is piped"));
        Self {
            child,
            describe,
            stdout,
            stderr,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Panics with `what` went wrong, followed by everything the child has printed on stderr.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- stderr of {} ---\n{}\n---",
            self.describe,
            self.stderr.all().join("\n")
        )
    }

    /// Everything printed on stdout so far.
    pub fn stdout_so_far(&self) -> Vec<String> {
        self.stdout.all()
    }

    /// Everything printed on stderr so far.
    pub fn stderr_so_far(&self) -> Vec<String> {
        self.stderr.all()
    }

    fn pipe(&mut self, stream: Stream) -> &mut Pipe {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Waits up to [`WAIT`] for a line on `stream` that contains `needle`, printed before or after
    /// this call.
    async fn printed(&mut self, stream: Stream, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, self.pipe(stream).printed(needle)).await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => self.fail(&format!(
                "{stream:?} closed without a line containing {needle:?}"
            )),
            Err(_) => self.fail(&format!(
                "no line containing {needle:?} on {stream:?} within {WAIT:?}"
            )),
        }
    }

    /// The first stdout line containing `needle`, waiting up to [`WAIT`] for it.
    pub async fn printed_stdout(&mut self, needle: &str) -> String {
        self.printed(Stream::Stdout, needle).await
    }

    /// The first stderr line containing `needle`, waiting up to [`WAIT`] for it.
    pub async fn printed_stderr(&mut self, needle: &str) -> String {
        self.printed(Stream::Stderr, needle).await
    }

    /// The next stdout line not taken yet by this method, waiting up to [`WAIT`] for it.
    pub async fn next_stdout(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.stdout.next()).await {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("stdout closed while waiting for a line"),
            Err(_) => self.fail(&format!("no line on stdout within {WAIT:?}")),
        }
    }

    /// The exit status if the child has exited; does not wait.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(status) => status,
            Err(error) => self.fail(&format!("cannot poll for an exit: {error}")),
        }
    }

    /// Waits up to `limit` for the child to exit by itself.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("still running after {limit:?}"));
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// Waits up to [`EXIT_LIMIT`] for the child to exit by itself, then returns what it printed.
    pub async fn finish(self) -> Output {
        self.finish_within(EXIT_LIMIT).await
    }

    /// Waits up to `limit` for the child to exit by itself, then returns what it printed.
    pub async fn finish_within(mut self, limit: Duration) -> Output {
        let status = self.exit_within(limit).await;
        self.output(status).await
    }

    /// Kills the child with SIGKILL (no handler runs, nothing is flushed), then returns what it had
    /// printed.
    pub async fn kill(mut self) -> Output {
        // Fails only if the child has exited already, which `exit_within` then reports.
        let _ = self.child.kill();
        let status = self.exit_within(WAIT).await;
        self.output(status).await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.describe
        );
    }

    /// Everything printed by an exited child, once its pipes have closed (within [`WAIT`]: a
    /// process it started may hold them open a little longer).
    async fn output(&mut self, status: ExitStatus) -> Output {
        let closed = async {
            self.stdout.closed().await;
            self.stderr.closed().await;
        };
        if tokio::time::timeout(WAIT, closed).await.is_err() {
            self.fail(&format!(
                "exited with {status}, but its pipes stayed open for {WAIT:?}"
            ));
        }
        Output {
            status,
            stdout: self.stdout.all(),
            stderr: self.stderr.all(),
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program arg arg …`, for messages.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}
