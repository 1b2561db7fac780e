//! The result of a run: a table for people, or one JSON object for programs (field names are a
//! contract: other tools parse them).

use std::{io::Write, time::Duration};

use serde_json::{Value, json};

use super::{Counts, Failure, Scenario, Session, broker::JournalStats};

fn records_per_fsync(journal: JournalStats) -> f64 {
    journal.records as f64 / journal.fsyncs.max(1) as f64
}

/// A finished run: its settings and what it counted.
#[derive(Debug)]
pub struct Report {
    scenario: Scenario,
    /// Where the broker was, for people.
    broker: String,
    payload_bytes: u32,
    duration: Duration,
    warmup: Duration,
    publishers: u64,
    subscribers: u64,
    consumers: u64,
    in_flight: u64,
    counts: Counts,
    /// A durable broker's fsyncs over the whole run (warm-up and drain included).
    journal: Option<JournalStats>,
}

impl Report {
    pub fn new(
        scenario: Scenario,
        session: &Session,
        counts: Counts,
        journal: Option<JournalStats>,
    ) -> Self {
        let args = &session.args;
        let (publishers, subscribers, consumers, in_flight) = match scenario {
            Scenario::Fanout => (args.publishers.into(), args.subscribers, 0, 0),
            Scenario::Queue => (args.publishers.into(), 0, args.consumers, 0),
            Scenario::Exclusive => (args.publishers.into(), 0, 1, 0),
            Scenario::ReqReply => (0, 0, args.responders, args.in_flight),
        };
        let broker = match &args.server {
            Some(url) => url.clone(),
            None => format!("{} (started by the bench)", session.url),
        };
        Self {
            scenario,
            broker,
            payload_bytes: args.payload_bytes,
            duration: args.duration,
            warmup: args.warmup,
            publishers,
            subscribers: subscribers.into(),
            consumers: consumers.into(),
            in_flight: in_flight.into(),
            counts,
            journal,
        }
    }

    /// Deliveries per second for fan-out, acked messages per second for a queue, completed requests
    /// per second for request/reply: whatever was received within the window, over the window.
    fn throughput(&self) -> f64 {
        self.counts.delivered as f64 / self.duration.as_secs_f64()
    }

    /// Prints the report on stdout, and the first error, if any, on stderr.
    pub fn print(&self, json: bool) -> Result<(), Failure> {
        if let Some(error) = &self.counts.first_error {
            crate::commands::note(format_args!(
                "{} errors; the first: {error}",
                self.counts.errors
            ));
        }
        let text = if json {
            self.to_json().to_string()
        } else {
            self.to_table()
        };
        writeln!(std::io::stdout().lock(), "{text}").map_err(|error| {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::OutputClosed
            } else {
                Failure::new(format!("cannot write to stdout: {error}"))
            }
        })
    }

    pub fn to_json(&self) -> Value {
        let counts = &self.counts;
        let latency = |quantile| counts.latency.quantile_us(quantile).map(tenths);
        json!({
            "scenario": self.scenario.name(),
            "broker": "switchyard",
            "payload_bytes": self.payload_bytes,
            "duration_s": self.duration.as_secs_f64(),
            "publishers": self.publishers,
            "subscribers": self.subscribers,
            "consumers": self.consumers,
            "in_flight": self.in_flight,
            "sent": counts.sent,
            "delivered": counts.delivered,
            "throughput_per_s": tenths(self.throughput()),
            "latency_us": {
                "p50": latency(0.5),
                "p99": latency(0.99),
                "p999": latency(0.999),
            },
            "cpu_percent": {
                "broker": counts.cpu.broker.map(tenths),
                "client": counts.cpu.client.map(tenths),
            },
            "lost": counts.lost,
            "duplicates": counts.duplicates,
            "out_of_order": counts.out_of_order,
            "gaps": counts.gaps,
            "errors": counts.errors,
            "durable": self.journal.map(|journal| json!({
                "fsyncs": journal.fsyncs,
                "records": journal.records,
                "records_per_fsync": tenths(records_per_fsync(journal)),
            })),
        })
    }

    fn to_table(&self) -> String {
        let counts = &self.counts;
        let plural =
            |count: u64, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
        let shape = match self.scenario {
            Scenario::Fanout => format!(
                "{}, {}",
                plural(self.publishers, "publisher"),
                plural(self.subscribers, "subscriber")
            ),
            Scenario::Queue | Scenario::Exclusive => format!(
                "{}, {}",
                plural(self.publishers, "publisher"),
                plural(self.consumers, "consumer")
            ),
            Scenario::ReqReply => format!(
                "{} in flight, {}",
                plural(self.in_flight, "request"),
                plural(self.consumers, "responder")
            ),
        };
        let (sent, delivered, rate) = match self.scenario {
            Scenario::Fanout => ("messages", "deliveries", "deliveries/s"),
            Scenario::Queue | Scenario::Exclusive => ("messages", "deliveries", "acked msgs/s"),
            Scenario::ReqReply => ("requests", "replies", "requests/s"),
        };
        let latency = |quantile| {
            counts.latency.quantile_us(quantile).map_or_else(
                || "-".to_owned(),
                |us| format!("{} µs", thousands(us as u64)),
            )
        };
        let cpu =
            |percent: Option<f64>| percent.map_or_else(|| "-".to_owned(), |p| format!("{p:.0} %"));
        let rows = [
            ("broker", self.broker.clone()),
            (
                "measured",
                format!(
                    "{:.1} s after a {:.1} s warmup",
                    self.duration.as_secs_f64(),
                    self.warmup.as_secs_f64()
                ),
            ),
            ("sent", format!("{} {sent}", thousands(counts.sent))),
            (
                "delivered",
                format!("{} {delivered}", thousands(counts.delivered)),
            ),
            (
                "throughput",
                format!("{} {rate}", thousands(self.throughput() as u64)),
            ),
            (
                "latency",
                format!(
                    "p50 {}   p99 {}   p99.9 {}",
                    latency(0.5),
                    latency(0.99),
                    latency(0.999)
                ),
            ),
            (
                "cpu",
                format!(
                    "broker {}   bench {}   (of one core)",
                    cpu(counts.cpu.broker),
                    cpu(counts.cpu.client)
                ),
            ),
            ("lost", thousands(counts.lost)),
            ("duplicates", thousands(counts.duplicates)),
            ("out of order", thousands(counts.out_of_order)),
            ("gaps", thousands(counts.gaps)),
            ("errors", thousands(counts.errors)),
        ];
        let durable = self.journal.map(|journal| {
            let value = format!(
                "{} fsyncs carried {} records ({:.1} per fsync), the whole run",
                thousands(journal.fsyncs),
                thousands(journal.records),
                records_per_fsync(journal)
            );
            ("durable", value)
        });
        let mut table = format!(
            "{}: {shape}, {}-byte payloads\n",
            self.scenario.name(),
            self.payload_bytes
        );
        for (name, value) in rows.into_iter().chain(durable) {
            table.push_str(&format!("  {name:<13} {value}\n"));
        }
        table.pop();
        table
    }
}

/// `value` rounded to one decimal, as JSON shows it.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
