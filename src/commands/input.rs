//! Payloads from stdin, one per line, for `pub` and `request` when no payload argument is given.

use std::io::{BufRead, IsTerminal};

use tokio::sync::mpsc;

use super::{Failure, note};

/// Lines read ahead of the command; reading waits while this many are queued.
const READ_AHEAD: usize = 1024;

/// Each line of stdin, without its `\n` or `\r\n`, as bytes (a payload need not be UTF-8).
///
/// Stdin is read on a thread of its own: std's blocking reads need no extra Tokio feature, and the
/// thread simply ends with the process if the command stops before end of input.
pub fn stdin_lines() -> mpsc::Receiver<Result<Vec<u8>, Failure>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        note("reading payloads from stdin, one per line; end with Ctrl-D");
    }
    let (lines, receiver) = mpsc::channel(READ_AHEAD);
    std::thread::spawn(move || {
        for line in stdin.lock().split(b'\n') {
            let line = line
                .map(|mut line| {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    line
                })
                .map_err(|error| Failure::new(format!("cannot read stdin: {error}")));
            let failed = line.is_err();
            if lines.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    receiver
}
