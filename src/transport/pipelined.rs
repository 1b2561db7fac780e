//! The streaming twins of Publish and Request: many frames on one HTTP/2 stream instead of one call
//! each. A unary call pays for its headers, its trailers and a round trip; a frame pays for neither,
//! which is what lets a producer or a requester go as fast as the routers.
//!
//! Each frame is validated, authorized and answered exactly as its unary twin would be, and a refused
//! frame gets its status in an answer frame while the stream goes on. A frame that does not decode, or
//! a broken inbound stream (the client reset it or vanished), ends the answers with its status (tonic
//! ends a response stream at its first error); on shutdown every stream ends with UNAVAILABLE.

use std::{future, sync::Arc};

use futures_core::Stream;
use futures_util::{StreamExt, stream};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic_types::StatusExt;

use super::{auth::Caller, convert};
use crate::{
    activity::Activity,
    broker::{Broker, StagedPublish},
    config::Config,
    error::BrokerError,
    pb,
    telemetry::Telemetry,
};

/// Frames of one PublishStream routed and waiting for their outcome at once: a durable broker's
/// fsyncs of consecutive frames then overlap instead of queueing one behind the other.
const PUBLISH_FRAMES_IN_FLIGHT: usize = 16;

/// Routes each PublishStream frame in the order received, and answers in that order. A frame is
/// routed only after the one before it (so the broker sees the stream's order), but its outcome (a
/// durable broker's fsync) is awaited alongside those of up to [`PUBLISH_FRAMES_IN_FLIGHT`] frames
/// before it; past that the stream stops reading, and a slow broker slows the producer through
/// HTTP/2 flow control.
pub fn publish<B: Broker>(
    broker: B,
    config: Arc<Config>,
    caller: Caller,
    activity: Arc<Activity>,
    telemetry: Telemetry,
    inbound: impl Stream<Item = Result<pb::PublishStreamRequest, Status>> + Send + 'static,
) -> impl Stream<Item = Result<pb::PublishStreamResponse, Status>> + Send + 'static {
    inbound
        .then(move |frame| {
            let broker = broker.clone();
            let config = Arc::clone(&config);
            let caller = caller.clone();
            let telemetry = telemetry.clone();
            async move {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(status) => return Answer::Failed(status),
                };
                let wait = frame
                    .wait_for_room
                    .then(|| convert::publish_wait(None, &config));
                let request = pb::PublishRequest {
                    messages: frame.messages,
                    wait_for_room: frame.wait_for_room,
                };
                let staged = async {
                    let batch =
                        convert::publish_request(request, &config).map_err(convert::status)?;
                    caller.may_publish(&batch, &broker)?;
                    let spans = telemetry.publishing(&batch);
                    let staged = broker.publish_staged(batch, wait).await;
                    spans.around_staged(staged).map_err(convert::status)
                }
                .await;
                Answer::Staged(frame.sequence, staged)
            }
        })
        .map(move |answer| {
            let activity = Arc::clone(&activity);
            async move {
                let (sequence, staged) = match answer {
                    Answer::Failed(status) => return Err(status),
                    Answer::Staged(sequence, staged) => (sequence, staged),
                };
                let outcome = match staged {
                    Ok(staged) => staged.await.map_err(convert::status),
                    Err(status) => Err(status),
                };
                activity.publish_ended(
                    outcome
                        .as_ref()
                        .map_or_else(|status| status.code() as i32, |_| 0),
                );
                let result = match outcome {
                    Ok(published) => {
                        pb::publish_stream_response::Result::Published(pb::PublishResponse {
                            published: published.into_iter().map(convert::published).collect(),
                        })
                    }
                    Err(error) => pb::publish_stream_response::Result::Error(stream_error(error)),
                };
                Ok(pb::PublishStreamResponse {
                    sequence,
                    result: Some(result),
                })
            }
        })
        .buffered(PUBLISH_FRAMES_IN_FLIGHT)
}

/// A PublishStream frame once routed: its sequence and what is left to await, or the status that
/// ends the stream (a frame that did not decode, a broken inbound stream).
enum Answer {
    Staged(u64, Result<StagedPublish, Status>),
    Failed(Status),
}

/// Runs up to `max_stream_requests` requests of one RequestStream at once and answers each when its
/// reply (or its error) comes, in any order. At the limit it stops reading frames until one is answered.
pub fn request<B: Broker>(
    broker: B,
    config: Arc<Config>,
    caller: Caller,
    telemetry: Telemetry,
    inbound: impl Stream<Item = Result<pb::RequestStreamRequest, Status>> + Send + 'static,
) -> impl Stream<Item = Result<pb::RequestStreamResponse, Status>> + Send + 'static {
    let limit = config.max_stream_requests;
    inbound
        .map(move |frame| {
            let broker = broker.clone();
            let config = Arc::clone(&config);
            let caller = caller.clone();
            let telemetry = telemetry.clone();
            async move {
                let frame = frame?;
                let request = pb::RequestRequest {
                    message: frame.message,
                    timeout_ms: frame.timeout_ms,
                };
                let outcome = async {
                    let (message, timeout) =
                        convert::request(request, None, &config).map_err(convert::status)?;
                    caller.may_publish_to(&message.topic, "message.topic")?;
                    let spans = telemetry.requesting(&message);
                    spans
                        .around_request(broker.request(message, timeout))
                        .await
                        .map_err(convert::status)
                }
                .await;
                let result = match outcome {
                    Ok(reply) => {
                        pb::request_stream_response::Result::Reply(convert::message(&reply))
                    }
                    Err(error) => pb::request_stream_response::Result::Error(stream_error(error)),
                };
                Ok(pb::RequestStreamResponse {
                    sequence: frame.sequence,
                    result: Some(result),
                })
            }
        })
        .buffer_unordered(limit)
}

/// Ends `answers` with UNAVAILABLE when `shutdown` is cancelled, as the broker ends its subscriptions.
pub fn until_shutdown<T: Send + 'static>(
    answers: impl Stream<Item = Result<T, Status>> + Send + 'static,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
    let ended = async move {
        shutdown.cancelled().await;
        Err(convert::status(BrokerError::ShuttingDown))
    };
    // Whichever comes first: the answers run out, or the shutdown's one UNAVAILABLE item (which ends
    // the RPC, as tonic ends a response stream at its first error).
    let answers = answers.map(Some).chain(stream::once(future::ready(None)));
    stream::select(answers, stream::once(ended).map(Some))
        .take_while(|item| future::ready(item.is_some()))
        .filter_map(future::ready)
}

/// The status a unary call would have ended with, as one answer frame.
fn stream_error(status: Status) -> pb::StreamError {
    let (reason, metadata) = status
        .get_details_error_info()
        .map(|info| (info.reason, info.metadata.into_iter().collect()))
        .unwrap_or_default();
    pb::StreamError {
        code: status.code() as i32,
        message: status.message().to_string(),
        reason,
        metadata,
    }
}
