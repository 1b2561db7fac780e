//! What a run counted, printed as the same JSON object `switchyard bench --json` prints (with the
//! broker's name in `"broker"`), or as a short summary for a person.

use serde_json::{Value, json};

use crate::config::{Args, Broker, Scenario};
use crate::publish::Tally;
use switchyard_loadgen::latency::Latency;

/// What a scenario counted. Deliveries and latencies are those of the measured window; loss and
/// duplicates cover the whole run, warmup and drain included.
#[derive(Default)]
pub struct Counts {
    /// Messages (reqreply: requests) sent within the window.
    pub sent: u64,
    /// Deliveries (reqreply: replies) received within the window.
    pub delivered: u64,
    pub latency: Latency,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Messages a subscriber's connection dropped, as the broker told it (NATS: see
    /// `nats::connection::Counters::slow_consumer`). Always 0 on Redis: it has no gap notice, and a
    /// subscriber too slow for its output buffer is disconnected (an error, see `redis::fanout`).
    pub gaps: u64,
    /// Failed calls, foreign payloads, mismatched replies, subscriptions that ended early.
    pub errors: u64,
    /// What the first of them was, for stderr.
    pub first_error: Option<String>,
}

impl Counts {
    /// What the publishers counted: messages sent in the window, and failed publishes.
    pub fn from_tallies(tallies: &[Tally]) -> Self {
        Self {
            sent: tallies.iter().map(|tally| tally.in_window).sum(),
            errors: tallies.iter().map(|tally| tally.failed.len() as u64).sum(),
            first_error: tallies
                .iter()
                .find_map(|tally| tally.first_error.clone())
                .map(|error| format!("a publish failed: {error}")),
            ..Self::default()
        }
    }

    /// Notes one error.
    pub fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        self.first_error.get_or_insert_with(what);
    }
}

/// One run's report.
pub struct Report<'a> {
    pub broker: &'a Broker,
    pub args: &'a Args,
    pub counts: Counts,
    pub cpu_broker: Option<f64>,
    pub cpu_client: Option<f64>,
}

impl Report<'_> {
    /// Deliveries per second for fanout, acked messages per second for queue and exclusive,
    /// completed requests per second for reqreply.
    pub fn throughput(&self) -> f64 {
        self.counts.delivered as f64 / self.args.duration.as_secs_f64()
    }

    /// (publishers, subscribers, consumers, in_flight) as `switchyard bench` reports them: for
    /// reqreply, consumers are the responders and there are no publishers.
    fn shape(&self) -> (u64, u64, u64, u64) {
        let a = self.args;
        match a.scenario {
            Scenario::Fanout => (a.publishers.into(), a.subscribers.into(), 0, 0),
            Scenario::Queue => (a.publishers.into(), 0, a.consumers.into(), 0),
            Scenario::Exclusive => (a.publishers.into(), 0, 1, 0),
            Scenario::ReqReply => (0, 0, a.responders.into(), a.in_flight.into()),
        }
    }

    pub fn to_json(&self) -> Value {
        let c = &self.counts;
        let (publishers, subscribers, consumers, in_flight) = self.shape();
        let latency = |quantile| c.latency.quantile_us(quantile).map(tenths);
        json!({
            "scenario": self.args.scenario.name(),
            "broker": self.broker.name,
            "payload_bytes": self.args.payload_bytes,
            "duration_s": self.args.duration.as_secs_f64(),
            "publishers": publishers,
            "subscribers": subscribers,
            "consumers": consumers,
            "in_flight": in_flight,
            "sent": c.sent,
            "delivered": c.delivered,
            "throughput_per_s": tenths(self.throughput()),
            "latency_us": { "p50": latency(0.5), "p99": latency(0.99), "p999": latency(0.999) },
            "cpu_percent": { "broker": self.cpu_broker.map(tenths), "client": self.cpu_client.map(tenths) },
            "lost": c.lost,
            "duplicates": c.duplicates,
            "out_of_order": c.out_of_order,
            "gaps": c.gaps,
            "errors": c.errors,
        })
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let us = |q| {
            c.latency
                .quantile_us(q)
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0} µs"))
        };
        let cpu = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} %"));
        format!(
            "{name} {scenario}: {throughput:.0}/s over {duration:.1} s ({delivered} delivered, {sent} sent)\n  \
             latency  p50 {p50}   p99 {p99}   p99.9 {p999}\n  \
             cpu      {server} {broker}   {program} {client}   (of one core)\n  \
             lost {lost}, duplicates {dup}, out of order {ooo}, gaps {gaps}, errors {errors}",
            name = self.broker.name,
            server = self.broker.server,
            program = self.broker.program,
            scenario = self.args.scenario.name(),
            throughput = self.throughput(),
            duration = self.args.duration.as_secs_f64(),
            delivered = c.delivered,
            sent = c.sent,
            p50 = us(0.5),
            p99 = us(0.99),
            p999 = us(0.999),
            broker = cpu(self.cpu_broker),
            client = cpu(self.cpu_client),
            lost = c.lost,
            dup = c.duplicates,
            ooo = c.out_of_order,
            gaps = c.gaps,
            errors = c.errors,
        )
    }
}

/// `value` rounded to one decimal, as JSON shows it.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
