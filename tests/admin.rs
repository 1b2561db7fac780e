//! The Admin service (declare, list, delete groups), the standard health check and reflection, and
//! the server's own lifecycle: shutdown ends streams and `server::run` returns.

mod common;

use std::time::Duration;

use common::*;
use switchyard::{config::Config, pb};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// A DeclareGroup request with the given mode and limits.
fn declaration(
    topic: &str,
    group: &str,
    mode: pb::ConsumeMode,
    max_length: u32,
) -> pb::DeclareGroupRequest {
    pb::DeclareGroupRequest {
        topic: topic.to_owned(),
        group: group.to_owned(),
        mode: mode.into(),
        max_length,
        ack_deadline_ms: 10_000,
        max_deliveries: 5,
        dead_letter_topic: format!("{topic}.dead"),
        max_bytes: 0,
    }
}

/// A declared group is listed with its mode and zero counts, and the counts follow its traffic.
#[tokio::test]
async fn declared_group_is_listed_with_its_mode_and_counts() {
    let server = TestServer::start().await;
    let topic = unique("admin.list");
    let mut admin = server.admin().await;
    let mut broker = server.broker().await;
    declare_ok(
        &mut admin,
        declaration(&topic, "reports", pb::ConsumeMode::Exclusive, 100),
    )
    .await;

    let info = group_info(&mut admin, &topic, "reports")
        .await
        .expect("the declared group is listed");
    assert_eq!(info.mode, i32::from(pb::ConsumeMode::Exclusive), "{info:?}");
    let counts = |g: &pb::GroupInfo| {
        (
            g.ready,
            g.in_flight,
            g.consumers,
            g.delivered,
            g.acked,
            g.redelivered,
            g.dead_lettered,
        )
    };
    assert_eq!(
        counts(&info),
        (0, 0, 0, 0, 0, 0, 0),
        "a new group: {info:?}"
    );

    publish_ok(&mut broker, numbered_batch(&topic, 0..3)).await;
    wait_for_group(&mut admin, &topic, "reports", "3 ready", |g| {
        counts(g) == (3, 0, 0, 0, 0, 0, 0)
    })
    .await;

    let request = pb::ConsumeRequest {
        mode: pb::ConsumeMode::Exclusive.into(),
        prefetch: 2,
        ..consume_request(&topic, "reports")
    };
    let mut stream = consume_ok(&mut broker, request).await;
    let held = next_deliveries(&mut stream, 2).await;
    wait_for_group(&mut admin, &topic, "reports", "2 in flight", |g| {
        counts(g) == (1, 2, 1, 2, 0, 0, 0)
    })
    .await;

    ack_all(&mut broker, &held[..1]).await;
    let third = next_delivery(&mut stream).await;
    wait_for_group(&mut admin, &topic, "reports", "1 acked", |g| {
        counts(g) == (0, 2, 1, 3, 1, 0, 0)
    })
    .await;
    nack(&mut broker, &held[1], 0).await;
    let again = next_delivery(&mut stream).await;
    assert_eq!(again.attempt, 2);
    wait_for_group(&mut admin, &topic, "reports", "1 redelivered", |g| {
        counts(g) == (0, 2, 1, 4, 1, 1, 0)
    })
    .await;
    ack_all(&mut broker, &[third, again]).await;
    wait_for_group(&mut admin, &topic, "reports", "all acked", |g| {
        counts(g) == (0, 0, 1, 4, 3, 1, 0)
    })
    .await;

    drop(stream);
    wait_for_group(&mut admin, &topic, "reports", "no consumers", |g| {
        g.consumers == 0
    })
    .await;
}

