//! The step both batching loops share (the `Publisher`'s and the settler's): what joins the batch
//! being gathered next.

use std::{future::Future, time::Duration};

use tokio::{
    sync::mpsc::{self, error::TryRecvError},
    time::Instant,
};

/// What comes of waiting for the next command of a batch.
pub(crate) enum Next<T> {
    /// This command joins (if it fits).
    Joins(T),
    /// Nothing more joins this batch: nothing is queued (no linger) or the linger is over.
    BatchEnds,
    /// Every sender is gone.
    Closed,
}

/// The two tokio receivers the batching loops read from.
pub(crate) trait Commands<T> {
    fn try_take(&mut self) -> Result<T, TryRecvError>;
    fn take(&mut self) -> impl Future<Output = Option<T>> + Send;
}

impl<T: Send> Commands<T> for mpsc::Receiver<T> {
    fn try_take(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }

    fn take(&mut self) -> impl Future<Output = Option<T>> + Send {
        self.recv()
    }
}

impl<T: Send> Commands<T> for mpsc::UnboundedReceiver<T> {
    fn try_take(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }

    fn take(&mut self) -> impl Future<Output = Option<T>> + Send {
        self.recv()
    }
}

/// The next command to join a batch. Without a linger only what is already queued joins (no timer:
/// even an expired one would wait for the timer's next millisecond tick); with one, what arrives
/// before `deadline`, everything already queued first.
pub(crate) async fn next_to_join<T>(
    commands: &mut impl Commands<T>,
    linger: Duration,
    deadline: Instant,
) -> Next<T> {
    let command = if linger.is_zero() {
        match commands.try_take() {
            Ok(command) => Some(command),
            Err(TryRecvError::Empty) => return Next::BatchEnds,
            Err(TryRecvError::Disconnected) => None,
        }
    } else {
        tokio::select! {
            biased;
            command = commands.take() => command,
            () = tokio::time::sleep_until(deadline) => return Next::BatchEnds,
        }
    };
    command.map_or(Next::Closed, Next::Joins)
}
