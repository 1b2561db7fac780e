//! `switchyard pub`: one message from the payload argument, or one per line of stdin.

use switchyard_client::{Client, OutgoingMessage, PendingPublish};
use tokio::sync::mpsc;

use super::{Failure, connect, input::stdin_lines, output::Printer};
use crate::cli::{OutgoingArgs, PublishArgs};

/// Messages from stdin that may wait for their Publish answer at once. Enough to fill several of
/// the publisher's batches; bounded so a fast stdin cannot queue without end.
const IN_FLIGHT: usize = 1024;

pub async fn run(args: PublishArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let context = || format!("cannot publish to {}", args.topic);
    match args.payload {
        Some(ref payload) => {
            let message = outgoing(&args.topic, payload.clone().into_bytes(), &args.message);
            let published = client
                .publish_with(message)
                .await
                .map_err(|error| Failure::client(context(), error))?;
            printer.published(&args.topic, &published)
        }
        None => publish_lines(&client, &args, printer, context()).await,
    }
}

/// Publishes each line of stdin through a batching publisher, printing each outcome in order.
///
/// Lines are queued on this task and their outcomes awaited on another, so printing keeps up with
/// a slow stdin (each line confirmed as it is typed) while a fast one still fills whole batches.
async fn publish_lines(
    client: &Client,
    args: &PublishArgs,
    printer: Printer,
    context: String,
) -> Result<(), Failure> {
    let publisher = client.publisher().build();
    let (queue, mut queued) = mpsc::channel::<PendingPublish>(IN_FLIGHT);
    let topic = args.topic.clone();
    let printing_context = context.clone();
    let mut printing = tokio::spawn(async move {
        while let Some(pending) = queued.recv().await {
            let published = pending
                .await
                .map_err(|error| Failure::client(&printing_context, error))?;
            printer.published(&topic, &published)?;
        }
        Ok(())
    });
    let mut lines = stdin_lines();
    let stopped = loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            // The printer ends before the queue closes only when it failed.
            printed = &mut printing => return joined(printed),
        };
        let Some(line) = line else { break Ok(()) };
        let pending = match line {
            Ok(payload) => publisher
                .publish(outgoing(&args.topic, payload, &args.message))
                .await
                .map_err(|error| Failure::client(&context, error)),
            Err(failure) => Err(failure),
        };
        match pending {
            // A closed queue means the printer failed; its error is returned below.
            Ok(pending) => {
                if queue.send(pending).await.is_err() {
                    break Ok(());
                }
            }
            Err(failure) => break Err(failure),
        }
    };
    drop(queue);
    joined(printing.await).and(stopped)
}

fn joined(printed: Result<Result<(), Failure>, tokio::task::JoinError>) -> Result<(), Failure> {
    printed.unwrap_or_else(|error| Err(Failure::new(format!("printing stopped: {error}"))))
}

fn outgoing(topic: &str, payload: Vec<u8>, extra: &OutgoingArgs) -> OutgoingMessage {
    let mut message = OutgoingMessage::new(topic, payload);
    for (name, value) in &extra.headers {
        message = message.header(name, value);
    }
    if let Some(key) = &extra.key {
        message = message.key(key);
    }
    message
}
