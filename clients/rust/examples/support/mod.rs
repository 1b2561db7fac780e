//! What the examples share: the `--server` flag, names unique to one run, and bounded waits.

// Each example uses a subset of these.
#![allow(dead_code)]

use std::{
    error::Error,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// The longest an example waits for any one thing before it gives up with an error.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The broker URL from `--server URL` (or `--server=URL`); `http://127.0.0.1:50051` by default.
pub fn server_url() -> Result<String, BoxError> {
    let mut args = std::env::args().skip(1);
    let mut url = "http://127.0.0.1:50051".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => url = args.next().ok_or("--server needs a URL")?,
            "-h" | "--help" => {
                println!("usage: [--server URL]   (default http://127.0.0.1:50051)");
                std::process::exit(0);
            }
            other => match other.strip_prefix("--server=") {
                Some(value) => url = value.to_owned(),
                None => return Err(format!("unknown argument {other:?}; try --help").into()),
            },
        }
    }
    Ok(url)
}

/// A topic token no earlier run used, so that runs (and tests) against one broker do not meet.
pub fn run_token(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{prefix}{nanos}")
}

/// Awaits `future` for at most [`PATIENCE`], or fails naming `what`.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, BoxError> {
    tokio::time::timeout(PATIENCE, future)
        .await
        .map_err(|_| format!("gave up waiting for {what} after {PATIENCE:?}").into())
}

/// Prints one line of the story: who did what.
pub fn say(who: &str, what: impl std::fmt::Display) {
    println!("{:<14}{what}", format!("{who}:"));
}

/// The `main` of every example: connects to `--server`, runs the example, and reports a failure as
/// one line on stderr with a failing exit code.
pub async fn main<T, F>(run: impl FnOnce(switchyard_client::Client) -> F) -> std::process::ExitCode
where
    F: Future<Output = Result<T, BoxError>>,
{
    let outcome = async {
        let url = server_url()?;
        say("connecting", &url);
        let client = switchyard_client::Client::connect(url).await?;
        run(client).await
    };
    match outcome.await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
