//! An exclusive consumer: one auctioneer at a time takes the bids of a lot, in the order they were
//! placed, and keeps the highest.
//!
//! The group is exclusive, so bids are judged by one auctioneer, one after the other, in bid order:
//! of two equal bids, the first one placed keeps the lead. A second auctioneer stands by; when the
//! first one stops (with a bid in hand, unacked), the standby takes over, starting with that bid. The
//! standing bid lives in a shared record (a database, in a real system), which only the active
//! auctioneer writes. The group is declared at the start (so bids wait while no auctioneer is
//! active) and deleted at the end.
//!
//! ```sh
//! cargo run -p switchyard-client --example auction_bids -- --server http://127.0.0.1:50051
//! ```

#[path = "support/mod.rs"]
mod support;

use futures_util::StreamExt;
use support::{BoxError, say, within};
use switchyard_client::{Client, ConsumeMode, Consumer, Delivery, GroupConfig, OutgoingMessage};

/// Bids placed before the first auctioneer stops, and after, as (bidder, amount).
const EARLY_BIDS: [(&str, u32); 4] = [("alice", 100), ("bob", 120), ("carol", 150), ("dave", 150)];
const LATE_BIDS: [(&str, u32); 3] = [("erin", 140), ("frank", 175), ("grace", 175)];
/// Bids the first auctioneer settles before it stops with the next one in hand.
const FIRST_SHIFT: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    pub bidder: String,
    pub amount: u32,
}

/// One bid as judged: by whom, on which attempt, and whether it took the lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub auctioneer: &'static str,
    pub bid: Bid,
    pub attempt: u32,
    pub leads: bool,
}

/// What the run did.
#[derive(Debug)]
pub struct Outcome {
    pub winner: Bid,
    pub judged: Vec<Judged>,
}

pub async fn run(client: Client) -> Result<Outcome, BoxError> {
    let lot = format!("{}.lot-7.bids", support::run_token("auction"));
    // Declared up front, so bids placed while no auctioneer is active are kept.
    let group = GroupConfig::new(lot.clone(), "auctioneer").mode(ConsumeMode::Exclusive);
    client.admin().declare_group(group).await?;
    let exclusive = || {
        client
            .consume(lot.clone(), "auctioneer")
            .mode(ConsumeMode::Exclusive)
    };
    let mut first = exclusive().subscribe().await?;
    say("auctioneer-a", "active on lot 7");
    let mut second = exclusive().standby(true).subscribe().await?;
    say("auctioneer-b", "standing by");

    place(&client, &lot, &EARLY_BIDS).await?;
    let mut record: Option<Bid> = None;
    let mut judged = Vec::new();
    for _ in 0..FIRST_SHIFT {
        let delivery = next_bid(&mut first).await?;
        judged.push(judge("auctioneer-a", &delivery, &mut record)?);
        delivery.ack();
    }
    let in_hand = next_bid(&mut first).await?;
    let held = Bid::parse(&in_hand)?;
    say(
        "auctioneer-a",
        format!(
            "stops with {}'s bid of {} in hand, unacked",
            held.bidder, held.amount
        ),
    );
    // Settle what was acked, then go: the bid in hand returns to the group for the standby.
    first.close().await;
    drop(in_hand);

    place(&client, &lot, &LATE_BIDS).await?;
    say("auctioneer-b", "takes over");
    let remaining = EARLY_BIDS.len() + LATE_BIDS.len() - FIRST_SHIFT;
    for _ in 0..remaining {
        let delivery = next_bid(&mut second).await?;
        judged.push(judge("auctioneer-b", &delivery, &mut record)?);
        delivery.ack();
    }
    second.close().await;
    client.admin().delete_group(lot, "auctioneer").await?;

    let winner = record.ok_or("no bids")?;
    let by = |auctioneer| judged.iter().filter(|j| j.auctioneer == auctioneer).count();
    println!(
        "summary: lot 7 goes to {} for {} ({} bids: {} judged by auctioneer-a, {} by auctioneer-b after the takeover)",
        winner.bidder,
        winner.amount,
        judged.len(),
        by("auctioneer-a"),
        by("auctioneer-b")
    );
    Ok(Outcome { winner, judged })
}

impl Bid {
    fn parse(delivery: &Delivery) -> Result<Self, BoxError> {
        let text = std::str::from_utf8(&delivery.message().payload)?;
        let (bidder, amount) = text.split_once(' ').ok_or("a bid is `bidder amount`")?;
        Ok(Self {
            bidder: bidder.to_owned(),
            amount: amount.parse()?,
        })
    }
}

/// Places bids in order, one Publish each, as separate bidders would.
async fn place(client: &Client, lot: &str, bids: &[(&str, u32)]) -> Result<(), BoxError> {
    for (bidder, amount) in bids {
        client
            .publish_with(OutgoingMessage::new(lot, format!("{bidder} {amount}")).key(*bidder))
            .await?;
        say("bidder", format!("{bidder} bids {amount}"));
    }
    Ok(())
}

async fn next_bid(auctioneer: &mut Consumer) -> Result<Delivery, BoxError> {
    Ok(within("the next bid", auctioneer.next())
        .await?
        .ok_or("the auctioneer's stream ended")??)
}

/// Compares a bid with the standing one: only a strictly higher bid takes the lead, so of two equal
/// bids the earlier keeps it (and a bid judged twice changes nothing).
fn judge(
    auctioneer: &'static str,
    delivery: &Delivery,
    record: &mut Option<Bid>,
) -> Result<Judged, BoxError> {
    let bid = Bid::parse(delivery)?;
    let attempt = delivery.attempt();
    let retried = if attempt > 1 {
        format!(" (redelivered, attempt {attempt})")
    } else {
        String::new()
    };
    let (leads, verdict) = match record.as_ref() {
        Some(best) if bid.amount == best.amount => (
            false,
            format!("ties {}, who bid first and keeps the lead", best.bidder),
        ),
        Some(best) if bid.amount < best.amount => {
            (false, format!("is below {}'s {}", best.bidder, best.amount))
        }
        _ => (true, "takes the lead".to_owned()),
    };
    say(
        auctioneer,
        format!("{} bids {}{retried}: {verdict}", bid.bidder, bid.amount),
    );
    if leads {
        *record = Some(bid.clone());
    }
    Ok(Judged {
        auctioneer,
        bid,
        attempt,
        leads,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::main(run).await
}
