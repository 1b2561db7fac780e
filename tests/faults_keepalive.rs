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
async fn a_silent_consumer_is_dropped_by_keepalive_and_its_deliveries_return_as_attempt_2_with_what_cluster_mode_pulled()
 {
    silent_consumer(Load {
        messages: 20,
        payload_bytes: 10,
        prefetch: 8,
        in_flight_at_least: 8,
    })
    .await;
}

/// The same when what the consumer may hold exceeds its HTTP/2 flow-control window: with 16
/// deliveries of 512 KiB allowed, the server's stream stops taking deliveries once the window is used
/// up (about 8 are in flight, the last waiting in the server for window the silent consumer will
/// never grant), and the ping must still time out. Exactly the deliveries it took come back.
#[tokio::test]
async fn a_silent_consumer_with_full_buffers_is_dropped_by_keepalive_and_cluster_mode_counts_pulls_as_attempts()
 {
    silent_consumer(Load {
        messages: 24,
        payload_bytes: 512 * 1024,
        prefetch: 16,
        in_flight_at_least: 4,
    })
    .await;
}

#[derive(Debug, Clone, Copy)]
struct Load {
    messages: usize,
    payload_bytes: usize,
    prefetch: u32,
    /// In flight to the silent consumer before it goes silent: more than the 3 it reads, so some are
    /// still on their way.
    in_flight_at_least: u64,
}

async fn silent_consumer(load: Load) {
    let Load {
        messages,
        payload_bytes,
        prefetch,
        in_flight_at_least,
    } = load;
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
        consume_with(&topic, "workers", prefetch, 60_000),
    )
    .await;
    // Batches of at most 3 MiB, under the 4 MiB request limit.
    let per_batch = (3 * 1024 * 1024 / payload_bytes).max(1);
    for start in (0..messages).step_by(per_batch) {
        let batch = (start..messages.min(start + per_batch))
            .map(|n| numbered(&topic, n, payload_bytes))
            .collect();
        publish_ok(&mut broker, batch).await;
    }
    let read = sorted_numbers(&next_deliveries(&mut silent, 3).await);
    let total = messages as u64;
    wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "deliveries on the way",
        |g| g.consumers == 1 && g.in_flight >= in_flight_at_least,
    )
    .await;

    proxy.go_silent();
    let silenced = Instant::now();
    let freed = wait_for_group(
        &mut admin,
        &topic,
        "workers",
        "no consumer, all ready",
        |g| (g.consumers, g.in_flight, g.ready) == (0, 0, total),
    )
    .await;
    let detected = silenced.elapsed();
    // Everything it was handed, read or still on the way, and nothing else.
    let held = freed.delivered;
    println!(
        "silent consumer ({held} x {payload_bytes} bytes in flight) dropped {detected:?} after its \
         connection went silent"
    );
    assert!(
        detected <= INTERVAL + TIMEOUT + SLACK,
        "keepalive {INTERVAL:?} + {TIMEOUT:?} took {detected:?} to drop a silent consumer"
    );
    assert_eq!(freed.redelivered, 0, "nothing has been redelivered yet");

    let mut rescuer = consume_ok(&mut broker, consume_with(&topic, "workers", 100, 60_000)).await;
    let rescued = next_deliveries(&mut rescuer, messages).await;
    ack_all(&mut broker, &rescued).await;
    assert_eq!(sorted_numbers(&rescued), (0..messages).collect::<Vec<_>>());
    let again: BTreeSet<usize> = rescued
        .iter()
        .filter(|d| d.attempt == 2)
        .map(delivery_number)
        .collect();
    // In cluster mode a node pulls what the consumer's prefetch allows before the consumer takes
    // it, and JetStream counts each pulled message as an attempt: those pulled for the silent
    // consumer come back as attempt 2 too (a documented difference: README, CLUSTERING).
    let came_back = again.len() as u64;
    match cluster_mode() {
        true => assert!(
            (held..=held.max(u64::from(prefetch))).contains(&came_back),
            "the silent consumer's {held} deliveries, and at most its prefetch, come back as \
             attempt 2: {came_back}"
        ),
        false => assert_eq!(
            came_back, held,
            "the silent consumer's deliveries come back as attempt 2"
        ),
    }
    assert!(
        read.iter().all(|n| again.contains(n)),
        "the deliveries it read ({read:?}) are among the redelivered ({again:?})"
    );
    wait_for_group(&mut admin, &topic, "workers", "all acked", |g| {
        (g.acked, g.redelivered, g.in_flight, g.ready) == (total, came_back, 0, 0)
    })
    .await;
    drop(silent);
}
