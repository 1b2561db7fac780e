//! Server streams that survive a dropped connection: when the stream fails with a transient status,
//! the caller sees one [`Resumed::Disconnected`] item, and the stream is reopened with jittered
//! exponential backoff (from 100 ms, doubling, never above 5 s) for as long as the failures stay
//! transient. Each attempt may take
//! at most the call timeout, so a broker that accepts connections but never answers is retried like
//! one that refuses them. A refusal (a status such as NOT_FOUND or FAILED_PRECONDITION) ends the
//! stream after one error item. Reopening happens while the stream is polled: a stream nobody reads
//! does not reconnect.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable};
use futures_core::Stream;
use futures_util::future::BoxFuture;
use tonic::{Status, Streaming};

use crate::error::{Error, Result, is_transient};

/// The shortest wait before reopening.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before reopening.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The waits between reopening attempts: exponential with jitter, never ending, from
/// [`FIRST_BACKOFF`] to [`MAX_BACKOFF`].
///
/// `backon` rather than a loop of our own: jitter matters here, because every client of a broker
/// that restarts loses its streams at the same moment, and without it they all come back in step,
/// at 100 ms, 200 ms, 400 ms and so on. backon is small (its one dependency, fastrand, gives the
/// jitter), sleeps on tokio's timer (so the tests' paused time drives it), and its `when` keeps the
/// retry-while-transient rule in one place. The `backoff` crate is unmaintained (RUSTSEC-2025-0012).
///
/// backon's jitter adds a random part of the current delay to it (a delay `d` becomes one in
/// `[d, 2d)`), so the base delay is capped at half of [`MAX_BACKOFF`]: the waits are about
/// 100-200 ms, 200-400 ms, ..., then 2.5-5 s once the doubling reaches the cap.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(FIRST_BACKOFF)
        .with_max_delay(MAX_BACKOFF / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

/// Opens the server stream again, the same way it was first opened.
pub(crate) type Reopen<T> =
    Box<dyn FnMut() -> BoxFuture<'static, Result<Streaming<T>, Status>> + Send>;

pub(crate) type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<Resumed<T>>> + Send>>;

/// What a resumable stream yields: the server stream's items, and a mark where it dropped.
pub(crate) enum Resumed<T> {
    Item(T),
    /// The connection dropped with this transient status; the stream is being reopened.
    Disconnected(Status),
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
    type Item = Result<Resumed<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                State::Open(stream) => {
                    let status = match ready!(Pin::new(stream).poll_next(cx)) {
                        Some(Ok(item)) => return Poll::Ready(Some(Ok(Resumed::Item(item)))),
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
                    return Poll::Ready(Some(Ok(Resumed::Disconnected(status))));
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

/// Reopens until it works or is refused for good. An attempt that takes longer than `timeout`
/// counts as a transient failure, so it is retried like a refused connection.
async fn reconnect<T>(
    mut reopen: Reopen<T>,
    timeout: Duration,
) -> (Reopen<T>, Result<Streaming<T>, Status>) {
    let attempt = || {
        let opening = reopen();
        async move {
            tokio::time::timeout(timeout, opening)
                .await
                .unwrap_or_else(|_| {
                    Err(Status::unavailable(
                        "the broker did not accept the stream in time",
                    ))
                })
        }
    };
    let reopened = attempt
        .retry(backoff())
        .when(is_transient)
        .notify(|status, wait| tracing::debug!(%status, ?wait, "reconnect failed; retrying"))
        .await;
    (reopen, reopened)
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    /// The waits grow from about 100 ms to about 5 s, never leave those bounds, and are jittered,
    /// so clients that lost their streams together do not retry together.
    #[test]
    fn the_waits_grow_within_the_bounds_and_are_jittered() {
        let waits: Vec<Duration> = backoff().build().take(20).collect();
        assert_eq!(waits.len(), 20, "the backoff never gives up");
        for wait in &waits {
            assert!(
                (FIRST_BACKOFF..=MAX_BACKOFF).contains(wait),
                "{wait:?} is outside {FIRST_BACKOFF:?}..={MAX_BACKOFF:?}"
            );
        }
        // Each wait is in [base, 2 × base) and the base doubles, so the fifth is past the first's
        // range, and the last ones are near the cap.
        assert!(waits[0] < 2 * FIRST_BACKOFF, "{waits:?}");
        assert!(waits[4] >= 16 * FIRST_BACKOFF, "{waits:?}");
        assert!(waits[19] >= MAX_BACKOFF / 2, "{waits:?}");
        // Two schedules, or the waits at the cap, are not all the same.
        let again: Vec<Duration> = backoff().build().take(20).collect();
        assert_ne!(waits, again, "two schedules came out equal: no jitter");
        assert!(
            waits[10..].windows(2).any(|pair| pair[0] != pair[1]),
            "the waits at the cap are all equal: {waits:?}"
        );
    }
}
