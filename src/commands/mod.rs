//! The client commands of the binary (`pub`, `sub`, `consume`, `request`, `reply`, `groups`, the
//! terminal view `top`, and the load generator `bench`): each connects with `switchyard_client`, does one job, and reports failure
//! as one line for stderr.

pub mod bench;
mod consume;
mod groups;
mod input;
mod output;
mod publish;
mod reply;
mod request;
mod subscribe;
pub mod top;

use std::{error::Error as StdError, fmt::Display, io::Write, path::Path};

use secrecy::ExposeSecret;
use switchyard_client::{Client, Error};

use switchyard::error::{append_causes, with_causes};

use crate::cli::{ClientArgs, ClientCommand};

/// Why a command stopped early.
#[derive(Debug)]
pub enum Failure {
    /// Print this one line to stderr and exit non-zero.
    Message(String),
    /// Stdout was closed (piped into `head`, say): stop quietly, as a success.
    OutputClosed,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self::Message(message.into())
    }

    /// A client error, with `context` (what was being done) where the error alone would not say.
    pub fn client(context: impl Display, error: Error) -> Self {
        match error {
            // These already name what they are about.
            Error::Connect { .. } | Error::NoResponders { .. } => Self::new(describe(&error)),
            _ => Self::new(format!("{context}: {}", describe(&error))),
        }
    }
}

pub async fn run(command: ClientCommand) -> Result<(), Failure> {
    match command {
        ClientCommand::Publish(args) => publish::run(args).await,
        ClientCommand::Subscribe(args) => subscribe::run(args).await,
        ClientCommand::Consume(args) => consume::run(args).await,
        ClientCommand::Request(args) => request::run(args).await,
        ClientCommand::Reply(args) => reply::run(args).await,
        ClientCommand::Groups(command) => groups::run(command).await,
        ClientCommand::Top(args) => top::run(args).await,
        ClientCommand::Bench(args) => bench::run(args).await,
    }
}

/// Connects to `--server` with the token and TLS options; a URL without a scheme is taken as
/// `http://`, or `https://` when a TLS option is given.
async fn connect(args: &ClientArgs) -> Result<Client, Failure> {
    let tls = args.tls_ca.is_some() || args.tls_client_cert.is_some() || args.tls_domain.is_some();
    let url = match args.server.contains("://") {
        true => args.server.clone(),
        false if tls => format!("https://{}", args.server),
        false => format!("http://{}", args.server),
    };
    let read = |flag: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|error| Failure::new(format!("{flag} {}: {error}", path.display())))
    };
    let mut builder = Client::builder(url);
    if let Some(token) = &args.auth.token {
        builder = builder.token(token.expose_secret());
    }
    if let Some(ca) = &args.tls_ca {
        builder = builder.tls_ca_pem(read("--tls-ca", ca)?);
    }
    if let (Some(cert), Some(key)) = (&args.tls_client_cert, &args.tls_client_key) {
        let cert = read("--tls-client-cert", cert)?;
        builder = builder.tls_identity_pem(cert, read("--tls-client-key", key)?);
    }
    if let Some(name) = &args.tls_domain {
        builder = builder.tls_domain_name(name);
    }
    builder
        .connect()
        .await
        .map_err(|error| Failure::client("cannot connect", error))
}

/// One line saying what went wrong: the broker's message for a refused call, else the error with
/// its causes (`cannot connect to …: tcp connect error: Connection refused`).
pub fn describe(error: &Error) -> String {
    match error {
        Error::Status(status) => status_text(status),
        other => with_causes(other),
    }
}

/// The broker's message, which names the field and the problem; the gRPC code's description only
/// when there is no message. A status made from a transport failure carries it as its source.
fn status_text(status: &tonic::Status) -> String {
    let text = if status.message().is_empty() {
        status.code().description().to_lowercase()
    } else {
        status.message().to_owned()
    };
    match StdError::source(status) {
        Some(cause) => append_causes(text, cause),
        None => text,
    }
}

/// A note for the person at the terminal (subscribed, reconnecting), on stderr so stdout stays data.
/// A closed stderr is no reason to stop.
fn note(message: impl Display) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The note for a stream that lost its connection and reopens it by itself.
fn note_reconnect(status: &tonic::Status) {
    note(format_args!(
        "disconnected, reconnecting: {}",
        status_text(status)
    ));
}

/// Resolves when the user presses Ctrl-C; never, if the signal cannot be watched.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
