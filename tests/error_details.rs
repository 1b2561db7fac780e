//! Every error status carries google.rpc details (tonic-types reads them): a stable `ErrorInfo`
//! reason in domain `switchyard.dev` with metadata, the offending field as a `BadRequest`
//! violation, and `RetryInfo` where waiting helps; the Rust client reads the reason back.

mod common;

use std::io::Write;

use common::*;
use switchyard::{config::Config, pb};
use switchyard_client::{Client, Error, OutgoingMessage};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The reason and metadata of `status`, which must carry them in the broker's domain.
fn reason(status: &Status) -> (String, std::collections::HashMap<String, String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, "switchyard.dev");
    (info.reason, info.metadata)
}

#[tokio::test]
async fn a_bad_field_a_full_group_and_no_responders_carry_their_reasons() {
    let server = TestServer::start().await;
    let (mut broker, mut admin) = (server.broker().await, server.admin().await);

    let refused = publish(&mut broker, vec![message("ok", "a"), message("", "b")])
        .await
        .expect_err("an empty topic");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused).0, "INVALID_ARGUMENT");
    let violations = refused
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "messages[1].topic", "{violations:?}");

    let topic = unique("details.full");
    let small = pb::DeclareGroupRequest {
        max_length: 1,
        ..declaration(&topic, "workers")
    };
    declare_ok(&mut admin, small).await;
    publish_ok(&mut broker, vec![message(&topic, "fits")]).await;
    let full = publish(&mut broker, vec![message(&topic, "does not")])
        .await
        .expect_err("the group holds one");
    assert_eq!(full.code(), Code::ResourceExhausted);
    let (why, metadata) = reason(&full);
    assert_eq!(why, "GROUP_FULL");
    assert_eq!(metadata["max_length"], "1", "{metadata:?}");
    assert!(
        full.get_details_retry_info().is_some(),
        "the group drains as it is acked"
    );

    let conflict = admin
        .declare_group(pb::DeclareGroupRequest {
            mode: pb::ConsumeMode::Exclusive as i32,
            ..declaration(&topic, "workers")
        })
        .await
        .expect_err("declared shared");
    assert_eq!(reason(&conflict).0, "MODE_MISMATCH");

    let nobody = broker
        .request(pb::RequestRequest {
            message: Some(message("details.nobody", "ping")),
            timeout_ms: 1000,
        })
        .await
        .expect_err("no responders");
    let (why, metadata) = reason(&nobody);
    assert_eq!(
        (why.as_str(), metadata["topic"].as_str()),
        ("NO_RESPONDERS", "details.nobody")
    );

    // The Rust client reads the reasons back, for unary calls and streamed frames alike.
    let client = Client::builder(format!("http://{}", server.addr))
        .connect()
        .await
        .expect("connect");
    let error = client
        .publish(topic.clone(), "still full")
        .await
        .expect_err("the group is full");
    assert_eq!(error.reason().as_deref(), Some("GROUP_FULL"), "{error:?}");
    let error = client
        .request("details.nobody", "ping")
        .send()
        .await
        .expect_err("no responders");
    assert!(matches!(error, Error::NoResponders { .. }), "{error:?}");
    let publisher = client.publisher().build();
    let frame = publisher
        .publish(OutgoingMessage::new(topic, "streamed"))
        .await
        .expect("queued")
        .await
        .expect_err("the group is full");
    assert_eq!(frame.reason().as_deref(), Some("GROUP_FULL"), "{frame:?}");
    // The frame's metadata too, as the unary call's status carries it.
    let Error::Status(status) = &frame else {
        panic!("a refused frame is a status: {frame:?}");
    };
    assert_eq!(reason(status).1, reason(&full).1, "{frame:?}");
}

#[tokio::test]
async fn refused_tokens_carry_their_reasons() {
    let mut file = tempfile::NamedTempFile::new().expect("a token file");
    file.write_all(
        br#"{"tokens": [{"name": "app", "token": "app-token", "publish": {"allow": ["app.>"]}}]}"#,
    )
    .expect("write the token file");
    let config = Config {
        auth_file: Some(file.path().to_owned()),
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let mut anonymous = server.broker().await;
    let refused = publish(&mut anonymous, vec![message("app.x", "a")])
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused).0, "UNAUTHENTICATED");

    let client = Client::builder(format!("http://{}", server.addr))
        .token("app-token")
        .connect()
        .await
        .expect("connect");
    let denied = client
        .publish("elsewhere.x", "a")
        .await
        .expect_err("not an allowed topic");
    assert_eq!(
        denied.reason().as_deref(),
        Some("PERMISSION_DENIED"),
        "{denied:?}"
    );
    let Error::Status(status) = &denied else {
        panic!("expected a status, got {denied:?}");
    };
    let (_, metadata) = reason(status);
    assert_eq!(
        (metadata["action"].as_str(), metadata["topic"].as_str()),
        ("publish", "elsewhere.x")
    );
}