/// Declaring an existing group again with the same settings succeeds; with other settings it is
/// FAILED_PRECONDITION.
/// A group declared with `max_bytes` reports what it holds in `bytes`, and a batch that would pass
/// the limit is RESOURCE_EXHAUSTED naming the message, the group and `max_bytes`, routing nothing.
/// Cluster mode refuses the setting (UNIMPLEMENTED, naming it): JetStream does not count a
/// group's bytes (README, CLUSTERING).
#[tokio::test]
async fn a_group_refuses_batches_past_its_max_bytes_but_cluster_mode_refuses_max_bytes() {
    let server = TestServer::start().await;
    let topic = unique("admin.bytes");
    let mut admin = server.admin().await;
    let mut broker = server.broker().await;
    if cluster_mode() {
        let declared = admin
            .declare_group(pb::DeclareGroupRequest {
                max_bytes: 2_500,
                ..declaration(&topic, "capped", pb::ConsumeMode::Shared, 1_000)
            })
            .await;
        assert_status(declared, Code::Unimplemented, &["max_bytes"]);
        return;
    }
    declare_ok(
        &mut admin,
        pb::DeclareGroupRequest {
            max_bytes: 2_500,
            ..declaration(&topic, "capped", pb::ConsumeMode::Shared, 1_000)
        },
    )
    .await;
    // Each 512-byte message is charged a little more than its payload: three fit, four do not.
    let payload = vec![b'x'; 512];
    let three = (0..3).map(|_| message(&topic, payload.clone())).collect();
    publish_ok(&mut broker, three).await;
    let info = group_info(&mut admin, &topic, "capped")
        .await
        .expect("listed");
    assert!(
        info.bytes > 3 * 512 && info.bytes <= 2_500,
        "three messages of 512 bytes are charged {}",
        info.bytes
    );
    let status = assert_status(
        publish(&mut broker, vec![message(&topic, payload.clone())]).await,
        Code::ResourceExhausted,
        &["messages[0]", "capped", "max_bytes"],
    );
    let after = group_info(&mut admin, &topic, "capped")
        .await
        .expect("listed");
    assert_eq!((after.ready, after.bytes), (3, info.bytes), "{status:?}");

    // A different max_bytes for the same group is a conflict naming the setting.
    assert_status(
        admin
            .declare_group(pb::DeclareGroupRequest {
                max_bytes: 4_000,
                ..declaration(&topic, "capped", pb::ConsumeMode::Shared, 1_000)
            })
            .await,
        Code::FailedPrecondition,
        &["max_bytes"],
    );
}

#[tokio::test]
async fn declaring_a_group_again_is_idempotent() {
    let server = TestServer::start().await;
    let topic = unique("admin.redeclare");
    let mut admin = server.admin().await;
    let settings = declaration(&topic, "twice", pb::ConsumeMode::Shared, 50);
    declare_ok(&mut admin, settings.clone()).await;
    declare_ok(&mut admin, settings.clone()).await;

    let listed = within("ListGroups", admin.list_groups(pb::ListGroupsRequest {}))
        .await
        .expect("ListGroups succeeds")
        .into_inner()
        .groups;
    let matching = listed
        .iter()
        .filter(|g| g.topic == topic && g.group == "twice")
        .count();
    assert_eq!(matching, 1, "declared twice, listed once: {listed:?}");

    let different = pb::DeclareGroupRequest {
        max_length: 51,
        ..settings
    };
    let result = within("DeclareGroup", admin.declare_group(different)).await;
    assert_status(result, Code::FailedPrecondition, &[]);
}

