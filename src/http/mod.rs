//! The HTTP listener beside the gRPC port: Prometheus metrics and health for operators and their
//! tools (`curl`, Prometheus, load balancers), in plain HTTP/1.1. axum serves it: the router of the
//! tokio ecosystem, already built here for tonic.
//!
//! - `GET /metrics`: the broker's state in the OpenMetrics text format ([`metrics`]), built from the
//!   broker at each scrape, so a deleted group's series are gone with it.
//! - `GET /healthz`: 200 while the process serves.
//! - `GET /readyz`: 200 while the broker takes work; 503 once shutdown began or a durable broker's
//!   log failed (the gRPC health service says the same).

mod metrics;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// Whether the broker takes work, as `/readyz` reports it. Cleared once, for good.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Readiness {
    pub fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Shared<B> {
    broker: B,
    readiness: Readiness,
}

/// Serves the HTTP endpoints on `listener` until `stop` is cancelled.
pub async fn serve<B: Broker>(
    listener: TcpListener,
    broker: B,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared { broker, readiness });
    let router = Router::new()
        .route("/metrics", get(scrape::<B>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<B>))
        .with_state(shared);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn ready<B: Broker>(State(shared): State<Arc<Shared<B>>>) -> impl IntoResponse {
    match shared.readiness.is_ready() {
        true => (StatusCode::OK, "ready\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}

async fn scrape<B: Broker>(State(shared): State<Arc<Shared<B>>>) -> impl IntoResponse {
    match metrics::render(&shared.broker).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            text,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{error}\n"),
        ),
    }
}
