//! What a request may ask for, checked once against the broker's limits before any backend sees it:
//! a consumer's prefetch, ack deadline and standby, a group's declaration, a settlement's size and
//! nack delay. The transport calls these as it turns a request into domain types, so every backend
//! behind the `Broker` trait (in memory today, durable and NATS JetStream next) takes what reaches it
//! as checked and none repeats the rules. What a message holds (topics, payloads, headers) is
//! checked where it is parsed from the wire (`transport::convert`, `topic`).
//!
//! Each refusal is `INVALID_ARGUMENT` naming the request's field.

use std::time::Duration;

use crate::{
    broker::{ConsumeMode, ConsumeSpec, GroupSpec, Settlement},
    config::Config,
    error::BrokerError,
};

/// A consumer's terms: its prefetch and ack deadline within the broker's maximums, and standby only
/// where there is someone to stand by for.
pub fn consume(spec: &ConsumeSpec, config: &Config) -> Result<(), BrokerError> {
    if spec.prefetch.is_some_and(|p| p > config.max_prefetch) {
        let reason = format!("must be at most {}", config.max_prefetch);
        return Err(BrokerError::invalid("prefetch", reason));
    }
    ack_deadline(spec.ack_deadline, config)?;
    if spec.standby && spec.mode != ConsumeMode::Exclusive {
        let reason = "only exclusive groups have standby consumers";
        return Err(BrokerError::invalid("standby", reason));
    }
    Ok(())
}

/// A group declaration: its ack deadline within the maximum, a delivery limit that means something,
/// and a dead-letter topic that does not lead back into the group (a message failing there would
/// come back as its own dead letter, forever).
pub fn group(spec: &GroupSpec, config: &Config) -> Result<(), BrokerError> {
    if spec.max_deliveries == Some(0) {
        return Err(BrokerError::invalid(
            "max_deliveries",
            "0 means unlimited; pass None",
        ));
    }
    ack_deadline(spec.ack_deadline, config)?;
    if let Some(topic) = &spec.dead_letter_topic
        && spec.pattern.matches(topic)
    {
        let reason = format!("{topic} matches the group's own pattern {}", spec.pattern);
        return Err(BrokerError::invalid("dead_letter_topic", reason));
    }
    Ok(())
}

/// An Ack call: at most `max_ack_ids` ids in all its lists, and a nack delay within the maximum.
/// Checked before anything else is done with the ids (authorizing each, settling any), so an
/// oversized call costs nothing.
pub fn settlement(settlement: &Settlement, config: &Config) -> Result<(), BrokerError> {
    let count = settlement.ack.len()
        + settlement.nack.len()
        + settlement.reject.len()
        + settlement.extend.len();
    if count > config.max_ack_ids {
        let reason = format!(
            "{count} ids in one call; the limit is {}",
            config.max_ack_ids
        );
        return Err(BrokerError::invalid("ack_ids", reason));
    }
    if settlement.nack_delay > config.max_nack_delay {
        let reason = format!("must be at most {} ms", config.max_nack_delay.as_millis());
        return Err(BrokerError::invalid("nack_delay_ms", reason));
    }
    Ok(())
}

fn ack_deadline(deadline: Option<Duration>, config: &Config) -> Result<(), BrokerError> {
    match deadline {
        Some(deadline) if deadline > config.max_ack_deadline => Err(BrokerError::invalid(
            "ack_deadline_ms",
            format!("must be at most {} ms", config.max_ack_deadline.as_millis()),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::{GroupName, Pattern, Topic};

    fn config() -> Config {
        Config {
            max_prefetch: 10,
            max_ack_deadline: Duration::from_secs(60),
            max_ack_ids: 3,
            max_nack_delay: Duration::from_secs(5),
            ..Config::default()
        }
    }

    fn field_of(result: Result<(), BrokerError>) -> String {
        match result {
            Err(BrokerError::InvalidArgument { field, .. }) => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn consume_spec(mode: ConsumeMode) -> ConsumeSpec {
        let limits = Config::default().topic_limits();
        ConsumeSpec {
            pattern: Pattern::parse("jobs.>", limits).unwrap(),
            group: GroupName::parse("workers", 64).unwrap(),
            mode,
            prefetch: Some(10),
            ack_deadline: Some(Duration::from_secs(60)),
            standby: false,
        }
    }

    fn group_spec() -> GroupSpec {
        let limits = Config::default().topic_limits();
        GroupSpec {
            pattern: Pattern::parse("jobs.>", limits).unwrap(),
            group: GroupName::parse("workers", 64).unwrap(),
            mode: ConsumeMode::Shared,
            max_length: None,
            max_bytes: None,
            ack_deadline: None,
            max_deliveries: Some(3),
            dead_letter_topic: Some(Topic::parse("dead.jobs", limits).unwrap()),
        }
    }

    #[test]
    fn a_consumer_within_the_limits_passes_and_each_excess_is_named() {
        let config = config();
        consume(&consume_spec(ConsumeMode::Shared), &config).unwrap();
        let mut spec = consume_spec(ConsumeMode::Shared);
        spec.prefetch = Some(11);
        assert_eq!(field_of(consume(&spec, &config)), "prefetch");
        let mut spec = consume_spec(ConsumeMode::Shared);
        spec.ack_deadline = Some(Duration::from_secs(61));
        assert_eq!(field_of(consume(&spec, &config)), "ack_deadline_ms");
        let mut spec = consume_spec(ConsumeMode::Shared);
        spec.standby = true;
        assert_eq!(field_of(consume(&spec, &config)), "standby");
        spec.mode = ConsumeMode::Exclusive;
        consume(&spec, &config).unwrap();
    }

    #[test]
    fn a_group_may_not_dead_letter_into_itself_nor_allow_zero_deliveries() {
        let config = config();
        group(&group_spec(), &config).unwrap();
        let mut spec = group_spec();
        spec.dead_letter_topic = Some(Topic::parse("jobs.dead", config.topic_limits()).unwrap());
        assert_eq!(field_of(group(&spec, &config)), "dead_letter_topic");
        let mut spec = group_spec();
        spec.max_deliveries = Some(0);
        assert_eq!(field_of(group(&spec, &config)), "max_deliveries");
        let mut spec = group_spec();
        spec.ack_deadline = Some(Duration::from_secs(61));
        assert_eq!(field_of(group(&spec, &config)), "ack_deadline_ms");
    }

    #[test]
    fn a_settlement_is_bounded_in_ids_and_nack_delay() {
        let config = config();
        let ids = |n: usize| (0..n).map(|i| format!("0.{i}")).collect::<Vec<_>>();
        let mut call = Settlement {
            ack: ids(2),
            nack: ids(1),
            nack_delay: Duration::from_secs(5),
            reject: Vec::new(),
            extend: Vec::new(),
        };
        settlement(&call, &config).unwrap();
        call.extend = ids(1);
        assert_eq!(field_of(settlement(&call, &config)), "ack_ids");
        call.extend.clear();
        call.nack_delay = Duration::from_secs(6);
        assert_eq!(field_of(settlement(&call, &config)), "nack_delay_ms");
    }
}
