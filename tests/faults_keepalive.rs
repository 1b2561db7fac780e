//! A consumer that goes silent without closing its socket: HTTP/2 keepalive notices it, its stream is
//! freed, and what it held goes back to the group within the keepalive interval plus timeout.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{proxy::SilentProxy, *};
use switchyard::config::Config;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(1);

/// A consumer behind a proxy that stops forwarding bytes (no FIN, no reset) loses its consumer slot
/// within keepalive interval + timeout (plus slack), long before its 60 s ack deadline, and another
/// consumer then gets everything: the deliveries it had read, the ones still on their way to it, and
/// the ones it never got.
#[tokio::test]
async fn a_silent_consumer_is_dropped_by_keepalive_and_its_deliveries_return() {
    let server = TestServer::with_config(Config {
        keepalive_interval: INTERVAL,
        keepalive_timeout: TIMEOUT,
        ..test_config()
    })
    .await;
    let proxy = SilentProxy::start(server.addr).await;
    let topic = unique("faults.silent");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;

    let mut silent_broker = Broker::new(faults::connect(proxy.addr).await);
    let mut silent = consume_ok(
        &mut silent_broker,
        consume_with(&topic, "workers", 8, 60_000),
    )
    .await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..20)).await;
    let read = sorted_numbers(&next_deliveries(&mut silent, 3).await);
    wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "8 in flight to one consumer",
        |g| (g.consumers, g.in_flight, g.ready) == (1, 8, 12),
    )
    .await;

    proxy.go_silent();
    let silenced = Instant::now();
    let freed = wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "no consumer, all 20 ready",
        |g| (g.consumers, g.in_flight, g.ready) == (0, 0, 20),
    )
    .await;
    let detected = silenced.elapsed();
    println!("silent consumer dropped {detected:?} after its connection went silent");
    assert!(
        detected <= INTERVAL + TIMEOUT + SLACK,
        "keepalive {INTERVAL:?} + {TIMEOUT:?} took {detected:?} to drop a silent consumer"
    );
    assert_eq!(freed.redelivered, 0, "nothing has been redelivered yet");

    let mut rescuer = consume_ok(&mut broker, consume_with(&topic, "workers", 100, 60_000)).await;
    let rescued = next_deliveries(&mut rescuer, 20).await;
    ack_all(&mut broker, &rescued).await;
    assert_eq!(sorted_numbers(&rescued), (0..20).collect::<Vec<_>>());
    let again: BTreeSet<usize> = rescued
        .iter()
        .filter(|d| d.attempt == 2)
        .map(delivery_number)
        .collect();
    assert_eq!(
        again.len(),
        8,
        "the silent consumer's 8 come back as attempt 2"
    );
    assert!(
        read.iter().all(|n| again.contains(n)),
        "the deliveries it read ({read:?}) are among the redelivered ({again:?})"
    );
    wait_for_group(&mut admin, &topic, "workers", "all acked", |g| {
        (g.acked, g.redelivered, g.in_flight, g.ready) == (20, 8, 0, 0)
    })
    .await;
    drop(silent);
}
