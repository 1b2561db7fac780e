//! The `switchyard` binary's security options: the warning of a broker listening beyond loopback
//! without tokens, and the client commands' `--token` against a broker with authentication on.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Output, Stdio},
    sync::mpsc,
};

use common::{TestServer, WAIT, test_config, within};
use switchyard::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Runs `switchyard ARGS` to completion against `server`, with `env` set, bounded by [`WAIT`].
async fn run(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("SWITCHYARD_SERVER", format!("http://{}", server.addr))
        .env_remove("SWITCHYARD_TOKEN")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output());
    within("the command to finish", output)
        .await
        .expect("the command thread did not panic")
        .expect("the command runs")
}

/// Starts `switchyard serve ARGS` and returns the first stderr line containing `wanted`, or every
/// line it printed before it became quiet for [`WAIT`]. The broker is killed before returning.
fn serve_and_find(args: &[&str], wanted: &str) -> Result<String, Vec<String>> {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SWITCHYARD_AUTH_TOKENS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchyard serve");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match received.recv_timeout(WAIT) {
            Ok(line) if line.contains(wanted) => break Ok(line),
            // Serving has begun: every startup line has been printed.
            Ok(line) if line.contains("switchyard serving") => {
                seen.push(line);
                break Err(seen);
            }
            Ok(line) => seen.push(line),
            Err(_) => break Err(seen),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    found
}

/// Listening on every interface without tokens warns at start; with a token it does not (but warns
/// that tokens cross the network in clear text without TLS); on loopback there is no warning.
#[test]
fn listening_beyond_loopback_without_tokens_warns() {
    let open = serve_and_find(&["--listen", "0.0.0.0:0"], "without authentication");
    let line = open.unwrap_or_else(|lines| panic!("no warning among {lines:?}"));
    assert!(line.contains("WARN"), "{line}");

    let tokens = serve_and_find(
        &["--listen", "0.0.0.0:0", "--auth-token", "s3cret"],
        "without authentication",
    );
    let lines = tokens.expect_err("no authentication warning with a token");
    assert!(
        lines.iter().any(|line| line.contains("clear text")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|line| line.contains("s3cret")),
        "{lines:?}"
    );

    let loopback = serve_and_find(&["--listen", "127.0.0.1:0"], "WARN");
    assert!(loopback.is_err(), "no warning on loopback: {loopback:?}");
}

/// `pub` with `--token` (or `SWITCHYARD_TOKEN`) gets through a broker with authentication on;
/// without it, it fails with the broker's reason.
#[tokio::test]
async fn client_commands_send_their_token() {
    let config = Config {
        auth_tokens: vec!["cli-token".parse().expect("a token")],
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let flag = run(&server, &["pub", "a.b", "x", "--token", "cli-token"], &[]).await;
    assert!(flag.status.success(), "{flag:?}");
    let env = run(
        &server,
        &["pub", "a.b", "x"],
        &[("SWITCHYARD_TOKEN", "cli-token")],
    )
    .await;
    assert!(env.status.success(), "{env:?}");
    let without = run(&server, &["pub", "a.b", "x"], &[]).await;
    assert!(!without.status.success(), "{without:?}");
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("authorization"), "{stderr}");
}
