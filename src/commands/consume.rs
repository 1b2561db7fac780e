//! `switchyard consume`: joins a queue group, prints each delivery and acks it once printed (or, with
//! `--no-ack`, holds it unsettled), until `--count` deliveries or Ctrl-C.

use std::collections::VecDeque;

use futures_util::StreamExt;
use switchyard_client::Delivery;

use super::{Failure, connect, interrupted, note, note_reconnect, output::Printer};
use crate::cli::{ConsumeArgs, Mode};

/// Unsettled deliveries kept with `--no-ack` when no prefetch is given (the broker's default
/// `--max-prefetch`, so never fewer than the broker may have outstanding).
const HELD_WITHOUT_PREFETCH: usize = 10_000;

/// The broker's `--default-prefetch` unless configured otherwise.
const BROKER_DEFAULT_PREFETCH: u32 = 64;

pub async fn run(args: ConsumeArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let described = format!("group {} on {}", args.group, args.topic);
    let mut builder = client
        .consume(&args.topic, &args.group)
        .on_disconnect(note_reconnect)
        .mode(args.mode.into())
        .prefetch(prefetch(args.prefetch, args.count))
        .standby(args.standby);
    if let Some(deadline) = args.ack_deadline {
        builder = builder.ack_deadline(deadline);
    }
    let mut consumer = builder
        .subscribe()
        .await
        .map_err(|error| Failure::client(format!("cannot join {described}"), error))?;
    if args.standby && args.mode == Mode::Exclusive {
        note(format_args!(
            "joined {described} (standby until the active consumer leaves)"
        ));
    } else {
        note(format_args!("joined {described}"));
    }
    let mut held = Unsettled::new(args.no_ack, prefetch(args.prefetch, args.count));
    let mut received = 0;
    // Watched for the whole loop, so a Ctrl-C while a line is printed is not missed.
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let outcome = loop {
        if args.count.is_some_and(|count| received >= count) {
            break Ok(());
        }
        let delivery = tokio::select! {
            delivery = consumer.next() => delivery,
            () = &mut interrupted => break Ok(()),
        };
        match delivery {
            Some(Ok(delivery)) => {
                // Not printed, not acked: dropping the delivery on error hands it back.
                if let Err(failure) = printer.delivery(&delivery) {
                    break Err(failure);
                }
                held.settle(delivery);
                received += 1;
            }
            Some(Err(error)) => {
                break Err(Failure::client(
                    format!("the consumer of {described} ended"),
                    error,
                ));
            }
            None => {
                break Err(Failure::new(format!(
                    "the broker ended the consumer of {described}"
                )));
            }
        }
    };
    // Closing sends every queued ack before leaving the group, so nothing acked here is redelivered
    // for want of a flush. Leaving returns what is held to the group, so the held deliveries are
    // dropped after it, when the client no longer nacks them.
    consumer.close().await;
    drop(held);
    outcome
}

/// The prefetch to ask for: with `--count N`, at most N. The broker keeps a consumer's prefetch
/// full, and whatever it holds beyond the N printed goes back to the group when this command leaves,
/// counted as one more attempt; a smaller prefetch bounds how many are sent back that way.
fn prefetch(asked: u32, count: Option<u64>) -> u32 {
    let Some(count) = count.map(|count| u32::try_from(count).unwrap_or(u32::MAX)) else {
        return asked;
    };
    match asked {
        // 0 is the broker's default, which is 64 unless configured otherwise: a smaller count is
        // asked for itself, a larger one leaves the default alone.
        0 if count < BROKER_DEFAULT_PREFETCH => count.max(1),
        0 => 0,
        asked => asked.min(count.max(1)),
    }
}

/// What happens to a delivery once printed: acked, or with `--no-ack` kept unsettled.
struct Unsettled {
    /// `None` when acking.
    held: Option<VecDeque<Delivery>>,
    /// Deliveries held at most. A consumer's deliveries share one ack deadline, so they expire in
    /// the order they came, and the ones the broker still counts as outstanding are always the
    /// newest `prefetch` of them: an older one can be dropped (nacking an id the broker has already
    /// forgotten) without handing back anything still held.
    capacity: usize,
}

impl Unsettled {
    fn new(no_ack: bool, prefetch: u32) -> Self {
        let capacity = match usize::try_from(prefetch) {
            Ok(0) | Err(_) => HELD_WITHOUT_PREFETCH,
            Ok(prefetch) => prefetch,
        };
        Self {
            held: no_ack.then(VecDeque::new),
            capacity,
        }
    }

    fn settle(&mut self, delivery: Delivery) {
        let Some(held) = self.held.as_mut() else {
            delivery.ack();
            return;
        };
        if held.len() == self.capacity {
            held.pop_front();
        }
        held.push_back(delivery);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_caps_the_prefetch() {
        assert_eq!(prefetch(0, None), 0);
        assert_eq!(prefetch(100, None), 100);
        assert_eq!(prefetch(0, Some(3)), 3);
        assert_eq!(prefetch(0, Some(1000)), 0);
        assert_eq!(prefetch(10, Some(3)), 3);
        assert_eq!(prefetch(2, Some(3)), 2);
    }
}
