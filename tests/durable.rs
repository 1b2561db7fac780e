//! Durable mode across crashes, with real broker processes killed by SIGKILL and started again on
//! the same data directory: declared groups keep their settings, an acked message never comes back,
//! what was in flight comes back with its attempt raised (so `max_deliveries` still catches a poison
//! message), exclusive groups keep publish order, rejects and nack delays hold, deleted groups stay
//! deleted, and a data directory that cannot be used is refused at once with status 2. A broker
//! whose log failed refuses writes and reports NOT_SERVING.
//!
//! The crash loop with many clients is tests/crash.rs; these are the single promises, one by one.

mod common;

use std::{path::Path, pin::Pin, sync::Arc, time::Duration};

use common::{
    process::{BrokerProcess, run, switchyard},
    *,
};
use switchyard::{
    budget::MemoryBudget,
    error::BrokerError,
    journal::{self, Journal, Receipt, replay::Recovered},
    memory::MemoryBroker,
    pb, server,
    storage::Usage,
};
use tokio::{net::TcpListener, sync::oneshot, time::Instant};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A durable broker on `dir`, ready to serve.
async fn start(dir: &Path) -> BrokerProcess {
    let dir = dir.to_str().expect("a UTF-8 temporary path");
    BrokerProcess::start(&["--data-dir", dir]).await
}

async fn clients(broker: &BrokerProcess) -> (Broker, Admin) {
    let channel = broker.channel().await;
    (Broker::new(channel.clone()), Admin::new(channel))
}

fn dead_letters_to(
    topic: &str,
    group: &str,
    max_deliveries: u32,
    dead: &str,
) -> pb::DeclareGroupRequest {
    pb::DeclareGroupRequest {
        max_deliveries,
        dead_letter_topic: dead.to_owned(),
        ..declaration(topic, group)
    }
}

/// Settings, acks and attempts after a crash: the group is there with what it was declared with,
/// the acked message is gone, the ones in flight come back first as attempt 2, the rest as attempt 1.
#[tokio::test]
async fn a_crash_keeps_settings_and_acks_and_raises_the_attempt_of_what_was_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let declared = pb::DeclareGroupRequest {
        max_length: 50,
        ack_deadline_ms: 7000,
        max_bytes: 1 << 20,
        ..dead_letters_to("jobs.>", "workers", 5, "dead.jobs")
    };
    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    declare_ok(&mut admin, declared.clone()).await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..5)).await;
    let mut stream = consume_ok(&mut client, consume_with("jobs.>", "workers", 2, 0)).await;
    let taken = next_deliveries(&mut stream, 2).await;
    assert_eq!(sorted_numbers(&taken), [0, 1]);
    ack_all(&mut client, &taken[..1]).await;
    // The ack made room: message 2 goes out too before the crash.
    let third = next_delivery(&mut stream).await;
    assert_eq!(delivery_number(&third), 2);
    broker.kill().await;

    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    let info = group_info(&mut admin, "jobs.>", "workers")
        .await
        .expect("the declared group is back");
    assert_eq!((info.ready, info.in_flight), (4, 0), "{info:?}");
    declare_ok(&mut admin, declared.clone()).await;
    let changed = pb::DeclareGroupRequest {
        max_length: 51,
        ..declared
    };
    assert_status(
        within("DeclareGroup", admin.declare_group(changed)).await,
        Code::FailedPrecondition,
        &["max_length", "50"],
    );
    let mut stream = consume_ok(&mut client, consume_with("jobs.>", "workers", 10, 0)).await;
    let again = next_deliveries(&mut stream, 4).await;
    let seen: Vec<(usize, u32)> = again
        .iter()
        .map(|delivery| (delivery_number(delivery), delivery.attempt))
        .collect();
    assert_eq!(seen, [(1, 2), (2, 2), (3, 1), (4, 1)]);
    assert!(
        again.iter().all(|delivery| taken
            .iter()
            .all(|before| before.delivery_id != delivery.delivery_id)),
        "delivery ids are new after a restart"
    );
    // An id of the run before settles nothing now.
    assert_eq!(
        ack_ids(&mut client, &[taken[1].delivery_id.as_str()]).await,
        vec![taken[1].delivery_id.clone()]
    );
    ack_all(&mut client, &again).await;
    broker.stop(Duration::from_secs(5)).await;

    let broker = start(dir.path()).await;
    let (_, mut admin) = clients(&broker).await;
    let info = group_info(&mut admin, "jobs.>", "workers").await.unwrap();
    assert_eq!((info.ready, info.in_flight), (0, 0), "{info:?}");
}