/// A group created by Consume alone is removed once it has been idle (no consumers, no messages) for
/// `group_idle_timeout`; a declared group stays.
#[tokio::test]
async fn idle_groups_created_by_consume_are_removed() {
    let config = Config {
        group_idle_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let topic = unique("admin.idle");
    let mut admin = server.admin().await;
    let mut broker = server.broker().await;
    declare_ok(
        &mut admin,
        declaration(&topic, "declared", pb::ConsumeMode::Shared, 0),
    )
    .await;
    let stream = consume_ok(&mut broker, consume_request(&topic, "casual")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        group_info(&mut admin, &topic, "casual").await.is_some(),
        "a group with a consumer is not idle"
    );
    drop(stream);
    within("the idle group to be removed", async {
        while group_info(&mut admin, &topic, "casual").await.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        group_info(&mut admin, &topic, "declared").await.is_some(),
        "a declared group is never removed for idleness"
    );
}

/// However short `group_idle_timeout` is, a group that Consume makes is not removed as idle
/// before its consumer has joined it: each of many Consumes at once (which keeps the broker busy
/// between making a group and joining it) succeeds and gets what is published.
#[tokio::test]
async fn a_consume_keeps_the_group_it_makes_however_short_the_idle_timeout() {
    let config = Config {
        group_idle_timeout: Duration::from_millis(1),
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let rounds = (0..24).map(|round| {
        let server = &server;
        async move {
            let mut broker = server.broker().await;
            let topic = unique("admin.fresh");
            let mut stream = consume_ok(&mut broker, consume_request(&topic, "casual")).await;
            publish_ok(&mut broker, vec![numbered(&topic, round, 8)]).await;
            let delivery = next_delivery(&mut stream).await;
            assert_eq!(delivery_number(&delivery), round, "consumer {round}");
            ack_all(&mut broker, &[delivery]).await;
        }
    });
    futures_util::future::join_all(rounds).await;
}

/// Deleting a group that does not exist is NOT_FOUND.
#[tokio::test]
async fn deleting_an_unknown_group_is_not_found() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let request = pb::DeleteGroupRequest {
        topic: unique("admin.ghost"),
        group: "ghost".into(),
    };
    assert_status(
        within("DeleteGroup", admin.delete_group(request)).await,
        Code::NotFound,
        &[],
    );
}

/// Deleting a group ends its consumers' streams with NOT_FOUND, drops its messages and unlists it;
/// a later Consume starts a new, empty group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_ends_its_consumers_with_not_found() {
    let server = TestServer::start().await;
    let topic = unique("admin.delete");
    let mut admin = server.admin().await;
    let mut broker = server.broker().await;
    let mut first = consume_ok(&mut broker, consume_request(&topic, "doomed")).await;
    let mut second = consume_ok(&mut broker, consume_request(&topic, "doomed")).await;
    let mut other = consume_ok(&mut broker, consume_request(&topic, "survivor")).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..3)).await;
    wait_for_group(&mut admin, &topic, "doomed", "3 delivered", |g| {
        g.delivered == 3
    })
    .await;

    let request = pb::DeleteGroupRequest {
        topic: topic.clone(),
        group: "doomed".into(),
    };
    within("DeleteGroup", admin.delete_group(request.clone()))
        .await
        .expect("DeleteGroup of an existing group succeeds");
    for stream in [&mut first, &mut second] {
        let status = end_status(stream, "the deleted group's consumer stream to end").await;
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    assert!(
        group_info(&mut admin, &topic, "doomed").await.is_none(),
        "the deleted group is unlisted"
    );
    let result = within("DeleteGroup", admin.delete_group(request)).await;
    assert_status(result, Code::NotFound, &[]);

    // The other group on the topic is untouched.
    assert_eq!(next_deliveries(&mut other, 3).await.len(), 3);
    let mut reborn = consume_ok(&mut broker, consume_request(&topic, "doomed")).await;
    assert_quiet(&mut reborn, QUIET, "a group recreated after deletion").await;
}

/// The standard health check reports the server as SERVING.
#[tokio::test]
async fn health_check_reports_serving() {
    let server = TestServer::start().await;
    let mut health = server.health().await;
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let response = within("Health.Check", health.check(request))
        .await
        .expect("Health.Check succeeds")
        .into_inner();
    assert_eq!(response.status, i32::from(ServingStatus::Serving));
}

/// Shutdown ends open subscription streams and `server::run` returns Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams_and_returns() {
    let server = TestServer::start().await;
    let topic = unique("admin.shutdown");
    let mut broker = server.broker().await;
    let mut subscription = subscribe_ok(&mut broker, &topic).await;
    let mut deliveries = consume_ok(&mut broker, consume_request(&topic, "g")).await;
    publish_one(&mut broker, &topic, "before").await;
    next_message(&mut subscription).await;
    next_delivery(&mut deliveries).await;

    server
        .shutdown()
        .await
        .expect("server::run returns Ok after shutdown");
    let ended = within("the subscription to end", async {
        while let Ok(Some(_)) = subscription.message().await {}
    });
    ended.await;
    within("the consumer stream to end", async {
        while let Ok(Some(_)) = deliveries.message().await {}
    })
    .await;
}

/// Reflection (grpc.reflection.v1) lists the Broker and Admin services.
#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::start().await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = within(
        "ServerReflectionInfo",
        reflection.server_reflection_info(tokio_stream::iter([request])),
    )
    .await
    .expect("ServerReflectionInfo succeeds")
    .into_inner();
    let response = next_item(&mut responses, "the reflection answer").await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in ["switchyard.v1.Broker", "switchyard.v1.Admin"] {
        assert!(names.contains(&service), "{service} in {names:?}");
    }
}
