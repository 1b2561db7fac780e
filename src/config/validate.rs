//! What makes a [`Config`] unusable, found before anything starts: each refusal names its setting.

use super::Config;

/// A configuration that cannot work, named by its setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl Config {
    /// Rejects settings that would make the broker misbehave rather than merely be strict.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: String| Err(ConfigError { setting, reason });
        let positive: [(&'static str, u64); 18] = [
            ("max_payload_bytes", self.max_payload_bytes as u64),
            ("max_batch_messages", self.max_batch_messages as u64),
            ("max_topic_bytes", self.max_topic_bytes as u64),
            ("max_topic_tokens", self.max_topic_tokens as u64),
            ("max_group_name_bytes", self.max_group_name_bytes as u64),
            ("subscriber_buffer", self.subscriber_buffer as u64),
            (
                "subscriber_buffer_bytes",
                self.subscriber_buffer_bytes as u64,
            ),
            ("default_prefetch", u64::from(self.default_prefetch)),
            ("default_max_length", u64::from(self.default_max_length)),
            ("max_ack_ids", self.max_ack_ids as u64),
            ("max_stream_requests", self.max_stream_requests as u64),
            ("max_connections", self.max_connections as u64),
            (
                "max_streams_per_connection",
                u64::from(self.max_streams_per_connection),
            ),
            ("max_subscriptions", self.max_subscriptions as u64),
            ("max_memory_bytes", self.max_memory_bytes as u64),
            ("segment_bytes", self.segment_bytes),
            // A millisecond at least: the wire speaks milliseconds.
            ("max_publish_wait", self.max_publish_wait.as_millis() as u64),
            (
                "default_ack_deadline",
                self.default_ack_deadline.as_millis() as u64,
            ),
        ];
        for (setting, value) in positive {
            if value == 0 {
                return fail(setting, "must be greater than 0".into());
            }
        }
        let envelope = self.max_payload_bytes.saturating_add(64 * 1024);
        if self.max_request_bytes < envelope {
            return fail(
                "max_request_bytes",
                format!("must be at least max_payload_bytes + 64 KiB ({envelope})"),
            );
        }
        // A durable broker writes a Publish batch as one record of about its size: half a record's
        // limit leaves room for what the record adds (ids, times, one entry per group copy).
        let durable_limit = crate::storage::MAX_RECORD_BYTES / 2;
        if self.data_dir.is_some() && self.max_request_bytes > durable_limit {
            return fail(
                "max_request_bytes",
                format!("must be at most {durable_limit} with data_dir: a batch is one record"),
            );
        }
        if self.default_prefetch > self.max_prefetch {
            return fail("default_prefetch", "must not exceed max_prefetch".into());
        }
        if self.default_ack_deadline > self.max_ack_deadline {
            return fail(
                "default_ack_deadline",
                "must not exceed max_ack_deadline".into(),
            );
        }
        if self.default_request_timeout.is_zero()
            || self.default_request_timeout > self.max_request_timeout
        {
            return fail(
                "default_request_timeout",
                "must be greater than 0 and not exceed max_request_timeout".into(),
            );
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return fail("tls_cert", "needs tls_key as well".into()),
            (None, Some(_)) => return fail("tls_key", "needs tls_cert as well".into()),
            _ => {}
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return fail(
                "tls_client_ca",
                "needs tls_cert and tls_key: client certificates are checked only over TLS".into(),
            );
        }
        if self.nats.is_some() && self.data_dir.is_some() {
            return fail(
                "nats",
                "cannot be set with data_dir: in cluster mode JetStream stores the groups".into(),
            );
        }
        if ![1, 3, 5].contains(&self.nats_replicas) {
            return fail("nats_replicas", "must be 1, 3 or 5".into());
        }
        match (&self.nats_tls_cert, &self.nats_tls_key) {
            (Some(_), None) => return fail("nats_tls_cert", "needs nats_tls_key as well".into()),
            (None, Some(_)) => return fail("nats_tls_key", "needs nats_tls_cert as well".into()),
            _ => {}
        }
        if self.tls_handshake_timeout.is_zero() {
            return fail("tls_handshake_timeout", "must be greater than 0".into());
        }
        // A zero interval would ping without pause, and a zero timeout would close every connection
        // at its first ping; neither is a way to turn keepalive off.
        for (setting, value) in [
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
        ] {
            if value.is_zero() {
                return fail(setting, "must be greater than 0".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn a_durable_broker_bounds_the_request_size_to_what_one_record_takes() {
        let config = Config {
            data_dir: Some("/var/lib/switchyard".into()),
            max_request_bytes: 16 * 1024 * 1024,
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "max_request_bytes");
        let in_memory = Config {
            data_dir: None,
            ..config
        };
        in_memory.validate().unwrap();
    }

    #[test]
    fn request_limit_must_fit_a_maximal_payload() {
        let config = Config {
            max_request_bytes: 1024 * 1024,
            ..Config::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(error.setting, "max_request_bytes");
    }

    #[test]
    fn tls_needs_both_cert_and_key_and_mutual_tls_needs_tls() {
        let with = |cert: bool, key: bool, client_ca: bool| Config {
            tls_cert: cert.then(|| "cert.pem".into()),
            tls_key: key.then(|| "key.pem".into()),
            tls_client_ca: client_ca.then(|| "ca.pem".into()),
            ..Config::default()
        };
        assert_eq!(
            with(true, false, false).validate().unwrap_err().setting,
            "tls_cert"
        );
        assert_eq!(
            with(false, true, false).validate().unwrap_err().setting,
            "tls_key"
        );
        assert_eq!(
            with(false, false, true).validate().unwrap_err().setting,
            "tls_client_ca"
        );
        with(true, true, true).validate().unwrap();
    }

    #[test]
    fn keepalive_must_be_positive() {
        for (config, setting) in [
            (
                Config {
                    keepalive_interval: Duration::ZERO,
                    ..Config::default()
                },
                "keepalive_interval",
            ),
            (
                Config {
                    keepalive_timeout: Duration::ZERO,
                    ..Config::default()
                },
                "keepalive_timeout",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().setting, setting);
        }
    }
}