/// A message that kills the broker each time it is delivered is dead-lettered after
/// `max_deliveries`: every delivery counted, though no consumer ever settled it.
#[tokio::test]
async fn a_poison_message_is_dead_lettered_though_each_delivery_ends_in_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    declare_ok(&mut admin, dead_letters_to("work.>", "w", 2, "dlq.work")).await;
    declare_ok(&mut admin, declaration("dlq.>", "dead")).await;
    publish_one(&mut client, "work.poison", "boom").await;
    drop((client, admin));
    let mut broker = Some(broker);
    for attempt in 1..=2 {
        let running = match broker.take() {
            Some(running) => running,
            None => start(dir.path()).await,
        };
        let (mut client, _) = clients(&running).await;
        let mut stream = consume_ok(&mut client, consume_with("work.>", "w", 1, 0)).await;
        let delivery = next_delivery(&mut stream).await;
        assert_eq!(delivery.attempt, attempt);
        running.kill().await;
    }
    let running = start(dir.path()).await;
    let (mut client, mut admin) = clients(&running).await;
    wait_for_group(&mut admin, "work.>", "w", "empty", |g| {
        g.ready + g.in_flight == 0
    })
    .await;
    let mut dead = consume_ok(&mut client, consume_request("dlq.>", "dead")).await;
    let letter = next_delivery(&mut dead).await;
    let message = letter.message.expect("a dead letter carries its message");
    assert_eq!(&message.payload[..], b"boom");
    assert_eq!(message.headers["x-dead-letter-reason"], "max-deliveries");
    assert_eq!(message.headers["x-delivery-attempts"], "2");
}

/// An exclusive consumer sees publish order across a crash: what was in flight first, then the rest.
#[tokio::test]
async fn exclusive_order_holds_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    declare_ok(
        &mut admin,
        pb::DeclareGroupRequest {
            mode: pb::ConsumeMode::Exclusive.into(),
            ..declaration("bids.>", "auction")
        },
    )
    .await;
    for batch in 0..4 {
        publish_ok(
            &mut client,
            numbered_batch("bids.x", batch * 5..batch * 5 + 5),
        )
        .await;
    }
    let mut request = consume_with("bids.>", "auction", 5, 0);
    request.mode = pb::ConsumeMode::Exclusive.into();
    let mut stream = consume_ok(&mut client, request.clone()).await;
    let taken = next_deliveries(&mut stream, 5).await;
    assert_eq!(sorted_numbers(&taken), [0, 1, 2, 3, 4]);
    ack_all(&mut client, &taken[..3]).await;
    broker.kill().await;

    let broker = start(dir.path()).await;
    let (mut client, _) = clients(&broker).await;
    request.prefetch = 100;
    let mut stream = consume_ok(&mut client, request).await;
    let order: Vec<usize> = next_deliveries(&mut stream, 17)
        .await
        .iter()
        .map(delivery_number)
        .collect();
    assert_eq!(order, (3..20).collect::<Vec<_>>());
}

