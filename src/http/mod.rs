//! The HTTP listener beside the gRPC port, for operators and their tools (`curl`, Prometheus,
//! browsers, load balancers), in plain HTTP/1.1. axum serves it: the router of the tokio ecosystem,
//! already built here for tonic.
//!
//! - `GET /`: the live dashboard, and `GET /api/...`: the JSON it reads ([`api`]).
//! - `GET /metrics`: the broker's state in the OpenMetrics text format ([`metrics`]), built from the
//!   broker at each scrape, so a deleted group's series are gone with it.
//! - `GET /healthz`: 200 while the process serves.
//! - `GET /readyz`: 200 while the broker takes work; 503 once shutdown began or a durable broker's
//!   log failed (the gRPC health service says the same).
//!
//! With authentication on, what `--http-auth` names needs an admin token ([`auth`]).

mod api;
mod auth;
mod dashboard;
mod history;
mod host;
mod metrics;
mod snapshot;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::{history::History, snapshot::Snapshot};
use crate::{
    activity::Activity,
    auth::TokenStore,
    broker::Broker,
    config::{Config, HttpAuth, HttpEndpoint},
    error::BrokerError,
};

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

/// What the listener reports on.
#[derive(Debug, Clone)]
pub struct Monitored<B> {
    pub broker: B,
    pub activity: Arc<Activity>,
    pub readiness: Readiness,
    /// `None`: authentication is off, and every endpoint is open.
    pub tokens: Option<Arc<TokenStore>>,
    pub protect: HttpAuth,
}

struct Shared<B> {
    monitored: Monitored<B>,
    history: History,
    config: Arc<Config>,
    /// The last snapshot: requests that arrive while one is being taken share it, so however
    /// many pages and scrapers ask at once, the broker's groups are looked through once.
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
}

type Handle<B> = State<Arc<Shared<B>>>;

