//! The `switchyard` binary: parses flags, sets up logging, then either serves (binds and hands over to
//! `server::run`) or runs one client command from `commands`.

mod cli;
mod commands;

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use switchyard::{durable::OpenError, server::ServerError};
use tracing_subscriber::EnvFilter;

use crate::{
    cli::{Invocation, Serve, SettingsError},
    commands::Failure,
};

/// The exit status of a configuration that cannot be used, as for a usage error.
const BAD_CONFIGURATION: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args_os().collect()) {
        Ok(invocation) => invocation,
        Err(SettingsError::Arguments(error)) => error.exit(),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
    match invocation {
        Invocation::Client(command) => {
            // Logs share stderr with the command's notes, so they are kept short: no timestamps, and
            // only warnings unless RUST_LOG asks for more.
            tracing_subscriber::fmt()
                .with_env_filter(env_filter("warn"))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .without_time()
                .with_target(false)
                .init();
            match commands::run(command).await {
                Ok(()) | Err(Failure::OutputClosed) => ExitCode::SUCCESS,
                Err(Failure::Message(message)) => {
                    let _ = writeln!(std::io::stderr(), "error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Invocation::Serve(serve) => run_serve(serve).await,
    }
}

/// `RUST_LOG` if set, else `default`.
fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

async fn run_serve(serve: Serve) -> ExitCode {
    let Serve {
        config,
        print_config,
        warnings,
    } = serve;
    tracing_subscriber::fmt()
        .with_env_filter(env_filter("info"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if print_config {
        match config.to_toml() {
            Ok(text) => print!("{text}"),
            Err(error) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "error: cannot print the configuration: {error}"
                );
                return ExitCode::from(BAD_CONFIGURATION);
            }
        }
    }
    if let Err(error) = config.validate() {
        let _ = writeln!(std::io::stderr(), "error: {error}");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    if print_config {
        return ExitCode::SUCCESS;
    }
    match bind_and_run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            // A data directory that is not a writable directory, or is another broker's, an OTLP
            // endpoint the exporter cannot use, and TLS files that cannot serve, are
            // configurations that cannot be used.
            match error {
                ServeError::Server(
                    ServerError::DataDir(OpenError::DataDir(_))
                    | ServerError::Telemetry(_)
                    | ServerError::Tls(_),
                ) => ExitCode::from(BAD_CONFIGURATION),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Why serving ended with an error.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        listen: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
}

async fn bind_and_run(config: switchyard::config::Config) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            listen: config.listen,
            source,
        })?;
    switchyard::server::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
