//! PublishStream and RequestStream: frames routed and answered as their unary twins would be, by
//! sequence, with refused frames answered in place while the stream goes on; requests pipelined and
//! answered in reply order; the per-stream request limit holds the stream back; shutdown ends both.

mod common;

use std::collections::HashMap;

use common::*;
use switchyard::{config::Config, pb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use pb::{publish_stream_response, request_stream_response};

/// Opens a PublishStream fed by the returned sender.
async fn publish_stream(
    broker: &mut Broker,
) -> (
    mpsc::Sender<pb::PublishStreamRequest>,
    Streaming<pb::PublishStreamResponse>,
) {
    let (frames, body) = mpsc::channel(64);
    let answers = within(
        "PublishStream",
        broker.publish_stream(ReceiverStream::new(body)),
    )
    .await
    .expect("PublishStream opens")
    .into_inner();
    (frames, answers)
}

/// Opens a RequestStream fed by the returned sender.
async fn request_stream(
    broker: &mut Broker,
) -> (
    mpsc::Sender<pb::RequestStreamRequest>,
    Streaming<pb::RequestStreamResponse>,
) {
    let (frames, body) = mpsc::channel(64);
    let answers = within(
        "RequestStream",
        broker.request_stream(ReceiverStream::new(body)),
    )
    .await
    .expect("RequestStream opens")
    .into_inner();
    (frames, answers)
}

fn publish_frame(sequence: u64, messages: Vec<pb::Message>) -> pb::PublishStreamRequest {
    pb::PublishStreamRequest {
        sequence,
        messages,
        wait_for_room: false,
    }
}

fn request_frame(sequence: u64, message: pb::Message, timeout_ms: u32) -> pb::RequestStreamRequest {
    pb::RequestStreamRequest {
        sequence,
        message: Some(message),
        timeout_ms,
    }
}

/// The reply to a request seen by a responder: `payload` to its inbox with its correlation id.
fn reply_for(request: &pb::Message, payload: &str) -> pb::Message {
    pb::Message {
        correlation_id: request.correlation_id.clone(),
        ..message(&request.reply_to, payload.to_owned())
    }
}

fn reply_payload(answer: &pb::RequestStreamResponse) -> String {
    match &answer.result {
        Some(request_stream_response::Result::Reply(reply)) => {
            String::from_utf8(reply.payload.to_vec()).expect("UTF-8 reply")
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn stream_error(answer: &pb::RequestStreamResponse) -> (Code, String) {
    match &answer.result {
        Some(request_stream_response::Result::Error(error)) => {
            (Code::from_i32(error.code), error.message.clone())
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Batches are routed in the order sent and answered in that order with their sequence; a refused
/// batch is answered with the unary call's status, routes nothing, and the stream goes on.
#[tokio::test]
async fn publish_stream_routes_in_order_and_answers_refusals_in_place_counting_subscribers_except_in_cluster_mode()
 {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let topic = unique("pipelined.pub");
    let mut subscription = subscribe_ok(&mut broker, &topic).await;
    let (frames, mut answers) = publish_stream(&mut broker).await;

    frames
        .send(publish_frame(7, numbered_batch(&topic, 0..3)))
        .await
        .expect("send");
    let bad = vec![numbered(&topic, 100, 8), message("bad..topic", "x")];
    frames.send(publish_frame(8, bad)).await.expect("send");
    frames
        .send(publish_frame(9, numbered_batch(&topic, 3..5)))
        .await
        .expect("send");

    let first = next_item(&mut answers, "answer 7").await;
    assert_eq!(first.sequence, 7);
    match first.result {
        Some(publish_stream_response::Result::Published(response)) => {
            assert_eq!(response.published.len(), 3);
            let counted = counted_subscribers(1);
            assert!(response.published.iter().all(|p| p.subscribers == counted));
        }
        other => panic!("expected published, got {other:?}"),
    }
    let refused = next_item(&mut answers, "answer 8").await;
    assert_eq!(refused.sequence, 8);
    match refused.result {
        Some(publish_stream_response::Result::Error(error)) => {
            assert_eq!(Code::from_i32(error.code), Code::InvalidArgument);
            assert_eq!(
                error.reason, "INVALID_ARGUMENT",
                "the reason a unary call would carry"
            );
            assert!(
                error.message.contains("messages[1].topic"),
                "{}",
                error.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let last = next_item(&mut answers, "answer 9").await;
    assert_eq!(last.sequence, 9);
    assert!(matches!(
        last.result,
        Some(publish_stream_response::Result::Published(_))
    ));

    // Nothing of the refused batch (not even its valid message 100) was routed.
    let received: Vec<usize> = next_messages(&mut subscription, 5)
        .await
        .iter()
        .map(number_of)
        .collect();
    assert_eq!(received, vec![0, 1, 2, 3, 4]);
    assert_quiet(&mut subscription, QUIET, "the refused batch").await;

    // Closing the sending side ends the answers cleanly.
    drop(frames);
    let end = within("end of answers", answers.message()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// Many requests in flight on one stream, answered as their replies come (here in reverse order),
/// each with its own sequence; no responders and timeouts are answered as error frames.
#[tokio::test]
async fn request_stream_pipelines_and_matches_replies_by_sequence() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let topic = unique("pipelined.svc");
    let mut responder = subscribe_ok(&mut broker, &topic).await;
    let (frames, mut answers) = request_stream(&mut broker).await;

    let count = 20u64;
    for sequence in 1..=count {
        let request = message(&topic, format!("q{sequence}"));
        frames
            .send(request_frame(sequence, request, 5_000))
            .await
            .expect("send");
    }
    // All are in flight at once: the responder sees every request before answering any.
    let mut requests = next_messages(&mut responder, count as usize).await;
    requests.reverse();
    for request in &requests {
        let payload = String::from_utf8(request.payload.to_vec()).expect("UTF-8");
        publish_ok(
            &mut broker,
            vec![reply_for(request, &format!("re:{payload}"))],
        )
        .await;
    }
    let mut replies = HashMap::new();
    for _ in 0..count {
        let answer = next_item(&mut answers, "a reply").await;
        replies.insert(answer.sequence, reply_payload(&answer));
    }
    for sequence in 1..=count {
        assert_eq!(replies[&sequence], format!("re:q{sequence}"));
    }

    // No responders: an error frame at once, and the stream goes on.
    let nobody = unique("pipelined.nobody");
    frames
        .send(request_frame(100, message(&nobody, "x"), 5_000))
        .await
        .expect("send");
    let answer = next_item(&mut answers, "no responders").await;
    assert_eq!(answer.sequence, 100);
    let (code, text) = stream_error(&answer);
    assert_eq!(code, Code::Unavailable);
    assert!(text.contains("no responders"), "{text}");
    // With the reason and the metadata a unary call's ErrorInfo would carry.
    let Some(request_stream_response::Result::Error(error)) = &answer.result else {
        panic!("an error frame: {answer:?}");
    };
    assert_eq!(error.reason, "NO_RESPONDERS");
    assert_eq!(error.metadata.get("topic"), Some(&nobody), "{error:?}");

    // A responder that stays silent: DEADLINE_EXCEEDED once the request's timeout passes.
    frames
        .send(request_frame(101, message(&topic, "late"), 200))
        .await
        .expect("send");
    let answer = next_item(&mut answers, "timeout").await;
    assert_eq!(answer.sequence, 101);
    assert_eq!(stream_error(&answer).0, Code::DeadlineExceeded);

    // An invalid request is refused with the field named.
    let bad = pb::RequestStreamRequest {
        sequence: 102,
        message: None,
        timeout_ms: 0,
    };
    frames.send(bad).await.expect("send");
    let answer = next_item(&mut answers, "invalid").await;
    assert_eq!(answer.sequence, 102);
    let (code, text) = stream_error(&answer);
    assert_eq!(code, Code::InvalidArgument);
    assert!(text.starts_with("message"), "{text}");
}

/// At `max_stream_requests` the broker reads no further frame until a reply frees room.
#[tokio::test]
async fn request_stream_holds_back_past_its_limit() {
    let server = TestServer::with_config(Config {
        max_stream_requests: 2,
        ..test_config()
    })
    .await;
    let mut broker = server.broker().await;
    let topic = unique("pipelined.limit");
    let mut responder = subscribe_ok(&mut broker, &topic).await;
    let (frames, mut answers) = request_stream(&mut broker).await;
    for sequence in 1..=3 {
        frames
            .send(request_frame(
                sequence,
                message(&topic, format!("q{sequence}")),
                10_000,
            ))
            .await
            .expect("send");
    }
    let first_two = next_messages(&mut responder, 2).await;
    assert_quiet(&mut responder, QUIET, "a third request past the limit").await;

    publish_ok(&mut broker, vec![reply_for(&first_two[0], "done")]).await;
    let answer = next_item(&mut answers, "the first reply").await;
    assert_eq!(reply_payload(&answer), "done");
    let third = next_message(&mut responder).await;
    assert_eq!(third.payload.as_ref(), b"q3");
}

/// Shutdown ends open PublishStreams and RequestStreams with UNAVAILABLE, like subscriptions.
#[tokio::test]
async fn shutdown_ends_both_streams_with_unavailable() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let (_publish_frames, mut publish_answers) = publish_stream(&mut broker).await;
    let (_request_frames, mut request_answers) = request_stream(&mut broker).await;
    let stopping = tokio::spawn(server.shutdown());
    let status = end_status(&mut publish_answers, "PublishStream at shutdown").await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = end_status(&mut request_answers, "RequestStream at shutdown").await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    within("shutdown", stopping)
        .await
        .expect("join")
        .expect("clean shutdown");
}
