//! Bearer tokens and per-token permissions over a real loopback server: who is refused
//! (UNAUTHENTICATED), what is forbidden (PERMISSION_DENIED naming the topic and the field), deny
//! winning over allow, batches refused whole, replies from a responder with no publish rights, and
//! admin calls reserved to admin tokens. Health stays open.

mod common;

use std::{io::Write, time::Duration};

use common::*;
use futures_util::StreamExt;
use switchyard::config::Config;
use switchyard_client::{Client, Error, OutgoingMessage};
use tempfile::NamedTempFile;
use tonic::Code;

const TOKENS: &str = r#"{"tokens": [
    {"name": "ops", "token": "ops-token", "admin": true},
    {"name": "orders", "token": "orders-token",
     "publish": {"allow": ["orders.>"], "deny": ["orders.internal.>"]},
     "subscribe": {"allow": ["orders.>"], "deny": ["orders.internal.>"]},
     "consume": {"allow": ["orders.>"]}},
    {"name": "responder", "token": "responder-token",
     "publish": {"allow": []}, "subscribe": {"allow": []}, "consume": {"allow": ["svc.>"]}},
    {"name": "requester", "token": "requester-token",
     "publish": {"allow": ["svc.>"]}, "subscribe": {"allow": []}, "consume": {"allow": []}}
]}"#;

/// A server with [`TOKENS`]. The file must outlive the server's start, so it is returned too.
async fn start() -> (TestServer, NamedTempFile) {
    let mut file = NamedTempFile::new().expect("a temporary token file");
    file.write_all(TOKENS.as_bytes())
        .expect("write the token file");
    let config = Config {
        auth_file: Some(file.path().to_owned()),
        ..test_config()
    };
    (TestServer::with_config(config).await, file)
}

/// A client of `server` sending `token` (none if `None`).
async fn client(server: &TestServer, token: Option<&str>) -> Client {
    let mut builder = Client::builder(format!("http://{}", server.addr));
    if let Some(token) = token {
        builder = builder.token(token);
    }
    within("connect", builder.connect())
        .await
        .expect("connect to the test server")
}

/// The generated client of `server`, sending `token`: for calls the Rust client makes only its own way.
async fn raw_client(
    server: &TestServer,
    token: &str,
) -> switchyard::pb::broker_client::BrokerClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor,
    >,
> {
    let header: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("a header value");
    switchyard::pb::broker_client::BrokerClient::with_interceptor(
        server.channel().await,
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
            Ok(request)
        },
    )
}

