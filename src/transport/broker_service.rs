//! The `switchyard.v1.Broker` gRPC service: converts, calls the broker, converts back.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_core::Stream;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{auth, convert, pipelined, wire};
use crate::{
    activity::{Activity, StreamKind},
    auth::Action,
    broker::{Broker, SubscriptionEvent},
    config::Config,
    pb,
    telemetry::Telemetry,
};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `stream`, counted as an open stream of `kind` (and of the caller's connection) until dropped.
fn counted<T: 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    activity: &Arc<Activity>,
    kind: StreamKind,
    peer: Option<std::net::SocketAddr>,
) -> ResponseStream<T> {
    let open = activity.stream_opened(kind, peer);
    Box::pin(stream.map(move |item| {
        let _open = &open;
        item
    }))
}

/// The Broker service over any [`Broker`].
#[derive(Debug, Clone)]
pub struct BrokerService<B> {
    broker: B,
    config: Arc<Config>,
    /// Cancelled at shutdown, to end the streams the broker itself does not own (PublishStream and
    /// RequestStream) with UNAVAILABLE, as it ends subscriptions.
    shutdown: CancellationToken,
    activity: Arc<Activity>,
    /// The spans of traced messages: every call hands it what it publishes, delivers or settles.
    telemetry: Telemetry,
}

impl<B: Broker> BrokerService<B> {
    pub fn new(
        broker: B,
        config: Arc<Config>,
        shutdown: CancellationToken,
        activity: Arc<Activity>,
    ) -> Self {
        Self {
            broker,
            config,
            shutdown,
            activity,
            telemetry: Telemetry::OFF,
        }
    }

    /// Makes spans of traced messages with `telemetry`.
    pub fn with_telemetry(self, telemetry: Telemetry) -> Self {
        Self { telemetry, ..self }
    }

    async fn publish_once(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let caller = auth::caller(&request)?;
        let wait = request
            .get_ref()
            .wait_for_room
            .then(|| convert::publish_wait(call_deadline(&request), &self.config));
        let batch = convert::publish_request(request.into_inner(), &self.config)
            .map_err(convert::status)?;
        caller.may_publish(&batch, &self.broker)?;
        let spans = self.telemetry.publishing(&batch);
        let published = spans
            .around_publish(async {
                match wait {
                    Some(wait) => self.broker.publish_waiting(batch, wait).await,
                    None => self.broker.publish(batch).await,
                }
            })
            .await
            .map_err(convert::status)?;
        Ok(Response::new(pb::PublishResponse {
            published: published.into_iter().map(convert::published).collect(),
        }))
    }

    async fn ack_once(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let caller = auth::caller(&request)?;
        let settlement =
            convert::settlement(request.into_inner(), &self.config).map_err(convert::status)?;
        let ids = [
            ("ack_ids", &settlement.ack),
            ("nack_ids", &settlement.nack),
            ("reject_ids", &settlement.reject),
            ("extend_ids", &settlement.extend),
        ];
        let ids = ids
            .into_iter()
            .flat_map(|(field, ids)| ids.iter().map(move |id| (field, id.as_str())));
        caller.may_settle(ids, &self.broker)?;
        let spans = self.telemetry.settling(&settlement, &self.broker);
        let unknown_ids = spans
            .around_settle(self.broker.settle(settlement))
            .await
            .map_err(convert::status)?;
        Ok(Response::new(pb::AckResponse { unknown_ids }))
    }
}

/// The gRPC status code a call's `outcome` ends it with, as counted in [`Activity`].
fn code_of<T>(outcome: &Result<T, Status>) -> i32 {
    outcome
        .as_ref()
        .map_or_else(|status| status.code(), |_| tonic::Code::Ok) as i32
}

