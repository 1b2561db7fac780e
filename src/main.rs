//! The `switchyard` binary: parses flags, sets up logging, then either serves (binds and hands over to
//! `server::run`) or runs one client command from `commands`.

mod cli;
mod commands;

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{
    cli::{Cli, Command},
    commands::Failure,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Client(command)) => {
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
        Some(Command::Serve(args)) => serve(args.into_config()).await,
        None => serve(cli.serve.into_config()).await,
    }
}

/// `RUST_LOG` if set, else `default`.
fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

async fn serve(config: switchyard::config::Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(env_filter("info"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match bind_and_run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn bind_and_run(
    config: switchyard::config::Config,
) -> Result<(), Box<dyn std::error::Error>> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
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
