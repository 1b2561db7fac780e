//! The config file and the precedence of settings, through the real binary: a broker started from a
//! TOML file that sets every kind of setting (an address, numbers, durations, files, a token list)
//! serves as the file says; a flag beats a variable, which beats the file, which beats the default;
//! an old flag name still works; a file with an unknown key, or a configuration that cannot work,
//! stops the broker before it serves, naming the key.

mod common;

use std::path::Path;

use common::{
    pki::{SERVER_NAME, pki},
    process::{BrokerProcess, run, switchyard},
    within,
};
use switchyard::config::Config;
use switchyard_client::Client;
use tonic::Code;

/// Writes `text` as `switchyard.toml` in `dir` and returns its path as text.
fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).expect("write the config file");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// The effective configuration `switchyard serve ARGS --print-config` prints with `env` set, and the
/// text it printed.
async fn printed(args: &[&str], env: &[(&str, &str)]) -> (Config, String) {
    let mut command = switchyard(["serve"]);
    command
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied());
    let output = run(command, None).await;
    assert!(output.status.success(), "--print-config failed: {output:?}");
    let text = output.stdout.join("\n");
    let config = Config::from_toml(&text, Path::new("printed")).unwrap_or_else(|error| {
        panic!("the printed configuration does not read back: {error}\n{text}")
    });
    (config, text)
}

async fn printed_config(args: &[&str], env: &[(&str, &str)]) -> Config {
    printed(args, env).await.0
}

/// Every kind of setting from one file: the broker listens where the file says, speaks TLS with its
/// certificate files, takes its token list and its token file, and applies its limits.
#[tokio::test]
async fn a_broker_serves_as_its_config_file_says() {
    let pki = pki();
    let dir = pki.dir.path();
    std::fs::write(
        dir.join("tokens.json"),
        r#"{"tokens": [{"name": "reader", "token": "file-token", "publish": {"allow": []}}]}"#,
    )
    .expect("write the token file");
    let path = write_config(
        dir,
        &format!(
            "listen = \"127.0.0.1:0\"\n\
             max_payload_bytes = 64\n\
             max_request_bytes = 65600\n\
             shutdown_grace = \"300ms\"\n\
             keepalive_interval = \"20s\"\n\
             tls_cert = \"{cert}\"\n\
             tls_key = \"{key}\"\n\
             auth_tokens = [\"config-token\"]\n\
             auth_file = \"{tokens}\"\n",
            cert = pki.path("server.pem").display(),
            key = pki.path("server.key").display(),
            tokens = dir.join("tokens.json").display(),
        ),
    );
    // What the broker will run with, as it reads the file: the durations too.
    let config = printed_config(&["--config", &path], &[]).await;
    assert_eq!(
        config.keepalive_interval,
        std::time::Duration::from_secs(20)
    );
    assert_eq!(config.max_request_bytes, 65600);

    let broker = BrokerProcess::launch(switchyard(["serve", "--config", &path])).await;
    assert!(broker.addr.ip().is_loopback());

    let connect = |token: Option<&'static str>| {
        let mut builder = Client::builder(format!("https://{}", broker.addr))
            .tls_ca_pem(&pki.ca)
            .tls_domain_name(SERVER_NAME);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        within("connect over TLS", builder.connect())
    };
    let admin = connect(Some("config-token"))
        .await
        .expect("a client trusting the file's certificate connects");
    within("a small publish", admin.publish("config.check", "x"))
        .await
        .expect("the file's token may publish");
    let too_big = within(
        "a publish past the limit",
        admin.publish("config.check", vec![b'x'; 65]),
    )
    .await
    .expect_err("65 bytes is past max_payload_bytes = 64");
    assert_eq!(too_big.code(), Some(Code::InvalidArgument), "{too_big}");
    assert!(too_big.to_string().contains("64"), "{too_big}");

    let anonymous = connect(None).await.expect("connect without a token");
    let refused = within(
        "a publish without a token",
        anonymous.publish("config.check", "x"),
    )
    .await
    .expect_err("no token");
    assert_eq!(refused.code(), Some(Code::Unauthenticated), "{refused}");

    let reader = connect(Some("file-token")).await.expect("connect");
    let denied = within(
        "a publish the token file forbids",
        reader.publish("config.check", "x"),
    )
    .await
    .expect_err("the token file allows this token no publish");
    assert_eq!(denied.code(), Some(Code::PermissionDenied), "{denied}");

    // The file's shutdown grace (300 ms) bounds the stop.
    let output = broker.stop(std::time::Duration::from_millis(300)).await;
    assert!(output.status.success(), "{output:?}");
}

