//! `switchyard reply`: a responder built on `Client::serve`. Echoes each request, or with `--exec`
//! runs a command per request (payload on stdin, reply from stdout).

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use bytes::Bytes;
use switchyard_client::{Message, ServeOptions};

use super::{Failure, connect, interrupted, note, output::Printer};
use crate::cli::ReplyArgs;

/// How often a running command is checked for having finished.
const POLL: Duration = Duration::from_millis(5);

pub async fn run(args: ReplyArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let exec = args.exec.clone().map(|line| {
        Arc::new(Exec {
            line,
            timeout: args.exec_timeout,
        })
    });
    let handler = move |request: Message| {
        // Printing is a log of what was answered: a closed stdout does not stop the answering.
        let _ = printer.message(&request);
        let exec = exec.clone();
        async move {
            match exec {
                None => Ok(request.payload),
                Some(exec) => tokio::task::spawn_blocking(move || exec.run(&request.payload))
                    .await
                    .unwrap_or_else(|error| Err(format!("the command's task failed: {error}"))),
            }
        }
    };
    let options = ServeOptions::default().concurrency(args.concurrency);
    let what = match &args.exec {
        Some(line) => format!("running `{line}`"),
        None => "echoing".to_owned(),
    };
    note(format_args!(
        "answering requests on {} as group {}, {what}",
        args.topic, args.group
    ));
    tokio::select! {
        served = client.serve_with(&args.topic, &args.group, options, handler) => served.map_err(|error| {
            Failure::client(
                format!("responder on {} (group {})", args.topic, args.group),
                error,
            )
        }),
        () = interrupted() => Ok(()),
    }
}

/// The `--exec` command line and how long one run may take.
struct Exec {
    line: String,
    timeout: Duration,
}

impl Exec {
    /// Runs the command with `input` on stdin and returns its stdout, less one trailing newline.
    /// Blocking: it runs on a blocking thread, with plain `std::process`.
    fn run(&self, input: &Bytes) -> Result<Bytes, String> {
        let mut child = shell(&self.line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot run `{}`: {error}", self.line))?;
        // Stdin and stdout each get a thread: a command may write before it has read all of its
        // input, and one thread doing both could then wait on the command while it waits on us.
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.clone();
            // A command that does not read its input closes the pipe: not an error.
            std::thread::spawn(move || stdin.write_all(&input));
        }
        let (output_tx, output) = mpsc::sync_channel(1);
        if let Some(mut stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = output_tx.send(stdout.read_to_end(&mut bytes).map(|_| bytes));
            });
        }
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "`{}` did not finish within {} ms and was killed",
                        self.line,
                        self.timeout.as_millis()
                    ));
                }
                Err(error) => return Err(format!("cannot wait for `{}`: {error}", self.line)),
            }
        };
        if !status.success() {
            return Err(format!("`{}` failed ({status})", self.line));
        }
        // Stdout ends when the command exits, unless something it started keeps it open: wait for
        // that no longer than the timeout allows.
        let left = deadline.saturating_duration_since(Instant::now());
        let mut bytes = match output.recv_timeout(left) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) => {
                return Err(format!(
                    "cannot read the output of `{}`: {error}",
                    self.line
                ));
            }
            Err(_) => return Err(format!("the output of `{}` did not end in time", self.line)),
        };
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Bytes::from(bytes))
    }
}

#[cfg(unix)]
fn shell(line: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(line);
    command
}

#[cfg(not(unix))]
fn shell(line: &str) -> Command {
    let mut command = Command::new("cmd");
    command.arg("/C").arg(line);
    command
}
