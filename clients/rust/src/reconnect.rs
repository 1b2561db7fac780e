//! Server streams that survive a dropped connection: when the stream fails with a transient status,
//! the caller sees one [`Error::Disconnected`] item, and the stream is reopened with exponential
//! backoff (100 ms doubling to 5 s) for as long as the failures stay transient. Each attempt may take
//! at most the call timeout, so a broker that accepts connections but never answers is retried like
//! one that refuses them. A refusal (a status such as NOT_FOUND or FAILED_PRECONDITION) ends the
//! stream after one error item. Reopening happens while the stream is polled: a stream nobody reads
//! does not reconnect.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

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
    Box::pin(Resumable {
        state: State::Open(first),
        reopen: Some(reopen),
        timeout,
    })
}

/// A stream that reopens itself. Written as a `Stream` by hand rather than with `unfold`: an
/// `unfold` moves its whole state (the tonic stream included) into a fresh future for every item,
/// which a profile of a busy subscriber showed as a tenth of its time spent copying memory.
struct Resumable<T> {
    state: State<T>,
    /// Lent to the reopening future while there is one.
    reopen: Option<Reopen<T>>,
    /// Bound on one reopening attempt.
    timeout: Duration,
}

/// Reopening: the future hands `reopen` back with its result.
type Reopening<T> = BoxFuture<'static, (Reopen<T>, Result<Streaming<T>, Status>)>;

// The open stream is the hot state and the whole `Resumable` is boxed once: boxing the variant
// would add an indirection to every item.
#[allow(clippy::large_enum_variant)]
enum State<T> {
    Open(Streaming<T>),
    Reopening(Reopening<T>),
    Ended,
}

impl<T: Send + 'static> Stream for Resumable<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                State::Open(stream) => {
                    let status = match ready!(Pin::new(stream).poll_next(cx)) {
                        Some(Ok(item)) => return Poll::Ready(Some(Ok(item))),
                        Some(Err(status)) => status,
                        None => {
                            self.state = State::Ended;
                            return Poll::Ready(None);
                        }
                    };
                    self.state = State::Ended;
                    let reopen = match self.reopen.take() {
                        Some(reopen) if is_transient(&status) => reopen,
                        _ => return Poll::Ready(Some(Err(Error::Status(status)))),
                    };
                    tracing::debug!(%status, "stream dropped; reconnecting");
                    // Lazy: nothing is attempted until the caller polls again.
                    self.state = State::Reopening(Box::pin(reconnect(reopen, self.timeout)));
                    return Poll::Ready(Some(Err(Error::Disconnected(status))));
                }
                State::Reopening(reopening) => match ready!(reopening.as_mut().poll(cx)) {
                    (reopen, Ok(stream)) => {
                        self.reopen = Some(reopen);
                        self.state = State::Open(stream);
                    }
                    (_, Err(status)) => {
                        self.state = State::Ended;
                        return Poll::Ready(Some(Err(Error::Status(status))));
                    }
                },
                State::Ended => return Poll::Ready(None),
            }
        }
    }
}

/// Reopens until it works or is refused for good.
async fn reconnect<T>(
    mut reopen: Reopen<T>,
    timeout: Duration,
) -> (Reopen<T>, Result<Streaming<T>, Status>) {
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
            Ok(stream) => return (reopen, Ok(stream)),
            Err(status) if is_transient(&status) => {
                tracing::debug!(%status, ?backoff, "reconnect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(status) => return (reopen, Err(status)),
        }
    }
}
