//! `switchyard request`: sends a request (or one per line of stdin) and prints each reply.

use switchyard_client::{Client, Error};

use super::{Failure, connect, input::stdin_lines, output::Printer};
use crate::cli::RequestArgs;

pub async fn run(args: RequestArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    if let Some(payload) = &args.payload {
        return request(&client, &args, printer, payload.clone().into_bytes()).await;
    }
    // One at a time: each reply is printed before the next line is sent, so replies line up with
    // the lines that asked for them.
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        request(&client, &args, printer, line?).await?;
    }
    Ok(())
}

async fn request(
    client: &Client,
    args: &RequestArgs,
    printer: Printer,
    payload: Vec<u8>,
) -> Result<(), Failure> {
    let mut request = client.request(&args.topic, payload).timeout(args.timeout);
    for (name, value) in &args.message.headers {
        request = request.header(name, value);
    }
    if let Some(key) = &args.message.key {
        request = request.key(key);
    }
    match request.send().await {
        Ok(reply) => printer.reply(&reply),
        Err(Error::TimedOut(waited)) => Err(Failure::new(format!(
            "no reply to the request on {} within {} ms",
            args.topic,
            waited.as_millis()
        ))),
        Err(error) => Err(Failure::client(
            format!("request on {} failed", args.topic),
            error,
        )),
    }
}