/// The status behind a client error, which must have `code`; returns its message.
fn refused<T: std::fmt::Debug>(result: switchyard_client::Result<T>, code: Code) -> String {
    match result {
        Err(Error::Status(status)) if status.code() == code => status.message().to_owned(),
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// A call with no token, or with one the server does not know, is refused before it does anything;
/// health needs no token.
#[tokio::test]
async fn calls_without_a_known_token_are_unauthenticated() {
    let (server, _file) = start().await;
    for token in [None, Some("not-a-token"), Some("orders-tokenx")] {
        let anonymous = client(&server, token).await;
        let message = refused(
            within("Publish", anonymous.publish("orders.created", "x")).await,
            Code::Unauthenticated,
        );
        assert!(
            token.is_none_or(|token| !message.contains(token)),
            "{message}"
        );
        refused(
            within("Subscribe", anonymous.subscribe("orders.>")).await,
            Code::Unauthenticated,
        );
        refused(
            within("ListGroups", anonymous.admin().list_groups()).await,
            Code::Unauthenticated,
        );
    }
    let mut health = server.health().await;
    let check = within(
        "Health.Check",
        health.check(tonic_health::pb::HealthCheckRequest::default()),
    )
    .await;
    assert!(check.is_ok(), "health is open without a token: {check:?}");
}

/// Publishing, subscribing and consuming outside the token's allow lists is PERMISSION_DENIED, with
/// the field and the topic in the message.
#[tokio::test]
async fn forbidden_topics_are_permission_denied_naming_the_topic() {
    let (server, _file) = start().await;
    let orders = client(&server, Some("orders-token")).await;

    let message = refused(
        within("Publish", orders.publish("payments.settled", "x")).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("messages[0].topic"), "{message}");
    assert!(message.contains("payments.settled"), "{message}");

    let message = refused(
        within("Subscribe", orders.subscribe("payments.>")).await,
        Code::PermissionDenied,
    );
    assert!(
        message.starts_with("topic:") && message.contains("payments.>"),
        "{message}"
    );

    let consume = orders.consume("payments.*", "workers").subscribe();
    let message = refused(within("Consume", consume).await, Code::PermissionDenied);
    assert!(
        message.starts_with("topic:") && message.contains("payments.*"),
        "{message}"
    );

    // The allowed ones work.
    within("Publish", orders.publish("orders.created", "x"))
        .await
        .expect("publish to an allowed topic");
    within("Consume", orders.consume("orders.*", "workers").subscribe())
        .await
        .expect("consume an allowed pattern");
}

/// A denied pattern wins over an allowed one that covers it, for topics and for subscriptions that
/// could see a denied topic.
#[tokio::test]
async fn deny_wins_over_allow() {
    let (server, _file) = start().await;
    let orders = client(&server, Some("orders-token")).await;
    let message = refused(
        within("Publish", orders.publish("orders.internal.audit", "x")).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("orders.internal.audit"), "{message}");
    let message = refused(
        within("Subscribe", orders.subscribe("orders.>")).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("orders.>"), "{message}");
    within("Subscribe", orders.subscribe("orders.eu.>"))
        .await
        .expect("a pattern clear of the deny list");
}

/// One forbidden message refuses the whole batch: nothing of it reaches a subscriber.
#[tokio::test]
async fn a_batch_with_a_forbidden_message_publishes_nothing() {
    let (server, _file) = start().await;
    let ops = client(&server, Some("ops-token")).await;
    let orders = client(&server, Some("orders-token")).await;
    let mut watcher = within("Subscribe", ops.subscribe(">"))
        .await
        .expect("ops subscribes");

    let batch = vec![
        OutgoingMessage::new("orders.eu.created", "first"),
        OutgoingMessage::new("payments.settled", "second"),
    ];
    let message = refused(
        within("Publish", orders.publish_batch(batch)).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("messages[1].topic"), "{message}");
    if let Ok(event) = tokio::time::timeout(QUIET, watcher.next()).await {
        panic!("nothing of a refused batch is routed, got {event:?}");
    }

    within("Publish", orders.publish("orders.eu.created", "third"))
        .await
        .expect("an allowed publish");
    let event = within("the allowed message", watcher.next()).await;
    assert!(
        matches!(&event, Some(Ok(switchyard_client::Event::Message(m))) if m.payload == "third"),
        "{event:?}"
    );
}

/// A responder that may only consume its request topic answers requests: a reply to an inbox
/// awaiting one is allowed without publish rights, while an inbox nobody waits on is not. Requests
/// need publish rights on their topic.
#[tokio::test]
async fn a_responder_without_publish_rights_replies_to_inboxes() {
    let (server, _file) = start().await;
    let responder = client(&server, Some("responder-token")).await;
    let serving = tokio::spawn(async move {
        responder
            .serve("svc.echo", "echo", |request| async move {
                Ok::<_, std::convert::Infallible>(request.payload)
            })
            .await
    });
    let requester = client(&server, Some("requester-token")).await;
    let reply = within("the reply", async {
        // The responder joins its group in the background; until then there are no responders.
        loop {
            match requester.request("svc.echo", "ping").send().await {
                Err(Error::NoResponders { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => return other,
            }
        }
    })
    .await
    .expect("the request is answered");
    assert_eq!(reply.payload, "ping");

    let responder = client(&server, Some("responder-token")).await;
    let message = refused(
        within(
            "Publish",
            responder.publish("_INBOX.0123456789abcdef", "forged"),
        )
        .await,
        Code::PermissionDenied,
    );
    assert!(message.contains("_INBOX.0123456789abcdef"), "{message}");

    let message = refused(
        within("Request", requester.request("orders.lookup", "x").send()).await,
        Code::PermissionDenied,
    );
    assert!(
        message.contains("message.topic") && message.contains("orders.lookup"),
        "{message}"
    );
    serving.abort();
}

/// PublishStream is checked frame by frame like Publish: a forbidden frame is answered with
/// PERMISSION_DENIED and the stream goes on carrying allowed ones. (RequestStream, which the client's
/// requests use, is covered by the requester above.)
#[tokio::test]
async fn publish_streams_are_authorized_frame_by_frame() {
    let (server, _file) = start().await;
    let ops = client(&server, Some("ops-token")).await;
    let mut watcher = within("Subscribe", ops.subscribe(">"))
        .await
        .expect("ops subscribes");
    let orders = client(&server, Some("orders-token")).await;
    let publisher = orders.publisher().build();

    let forbidden = within(
        "queue a forbidden message",
        publisher.publish(OutgoingMessage::new("payments.settled", "no")),
    )
    .await
    .expect("queued");
    let message = refused(
        within("its answer", forbidden).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("payments.settled"), "{message}");

    let allowed = within(
        "queue an allowed message",
        publisher.publish(OutgoingMessage::new("orders.eu.created", "yes")),
    )
    .await
    .expect("queued");
    within("its answer", allowed)
        .await
        .expect("an allowed message on the same stream is published");
    let event = within("the allowed message", watcher.next()).await;
    assert!(
        matches!(&event, Some(Ok(switchyard_client::Event::Message(m))) if m.payload == "yes"),
        "only the allowed message arrives: {event:?}"
    );
}

/// The Admin service is for admin tokens only.
#[tokio::test]
async fn admin_calls_need_an_admin_token() {
    let (server, _file) = start().await;
    let orders = client(&server, Some("orders-token")).await;
    let message = refused(
        within("ListGroups", orders.admin().list_groups()).await,
        Code::PermissionDenied,
    );
    assert!(message.contains("orders"), "{message}");
    let ops = client(&server, Some("ops-token")).await;
    within("ListGroups", ops.admin().list_groups())
        .await
        .expect("an admin token lists groups");
}

/// A token given as a flag (`--auth-token`) may do everything, admin included.
#[tokio::test]
async fn flag_tokens_may_do_everything() {
    let config = Config {
        auth_tokens: vec!["flag-token".parse().expect("a token")],
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let anonymous = client(&server, None).await;
    refused(
        within("Publish", anonymous.publish("a.b", "x")).await,
        Code::Unauthenticated,
    );
    let full = client(&server, Some("flag-token")).await;
    within("Publish", full.publish("a.b", "x"))
        .await
        .expect("publish with a flag token");
    within("ListGroups", full.admin().list_groups())
        .await
        .expect("admin with a flag token");
}

/// Settling a delivery takes the right to consume its group's pattern: delivery ids are counters,
/// so a token that may not consume a group must not be able to ack (or nack, reject, extend) what
/// another consumer holds. The refused calls settle nothing: the delivery stays outstanding.
#[tokio::test]
async fn settling_another_groups_delivery_is_permission_denied() {
    let (server, _file) = start().await;
    let responder = client(&server, Some("responder-token")).await;
    let mut jobs = within(
        "Consume",
        responder.consume("svc.jobs", "workers").subscribe(),
    )
    .await
    .expect("the responder may consume svc.>");
    let ops = client(&server, Some("ops-token")).await;
    within("Publish", ops.publish("svc.jobs", "job"))
        .await
        .expect("publish");
    let delivery = within("a delivery", jobs.next())
        .await
        .expect("the stream goes on")
        .expect("a delivery");

    let mut orders = raw_client(&server, "orders-token").await;
    for (field, request) in [
        (
            "ack_ids",
            switchyard::pb::AckRequest {
                ack_ids: vec![delivery.id().to_owned()],
                ..Default::default()
            },
        ),
        (
            "reject_ids",
            switchyard::pb::AckRequest {
                reject_ids: vec!["bogus".into(), delivery.id().to_owned()],
                ..Default::default()
            },
        ),
    ] {
        let status = within("Ack", orders.ack(request))
            .await
            .expect_err("another group's delivery");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().starts_with(field) && status.message().contains("svc.jobs"),
            "{status:?}"
        );
    }
    // Ids of no live group are not a permission matter: they come back unknown.
    let unknown = within(
        "Ack",
        orders.ack(switchyard::pb::AckRequest {
            ack_ids: vec!["ffff.1".into()],
            ..Default::default()
        }),
    )
    .await
    .expect("unknown ids are not refused")
    .into_inner();
    assert_eq!(unknown.unknown_ids, ["ffff.1"]);

    // The refused calls settled nothing: the delivery is still the holder's to ack.
    let holder_ack = switchyard::pb::AckRequest {
        ack_ids: vec![delivery.id().to_owned()],
        ..Default::default()
    };
    let mut ops = raw_client(&server, "ops-token").await;
    let answer = within("Ack", ops.ack(holder_ack))
        .await
        .expect("an admin token may settle")
        .into_inner();
    assert!(answer.unknown_ids.is_empty(), "{answer:?}");
}
