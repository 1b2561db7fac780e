//! `switchyard groups list|declare|delete`: queue group administration.

use serde_json::json;
use switchyard_client::GroupConfig;

use super::{Failure, connect, note, output::Printer};
use crate::cli::{GroupsCommand, GroupsDeclareArgs, GroupsDeleteArgs, GroupsListArgs};

pub async fn run(command: GroupsCommand) -> Result<(), Failure> {
    match command {
        GroupsCommand::List(args) => list(args).await,
        GroupsCommand::Declare(args) => declare(args).await,
        GroupsCommand::Delete(args) => delete(args).await,
    }
}

async fn list(args: GroupsListArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let mut groups = client
        .admin()
        .list_groups()
        .await
        .map_err(|error| Failure::client("cannot list groups", error))?;
    if groups.is_empty() && !args.client.json {
        note("no groups");
    }
    groups.sort_by(|a, b| (&a.topic, &a.group).cmp(&(&b.topic, &b.group)));
    groups.iter().try_for_each(|group| printer.group(group))
}

async fn declare(args: GroupsDeclareArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let mut config = GroupConfig::new(&args.topic, &args.group).mode(args.mode.into());
    if let Some(max) = args.max_length {
        config = config.max_length(max);
    }
    if let Some(max) = args.max_bytes {
        config = config.max_bytes(max);
    }
    if let Some(deadline) = args.ack_deadline {
        config = config.ack_deadline(deadline);
    }
    if let Some(max) = args.max_deliveries {
        config = config.max_deliveries(max);
    }
    if let Some(topic) = &args.dead_letter_topic {
        config = config.dead_letter_topic(topic);
    }
    let described = format!("group {} on {}", args.group, args.topic);
    client
        .admin()
        .declare_group(config)
        .await
        .map_err(|error| Failure::client(format!("cannot declare {described}"), error))?;
    printer.done(
        &format!("declared {described}"),
        json!({ "declared": { "topic": args.topic, "group": args.group } }),
    )
}

async fn delete(args: GroupsDeleteArgs) -> Result<(), Failure> {
    let client = connect(&args.client).await?;
    let printer = Printer::new(args.client.json);
    let described = format!("group {} on {}", args.group, args.topic);
    client
        .admin()
        .delete_group(&args.topic, &args.group)
        .await
        .map_err(|error| Failure::client(format!("cannot delete {described}"), error))?;
    printer.done(
        &format!("deleted {described}"),
        json!({ "deleted": { "topic": args.topic, "group": args.group } }),
    )
}
