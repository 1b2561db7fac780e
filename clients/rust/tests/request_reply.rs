//! Request/reply through the client: a reply comes back to the requester, no responder and no reply
//! are errors of their own kinds, and `serve` answers many concurrent requests and rejects what its
//! handler fails.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use futures_util::future::join_all;
use switchyard_client::{Client, Error, GroupConfig, ServeOptions};
use tokio::{task::JoinHandle, time::Instant};

/// Starts `serve` on `topic` in the background with a handler that upper-cases the payload and fails
/// on `"fail"`.
fn upper_case_service(
    client: &Client,
    topic: &str,
    group: &str,
) -> JoinHandle<switchyard_client::Result<()>> {
    let (client, topic, group) = (client.clone(), topic.to_owned(), group.to_owned());
    tokio::spawn(async move {
        client
            .serve(topic, group, |request| async move {
                let text = String::from_utf8_lossy(&request.payload).into_owned();
                if text == "fail" {
                    return Err(format!("cannot serve {text:?}"));
                }
                Ok(text.to_uppercase())
            })
            .await
    })
}

/// A request to a topic served by `serve` gets the handler's reply, carrying the requester's
/// correlation id when it set one.
#[tokio::test]
async fn request_gets_the_reply() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.upper");
    let service = upper_case_service(&client, &topic, "upper");
    // `serve` joins its group in the background; until it has, the topic has no responders.
    wait_for_group(&client, &topic, "upper", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let reply = within("request", client.request(topic.clone(), "ping").send())
        .await
        .expect("a reply");
    assert_eq!(reply.payload, "PING");
    assert!(
        !reply.correlation_id.is_empty(),
        "the broker made a correlation id"
    );

    let reply = within(
        "request",
        client
            .request(topic.clone(), "pong")
            .correlation_id("mine-1")
            .header("trace", "t1")
            .timeout(Duration::from_secs(2))
            .send(),
    )
    .await
    .expect("a reply");
    assert_eq!(reply.payload, "PONG");
    assert_eq!(reply.correlation_id, "mine-1");
    service.abort();
}

/// A request to a topic nobody serves fails at once with `Error::NoResponders`.
#[tokio::test]
async fn no_responders() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.nobody");
    let started = Instant::now();
    let error = within("request", client.request(topic.clone(), "hello?").send())
        .await
        .expect_err("nobody serves the topic");
    assert!(
        matches!(&error, Error::NoResponders { topic: named } if *named == topic),
        "{error:?}"
    );
    assert_eq!(error.code(), Some(tonic::Code::Unavailable));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "at once, not after the timeout"
    );
}

/// A request that a subscriber receives but never answers fails with `Error::TimedOut` after the
/// request's timeout, not before and not much later.
#[tokio::test]
async fn no_reply_times_out() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.silent");
    let mut silent = client.subscribe(topic.clone()).await.expect("subscribe");
    let started = Instant::now();
    let timeout = Duration::from_millis(400);
    let error = within(
        "request",
        client
            .request(topic.clone(), "hello?")
            .timeout(timeout)
            .send(),
    )
    .await
    .expect_err("nobody answers");
    let waited = started.elapsed();
    assert!(
        matches!(error, Error::TimedOut(t) if t == timeout),
        "{error:?}"
    );
    assert!(
        waited >= timeout,
        "gave up after {waited:?}, before the timeout"
    );
    assert!(
        waited < timeout + Duration::from_secs(1),
        "gave up only after {waited:?}"
    );
    let request = next_message(&mut silent).await;
    assert!(request.reply_to.starts_with("_INBOX."), "{request:?}");
}

/// `serve` answers 200 concurrent requests, each with its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_many_concurrent_requests() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.square");
    let responder = client.clone();
    let served = topic.clone();
    let service = tokio::spawn(async move {
        let options = ServeOptions::default().concurrency(32);
        responder
            .serve_with(served, "square", options, |request| async move {
                let n: u64 = String::from_utf8_lossy(&request.payload)
                    .parse()
                    .map_err(|_| "not a number")?;
                // A little work, so that requests overlap.
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, &str>((n * n).to_string())
            })
            .await
    });
    wait_for_group(&client, &topic, "square", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let client = Arc::new(client);
    let requests = (0..200u64).map(|n| {
        let (client, topic) = (Arc::clone(&client), topic.clone());
        async move {
            let reply = client
                .request(topic, n.to_string())
                .timeout(Duration::from_secs(4))
                .send()
                .await;
            (n, reply)
        }
    });
    let replies = within("200 requests", join_all(requests)).await;
    for (n, reply) in replies {
        let reply = reply.unwrap_or_else(|error| panic!("request {n}: {error}"));
        assert_eq!(
            String::from_utf8_lossy(&reply.payload),
            (n * n).to_string(),
            "reply to {n}"
        );
    }
    let info = wait_for_group(&client, &topic, "square", "200 acks", |info| {
        info.acked == 200
    })
    .await;
    assert_eq!(info.redelivered, 0);
    service.abort();
}

