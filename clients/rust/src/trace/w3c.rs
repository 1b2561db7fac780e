//! The W3C Trace Context header format (<https://www.w3.org/TR/trace-context/>): a span context to
//! and from `traceparent` and `tracestate`.
//!
//! Written here rather than taken from `opentelemetry_sdk::propagation::TraceContextPropagator`: the
//! `opentelemetry` API crate does not ship a W3C propagator, and the SDK's sits behind its `trace`
//! feature, which would compile a whole tracing SDK (span processors, exporters' plumbing, its own
//! `rand`) into every application that turns on `otel`, whatever SDK that application installs, for
//! what is one fixed-width line. The parsing follows the SDK's rules (lowercase hex only, zero ids
//! refused, flags other than `sampled` cleared, a bad `tracestate` dropped), and is stricter where
//! the specification is: every field has its exact width, and a version-00 value has nothing after
//! its flags.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The header naming the trace and the span a message was created in.
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying vendors' trace data alongside `traceparent`.
pub const TRACESTATE: &str = "tracestate";

/// `traceparent` for `context`: `00-{trace id}-{span id}-{flags}`, 55 characters.
pub fn traceparent(context: &SpanContext) -> String {
    let flags = context.trace_flags() & TraceFlags::SAMPLED;
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        flags.to_u8()
    )
}

/// The remote span context that `traceparent` (and `tracestate`, if any) describe, or `None` when
/// `traceparent` is not a valid one.
pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let mut fields = traceparent.trim().splitn(5, '-');
    let version = hex_field(fields.next()?, 2)?;
    let trace_id = hex_field(fields.next()?, 32)?;
    let span_id = hex_field(fields.next()?, 16)?;
    let flags = hex_field(fields.next()?, 2)?;
    let rest = fields.next();
    // Version ff is forbidden; 00 is exactly four fields; a later version may add fields after them.
    if version == "ff" || (version == "00" && rest.is_some()) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    let state = tracestate
        .and_then(|state| TraceState::from_str(state).ok())
        .unwrap_or_default();
    let context = SpanContext::new(trace_id, span_id, flags, true, state);
    // All-zero ids are invalid.
    context.is_valid().then_some(context)
}

/// `text` if it is exactly `width` lowercase hex digits.
fn hex_field(text: &str, width: usize) -> Option<&str> {
    let hex = |byte: &u8| matches!(byte, b'0'..=b'9' | b'a'..=b'f');
    (text.len() == width && text.as_bytes().iter().all(hex)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn example_ids() -> (TraceId, SpanId) {
        (
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
        )
    }

    #[test]
    fn the_specifications_example_parses_and_formats_back() {
        let context = parse(EXAMPLE, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!((context.trace_id(), context.span_id()), example_ids());
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(context.trace_state().get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(traceparent(&context), EXAMPLE);
        assert_eq!(traceparent(&context).len(), 55);
    }

    #[test]
    fn flags_other_than_sampled_are_cleared_and_unsampled_stays_unsampled() {
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let context = parse(unsampled, None).expect("valid");
        assert!(!context.is_sampled());
        assert_eq!(traceparent(&context), unsampled);
        let unknown_flags = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09";
        let context = parse(unknown_flags, None).expect("valid");
        assert_eq!(context.trace_flags(), TraceFlags::SAMPLED);
    }

    #[test]
    fn a_later_version_may_add_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        let context = parse(later, None).expect("valid");
        assert_eq!((context.trace_id(), context.span_id()), example_ids());
    }

    #[test]
    fn a_bad_tracestate_is_dropped_and_the_traceparent_kept() {
        let context = parse(EXAMPLE, Some("no equals sign")).expect("valid");
        assert_eq!(context.trace_state().header(), "");
        assert_eq!(context.span_id(), example_ids().1);
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for (value, why) in [
            ("", "empty"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "no flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
                "empty flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                "00 with more",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff",
            ),
            (
                "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "short version",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "short trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01",
                "long trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
                "short span id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                "short flags",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "upper case",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                "not hex",
            ),
            (
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "a sign",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "zero trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "zero span id",
            ),
        ] {
            assert_eq!(parse(value, None), None, "{why}: {value:?}");
        }
    }
}
