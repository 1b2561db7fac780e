//! Runs every `grpcurl` command of the README, in order, against a real server, so the README cannot
//! drift from what the broker does.
//!
//! The commands are read from the README's `sh` blocks. Streaming calls (Subscribe, Consume) and
//! Request run in the background, as they would in a second terminal; the rest must succeed. Values a
//! reader would copy from one terminal to another (a `…`-shortened inbox or correlation id) are filled
//! in from the background output. grpcurl comes from the `GRPCURL` variable or the `PATH`; `.ci/run`
//! installs it and runs this test, which is ignored otherwise (a plain `cargo test` reports it as
//! ignored, never as passed); `cargo test --test readme_grpcurl -- --ignored` without grpcurl fails.
//!
//! Every wait is on something a reader would see: a stream's response headers (grpcurl `-v` prints
//! them once the broker has set the stream up), a delivery printed, a command exited.

mod common;

use std::{path::PathBuf, process::Command};

use common::{
    TestServer, WAIT,
    child::{ChildProcess, Output},
};
use tokio::time::Instant;

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

/// `command`, run by bash as a reader would type it.
fn shell(command: &str) -> ChildProcess {
    let mut bash = Command::new("bash");
    bash.args(["-c", command]);
    ChildProcess::spawn(bash, None)
}

/// Runs `command` to completion, which must succeed.
async fn run_ok(command: &str) -> Output {
    let output = shell(command).finish().await;
    assert!(output.status.success(), "{command}\n{output:?}");
    output
}

/// What a background command printed on stdout so far, as one text.
fn printed(stream: &ChildProcess) -> String {
    stream.stdout_so_far().join("\n")
}

/// Waits up to [`WAIT`] until one of `streams` has printed `needle`.
async fn until_printed(streams: &[ChildProcess], needle: &str, why: &str) {
    let deadline = Instant::now() + WAIT;
    while !streams
        .iter()
        .any(|stream| printed(stream).contains(needle))
    {
        if Instant::now() >= deadline {
            let seen: Vec<String> = streams.iter().map(printed).collect();
            panic!(
                "no background stream printed {needle:?} within {WAIT:?} ({why}); they printed {seen:#?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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
fn fill_in(command: &str, background: &[ChildProcess]) -> String {
    let seen: String = background.iter().map(printed).collect();
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
#[ignore = "needs grpcurl (GRPCURL or PATH); .ci/run runs it"]
async fn every_readme_grpcurl_example_works() {
    let grpcurl = grpcurl_path()
        .expect("grpcurl: set GRPCURL or put it on the PATH (.ci/run installs it)")
        .to_string_lossy()
        .into_owned();
    let sections = grpcurl_sections(README);
    let commands: usize = sections.iter().map(Vec::len).sum();
    assert!(
        commands >= 12,
        "the README has {commands} grpcurl commands; expected all four patterns"
    );

    let server = TestServer::start().await;
    let addr = server.addr.to_string();
    for section in sections {
        run_section(&section, &grpcurl, &addr).await;
    }
}

async fn run_section(section: &[String], grpcurl: &str, addr: &str) {
    let mut background: Vec<ChildProcess> = Vec::new();
    for command in section {
        let command = command
            .replacen("grpcurl", grpcurl, 1)
            .replace(README_ADDR, addr);
        let command = fill_in(&command, &background);
        if command.contains("/Subscribe") || command.contains("/Consume") {
            // `-v` prints the response headers when they arrive, and the broker sends them once the
            // subscription or consumer is registered: from then on, the stream gets what is published.
            let verbose = command.replacen(grpcurl, &format!("{grpcurl} -v"), 1);
            let mut stream = shell(&verbose);
            stream.printed_stdout("Response headers received").await;
            background.push(stream);
        } else if command.contains("/Request") {
            background.push(shell(&command));
            // The next command answers with the inbox and correlation id the responder printed.
            until_printed(&background, "replyTo", "a responder sees the request").await;
        } else {
            if command.contains("/Ack") {
                // The README acks a delivery its consumer has printed.
                until_printed(&background, "deliveryId", "a consumer gets the delivery").await;
            }
            let output = run_ok(&command).await;
            if command.contains("/Ack") {
                assert!(
                    !output.stdout.iter().any(|line| line.contains("unknownIds")),
                    "the README's ack settles: {output:?}"
                );
            }
        }
    }
    for mut stream in background {
        if stream.describe().contains("/Request") {
            let output = stream.finish().await;
            assert!(output.status.success(), "{output:?}");
            assert!(
                output.stdout.iter().any(|line| line.contains("\"reply\"")),
                "{output:?}"
            );
            continue;
        }
        if let Some(status) = stream.exited() {
            stream.fail(&format!(
                "the stream ended ({status}) while the section ran"
            ));
        }
        if stream.describe().contains("/Subscribe") {
            stream.printed_stdout("\"message\"").await;
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
