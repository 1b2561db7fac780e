//! The broker's own spans, exported over OTLP/gRPC to `--otlp-endpoint`: the OpenTelemetry setup
//! (this file), and the spans the transport makes around each traced publish, delivery and
//! settlement (`spans.rs`).
//!
//! Off (no endpoint), a [`Telemetry`] holds nothing and every hook is one branch: no span, no
//! allocation, no header lookup. On, only messages that carry a valid W3C `traceparent` get spans,
//! each a child of that creation context: the broker follows its clients' traces, with their
//! sampling decision, and starts none of its own. Untraced traffic then costs a header lookup per
//! message, and per settled id a lookup of its delivery (the group's lock, taken once more).

mod spans;

use std::{fmt, sync::Arc, time::Duration};

use opentelemetry::{InstrumentationScope, KeyValue, trace::TracerProvider};
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider},
};

pub use spans::{DeliverSpans, PublishSpans, SettleSpans};

use crate::config::OtlpEndpoint;

/// How long an ended span waits to be exported with others, unless `OTEL_BSP_SCHEDULE_DELAY` (in
/// milliseconds, the SDK's own variable) says otherwise. The SDK's default is five seconds; a trace
/// an operator is looking for should show up sooner, and a batch still goes out early once it holds
/// 512 spans.
const EXPORT_DELAY: Duration = Duration::from_millis(500);
/// How long shutdown waits for the last spans to reach the collector: a collector that is down
/// delays the broker's exit by this much at most.
const SHUTDOWN_EXPORT: Duration = Duration::from_secs(5);

/// The broker's handle on span export: off, or a tracer whose spans a batch processor exports.
/// Clones share one exporter.
#[derive(Clone, Default)]
pub struct Telemetry(Option<Arc<Exporting>>);

struct Exporting {
    /// Kept to flush and shut down the export.
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// The exporter could not be set up from `--otlp-endpoint`.
#[derive(Debug, thiserror::Error)]
#[error("cannot export spans to {endpoint} (--otlp-endpoint): {source}")]
pub struct TelemetryError {
    endpoint: OtlpEndpoint,
    #[source]
    source: ExporterBuildError,
}

impl Telemetry {
    /// No spans.
    pub const OFF: Self = Self(None);

    /// Exports spans to the collector at `endpoint`, or stays off without one. Needs a Tokio runtime:
    /// the exporter's connection, made when the first batch goes out, runs on it.
    ///
    /// Spans are queued for the SDK's batch processor (its own thread), which exports them every
    /// [`EXPORT_DELAY`] or every 512 spans. Its queue holds 2048 spans (`OTEL_BSP_MAX_QUEUE_SIZE`):
    /// past that, new spans are dropped rather than slowing the broker, as they are while the
    /// collector cannot be reached.
    pub fn start(endpoint: Option<&OtlpEndpoint>) -> Result<Self, TelemetryError> {
        let Some(endpoint) = endpoint else {
            return Ok(Self::OFF);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.as_str())
            .build()
            .map_err(|source| TelemetryError {
                endpoint: endpoint.clone(),
                source,
            })?;
        let delay = std::env::var("OTEL_BSP_SCHEDULE_DELAY")
            .ok()
            .and_then(|millis| millis.parse().ok())
            .map_or(EXPORT_DELAY, Duration::from_millis);
        let batching = BatchConfigBuilder::default()
            .with_scheduled_delay(delay)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batching)
            .build();
        let version = env!("CARGO_PKG_VERSION");
        let resource = Resource::builder()
            .with_service_name("switchyard")
            .with_attribute(KeyValue::new("service.version", version))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let scope = InstrumentationScope::builder("switchyard")
            .with_version(version)
            .build();
        let tracer = provider.tracer_with_scope(scope);
        tracing::info!(otlp_endpoint = %endpoint, "exporting spans of traced messages");
        Ok(Self(Some(Arc::new(Exporting { provider, tracer }))))
    }

    /// Exports what is queued and stops the export; spans made afterwards are dropped. Waits on a
    /// blocking thread, as the SDK's shutdown blocks until the last batch is sent (or
    /// [`SHUTDOWN_EXPORT`] passes), and that batch's connection needs this runtime to go on running.
    pub async fn shutdown(&self) {
        let Some(exporting) = &self.0 else {
            return;
        };
        let provider = exporting.provider.clone();
        match tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_EXPORT))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans not exported at shutdown"),
            Err(error) => tracing::warn!(%error, "span export shutdown did not finish"),
        }
    }

    fn tracer(&self) -> Option<&SdkTracer> {
        self.0.as_deref().map(|exporting| &exporting.tracer)
    }
}

impl Drop for Exporting {
    /// A broker dropped without [`Telemetry::shutdown`] still flushes, off the runtime's threads: the
    /// SDK would otherwise shut down in the drop of its last handle, blocking whichever thread that
    /// is, perhaps the one the export needs.
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let provider = self.provider.clone();
            // Already shut down (the usual case), this returns at once with an error to ignore.
            runtime.spawn_blocking(move || {
                let _ = provider.shutdown_with_timeout(SHUTDOWN_EXPORT);
            });
        }
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Telemetry(exporting)",
            None => "Telemetry(off)",
        })
    }
}