/// A reject moves the message to the dead-letter topic's group, and a nack delay still holds after
/// a crash; a deleted group stays deleted.
#[tokio::test]
async fn rejects_nack_delays_and_deletions_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    declare_ok(&mut admin, dead_letters_to("tasks.>", "t", 0, "dlq.tasks")).await;
    declare_ok(&mut admin, declaration("dlq.>", "dead")).await;
    declare_ok(&mut admin, declaration("gone.>", "g")).await;
    publish_ok(&mut client, numbered_batch("tasks.a", 0..2)).await;
    publish_one(&mut client, "gone.a", "x").await;
    delete_ok(&mut admin, "gone.>", "g").await;
    let mut stream = consume_ok(&mut client, consume_with("tasks.>", "t", 2, 0)).await;
    let taken = next_deliveries(&mut stream, 2).await;
    let (rejected, nacked) = match delivery_number(&taken[0]) {
        0 => (&taken[0], &taken[1]),
        _ => (&taken[1], &taken[0]),
    };
    let unknown = settle(
        &mut client,
        pb::AckRequest {
            reject_ids: vec![rejected.delivery_id.clone()],
            nack_ids: vec![nacked.delivery_id.clone()],
            nack_delay_ms: 3000,
            ..Default::default()
        },
    )
    .await
    .expect("Ack succeeds");
    assert!(unknown.is_empty(), "{unknown:?}");
    let nacked_at = Instant::now();
    broker.kill().await;

    let broker = start(dir.path()).await;
    let (mut client, mut admin) = clients(&broker).await;
    assert!(group_info(&mut admin, "gone.>", "g").await.is_none());
    let info = group_info(&mut admin, "dlq.>", "dead").await.unwrap();
    assert_eq!(
        info.ready, 1,
        "the rejected message is in the dead-letter group: {info:?}"
    );
    let info = group_info(&mut admin, "tasks.>", "t").await.unwrap();
    assert_eq!(info.ready, 1, "only the nacked message is left: {info:?}");
    let mut stream = consume_ok(&mut client, consume_with("tasks.>", "t", 2, 0)).await;
    let back = within_for(
        Duration::from_secs(3) + WAIT,
        "the nacked message",
        stream.message(),
    )
    .await
    .expect("the stream goes on")
    .expect("a delivery");
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(2900),
        "delivered {:?} after a nack of 3 s",
        nacked_at.elapsed()
    );
    assert_eq!((delivery_number(&back), back.attempt), (1, 2));
}

/// A data directory that is a file, or missing, is refused at once, naming it, with status 2.
#[tokio::test]
async fn a_data_dir_that_cannot_be_used_is_refused_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for (path, reason) in [
        (file.clone(), "not a directory"),
        (dir.path().join("missing"), "No such file"),
    ] {
        let path = path.to_str().unwrap().to_owned();
        let output = run(
            switchyard(["serve", "--listen", "127.0.0.1:0", "--data-dir", &path]),
            None,
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = output.stderr.join("\n");
        assert!(
            stderr.contains(&path) && stderr.contains(reason),
            "{stderr}"
        );
    }
}

/// Bytes of the segment files in a data directory.
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or_default()
}

