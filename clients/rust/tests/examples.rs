//! The examples in `examples/`, run against a test server: each one's outcome is what its story
//! promises.

// Each example is a crate of its own with its own copy of `examples/support`; this test includes
// four of them, so that file is loaded four times, once inside each example's module.
#![allow(clippy::duplicate_mod)]

mod common;

#[allow(dead_code)]
#[path = "../examples/auction_bids.rs"]
mod auction_bids;
#[allow(dead_code)]
#[path = "../examples/image_workers.rs"]
mod image_workers;
#[allow(dead_code)]
#[path = "../examples/orders_fanout.rs"]
mod orders_fanout;
#[allow(dead_code)]
#[path = "../examples/video_transcode.rs"]
mod video_transcode;

use std::time::Duration;

use common::*;

/// `orders_fanout`: every order reaches all four services (two groups, two subscribers), in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_fanout_reaches_all_four_services() {
    let server = TestServer::start().await;
    let outcome = within("orders_fanout", orders_fanout::run(server.client().await))
        .await
        .expect("orders_fanout runs");
    assert_eq!(outcome.orders.len(), 3);
    let services: Vec<&str> = outcome.handled.keys().copied().collect();
    assert_eq!(services, ["analytics", "email", "inventory", "payment"]);
    for (service, orders) in &outcome.handled {
        assert_eq!(
            orders, &outcome.orders,
            "{service} handled every order, in order"
        );
    }
}

/// `image_workers`: with one worker stopping midway with jobs in hand, every job is still done
/// exactly once, and the abandoned job was finished by another worker on a redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_workers_do_every_job_once() {
    let server = TestServer::start().await;
    let outcome = within("image_workers", image_workers::run(server.client().await))
        .await
        .expect("image_workers runs");
    assert_eq!(outcome.done_by.len(), 40, "{outcome:?}");
    assert_eq!(
        (outcome.lost(), outcome.done_twice()),
        (0, 0),
        "{outcome:?}"
    );
    assert!(
        outcome.redelivered >= 1,
        "the abandoned job came back: {outcome:?}"
    );
    let finisher = &outcome.done_by[&outcome.abandoned];
    assert_eq!(finisher.len(), 1);
    assert_ne!(
        finisher[0], "worker-2",
        "another worker finished the abandoned job"
    );
}

/// `auction_bids`: of the two equal early bids the first keeps the lead, the standby takes over with
/// the bid the first auctioneer held, and the highest (first) bid wins.
#[tokio::test]
async fn auction_bids_has_the_right_winner() {
    let server = TestServer::start().await;
    let outcome = within("auction_bids", auction_bids::run(server.client().await))
        .await
        .expect("auction_bids runs");
    let winner = auction_bids::Bid {
        bidder: "frank".to_owned(),
        amount: 175,
    };
    assert_eq!(outcome.winner, winner);
    let order: Vec<&str> = outcome
        .judged
        .iter()
        .map(|j| j.bid.bidder.as_str())
        .collect();
    assert_eq!(
        order,
        ["alice", "bob", "carol", "dave", "erin", "frank", "grace"],
        "bid order"
    );
    let dave = &outcome.judged[3];
    assert_eq!(
        (dave.auctioneer, dave.attempt, dave.leads),
        ("auctioneer-b", 2, false)
    );
    let grace = &outcome.judged[6];
    assert!(!grace.leads, "an equal later bid does not take the lead");
    assert!(
        outcome.judged[..3]
            .iter()
            .all(|j| j.auctioneer == "auctioneer-a")
    );
}

/// `video_transcode`: each request gets its URL back after about a second of work, the two in
/// parallel, and stopping the transcoder leaves both acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_transcode_replies_with_the_url() {
    let server = TestServer::start().await;
    let outcome = within(
        "video_transcode",
        video_transcode::run(server.client().await),
    )
    .await
    .expect("video_transcode runs");
    assert_eq!(
        outcome.urls,
        [
            (
                "uploads/cat.mov".to_owned(),
                "https://cdn.example.com/videos/cat-720p.mp4".to_owned()
            ),
            (
                "uploads/dog.mov".to_owned(),
                "https://cdn.example.com/videos/dog-1080p.mp4".to_owned()
            ),
        ]
    );
    assert!(
        outcome.took >= Duration::from_secs(1),
        "the work takes a second: {:?}",
        outcome.took
    );
    assert!(
        outcome.took < Duration::from_secs(3),
        "both in parallel: {:?}",
        outcome.took
    );
    assert_eq!(
        outcome.acked, 2,
        "both requests acked once the transcoder stopped"
    );
}
