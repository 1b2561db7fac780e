//! Runs every `grpcurl` command of the README, in order, against a real server, so the README cannot
//! drift from what the broker does.
//!
//! The commands are read from the README's `sh` blocks. Streaming calls (Subscribe, Consume) and
//! Request run in the background, as they would in a second terminal; the rest must succeed. Values a
//! reader would copy from one terminal to another (a `…`-shortened inbox or correlation id) are filled
//! in from the background output. grpcurl comes from the `GRPCURL` variable or the `PATH`; `.ci/run`
//! installs it. Without it the test fails under CI and is skipped elsewhere.

mod common;

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use common::TestServer;

const README: &str = include_str!("../README.md");
const README_ADDR: &str = "127.0.0.1:50051";

/// The README's grpcurl commands, grouped by section (a heading starts one), continuation lines
/// joined. A section is what a reader runs together, in one or more terminals.
fn grpcurl_sections(readme: &str) -> Vec<Vec<String>> {
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let text = line.trim();
        if text.starts_with("```") {
            in_block = text == "```sh";
            continue;
        }
        if !in_block {
            if text.starts_with('#') {
                sections.push(Vec::new());
            }
            continue;
        }
        if text.starts_with('#') {
            continue;
        }
        pending.push_str(text.trim_end_matches('\\').trim_end());
        pending.push(' ');
        if !text.ends_with('\\') {
            let command = std::mem::take(&mut pending).trim().to_string();
            if command.starts_with("grpcurl ") {
                sections
                    .last_mut()
                    .expect("there is always a section")
                    .push(command);
            }
        }
    }
    sections.retain(|section| !section.is_empty());
    sections
}

fn grpcurl_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GRPCURL") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("grpcurl"))
        .find(|candidate| candidate.is_file())
}

/// A command running in the background, its output collected as it comes.
struct Background {
    command: String,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Background {
    fn spawn(command: &str) -> Self {
        let mut child = Command::new("bash")
            .args(["-c", command])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = pipe.read(&mut chunk) {
                    let text = String::from_utf8_lossy(&chunk[..read]).into_owned();
                    output.lock().expect("output lock").push_str(&text);
                }
            });
        }
        Self {
            command: command.to_string(),
            child,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Waits up to `limit` for `needle` in the output.
    fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits up to `limit` for the command to exit by itself; `None` if it is still running.
    fn wait_exit(&mut self, limit: Duration) -> Option<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads catch the last output.
                thread::sleep(Duration::from_millis(50));
                return Some(status.success());
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `"key": "…"` in the last object of `output` that has it.
fn last_value(output: &str, key: &str) -> Option<String> {
    let marker = format!("\"{key}\": \"");
    let start = output.rfind(&marker)? + marker.len();
    let end = output[start..].find('"')? + start;
    Some(output[start..end].to_string())
}

/// Replaces each quoted value shortened with `…` by the value it stands for.
fn fill_in(command: &str, background: &[Background]) -> String {
    let seen: String = background.iter().map(Background::output).collect();
    let mut filled = String::new();
    let mut rest = command;
    while let Some(ellipsis) = rest.find('…') {
        let start = rest[..ellipsis].rfind('"').map_or(0, |quote| quote + 1);
        let key = if rest[start..].starts_with("_INBOX.") {
            "replyTo"
        } else {
            "correlationId"
        };
        let value = last_value(&seen, key)
            .unwrap_or_else(|| panic!("no {key} seen yet to fill in {command}"));
        filled.push_str(&rest[..start]);
        filled.push_str(&value);
        rest = &rest[ellipsis + '…'.len_utf8()..];
    }
    filled.push_str(rest);
    filled
}

/// Every grpcurl command in the README works against a real server, in the README's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_grpcurl_example_works() {
    let Some(grpcurl) = grpcurl_path() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "grpcurl is required under CI: set GRPCURL or put it on the PATH"
        );
        eprintln!("skipped: no grpcurl (set GRPCURL or put it on the PATH)");
        return;
    };
    let sections = grpcurl_sections(README);
    let commands: usize = sections.iter().map(Vec::len).sum();
    assert!(
        commands >= 12,
        "the README has {commands} grpcurl commands; expected all four patterns"
    );

    let server = TestServer::start().await;
    let addr = server.addr.to_string();
    let grpcurl = grpcurl.to_string_lossy().into_owned();
    // Blocking process handling runs off the runtime's workers, which serve the broker meanwhile.
    tokio::task::spawn_blocking(move || {
        for section in sections {
            run_section(&section, &grpcurl, &addr);
        }
    })
    .await
    .expect("every README section runs");
}

fn run_section(section: &[String], grpcurl: &str, addr: &str) {
    let mut background: Vec<Background> = Vec::new();
    for command in section {
        let command = command
            .replacen("grpcurl", grpcurl, 1)
            .replace(README_ADDR, addr);
        let command = fill_in(&command, &background);
        if command.contains("/Subscribe") || command.contains("/Consume") {
            let stream = Background::spawn(&command);
            // Give the stream time to be set up (and a consumer time to get what is waiting).
            stream.wait_for("deliveryId", Duration::from_millis(700));
            background.push(stream);
        } else if command.contains("/Request") {
            background.push(Background::spawn(&command));
            let seen = background
                .iter()
                .any(|stream| stream.wait_for("replyTo", Duration::from_secs(5)));
            assert!(seen, "no responder saw the request of {command}");
        } else {
            let mut foreground = Background::spawn(&command);
            let succeeded = foreground.wait_exit(Duration::from_secs(10));
            let output = foreground.output();
            assert_eq!(succeeded, Some(true), "{command}\n{output}");
            if command.contains("/Ack") {
                assert!(
                    !output.contains("unknownIds"),
                    "the README's ack settles: {output}"
                );
            }
        }
    }
    for stream in &mut background {
        if stream.command.contains("/Request") {
            let finished = stream.wait_exit(Duration::from_secs(10));
            let output = stream.output();
            assert_eq!(finished, Some(true), "{}\n{output}", stream.command);
            assert!(output.contains("\"reply\""), "{output}");
        } else if stream.command.contains("/Subscribe") {
            let output = stream.output();
            assert!(
                output.contains("\"message\""),
                "{}: nothing received\n{output}",
                stream.command
            );
        }
    }
}

#[test]
fn readme_sections_are_found_with_continuations_joined() {
    let readme = "## One\n```sh\n# comment\ngrpcurl -d '{}' \\\n  127.0.0.1:50051 a/B\ncargo run\n```\n\
                  text\n```sh\ngrpcurl c\n```\n## Two\n```sh\ngrpcurl d\n```\n";
    let expected = [
        vec![
            "grpcurl -d '{}' 127.0.0.1:50051 a/B".to_string(),
            "grpcurl c".to_string(),
        ],
        vec!["grpcurl d".to_string()],
    ];
    assert_eq!(grpcurl_sections(readme), expected);
}
