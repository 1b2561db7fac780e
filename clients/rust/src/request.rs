//! Request/reply from the requesting side.

use std::time::Duration;

use prost::Message as _;

use crate::{
    client::Client,
    error::{Error, Result},
    message::{Message, OutgoingMessage},
};

/// What a RequestStream frame adds around its message, at most: sequence, timeout and field tags.
const FRAME_ENVELOPE: usize = 32;

/// The broker's default request timeout, used when none is set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request being built. Made by [`Client::request`]; `.send()` waits for the reply.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    client: Client,
    message: OutgoingMessage,
    timeout: Duration,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, message: OutgoingMessage) -> Self {
        Self {
            client,
            message,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long to wait for the reply (whole milliseconds). Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a header to the request (replacing one of the same name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.message = self.message.header(name, value);
        self
    }

    /// An application key for the request.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.message = self.message.key(key);
        self
    }

    /// The correlation id the reply must carry. Default: a fresh one from the broker.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.message = self.message.correlation_id(id);
        self
    }

    /// Sends the request and waits for the reply: [`Error::NoResponders`] at once when nobody serves
    /// the topic, [`Error::TimedOut`] when nobody answers in time.
    pub async fn send(self) -> Result<Message> {
        let topic = self.message.topic().to_string();
        let timeout_ms = u32::try_from(self.timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        let message = self.message.carrying_current_trace().into_pb();
        self.client
            .check_encoded_len(message.encoded_len() + FRAME_ENVELOPE)?;
        // The broker answers at the timeout; waiting a little longer here means its DEADLINE_EXCEEDED
        // (not this one) is what the caller sees, unless the broker is silent.
        let local_timeout = self.timeout + Duration::from_secs(1);
        let call = self.client.requests.call(message, timeout_ms);
        match tokio::time::timeout(local_timeout, call).await {
            Ok(Ok(reply)) => Ok(Message::from(reply)),
            Ok(Err(status)) => Err(match status.code() {
                _ if crate::error::reason_of(&status).as_deref() == Some("NO_RESPONDERS") => {
                    Error::NoResponders { topic }
                }
                tonic::Code::DeadlineExceeded => Error::TimedOut(self.timeout),
                _ => Error::Status(status),
            }),
            Err(_) => Err(Error::TimedOut(self.timeout)),
        }
    }
}