/// Reads the `grpc-timeout` header: up to eight digits and a unit (H, M, S, m, u, n).
fn call_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[tonic::async_trait]
impl<B: Broker> pb::broker_server::Broker for BrokerService<B> {
    type SubscribeStream = ResponseStream<wire::SubscribeResponse>;
    type ConsumeStream = ResponseStream<wire::Delivery>;
    type PublishStreamStream = ResponseStream<pb::PublishStreamResponse>;
    type RequestStreamStream = ResponseStream<pb::RequestStreamResponse>;

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let outcome = self.publish_once(request).await;
        self.activity.publish_ended(code_of(&outcome));
        outcome
    }

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let pattern = convert::pattern(&request.get_ref().topic, "topic", &self.config)
            .map_err(convert::status)?;
        auth::caller(&request)?.may(Action::Subscribe, &pattern, "topic")?;
        let events = self
            .broker
            .subscribe(pattern)
            .await
            .map_err(convert::status)?;
        let spans = self.telemetry.subscriber();
        let stream = events.map(move |event| {
            if let Ok(SubscriptionEvent::Message(message)) = &event {
                spans.delivered(message);
            }
            event.map(wire::SubscribeResponse).map_err(convert::status)
        });
        Ok(Response::new(counted(
            stream,
            &self.activity,
            StreamKind::Subscribe,
            request.remote_addr(),
        )))
    }

    async fn consume(
        &self,
        request: Request<pb::ConsumeRequest>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        let caller = auth::caller(&request)?;
        let peer = request.remote_addr();
        let spec =
            convert::consume_spec(request.into_inner(), &self.config).map_err(convert::status)?;
        caller.may(Action::Consume, &spec.pattern, "topic")?;
        let spans = self.telemetry.consumer(&spec.group);
        let deliveries = self.broker.consume(spec).await.map_err(convert::status)?;
        let stream = deliveries.map(move |delivery| {
            if let Ok(delivery) = &delivery {
                spans.delivered(&delivery.message);
            }
            delivery.map(wire::Delivery).map_err(convert::status)
        });
        Ok(Response::new(counted(
            stream,
            &self.activity,
            StreamKind::Consume,
            peer,
        )))
    }

    async fn ack(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let outcome = self.ack_once(request).await;
        self.activity.ack_ended(code_of(&outcome));
        outcome
    }

    async fn request(
        &self,
        request: Request<pb::RequestRequest>,
    ) -> Result<Response<pb::RequestResponse>, Status> {
        let deadline = call_deadline(&request);
        let caller = auth::caller(&request)?;
        let (message, timeout) = convert::request(request.into_inner(), deadline, &self.config)
            .map_err(convert::status)?;
        caller.may_publish_to(&message.topic, "message.topic")?;
        let spans = self.telemetry.requesting(&message);
        let reply = spans
            .around_request(self.broker.request(message, timeout))
            .await
            .map_err(convert::status)?;
        Ok(Response::new(convert::reply(reply)))
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishStreamRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let peer = request.remote_addr();
        let answers = pipelined::publish(
            self.broker.clone(),
            Arc::clone(&self.config),
            auth::caller(&request)?,
            Arc::clone(&self.activity),
            self.telemetry.clone(),
            request.into_inner(),
        );
        let answers = pipelined::until_shutdown(answers, self.shutdown.clone());
        Ok(Response::new(counted(
            answers,
            &self.activity,
            StreamKind::PublishStream,
            peer,
        )))
    }

    async fn request_stream(
        &self,
        request: Request<Streaming<pb::RequestStreamRequest>>,
    ) -> Result<Response<Self::RequestStreamStream>, Status> {
        let peer = request.remote_addr();
        let answers = pipelined::request(
            self.broker.clone(),
            Arc::clone(&self.config),
            auth::caller(&request)?,
            self.telemetry.clone(),
            request.into_inner(),
        );
        let answers = pipelined::until_shutdown(answers, self.shutdown.clone());
        Ok(Response::new(counted(
            answers,
            &self.activity,
            StreamKind::RequestStream,
            peer,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grpc_timeout_units() {
        let with = |value: &str| {
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert("grpc-timeout", value.parse().unwrap());
            call_deadline(&request)
        };
        assert_eq!(with("250m"), Some(Duration::from_millis(250)));
        assert_eq!(with("2S"), Some(Duration::from_secs(2)));
        assert_eq!(with("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(with("5x"), None);
        assert_eq!(with("m"), None);
        assert_eq!(call_deadline(&Request::new(())), None);
    }
}
