//! Server streams that survive a dropped connection: when the stream fails with a transient status,
//! the caller sees one [`Error::Disconnected`] item, and the stream is reopened with exponential
//! backoff (100 ms doubling to 5 s) for as long as the failures stay transient. Each attempt may take
//! at most the call timeout, so a broker that accepts connections but never answers is retried like
//! one that refuses them. A refusal (a status such as NOT_FOUND or FAILED_PRECONDITION) ends the
//! stream after one error item. Reopening happens while the stream is polled: a stream nobody reads
//! does not reconnect.

use std::{pin::Pin, time::Duration};

use futures_core::Stream;
use futures_util::future::BoxFuture;
use tonic::{Status, Streaming};

use crate::error::{Error, Result, is_transient};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Opens the server stream again, the same way it was first opened.
pub(crate) type Reopen<T> =
    Box<dyn FnMut() -> BoxFuture<'static, Result<Streaming<T>, Status>> + Send>;

pub(crate) type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

struct Resumable<T> {
    current: Option<Streaming<T>>,
    reopen: Reopen<T>,
    /// Bound on one reopening attempt.
    timeout: Duration,
}

/// Opens a stream through `reopen`, waiting at most `timeout` for the broker to accept it, and keeps
/// `reopen` to reopen it after transient failures. A first refusal is returned as the error.
pub(crate) async fn open_resumable<T: Send + 'static>(
    timeout: Duration,
    mut reopen: Reopen<T>,
) -> Result<ItemStream<T>> {
    let first = match tokio::time::timeout(timeout, reopen()).await {
        Ok(opened) => opened?,
        Err(_) => {
            let message = format!(
                "the stream was not accepted within {} ms",
                timeout.as_millis()
            );
            return Err(Error::Status(Status::deadline_exceeded(message)));
        }
    };
    Ok(resumable(first, reopen, timeout))
}

/// Wraps `first` so that it reopens through `reopen` after transient failures. The result is fused:
/// once it has ended, it keeps answering `None` instead of panicking.
fn resumable<T: Send + 'static>(
    first: Streaming<T>,
    reopen: Reopen<T>,
    timeout: Duration,
) -> ItemStream<T> {
    let state = Some(Resumable {
        current: Some(first),
        reopen,
        timeout,
    });
    let stream = futures_util::stream::unfold(state, |state| async move {
        let mut state = state?;
        loop {
            let Some(stream) = state.current.as_mut() else {
                match reconnect(&mut state.reopen, state.timeout).await {
                    Ok(stream) => {
                        state.current = Some(stream);
                        continue;
                    }
                    Err(status) => return Some((Err(Error::Status(status)), None)),
                }
            };
            return match stream.message().await {
                Ok(Some(item)) => Some((Ok(item), Some(state))),
                Ok(None) => None,
                Err(status) if is_transient(&status) => {
                    tracing::debug!(%status, "stream dropped; reconnecting");
                    state.current = None;
                    Some((Err(Error::Disconnected(status)), Some(state)))
                }
                Err(status) => Some((Err(Error::Status(status)), None)),
            };
        }
    });
    Box::pin(futures_util::StreamExt::fuse(stream))
}

/// Reopens until it works or is refused for good.
async fn reconnect<T>(reopen: &mut Reopen<T>, timeout: Duration) -> Result<Streaming<T>, Status> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let attempt = tokio::time::timeout(timeout, reopen())
            .await
            .unwrap_or_else(|_| {
                Err(Status::unavailable(
                    "the broker did not accept the stream in time",
                ))
            });
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(status) if is_transient(&status) => {
                tracing::debug!(%status, ?backoff, "reconnect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(status) => return Err(status),
        }
    }
}
