//! Wires the gRPC edge to a bound listener: the Broker and Admin services, health, reflection (v1 and
//! v1alpha), and a shutdown that ends open streams before it waits, for at most the grace period.

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;

use crate::{
    broker::Broker,
    config::{Config, ConfigError},
    memory::MemoryBroker,
    pb::{self, admin_server::AdminServer, broker_server::BrokerServer},
    transport::{admin_service::AdminService, broker_service::BrokerService},
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves an in-memory broker on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let broker = MemoryBroker::new(config.clone());
    serve(listener, broker, config, shutdown).await
}

/// Serves any [`Broker`] on `listener` until `shutdown` resolves.
pub async fn serve<B: Broker>(
    listener: TcpListener,
    broker: B,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let config = Arc::new(config);
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in ["", "switchyard.v1.Broker", "switchyard.v1.Admin"] {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let limit = config.max_request_bytes;
    let streams_end = CancellationToken::new();
    let broker_service = BrokerServer::new(BrokerService::new(
        broker.clone(),
        Arc::clone(&config),
        streams_end.clone(),
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let admin_service = AdminServer::new(AdminService::new(broker.clone(), Arc::clone(&config)))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);

    let local = listener.local_addr().ok();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        // The keepalive pings are what notice a consumer that vanished without closing its socket,
        // so its deliveries return to the group.
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(broker_service)
        .add_service(admin_service)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    tokio::pin!(server);
    tracing::info!(listen = ?local, "switchyard serving");

    tokio::select! {
        result = &mut server => return result.map_err(ServerError::from),
        () = shutdown => {}
    }
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: ending open streams");
    for service in ["", "switchyard.v1.Broker", "switchyard.v1.Admin"] {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    broker.shutdown();
    streams_end.cancel();
    let _ = stop.send(());
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}