/// A handler error sends no reply (the requester times out) and rejects the request to the group's
/// dead-letter topic; the responder goes on serving.
#[tokio::test]
async fn handler_error_rejects() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.fragile");
    let dead = unique("svc.fragile-dead");
    client
        .admin()
        .declare_group(GroupConfig::new(topic.clone(), "upper").dead_letter_topic(dead.clone()))
        .await
        .expect("declare_group");
    let mut dead_letters = client.subscribe(dead.clone()).await.expect("subscribe");
    let service = upper_case_service(&client, &topic, "upper");
    wait_for_group(&client, &topic, "upper", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let error = within(
        "request",
        client
            .request(topic.clone(), "fail")
            .timeout(Duration::from_millis(500))
            .send(),
    )
    .await
    .expect_err("the handler fails");
    assert!(matches!(error, Error::TimedOut(_)), "{error:?}");
    let letter = next_message(&mut dead_letters).await;
    assert_eq!(letter.payload, "fail");
    assert_eq!(
        letter
            .headers
            .get("x-dead-letter-reason")
            .map(String::as_str),
        Some("rejected")
    );

    let reply = within("request", client.request(topic.clone(), "fine").send())
        .await
        .expect("the responder still serves");
    assert_eq!(reply.payload, "FINE");
    service.abort();
}

/// `serve` returns the broker's error when its group is deleted under it.
#[tokio::test]
async fn serve_ends_when_its_group_is_deleted() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.doomed");
    let service = upper_case_service(&client, &topic, "upper");
    wait_for_group(&client, &topic, "upper", "a responder", |info| {
        info.consumers == 1
    })
    .await;
    client
        .admin()
        .delete_group(topic.clone(), "upper")
        .await
        .expect("delete_group");
    let ended = within("serve to return", service)
        .await
        .expect("serve did not panic");
    let error = ended.expect_err("serve ends with the broker's error");
    assert_eq!(error.code(), Some(tonic::Code::NotFound), "{error}");
}

/// Dropping (here, aborting) a running `serve` stops it gracefully: a request already being handled
/// is still answered and acked once, not handed back to the group to be answered again.
#[tokio::test]
async fn stopping_serve_finishes_what_it_handles() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("svc.slow");
    let (started, mut handling) = tokio::sync::mpsc::unbounded_channel();
    let responder = client.clone();
    let served = topic.clone();
    let service = tokio::spawn(async move {
        responder
            .serve(served, "slow", move |request| {
                let started = started.clone();
                async move {
                    let _ = started.send(());
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>(request.payload)
                }
            })
            .await
    });
    wait_for_group(&client, &topic, "slow", "a responder", |info| {
        info.consumers == 1
    })
    .await;
    let request = tokio::spawn({
        let (client, topic) = (client.clone(), topic.clone());
        async move { client.request(topic, "work").send().await }
    });
    within("the handler to start", handling.recv()).await;
    service.abort();

    let reply = within("the reply", request)
        .await
        .expect("the requester did not panic")
        .expect("the request being handled is answered");
    assert_eq!(reply.payload, "work");
    let info = wait_for_group(&client, &topic, "slow", "one ack, no consumer", |info| {
        info.acked == 1 && info.consumers == 0
    })
    .await;
    assert_eq!((info.ready, info.in_flight, info.redelivered), (0, 0, 0));
}

/// Replies ready together go out in one batch, and a reply the broker refuses (too large) does not
/// take the others down with it: every good request is handled exactly once and answered, while the
/// bad one gets no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_reply_does_not_fail_the_replies_batched_with_it() {
    let server = TestServer::with_config(switchyard::config::Config {
        max_payload_bytes: 1024,
        ..test_config()
    })
    .await;
    let client = server.client().await;
    let topic = unique("svc.mixed");
    let handled = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        u32,
    >::new()));
    let service = {
        let (client, topic, handled) = (client.clone(), topic.clone(), Arc::clone(&handled));
        tokio::spawn(async move {
            client
                .serve(topic, "mixed", move |request| {
                    let handled = Arc::clone(&handled);
                    async move {
                        let text = String::from_utf8_lossy(&request.payload).into_owned();
                        *handled
                            .lock()
                            .expect("handled lock")
                            .entry(text.clone())
                            .or_default() += 1;
                        // All handlers finish together, so their replies share batches.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let reply = if text == "big" {
                            "x".repeat(4096)
                        } else {
                            text
                        };
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                })
                .await
        })
    };
    wait_for_group(&client, &topic, "mixed", "a responder", |info| {
        info.consumers == 1
    })
    .await;

    let requests = (0..20).map(|n| {
        let payload = if n == 7 {
            "big".to_string()
        } else {
            format!("r{n}")
        };
        let request = client
            .request(topic.clone(), payload.clone())
            .timeout(Duration::from_secs(2));
        async move { (payload, request.send().await) }
    });
    let outcomes = within_for(Duration::from_secs(10), "20 requests", join_all(requests)).await;
    for (payload, outcome) in outcomes {
        match outcome {
            Ok(reply) => assert_eq!(text(&reply), payload),
            Err(Error::TimedOut(_)) => {
                assert_eq!(payload, "big", "only the refused reply is missing")
            }
            Err(other) => panic!("{payload}: {other}"),
        }
    }
    let handled = handled.lock().expect("handled lock").clone();
    for n in (0..20).filter(|n| *n != 7) {
        assert_eq!(
            handled.get(&format!("r{n}")),
            Some(&1),
            "r{n} handled exactly once"
        );
    }
    service.abort();
}
