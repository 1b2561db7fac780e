//! Request/reply from the requesting side.

use std::time::Duration;

use crate::{
    client::{Client, bounded},
    error::{Error, Result},
    message::{Message, OutgoingMessage},
    pb,
};

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
        let request = pb::RequestRequest {
            message: Some(self.message.into_pb()),
            timeout_ms,
        };
        self.client.check_size(&request)?;
        // The call itself may take a little longer than the reply timeout, so the broker's own
        // DEADLINE_EXCEEDED (not a local one) is what the caller sees.
        let call_timeout = self.timeout + Duration::from_secs(1);
        let mut call = tonic::Request::new(request);
        call.set_timeout(call_timeout);
        let mut broker = self.client.broker.clone();
        match bounded(call_timeout, broker.request(call)).await {
            Ok(response) => response.reply.map(Message::from).ok_or_else(|| {
                Error::Status(tonic::Status::internal("the broker sent an empty reply"))
            }),
            Err(Error::Status(status)) => Err(match status.code() {
                tonic::Code::Unavailable if status.message().starts_with("no responders") => {
                    Error::NoResponders { topic }
                }
                tonic::Code::DeadlineExceeded => Error::TimedOut(self.timeout),
                _ => Error::Status(status),
            }),
            Err(other) => Err(other),
        }
    }
}