/// Serves the HTTP endpoints on `listener` until `stop` is cancelled.
pub async fn serve<B: Broker>(
    listener: TcpListener,
    monitored: Monitored<B>,
    config: Arc<Config>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let shared = Arc::new(Shared {
        monitored,
        history: History::default(),
        config,
        latest: tokio::sync::Mutex::new(None),
    });
    tokio::spawn(sample(Arc::downgrade(&shared), stop.clone()));
    // The page and its assets go under the same guard as the JSON they read.
    let dashboard = dashboard::routes()
        .route("/api/overview", get(overview::<B>))
        .route("/api/groups", get(groups::<B>))
        .route("/api/group", get(group::<B>))
        .route("/api/subscriptions", get(subscriptions::<B>))
        .route("/api/connections", get(connections::<B>));
    let metrics = Router::new().route("/metrics", get(scrape::<B>));
    let health = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<B>));
    let protect = |router: Router<Arc<Shared<B>>>, endpoint| {
        let monitored = &shared.monitored;
        match &monitored.tokens {
            Some(tokens) if monitored.protect.protects(endpoint) => {
                let guard = auth::Guard {
                    tokens: Arc::clone(tokens),
                };
                router.route_layer(middleware::from_fn_with_state(guard, auth::require_admin))
            }
            _ => router,
        }
    };
    let mut router = Router::new()
        .merge(protect(dashboard, HttpEndpoint::Dashboard))
        .merge(protect(metrics, HttpEndpoint::Metrics))
        .merge(protect(health, HttpEndpoint::Health))
        .with_state(Arc::clone(&shared));
    if loopback {
        router = router.layer(middleware::from_fn(host::loopback_only));
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// Feeds the history once a second until the listener stops.
async fn sample<B: Broker>(shared: std::sync::Weak<Shared<B>>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(history::INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Ok(snapshot) = snapshot(&shared).await {
            shared.history.record(&snapshot);
        }
    }
}

/// A broker that cannot answer, as a response.
struct Unanswered(BrokerError);

impl IntoResponse for Unanswered {
    fn into_response(self) -> Response {
        let status = match self.0 {
            BrokerError::GroupNotFound { .. } => StatusCode::NOT_FOUND,
            BrokerError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::json!({ "error": self.0.to_string() });
        (status, Json(body)).into_response()
    }
}

impl From<BrokerError> for Unanswered {
    fn from(error: BrokerError) -> Self {
        Self(error)
    }
}

/// The broker as of this request or later: a snapshot begun after the request arrived (by a
/// request that came at the same time) is shared rather than taken again.
async fn snapshot<B: Broker>(shared: &Shared<B>) -> Result<Arc<Snapshot>, Unanswered> {
    let asked = Instant::now();
    let mut latest = shared.latest.lock().await;
    if let Some(snapshot) = latest.as_ref()
        && snapshot.at >= asked
    {
        return Ok(Arc::clone(snapshot));
    }
    let monitored = &shared.monitored;
    let snapshot = Arc::new(Snapshot::take(&monitored.broker, &monitored.activity).await?);
    *latest = Some(Arc::clone(&snapshot));
    Ok(snapshot)
}

async fn ready<B: Broker>(State(shared): Handle<B>) -> impl IntoResponse {
    match shared.monitored.readiness.is_ready() {
        true => (StatusCode::OK, "ready\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}

async fn scrape<B: Broker>(State(shared): Handle<B>) -> Result<Response, Unanswered> {
    let snapshot = snapshot(&shared).await?;
    let response = match metrics::render(&snapshot) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {error}\n"),
        )
            .into_response(),
    };
    Ok(response)
}

/// `/api/overview?since=T`: only the history's samples after `T` (Unix milliseconds), for a page
/// that has the ones before.
#[derive(Debug, serde::Deserialize)]
struct OverviewQuery {
    since: Option<u64>,
}

async fn overview<B: Broker>(
    State(shared): Handle<B>,
    Query(query): Query<OverviewQuery>,
) -> Result<Json<api::Overview>, Unanswered> {
    let snapshot = snapshot(&shared).await?;
    Ok(Json(api::overview(&snapshot, &shared.history, query.since)))
}

async fn groups<B: Broker>(State(shared): Handle<B>) -> Result<Json<api::Groups>, Unanswered> {
    let snapshot = snapshot(&shared).await?;
    Ok(Json(api::groups(&snapshot, &shared.history)))
}

/// `/api/group?topic=PATTERN&group=NAME`: one group with its consumers. In the query, not the path:
/// patterns hold `*` and `>`.
async fn group<B: Broker>(
    State(shared): Handle<B>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<api::Group>, Unanswered> {
    let config = &shared.config;
    let field = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| BrokerError::invalid(name, "missing from the query string"))
    };
    let pattern = crate::transport::convert::pattern(field("topic")?, "topic", config)?;
    let name = crate::transport::convert::group_name(field("group")?, "group", config)?;
    let snapshot = snapshot(&shared).await?;
    let found = snapshot
        .groups
        .iter()
        .find(|info| info.pattern == pattern && info.group == name)
        .ok_or_else(|| BrokerError::GroupNotFound {
            group: name.to_string(),
            pattern: pattern.to_string(),
        })?;
    let consumers = shared
        .monitored
        .broker
        .list_consumers(pattern.clone(), name.clone())
        .await?;
    let group = api::group(&snapshot, &shared.history, found);
    Ok(Json(api::group_detail(group, consumers)))
}

async fn subscriptions<B: Broker>(
    State(shared): Handle<B>,
) -> Result<Json<api::Subscriptions>, Unanswered> {
    let snapshot = snapshot(&shared).await?;
    Ok(Json(api::subscriptions(&snapshot)))
}

async fn connections<B: Broker>(
    State(shared): Handle<B>,
) -> Result<Json<api::Connections>, Unanswered> {
    let snapshot = snapshot(&shared).await?;
    Ok(Json(api::connections(&snapshot, Instant::now())))
}
