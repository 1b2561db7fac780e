//! One screen of `switchyard top`, as text: a header with the broker's rates and totals, then its
//! groups, subscriptions and connections as tables. Read from the JSON API's values by name, so a
//! field the broker does not send shows as `-` rather than failing.

use std::fmt::Write;

use serde_json::Value;

/// What one refresh fetched.
#[derive(Debug)]
pub struct Screen {
    pub overview: Value,
    pub groups: Value,
    pub subscriptions: Value,
    pub connections: Value,
}

/// How the groups are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// By topic, then group.
    Name,
    /// Most waiting first.
    Ready,
    /// Most in flight first.
    InFlight,
    /// Busiest (deliveries per second) first.
    Rate,
    /// Oldest waiting message first.
    Age,
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// 1234 as `1.2k`, 2500000 as `2.5M`; whole numbers below 1000 as they are.
pub fn short(value: Option<f64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ if value.fract() == 0.0 => return format!("{value:.0}"),
        _ => return format!("{value:.1}"),
    };
    format!("{scaled:.1}{suffix}")
}

/// Bytes as `512 B`, `3.4 KiB`, `12.0 MiB`, `1.0 GiB`.
pub fn bytes(value: Option<f64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < units.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{scaled:.0} B"),
        _ => format!("{scaled:.1} {}", units[unit]),
    }
}

/// Seconds as `3.2s`, `4m10s`, `2h05m`, `3d04h`.
pub fn age(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else {
        return "-".to_owned();
    };
    let whole = seconds as u64;
    match whole {
        0..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        3600..86400 => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d{:02}h", whole / 86400, whole % 86400 / 3600),
    }
}

/// Cuts `text` to `width` characters, ending in `…` when cut.
fn fit(text: &str, width: usize) -> String {
    match text.chars().count() > width {
        true => text.chars().take(width - 1).chain(['…']).collect(),
        false => text.to_owned(),
    }
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("-")
}

fn list<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value[field].as_array().map_or(&[], Vec::as_slice)
}

impl Screen {
    pub fn render(&self, sort: SortBy) -> String {
        let mut out = String::new();
        self.header(&mut out);
        self.groups(&mut out, sort);
        self.subscriptions(&mut out);
        self.connections(&mut out);
        out
    }

    fn header(&self, out: &mut String) {
        let o = &self.overview;
        let storage = match o["durable"].as_bool() {
            Some(true) => "durable",
            Some(false) => "in memory",
            None => "-",
        };
        let used = number(&o["memory"]["used_bytes"]);
        let limit = number(&o["memory"]["limit_bytes"]);
        let percent = used
            .zip(limit)
            .filter(|(_, limit)| *limit > 0.0)
            .map_or_else(
                || "-".to_owned(),
                |(used, limit)| format!("{:.0}%", used / limit * 100.0),
            );
        let _ = writeln!(
            out,
            "switchyard {}  up {}  {storage}  connections {}  memory {} / {} ({percent})",
            text(o, "version"),
            age(number(&o["uptime_seconds"])),
            short(number(&o["counts"]["connections"])),
            bytes(used),
            bytes(limit),
        );
        let rate = |name: &str| short(number(&o["rates"][name]));
        let _ = writeln!(
            out,
            "rates/s   published {}  delivered {}  acked {}  redelivered {}",
            rate("published"),
            rate("delivered"),
            rate("acked"),
            rate("redelivered"),
        );
        let total = |name: &str| short(number(&o["totals"][name]));
        let _ = writeln!(
            out,
            "totals    published {}  delivered {}  acked {}  nacked {}  dead-lettered {}  gaps {}",
            total("published"),
            total("delivered"),
            total("acked"),
            total("nacked"),
            total("dead_lettered"),
            total("gaps"),
        );
        let _ = writeln!(
            out,
            "queued    ready {}  in flight {}  groups {}  subscriptions {}",
            short(number(&o["queued"]["ready"])),
            short(number(&o["queued"]["in_flight"])),
            short(number(&o["counts"]["groups"])),
            short(number(&o["counts"]["subscriptions"])),
        );
        if let Some(journal) = o["journal"].as_object() {
            let field = |name: &str| journal.get(name).and_then(Value::as_f64);
            let _ = writeln!(
                out,
                "journal   {} in {} segments  fsyncs {}  records {}",
                bytes(field("bytes")),
                short(field("segments")),
                short(field("fsyncs")),
                short(field("records")),
            );
        }
    }

