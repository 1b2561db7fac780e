//! Knowing that the NATS server has the core messages this node sent: a message to this node's
//! own echo subject comes back once the server has read everything the connection sent before it
//! (a connection is read in order), and so has passed those messages on towards every
//! subscriber. That is when a publish outside the stream returns, as a JetStream publish returns
//! once acknowledged: a publish made through another node after it comes after it.
//!
//! A flush alone would say only that the bytes left this process.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{CALL_TIMEOUT, Shared, unavailable};
use crate::error::BrokerError;

/// The echoes this node waits for, by number.
#[derive(Debug, Default)]
pub struct Echoes {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

/// Starts reading this node's echoes, for as long as the broker runs.
pub async fn listen(shared: &Arc<Shared>) -> Result<(), async_nats::SubscribeError> {
    let mut echoes = shared
        .client
        .subscribe(shared.subjects.echo(&shared.node))
        .await?;
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let echo = tokio::select! {
                () = shutdown.cancelled() => return,
                echo = echoes.next() => echo,
            };
            let (Some(echo), Some(shared)) = (echo, weak.upgrade()) else {
                return;
            };
            let number = std::str::from_utf8(&echo.payload)
                .ok()
                .and_then(|text| text.parse::<u64>().ok());
            let waiter = number.and_then(|number| shared.echoes.waiting.lock().remove(&number));
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
        }
    });
    Ok(())
}

/// Returns once the NATS server has read everything this node sent before the call. An echo
/// lost with the connection fails the call after [`CALL_TIMEOUT`]: what went before it may be
/// lost too.
pub async fn sent(shared: &Shared) -> Result<(), BrokerError> {
    let number = shared.echoes.next.fetch_add(1, Ordering::Relaxed);
    let (waiter, echoed) = oneshot::channel();
    shared.echoes.waiting.lock().insert(number, waiter);
    // Forgets the waiter however the call ends, a dropped call included.
    let _forget = Forget {
        echoes: &shared.echoes,
        number,
    };
    async {
        shared
            .client
            .publish(
                shared.subjects.echo(&shared.node),
                Bytes::from(number.to_string()),
            )
            .await
            .map_err(unavailable)?;
        match tokio::time::timeout(CALL_TIMEOUT, echoed).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(unavailable("the NATS server did not echo in time")),
        }
    }
    .await
}

struct Forget<'a> {
    echoes: &'a Echoes,
    number: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.echoes.waiting.lock().remove(&self.number);
    }
}
