//! `switchyard sub`: prints what is published to a pattern, until `--count` messages or Ctrl-C.

use futures_util::StreamExt;
use switchyard_client::Event;

use super::{Failure, connect, interrupted, note, note_reconnect, output::Printer};
use crate::cli::SubscribeArgs;

pub async fn run(args: SubscribeArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let context = format!("subscription to {}", args.pattern);
    let mut subscription = client
        .subscribe(&args.pattern)
        .await
        .map_err(|error| Failure::client(format!("cannot subscribe to {}", args.pattern), error))?;
    // Printed once the subscription is active: what is published from now on is seen.
    note(format_args!("subscribed to {}", args.pattern));
    let mut seen = 0;
    // Watched for the whole loop, so a Ctrl-C while a line is printed is not missed.
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    while args.count.is_none_or(|count| seen < count) {
        let event = tokio::select! {
            event = subscription.next() => event,
            () = &mut interrupted => return Ok(()),
        };
        match event {
            Some(Ok(Event::Message(message))) => {
                printer.message(&message)?;
                seen += 1;
            }
            Some(Ok(Event::Gap { missed })) => {
                note(format_args!(
                    "missed {missed} messages here: this subscriber fell behind"
                ));
            }
            Some(Ok(Event::Disconnected { code, message })) => {
                note_reconnect(&tonic::Status::new(code, message));
            }
            Some(Err(error)) => return Err(Failure::client(format!("the {context} ended"), error)),
            None => return Err(Failure::new(format!("the broker ended the {context}"))),
        }
    }
    Ok(())
}