    fn groups(&self, out: &mut String, sort: SortBy) {
        let mut groups: Vec<&Value> = list(&self.groups, "groups").iter().collect();
        let by = |field: fn(&Value) -> Option<f64>| {
            move |a: &&Value, b: &&Value| {
                let (a, b) = (field(a).unwrap_or(-1.0), field(b).unwrap_or(-1.0));
                b.total_cmp(&a)
            }
        };
        match sort {
            SortBy::Name => {}
            SortBy::Ready => groups.sort_by(by(|g| g["ready"].as_f64())),
            SortBy::InFlight => groups.sort_by(by(|g| g["in_flight"].as_f64())),
            SortBy::Rate => groups.sort_by(by(|g| g["rates"]["delivered"].as_f64())),
            SortBy::Age => groups.sort_by(by(|g| g["oldest_ready_seconds"].as_f64())),
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:<16} {:<9} {:>8} {:>9} {:>5} {:>8} {:>8} {:>8} {:>6}",
            "TOPIC",
            "GROUP",
            "MODE",
            "READY",
            "IN FLIGHT",
            "CONS",
            "OLDEST",
            "DELIV/S",
            "ACK/S",
            "DEAD"
        );
        if groups.is_empty() {
            let _ = writeln!(out, "(no groups)");
        }
        for group in groups {
            let dead = group["dead_lettered"]["rejected"]
                .as_f64()
                .zip(group["dead_lettered"]["max_deliveries"].as_f64())
                .map(|(rejected, exhausted)| rejected + exhausted);
            let _ = writeln!(
                out,
                "{:<24} {:<16} {:<9} {:>8} {:>9} {:>5} {:>8} {:>8} {:>8} {:>6}",
                fit(text(group, "topic"), 24),
                fit(text(group, "group"), 16),
                text(group, "mode"),
                short(number(&group["ready"])),
                short(number(&group["in_flight"])),
                short(number(&group["consumers"])),
                age(number(&group["oldest_ready_seconds"])),
                short(number(&group["rates"]["delivered"])),
                short(number(&group["rates"]["acked"])),
                short(dead),
            );
        }
    }

    fn subscriptions(&self, out: &mut String) {
        let patterns = list(&self.subscriptions, "patterns");
        let _ = writeln!(
            out,
            "\n{:<42} {:>5} {:>9} {:>10} {:>8} {:>6}",
            "PATTERN", "SUBS", "BUFFERED", "DELIVERED", "GAPS", "SLOW"
        );
        if patterns.is_empty() {
            let _ = writeln!(out, "(no subscriptions)");
        }
        for pattern in patterns {
            let _ = writeln!(
                out,
                "{:<42} {:>5} {:>9} {:>10} {:>8} {:>6}",
                fit(text(pattern, "pattern"), 42),
                short(number(&pattern["subscribers"])),
                short(number(&pattern["buffered"])),
                short(number(&pattern["delivered"])),
                short(number(&pattern["gaps"])),
                short(number(&pattern["slow_events"])),
            );
        }
    }

    fn connections(&self, out: &mut String) {
        let connections = list(&self.connections, "connections");
        let _ = writeln!(
            out,
            "\n{:<6} {:<42} {:>10} {:>8}",
            "CONN", "PEER", "UP", "STREAMS"
        );
        if connections.is_empty() {
            let _ = writeln!(out, "(no connections)");
        }
        for connection in connections {
            let _ = writeln!(
                out,
                "{:<6} {:<42} {:>10} {:>8}",
                short(number(&connection["id"])),
                fit(text(connection, "peer"), 42),
                age(number(&connection["connected_seconds"])),
                short(number(&connection["streams"])),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(short(Some(25.0)), "25");
        assert_eq!(short(Some(1234.0)), "1.2k");
        assert_eq!(short(Some(2_500_000.0)), "2.5M");
        assert_eq!(short(Some(0.5)), "0.5");
        assert_eq!(short(None), "-");
        assert_eq!(bytes(Some(512.0)), "512 B");
        assert_eq!(bytes(Some(3.5 * 1024.0 * 1024.0)), "3.5 MiB");
        assert_eq!(age(Some(3.25)), "3.2s");
        assert_eq!(age(Some(250.0)), "4m10s");
        assert_eq!(age(Some(7500.0)), "2h05m");
        assert_eq!(fit("orders.eu.created", 8), "orders.…");
    }

    #[test]
    fn groups_sort_and_missing_fields_show_as_dashes() {
        let screen = Screen {
            overview: json!({ "version": "9.9.9" }),
            groups: json!({ "groups": [
                { "topic": "a", "group": "few", "ready": 1 },
                { "topic": "b", "group": "many", "ready": 100 },
            ] }),
            subscriptions: json!({}),
            connections: json!({ "connections": [] }),
        };
        let text = screen.render(SortBy::Ready);
        assert!(text.starts_with("switchyard 9.9.9  up -"), "{text}");
        let many = text.find("many").unwrap();
        assert!(many < text.find("few").unwrap(), "{text}");
        assert!(text.contains("(no subscriptions)") && text.contains("(no connections)"));
    }
}
