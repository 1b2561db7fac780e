//! Wires the gRPC edge to a bound listener: TLS if configured, the Broker and Admin services behind
//! the token check, health and reflection (v1 and v1alpha) open to all, and a shutdown that ends open
//! streams before it waits, for at most the grace period.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{
    activity::Activity,
    auth::{AuthError, TokenStore},
    broker::Broker,
    budget::MemoryBudget,
    config::{Config, ConfigError},
    connections, durable, http,
    memory::MemoryBroker,
    pb::{self, admin_server::AdminServer, broker_server::BrokerServer},
    ready::{Ready, ReadyFile},
    telemetry::{Telemetry, TelemetryError},
    tls::{TlsFileError, server_tls},
    transport::{admin_service::AdminService, auth::Authenticator, broker_service::BrokerService},
};

/// Streams a client may open and reset before the server has accepted them, per connection; past it
/// the connection is closed. This is h2's defence against the "rapid reset" flood (CVE-2023-44487),
/// set here explicitly rather than left to a default.
const MAX_PENDING_RESETS: usize = 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] TlsFileError),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// tonic's own words are only "transport error": its causes say what failed.
    #[error("transport: {}", crate::error::with_causes(.0))]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    DataDir(#[from] crate::durable::OpenError),
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error("cannot listen for HTTP on {addr} (--http): {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the ready file {}: {source}", path.display())]
    ReadyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Serves the broker the configuration asks for on `listener` until `shutdown` resolves: in memory,
