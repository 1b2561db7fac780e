//! Fan-out: every order event reaches four services at once.
//!
//! - inventory and payment are queue groups: their messages are kept until acked, and several
//!   instances of either would share the work;
//! - email and analytics are plain subscribers: they see what is published while they listen.
//!
//! One `Publish` per order reaches all four.
//!
//! ```sh
//! cargo run -p switchyard-client --example orders_fanout -- --server http://127.0.0.1:50051
//! ```

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use support::{BoxError, within};
use switchyard_client::{Client, Event, Message, OutgoingMessage};
use tokio::task::JoinSet;

/// The orders this example places: id, customer e-mail, items, total in cents.
const ORDERS: [(&str, &str, u32, u32); 3] = [
    ("o-1001", "ada@example.com", 2, 5990),
    ("o-1002", "grace@example.com", 1, 1250),
    ("o-1003", "linus@example.com", 5, 18000),
];

/// What the run did: for each service, the orders it handled, in the order it handled them.
#[derive(Debug)]
pub struct Outcome {
    pub orders: Vec<String>,
    pub handled: BTreeMap<&'static str, Vec<String>>,
}

pub async fn run(client: Client) -> Result<Outcome, BoxError> {
    let shop = support::run_token("shop");
    let created = format!("{shop}.orders.created");

    // Every service listens before the first order goes out, so none misses one.
    let mut services = JoinSet::new();
    let inventory = client
        .consume(created.clone(), "inventory")
        .subscribe()
        .await?;
    services.spawn(work_queue("inventory", inventory, |order| {
        let plural = if order.items == 1 { "" } else { "s" };
        format!(
            "reserved {} item{plural} for order {}",
            order.items, order.id
        )
    }));
    let payment = client
        .consume(created.clone(), "payment")
        .subscribe()
        .await?;
    services.spawn(work_queue("payment", payment, |order| {
        format!("charged {} EUR for order {}", order.total(), order.id)
    }));
    let email = client.subscribe(created.clone()).await?;
    services.spawn(listener("email", email, |order, _| {
        format!(
            "sent the confirmation of order {} to {}",
            order.id, order.email
        )
    }));
    let analytics = client.subscribe(format!("{shop}.orders.>")).await?;
    services.spawn(listener("analytics", analytics, |order, message| {
        let event = message.topic.split_once('.').map_or("", |(_, event)| event);
        format!(
            "counted {event} for order {} ({} EUR)",
            order.id,
            order.total()
        )
    }));

    let mut orders = Vec::new();
    for (id, email, items, cents) in ORDERS {
        let event = OutgoingMessage::new(created.clone(), format!("{{\"order\":\"{id}\"}}"))
            .key(email)
            .header("order-id", id)
            .header("email", email)
            .header("items", items.to_string())
            .header("total-cents", cents.to_string());
        support::say("shop", format!("places order {id} for {email}"));
        let published = client.publish_with(event).await?;
        let reach = format!(
            "order {id} reached {} subscribers and {} groups",
            published.subscribers, published.groups
        );
        support::say("shop", reach);
        orders.push(id.to_owned());
    }

    let mut handled = BTreeMap::new();
    while let Some(finished) = within("the four services", services.join_next()).await? {
        let (service, ids) = finished??;
        handled.insert(service, ids);
    }
    let counts: Vec<String> = handled
        .iter()
        .map(|(service, ids)| format!("{service} {}", ids.len()))
        .collect();
    println!(
        "summary: {} orders fanned out: {}",
        orders.len(),
        counts.join(", ")
    );
    Ok(Outcome { orders, handled })
}

/// An order as the services read it from the event's headers.
struct Order {
    id: String,
    email: String,
    items: u32,
    total_cents: u32,
}

impl Order {
    fn parse(message: &Message) -> Result<Self, BoxError> {
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .cloned()
                .ok_or_else(|| format!("order event {} without {name}", message.id))
        };
        Ok(Self {
            id: header("order-id")?,
            email: header("email")?,
            items: header("items")?.parse()?,
            total_cents: header("total-cents")?.parse()?,
        })
    }

    fn total(&self) -> String {
        format!("{}.{:02}", self.total_cents / 100, self.total_cents % 100)
    }
}

/// A queue-group service: handles each order, acks it, and stops after all of [`ORDERS`].
async fn work_queue(
    service: &'static str,
    mut deliveries: switchyard_client::Consumer,
    work: impl Fn(&Order) -> String,
) -> Result<(&'static str, Vec<String>), BoxError> {
    let mut done = Vec::new();
    while done.len() < ORDERS.len() {
        let delivery = within(service, deliveries.next())
            .await?
            .ok_or("the consumer ended")??;
        let order = Order::parse(delivery.message())?;
        support::say(service, work(&order));
        delivery.ack();
        done.push(order.id);
    }
    deliveries.close().await;
    Ok((service, done))
}

/// A subscriber service: handles each order it sees, and stops after all of [`ORDERS`].
async fn listener(
    service: &'static str,
    mut events: switchyard_client::Subscription,
    work: impl Fn(&Order, &Message) -> String,
) -> Result<(&'static str, Vec<String>), BoxError> {
    let mut done = Vec::new();
    while done.len() < ORDERS.len() {
        match within(service, events.next())
            .await?
            .ok_or("the subscription ended")??
        {
            Event::Message(message) => {
                let order = Order::parse(&message)?;
                support::say(service, work(&order, &message));
                done.push(order.id);
            }
            Event::Gap { missed } => support::say(service, format!("missed {missed} events")),
            Event::Disconnected { message, .. } => {
                support::say(service, format!("disconnected ({message}); resubscribing"));
            }
        }
    }
    Ok((service, done))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::main(run).await
}
