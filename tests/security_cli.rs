//! The `switchyard` binary's security options: the warning of a broker listening beyond loopback
//! without tokens, and the client commands' `--token` against a broker with authentication on.

mod common;

use common::{
    TestServer,
    child::Output,
    process::{self, BrokerProcess, cli},
    test_config,
};
use switchyard::config::Config;

/// `serve`'s default `--shutdown-grace`, which bounds a stop.
const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `switchyard ARGS` to completion against `server`, with `env` set.
async fn run(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = cli(&format!("http://{}", server.addr), args);
    command.envs(env.iter().copied());
    process::run(command, None).await
}

/// Everything `switchyard serve ARGS` prints on stderr from its start until it serves: the broker is
/// stopped once its ready file is there, and read to the end.
async fn startup_lines(args: &[&str]) -> Vec<String> {
    let mut command = process::switchyard(["serve"]);
    command.args(args);
    let broker = BrokerProcess::launch(command).await;
    // Nothing is open, so the broker stops at once.
    broker.stop(DEFAULT_GRACE).await.stderr
}

/// The first of `lines` that contains `wanted`.
fn find<'a>(lines: &'a [String], wanted: &str) -> Option<&'a String> {
    lines.iter().find(|line| line.contains(wanted))
}

/// Listening on every interface without tokens warns at start; with a token it does not (but warns
/// that tokens cross the network in clear text without TLS); on loopback there is no warning.
#[tokio::test]
async fn listening_beyond_loopback_without_tokens_warns() {
    let open = startup_lines(&["--listen", "0.0.0.0:0"]).await;
    let line = find(&open, "without authentication")
        .unwrap_or_else(|| panic!("no warning among {open:?}"));
    assert!(line.contains("WARN"), "{line}");

    let tokens = startup_lines(&["--listen", "0.0.0.0:0", "--auth-token", "s3cret"]).await;
    assert!(
        find(&tokens, "without authentication").is_none(),
        "no authentication warning with a token: {tokens:?}"
    );
    assert!(find(&tokens, "clear text").is_some(), "{tokens:?}");
    assert!(find(&tokens, "s3cret").is_none(), "{tokens:?}");

    let loopback = startup_lines(&["--listen", "127.0.0.1:0"]).await;
    assert!(
        find(&loopback, "WARN").is_none(),
        "no warning on loopback: {loopback:?}"
    );
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
    assert!(
        find(&without.stderr, "authorization").is_some(),
        "{without:?}"
    );
}