/// durable in `data_dir`, or a cluster-mode node over the NATS servers of `nats`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    // Before the backend: connecting to NATS or recovering a journal can take long, and a bad
    // TLS file should stop the start at once. `serve` reads them again for itself.
    server_tls(&config)?;
    if config.nats.is_some() {
        let broker = crate::nats::NatsBroker::connect(config.clone()).await?;
        return serve(listener, broker, config, shutdown).await;
    }
    let broker = match &config.data_dir {
        None => MemoryBroker::new(config.clone()),
        Some(dir) => {
            let budget = Arc::new(MemoryBudget::new(config.max_memory_bytes));
            let opened = durable::open(dir, config.repair, config.segment_bytes, &budget).await?;
            MemoryBroker::with_journal(config.clone(), budget, opened.journal, opened.recovered)
        }
    };
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
    if let Some(path) = &config.ready_file {
        // A file left by a broker that was killed would name its port until this one is ready.
        ReadyFile::remove_stale(path).map_err(|source| ServerError::ReadyFile {
            path: path.clone(),
            source,
        })?;
    }
    let tokens = TokenStore::load(
        config.auth_file.as_deref(),
        &config.auth_tokens,
        config.topic_limits(),
    )?;
    let tls = server_tls(&config)?;
    let telemetry = Telemetry::start(config.otlp_endpoint.as_ref())?;
    let local = listener.local_addr().ok();
    announce_security(local, tokens.as_ref(), tls.is_some(), &config);
    let tokens = tokens.map(Arc::new);
    let authenticator = Authenticator::new(tokens.clone());
    let config = Arc::new(config);
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in ["", "switchyard.v1.Broker", "switchyard.v1.Admin"] {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let readiness = http::Readiness::default();
    let streams_end = CancellationToken::new();
    let activity = Arc::new(Activity::default());
    let monitored = http::Monitored {
        broker: broker.clone(),
        activity: Arc::clone(&activity),
        readiness: readiness.clone(),
        tokens,
        protect: config.http_auth,
    };
    let http_addr = start_http(&config, monitored, &streams_end).await?;
    // A broker that can no longer store anything says so in its health, and keeps serving what it
    // still can (consuming and acking what it holds fails too, so clients learn it at once).
    // Ends at shutdown too: it holds the broker, and with it a durable broker's directory lock.
    tokio::spawn({
        let (broker, health, readiness) = (broker.clone(), health.clone(), readiness.clone());
        let shutdown = streams_end.clone();
        async move {
            let reason = tokio::select! {
                reason = broker.failure() => reason,
                () = shutdown.cancelled() => return,
            };
            tracing::error!("the broker takes no more writes: {reason}");
            readiness.clear();
            for service in ["", "switchyard.v1.Broker", "switchyard.v1.Admin"] {
                health
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
        }
    });
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let limit = config.max_request_bytes;
    let broker_service = BrokerServer::new(
        BrokerService::new(
            broker.clone(),
            Arc::clone(&config),
            streams_end.clone(),
            Arc::clone(&activity),
        )
        .with_telemetry(telemetry.clone()),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let broker_service = InterceptedService::new(broker_service, authenticator.clone());
    let admin_service = AdminServer::new(AdminService::new(broker.clone(), Arc::clone(&config)))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let admin_service = InterceptedService::new(admin_service, authenticator);

    let incoming = connections::limit(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        config.max_connections,
        activity,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        // The keepalive pings are what notice a consumer that vanished without closing its socket,
        // so its deliveries return to the group.
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_concurrent_streams(config.max_streams_per_connection)
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
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
    // Written last, once nothing can fail any more: a harness that sees the file may connect.
    let ready = match &config.ready_file {
        Some(path) => {
            let written = local
                .ok_or_else(|| std::io::Error::other("the listener has no local address"))
                .and_then(|listen| {
                    let pid = std::process::id();
                    let ready = Ready {
                        listen,
                        pid,
                        http: http_addr,
                    };
                    ReadyFile::write(path, &ready)
                });
            Some(written.map_err(|source| ServerError::ReadyFile {
                path: path.clone(),
                source,
            })?)
        }
        None => None,
    };

    tokio::select! {
        result = &mut server => return result.map_err(ServerError::from),
        () = shutdown => {}
    }
    // Gone before the grace period: a broker that is shutting down takes no new work.
    drop(ready);
    readiness.clear();
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: ending open streams");
    for service in ["", "switchyard.v1.Broker", "switchyard.v1.Admin"] {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    broker.shutdown();
    streams_end.cancel();
    let _ = stop.send(());
    let served = match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result.map_err(ServerError::from),
        Err(_) => {
            tracing::warn!("grace period over; closing remaining connections");
            Ok(())
        }
    };
    broker.closed().await;
    // Last, so the spans of the streams just ended go out too.
    telemetry.shutdown().await;
    served
}

/// Binds and starts the HTTP listener if configured; returns where it listens. The default address
/// taken by someone else is a warning (a second broker on one machine), any other failure an error.
async fn start_http<B: Broker>(
    config: &Arc<Config>,
    monitored: http::Monitored<B>,
    stop: &CancellationToken,
) -> Result<Option<SocketAddr>, ServerError> {
    let Some(addr) = config.http.0 else {
        return Ok(None);
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) if config.http.is_default() => {
            tracing::warn!(%addr, %error, "serving without the HTTP listener (metrics, health): its default address is taken; set --http to another address, or off");
            return Ok(None);
        }
        Err(source) => return Err(ServerError::Http { addr, source }),
    };
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Http { addr, source })?;
    tracing::info!(
        http = %local,
        "dashboard at http://{local}/ and metrics at http://{local}/metrics"
    );
    let (config, stop) = (Arc::clone(config), stop.clone());
    tokio::spawn(async move {
        if let Err(error) = http::serve(listener, monitored, config, stop).await {
            tracing::warn!(%error, "the HTTP listener stopped");
        }
    });
    Ok(Some(local))
}

/// Logs how the server is protected, and warns when it is reachable beyond this host without tokens,
/// or with tokens that travel in clear text.
fn announce_security(
    local: Option<SocketAddr>,
    tokens: Option<&TokenStore>,
    tls: bool,
    config: &Config,
) {
    let exposed = local.is_some_and(|addr| !addr.ip().is_loopback());
    match tokens {
        Some(tokens) => tracing::info!(tokens = tokens.names().count(), "authentication on"),
        None if exposed => tracing::warn!(
            listen = ?local,
            "listening beyond loopback without authentication: anyone who can reach this address \
             may publish, subscribe, consume and administer groups (set --auth-file or --auth-token)"
        ),
        None => {}
    }
    if tls {
        let mutual = config.tls_client_ca.is_some();
        tracing::info!(mutual, handshake_timeout = ?config.tls_handshake_timeout, "TLS on");
    } else if exposed && tokens.is_some() {
        tracing::warn!(
            listen = ?local,
            "bearer tokens cross the network in clear text without TLS (set --tls-cert and --tls-key)"
        );
    }
}
