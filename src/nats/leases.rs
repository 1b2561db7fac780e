//! Exclusive groups in cluster mode: one lease per group in a JetStream KV bucket, so that one
//! consumer in the whole cluster is active and the others stand by, in the order they came.
//!
//! - **Taking** the lease creates the key `CONSUMER.lease` with the holder's id
//!   (`NODE.LOCALID`); the create fails while another consumer holds it. The KV revision the
//!   holder last wrote is its fencing token: each renewal is a compare-and-swap on it, so a holder
//!   that lost the lease (it lapsed, or another took it) learns so at its next renewal.
//! - **Renewing** every [`RENEW_EVERY`] keeps the key younger than the bucket's max age
//!   ([`LEASE_TTL`]); the key of a holder that cannot renew (its node died, froze or lost NATS)
//!   expires, and the lease with it.
//! - **Fencing.** JetStream takes an ack from anyone, so the fence is on the holder's side: it
//!   pulls, delivers, settles and extends only while its last renewal was sent less than
//!   [`VALID_FOR`] ago, well short of the TTL, and its pulls expire within the difference. By the
//!   time the key can expire at the server, the old holder has stopped touching the group.
//! - **Standbys** each keep a key `CONSUMER.standby.ID` alive, its value the revision of its first
//!   write: the queue's order. A holder that goes gives back what it held (nacks JetStream
//!   confirms) and hands the lease to the first standby by a compare-and-swap. If the holder
//!   lapsed instead, the first standby takes the lease once the key has expired.
//! - **After a lapse** the old holder's deliveries stay pending in JetStream until the group's
//!   AckWait passes. A consumer that took a lapsed lease while the group has pending deliveries
//!   waits that long before its first pull ([`Standing::Held`]), so they come back first, in order.
//!
//! The bucket is Switchyard's own (`PREFIX-exclusive`), created with the stream.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    kv::{self, Operation, UpdateErrorKind},
    stream::StorageType,
};
use futures_util::StreamExt;
use tokio::{
    sync::{Mutex as AsyncMutex, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{NatsError, STREAM_WAIT, unavailable};
use crate::{config::Config, error::BrokerError};

/// The bucket's max age: how long a lease outlives its holder's last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often a holder renews its lease, and a standby its place.
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long after sending a renewal a holder may still touch its group. The rest of the TTL is the
/// margin for the renewal's trip, a pull under way, and clocks that tick a little apart.
const VALID_FOR: Duration = Duration::from_secs(3);
/// How long an exclusive consumer's pull waits at the server: a pull made while the lease was
/// valid has expired before the lease can.
pub const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// The leases' bucket.
#[derive(Debug, Clone)]
pub struct Leases {
    kv: kv::Store,
}

impl Leases {
    /// Finds the bucket, or creates it as the first node to start does.
    pub async fn open(jetstream: &jetstream::Context, config: &Config) -> Result<Self, NatsError> {
        let wanted = kv::Config {
            bucket: format!("{}-exclusive", config.nats_prefix.as_str()),
            description: "Switchyard: exclusive groups' leases".into(),
            history: 1,
            max_age: LEASE_TTL,
            storage: StorageType::File,
            num_replicas: config.nats_replicas,
            ..Default::default()
        };
        let deadline = Instant::now() + STREAM_WAIT;
        loop {
            let opened = match jetstream.get_key_value(wanted.bucket.clone()).await {
                Ok(kv) => Ok(kv),
                Err(_) => jetstream
                    .create_key_value(wanted.clone())
                    .await
                    .map_err(|error| error.to_string()),
            };
            match opened {
                Ok(kv) => return Ok(Self { kv }),
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(%error, "the leases' bucket is not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(reason) => {
                    return Err(NatsError::Stream {
                        stream: format!("KV_{}", wanted.bucket),
                        replicas: config.nats_replicas,
                        reason,
                    });
                }
            }
        }
    }

    /// Takes the lease of the group whose JetStream consumer is `consumer` for `holder`, or, for a
    /// standby, joins the queue for it. A consumer that is not a standby is refused while another
    /// holds the lease.
    pub async fn claim(
        &self,
        consumer: &str,
        group: &str,
        holder: String,
        standby: bool,
    ) -> Result<Arc<Claim>, BrokerError> {
        let claim = Arc::new(Claim {
            kv: self.kv.clone(),
            consumer: consumer.to_owned(),
            lease_key: format!("{consumer}.lease"),
            standby_key: format!("{consumer}.standby.{holder}"),
            holder,
            state: AsyncMutex::new(State::default()),
            valid_until: parking_lot::Mutex::new(None),
            standing: watch::Sender::new(Standing::Waiting),
            lost: CancellationToken::new(),
        });
        {
            let mut state = claim.state.lock().await;
            if !claim.take(&mut state).await? {
                if !standby {
                    return Err(BrokerError::ExclusiveTaken {
                        group: group.to_owned(),
                    });
                }
                let first = claim
                    .kv
                    .put(&claim.standby_key, bytes::Bytes::new())
                    .await
                    .map_err(unavailable)?;
                state.queued = Some(first);
            }
        }
        tokio::spawn(keep(Arc::clone(&claim)));
        Ok(claim)
    }
}

/// Where a consumer stands with its group's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Waiting,
    /// It holds the lease. `after_lapse`: it took a lease that lapsed (or was never taken), so the
    /// group's pending deliveries may be an old holder's, back only once AckWait passes.
    Held {
        after_lapse: bool,
    },
    /// It lost the lease, or gave it up.
    Gone,
}

/// One exclusive consumer's claim on its group's lease.
#[derive(Debug)]
pub struct Claim {
    kv: kv::Store,
    consumer: String,
    lease_key: String,
    standby_key: String,
    /// This consumer's id: the lease's value while it holds it.
    holder: String,
    /// Renewals, hand-overs and the release, one at a time.
    state: AsyncMutex<State>,
    /// Until when it may touch its group: `None` unless it holds the lease.
    valid_until: parking_lot::Mutex<Option<Instant>>,
    standing: watch::Sender<Standing>,
    /// Cancelled when the lease is lost.
    pub lost: CancellationToken,
}

#[derive(Debug, Default)]
struct State {
    /// The revision this holder last wrote: its fencing token.
    revision: u64,
    /// A standby's place in the queue: the revision of its first write.
    queued: Option<u64>,
    released: bool,
}

impl Claim {
    /// True while it holds the lease and may pull, deliver and settle.
    pub fn valid(&self) -> bool {
        self.valid_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
    }

    pub fn is_held(&self) -> bool {
        matches!(*self.standing.borrow(), Standing::Held { .. })
    }

    /// Waits until it holds the lease, then says whether it took it after a lapse; an error if
    /// the lease is gone.
    pub async fn until_held(&self) -> Result<bool, BrokerError> {
        let mut standing = self.standing.subscribe();
        let standing = standing
            .wait_for(|standing| *standing != Standing::Waiting)
            .await
            .map(|standing| *standing);
        match standing {
            Ok(Standing::Held { after_lapse }) => Ok(after_lapse),
            _ => Err(self.lost_error()),
        }
    }

    /// Waits until it may touch its group again: a renewal is late. An error if the lease is lost.
    pub async fn until_valid(&self) -> Result<(), BrokerError> {
        loop {
            if self.valid() {
                return Ok(());
            }
            if self.lost.is_cancelled() || !self.is_held() {
                return Err(self.lost_error());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What a consumer whose lease is gone is told.
    pub fn lost_error(&self) -> BrokerError {
        unavailable(
            "this consumer lost its exclusive group's lease (its node could not renew it in time); consume again",
        )
    }

    /// Takes the lease if no one holds it: true if it did.
    async fn take(&self, state: &mut State) -> Result<bool, BrokerError> {
        let sent = Instant::now();
        let holder = bytes::Bytes::from(self.holder.clone());
        // Revision 0: the key is absent, as it is after a lapse or before anyone took it.
        let (revision, after_lapse) = match self.kv.update(&self.lease_key, holder.clone(), 0).await
        {
            Ok(revision) => (revision, true),
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => {
                match self.kv.entry(&self.lease_key).await.map_err(unavailable)? {
                    // Released by a holder that gave back what it held.
                    Some(entry) if entry.operation != Operation::Put => {
                        match self
                            .kv
                            .update(&self.lease_key, holder, entry.revision)
                            .await
                        {
                            Ok(revision) => (revision, false),
                            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => {
                                return Ok(false);
                            }
                            Err(error) => return Err(unavailable(error)),
                        }
                    }
                    _ => return Ok(false),
                }
            }
            Err(error) => return Err(unavailable(error)),
        };
        self.now_held(state, revision, sent, after_lapse);
        Ok(true)
    }

    /// Takes the lease a holder handed to this standby at `revision`.
    async fn take_handed(&self, state: &mut State, revision: u64) -> Result<(), BrokerError> {
        let sent = Instant::now();
        let holder = bytes::Bytes::from(self.holder.clone());
        match self.kv.update(&self.lease_key, holder, revision).await {
            Ok(revision) => {
                self.now_held(state, revision, sent, false);
                Ok(())
            }
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn now_held(&self, state: &mut State, revision: u64, sent: Instant, after_lapse: bool) {
        state.revision = revision;
        *self.valid_until.lock() = Some(sent + VALID_FOR);
        self.standing.send_replace(Standing::Held { after_lapse });
    }

    fn lose(&self) {
        *self.valid_until.lock() = None;
        self.standing.send_replace(Standing::Gone);
        self.lost.cancel();
    }

    /// Renews a held lease. A renewal refused (the key lapsed, or another holds it) loses the
    /// lease, and so does failing to renew until the key has surely expired at the server. A
    /// renewal that succeeds late makes the lease valid again: the key cannot have lapsed in
    /// between, or the compare-and-swap would have failed.
    async fn renew(&self, state: &mut State) {
        let sent = Instant::now();
        let holder = bytes::Bytes::from(self.holder.clone());
        let renewed = tokio::time::timeout(
            RENEW_EVERY,
            self.kv.update(&self.lease_key, holder, state.revision),
        )
        .await;
        let error = match renewed {
            Ok(Ok(revision)) => {
                state.revision = revision;
                *self.valid_until.lock() = Some(sent + VALID_FOR);
                return;
            }
            Ok(Err(error)) if error.kind() == UpdateErrorKind::WrongLastRevision => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        let expired = self
            .valid_until
            .lock()
            .is_none_or(|until| Instant::now() >= until + (LEASE_TTL - VALID_FOR));
        if let Some(error) = error
            && !expired
        {
            tracing::debug!(%error, consumer = %self.consumer, "cannot renew an exclusive lease; trying again");
            return;
        }
        tracing::warn!(consumer = %self.consumer, holder = %self.holder, "an exclusive consumer lost its group's lease");
        self.lose();
    }

    /// One turn of a standby: keeps its place alive, and takes the lease if it was handed to it,
    /// or if it lapsed and this standby is first in the queue.
    async fn stand_by(&self, state: &mut State) -> Result<(), BrokerError> {
        let Some(first) = state.queued else {
            return Ok(());
        };
        self.kv
            .put(&self.standby_key, first.to_string().into())
            .await
            .map_err(unavailable)?;
        match self.kv.entry(&self.lease_key).await.map_err(unavailable)? {
            Some(entry) if entry.operation == Operation::Put => {
                if entry.value == self.holder.as_bytes() {
                    self.take_handed(state, entry.revision).await?;
                }
            }
            _ => {
                let queue = self.queue().await?;
                if queue.first().is_none_or(|first| *first == self.holder) {
                    self.take(state).await?;
                }
            }
        }
        if self.is_held() {
            state.queued = None;
            let _ = self.kv.delete(&self.standby_key).await;
        }
        Ok(())
    }

    /// The live standbys' ids, first in the queue first.
    async fn queue(&self) -> Result<Vec<String>, BrokerError> {
        let prefix = format!("{}.standby.", self.consumer);
        let filter = format!("{}{prefix}>", self.kv.prefix);
        let mut subjects = self
            .kv
            .stream
            .info_with_subjects(filter)
            .await
            .map_err(unavailable)?;
        let mut places = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(unavailable)?;
            let Some(key) = subject.strip_prefix(self.kv.prefix.as_str()) else {
                continue;
            };
            let Some(id) = key.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if let Some(entry) = self.kv.entry(key).await.map_err(unavailable)?
                && entry.operation == Operation::Put
            {
                let place = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(entry.revision);
                places.push((place, id.to_owned()));
            }
        }
        places.sort();
        Ok(places.into_iter().map(|(_, id)| id).collect())
    }

    /// Gives the lease up: a holder (or a standby it was just handed to) passes it to the first
    /// other standby, or releases it if there is none; a standby leaves the queue. The caller has
    /// given back what the consumer held. A holder that lost the lease has nothing to give.
    pub async fn release(&self) {
        let mut state = self.state.lock().await;
        if state.released {
            return;
        }
        state.released = true;
        let revision = if state.queued.take().is_some() {
            let _ = self.kv.delete(&self.standby_key).await;
            match self.kv.entry(&self.lease_key).await {
                Ok(Some(entry))
                    if entry.operation == Operation::Put
                        && entry.value == self.holder.as_bytes() =>
                {
                    Some(entry.revision)
                }
                _ => None,
            }
        } else {
            self.valid().then_some(state.revision)
        };
        *self.valid_until.lock() = None;
        self.standing.send_replace(Standing::Gone);
        let Some(revision) = revision else {
            return;
        };
        let next = self
            .queue()
            .await
            .ok()
            .and_then(|queue| queue.into_iter().find(|id| *id != self.holder));
        let passed = match next {
            Some(next) => self
                .kv
                .update(&self.lease_key, next.into(), revision)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
            None => self
                .kv
                .delete_expect_revision(&self.lease_key, Some(revision))
                .await
                .map_err(|error| error.to_string()),
        };
        if let Err(error) = passed {
            tracing::debug!(%error, consumer = %self.consumer, "cannot pass an exclusive lease on; it lapses instead");
        }
    }
}

/// Keeps a claim going until it is released or lost: a standby's turns, then a holder's renewals.
/// A lease handed to a standby is seen at once through a watch on the key.
async fn keep(claim: Arc<Claim>) {
    let mut lease_changes = claim.kv.watch(&claim.lease_key).await.ok();
    let mut ticks = tokio::time::interval(RENEW_EVERY);
    ticks.tick().await;
    loop {
        let changed = async {
            match lease_changes.as_mut() {
                Some(changes) => changes.next().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = claim.lost.cancelled() => return,
            seen = changed => {
                if !seen {
                    lease_changes = None;
                }
            }
            _ = ticks.tick() => {}
        }
        let mut state = claim.state.lock().await;
        if state.released || claim.lost.is_cancelled() {
            return;
        }
        if state.queued.is_some() {
            if let Err(error) = claim.stand_by(&mut state).await {
                tracing::debug!(%error, consumer = %claim.consumer, "an exclusive standby's turn failed; trying again");
            }
        } else if claim.is_held() {
            lease_changes = None;
            claim.renew(&mut state).await;
        }
    }
}