/// Disk follows what is held: once a churning group's messages are acked, the segments they filled
/// are deleted, while what another group still holds is restated and survives a crash after that.
#[tokio::test]
async fn disk_is_reclaimed_after_acks_and_what_is_held_survives_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let args = ["--data-dir", path.as_str(), "--segment-bytes", "65536"];
    let broker = BrokerProcess::start(&args).await;
    let (mut client, mut admin) = clients(&broker).await;
    declare_ok(&mut admin, declaration("held.>", "keep")).await;
    declare_ok(&mut admin, declaration("churn.>", "busy")).await;
    publish_ok(&mut client, numbered_batch("held.a", 0..300)).await;
    let mut stream = consume_ok(&mut client, consume_with("churn.>", "busy", 100, 0)).await;
    for batch in 0..20 {
        let messages = (batch * 100..batch * 100 + 100)
            .map(|n| numbered("churn.a", n, 1024))
            .collect();
        publish_ok(&mut client, messages).await;
        let taken = next_deliveries(&mut stream, 100).await;
        ack_all(&mut client, &taken).await;
    }
    let churned = log_bytes(dir.path());
    assert!(churned > 2_000_000, "2 MB went through the log: {churned}");
    let deadline = Instant::now() + WAIT + SLACK;
    while log_bytes(dir.path()) > 512 * 1024 {
        assert!(
            Instant::now() < deadline,
            "the log still takes {} bytes, with 300 small messages held",
            log_bytes(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.kill().await;

    let broker = BrokerProcess::start(&args).await;
    let (mut client, mut admin) = clients(&broker).await;
    let held = group_info(&mut admin, "held.>", "keep").await.unwrap();
    assert_eq!(held.ready, 300, "{held:?}");
    let busy = group_info(&mut admin, "churn.>", "busy").await.unwrap();
    assert_eq!(busy.ready + busy.in_flight, 0, "{busy:?}");
    let mut stream = consume_ok(&mut client, consume_with("held.>", "keep", 300, 0)).await;
    let order: Vec<usize> = next_deliveries(&mut stream, 300)
        .await
        .iter()
        .map(delivery_number)
        .collect();
    assert_eq!(order, (0..300).collect::<Vec<_>>());
}

/// A log that has failed, as after an fsync error: it refuses every record, and says so.
#[derive(Debug)]
struct FailedJournal;

const FAILURE: &str = "fsync of /data/wal/00000000000000000001.wal failed (injected)";

impl Journal for FailedJournal {
    fn record(&self, _event: journal::Event) -> Receipt {
        Receipt::refused(BrokerError::StorageFailed {
            reason: FAILURE.into(),
        })
    }

    fn failed(&self) -> Pin<Box<dyn Future<Output = String> + Send>> {
        Box::pin(std::future::ready(FAILURE.to_owned()))
    }

    fn usage(&self) -> Usage {
        Usage::default()
    }

    fn rotate(&self) -> journal::Answer<u64> {
        Box::pin(std::future::ready(Err(BrokerError::StorageFailed {
            reason: FAILURE.into(),
        })))
    }

    fn remove_before(&self, _mark: u64) -> journal::Answer<()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Once its log has failed, the broker refuses what would need a record, with UNAVAILABLE naming
/// the failure, and the server's health turns NOT_SERVING, so a load balancer or an operator sees it.
#[tokio::test]
async fn a_broker_whose_log_failed_refuses_writes_and_reports_not_serving() {
    let config = test_config();
    let budget = Arc::new(MemoryBudget::new(config.max_memory_bytes));
    let broker = MemoryBroker::with_journal(
        config.clone(),
        budget,
        Arc::new(FailedJournal),
        Recovered::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, broker, config, async move {
        let _ = stopped.await;
    }));
    let channel = faults::connect(addr).await;
    let mut health = HealthClient::new(channel.clone());
    let deadline = Instant::now() + WAIT;
    loop {
        let status = within(
            "Health.Check",
            health.check(HealthCheckRequest {
                service: "switchyard.v1.Broker".into(),
            }),
        )
        .await
        .expect("Health.Check succeeds")
        .into_inner()
        .status;
        if status == i32::from(ServingStatus::NotServing) {
            break;
        }
        assert!(Instant::now() < deadline, "health is still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut admin = Admin::new(channel.clone());
    assert_status(
        within(
            "DeclareGroup",
            admin.declare_group(declaration("jobs.>", "w")),
        )
        .await,
        Code::Unavailable,
        &["injected"],
    );
    let mut client = Broker::new(channel);
    // Fan-out needs no record: a message no group takes is still routed.
    publish_one(&mut client, "news.a", "live").await;
}

/// A broker embedded in a process (as `server::run`) lets go of its data directory once it has
/// shut down: the next one on the same directory starts, and finds what the first kept.
#[tokio::test]
async fn an_embedded_broker_releases_its_directory_at_shutdown() {
    let dir = tempfile::tempdir().expect("a data directory");
    let config = || switchyard::config::Config {
        data_dir: Some(dir.path().to_owned()),
        ..test_config()
    };
    let first = TestServer::with_config(config()).await;
    let mut admin = first.admin().await;
    declare_ok(&mut admin, declaration("kept.>", "workers")).await;
    drop(admin);
    within("the first broker's shutdown", first.shutdown())
        .await
        .expect("a clean shutdown");
    let second = TestServer::with_config(config()).await;
    let groups = within(
        "list groups",
        second.admin().await.list_groups(pb::ListGroupsRequest {}),
    )
    .await
    .expect("the second broker serves")
    .into_inner()
    .groups;
    assert_eq!(groups.len(), 1, "{groups:?}");
}