/// Flag > variable > file > default, one setting at each level, with an old flag name at its own
/// level.
#[tokio::test]
async fn a_flag_beats_a_variable_beats_the_file_beats_the_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = write_config(
        dir.path(),
        "max_headers = 1\nmax_id_bytes = 1\nmax_topic_tokens = 1\nshutdown_grace = \"1s\"\n",
    );
    let config = printed_config(
        &[
            "--config",
            &path,
            "--max-headers",
            "3",
            "--shutdown-grace-secs",
            "9",
        ],
        &[
            ("SWITCHYARD_MAX_HEADERS", "2"),
            ("SWITCHYARD_MAX_ID_BYTES", "2"),
            ("SWITCHYARD_SHUTDOWN_GRACE", "2s"),
        ],
    )
    .await;
    assert_eq!(
        config.max_headers, 3,
        "a flag beats a variable and the file"
    );
    assert_eq!(config.max_id_bytes, 2, "a variable beats the file");
    assert_eq!(config.max_topic_tokens, 1, "the file beats the default");
    assert_eq!(
        config.shutdown_grace,
        std::time::Duration::from_secs(9),
        "an old flag beats a new variable"
    );
    let default = Config::default();
    assert_eq!(config.max_payload_bytes, default.max_payload_bytes);

    // An old variable beats the file; a list from a flag replaces the file's.
    let path = write_config(
        dir.path(),
        "max_publish_wait = \"1s\"\nauth_tokens = [\"file-1\", \"file-2\"]\n",
    );
    let (config, text) = printed(
        &["--config", &path, "--auth-token", "flag-1"],
        &[("SWITCHYARD_MAX_PUBLISH_WAIT_MS", "2500")],
    )
    .await;
    assert_eq!(
        config.max_publish_wait,
        std::time::Duration::from_millis(2500)
    );
    assert!(text.contains("# auth_tokens: 1,"), "{text}");
    assert!(
        !text.contains("file-1") && !text.contains("flag-1"),
        "{text}"
    );

    // The file is named by a variable as well as by the flag.
    let config = printed_config(&[], &[("SWITCHYARD_CONFIG", path.as_str())]).await;
    assert_eq!(config.max_publish_wait, std::time::Duration::from_secs(1));
}

/// A file that cannot be used stops the broker before it serves, with status 2 and the key named;
/// so does a configuration that reads but cannot work.
#[tokio::test]
async fn a_bad_file_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (text, needle) in [
        ("max_payload = 10\n", "max_payload"),
        ("keepalive_timeout = 10\n", "keepalive_timeout"),
        (
            "max_prefetch = 1\ndefault_prefetch = 2\n",
            "default_prefetch",
        ),
    ] {
        let path = write_config(dir.path(), text);
        let mut command = switchyard(["serve", "--listen", "127.0.0.1:0", "--config", &path]);
        command.env("SWITCHYARD_SHUTDOWN_GRACE", "100ms");
        // `run` bounds the wait for the exit.
        let output = run(command, None).await;
        assert_eq!(output.status.code(), Some(2), "{text}: {output:?}");
        let stderr = output.stderr.join("\n");
        assert!(stderr.contains(needle), "{text}: {stderr}");
        assert!(
            !stderr.contains("serving"),
            "{text}: it must not serve: {stderr}"
        );
    }
}
