//! Group administration through the client: declare (idempotent, refusing a different setting), list
//! with counters, and delete (which ends the group's consumers).

mod common;

use std::time::Duration;

use common::*;
use switchyard_client::{ConsumeMode, Error, GroupConfig, pb};

/// A declared group is listed with its mode and zero counters, holds messages published before any
/// consumer, and is deleted with them.
#[tokio::test]
async fn declare_list_delete() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let admin = client.admin();
    let topic = unique("images");
    let config = GroupConfig::new(format!("{topic}.>"), "resizers")
        .mode(ConsumeMode::Exclusive)
        .max_length(100)
        .ack_deadline(Duration::from_secs(10))
        .max_deliveries(3)
        .dead_letter_topic(unique("images-dead"));
    within("declare_group", admin.declare_group(config.clone()))
        .await
        .expect("declare_group");
    within("declare_group", admin.declare_group(config.clone()))
        .await
        .expect("declaring an identical group again succeeds");

    let pattern = format!("{topic}.>");
    let info = group_info(&client, &pattern, "resizers")
        .await
        .expect("listed");
    assert_eq!(info.mode, pb::ConsumeMode::Exclusive as i32);
    assert_eq!((info.ready, info.in_flight, info.consumers), (0, 0, 0));

    client
        .publish(format!("{topic}.large"), "img")
        .await
        .expect("publish");
    let info = group_info(&client, &pattern, "resizers")
        .await
        .expect("listed");
    assert_eq!(
        info.ready, 1,
        "a declared group keeps messages without consumers"
    );

    within(
        "delete_group",
        admin.delete_group(pattern.clone(), "resizers"),
    )
    .await
    .expect("delete_group");
    assert!(
        group_info(&client, &pattern, "resizers").await.is_none(),
        "deleted"
    );
    let again = within(
        "delete_group",
        admin.delete_group(pattern.clone(), "resizers"),
    )
    .await
    .expect_err("deleting an unknown group fails");
    assert_eq!(again.code(), Some(tonic::Code::NotFound), "{again}");
}

/// Declaring a group again with a different setting is refused, naming the setting.
#[tokio::test]
async fn redeclare_with_other_settings_is_refused() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("reports");
    let admin = client.admin();
    admin
        .declare_group(GroupConfig::new(topic.clone(), "g").max_deliveries(3))
        .await
        .expect("declare_group");
    let error = within(
        "declare_group",
        admin.declare_group(GroupConfig::new(topic.clone(), "g").max_deliveries(4)),
    )
    .await
    .expect_err("a different max_deliveries");
    assert!(matches!(error, Error::Status(_)), "{error:?}");
    assert_eq!(
        error.code(),
        Some(tonic::Code::FailedPrecondition),
        "{error}"
    );
    assert!(error.to_string().contains("max_deliveries"), "{error}");
}

/// Deleting a group ends its consumer with one `NOT_FOUND` error item, after which the consumer
/// stream ends (and stays ended) instead of reconnecting.
#[tokio::test]
async fn delete_ends_the_consumer() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("doomed");
    let mut consumer = client
        .consume(topic.clone(), "g")
        .subscribe()
        .await
        .expect("consume");
    client
        .admin()
        .delete_group(topic.clone(), "g")
        .await
        .expect("delete_group");
    let error = next_item(&mut consumer, "the end of the consumer")
        .await
        .expect_err("the consumer ends with an error");
    assert_eq!(error.code(), Some(tonic::Code::NotFound), "{error}");
    assert!(
        within(
            "the stream's end",
            futures_util::StreamExt::next(&mut consumer)
        )
        .await
        .is_none()
    );
    assert!(
        within(
            "the stream's end",
            futures_util::StreamExt::next(&mut consumer)
        )
        .await
        .is_none(),
        "polling an ended consumer again is harmless"
    );
}

/// Admin calls refuse bad input with the broker's code.
#[tokio::test]
async fn bad_group_name_is_refused() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let error = within(
        "declare_group",
        client
            .admin()
            .declare_group(GroupConfig::new("orders", "a.b")),
    )
    .await
    .expect_err("a group name is one token");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{error}");
}
