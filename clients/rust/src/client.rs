//! The connection to a broker, and the calls that need nothing more than it.

use std::{fmt, time::Duration};

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString, zeroize::Zeroizing};
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    admin::Admin,
    consumer::ConsumerBuilder,
    error::{Error, Result},
    message::{OutgoingMessage, Published},
    pb::{self, admin_client::AdminClient, broker_client::BrokerClient},
    publisher::PublisherBuilder,
    request::RequestBuilder,
    request_channel::RequestChannel,
    subscription::Subscription,
};

/// A handle to one broker. Clones share one HTTP/2 connection, which reconnects by itself.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> switchyard_client::Result<()> {
/// let client = switchyard_client::Client::connect("http://127.0.0.1:50051").await?;
/// let published = client.publish("orders.created", "{\"sku\":\"A1\"}").await?;
/// println!("published {}", published.id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) broker: BrokerClient<Transport>,
    pub(crate) admin: AdminClient<Transport>,
    /// Bound on every unary call.
    pub(crate) call_timeout: Duration,
    /// Largest gRPC message either way; the batching publisher cuts its batches to fit.
    pub(crate) max_message_bytes: usize,
    /// The one RequestStream that every clone's requests share.
    pub(crate) requests: RequestChannel,
}

/// What every call goes through: the connection, with the bearer token (if any) added to each call.
pub(crate) type Transport = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every call when there is a token. The value is marked
/// sensitive, which also makes its `Debug` print `Sensitive` instead of the token.
#[derive(Debug, Clone, Default)]
pub(crate) struct BearerToken(Option<AsciiMetadataValue>);

impl BearerToken {
    /// The header value for `token`, or [`Error::InvalidToken`] if it cannot be sent as metadata.
    fn new(token: &SecretString) -> Result<Self> {
        // The one copy the calls need is the header value; this one is wiped once it is made.
        let header = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
        let mut value: AsciiMetadataValue =
            MetadataValue::try_from(header.as_str()).map_err(|_| Error::InvalidToken)?;
        // Kept out of HTTP/2 header compression tables.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Options for [`Client`]: timeouts, keepalive, message size, TLS and the bearer token.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> switchyard_client::Result<()> {
/// use std::time::Duration;
///
/// let client = switchyard_client::Client::builder("http://127.0.0.1:50051")
///     .connect_timeout(Duration::from_secs(2))
///     .call_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// Over TLS, with a token:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = switchyard_client::Client::builder("https://broker.internal:50051")
///     .tls_ca_pem(std::fs::read("ca.pem")?)
///     .token(std::env::var("SWITCHYARD_TOKEN")?)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    connect_timeout: Duration,
    call_timeout: Duration,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    max_message_bytes: usize,
    /// `secrecy`'s `SecretString`: its `Debug` redacts, and it is zeroed when dropped. The header
    /// value made from it for the calls (see [`BearerToken`]) is a copy that `secrecy` cannot wipe.
    token: Option<SecretString>,
    tls: Option<Tls>,
    /// Whether `tls_ca_pem` chose the CA to trust; otherwise TLS trusts the system's roots.
    tls_ca: bool,
}

/// The TLS settings. tonic's own `Debug` would print the client's private key, so this one does not.
#[derive(Clone)]
struct Tls(ClientTlsConfig);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls(<configured>)")
    }
}

impl ClientBuilder {
    /// How long connecting may take. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long any unary call (publish, ack, admin) may take. Default 30 s. Requests have their own
    /// timeout on top of this.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// HTTP/2 keepalive: ping this often, and drop the connection when a ping is not answered within
    /// `timeout`. Defaults 20 s and 10 s. This is what notices a broker that vanished silently.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// Largest gRPC message either way. Default 4 MiB, the broker's default (`--max-request-bytes`);
    /// the batching [`Publisher`](crate::Publisher) keeps each of its Publish calls within it.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sends `authorization: Bearer <token>` on every call, for a broker with authentication on.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// Speaks TLS, trusting the broker's certificate if the CA in `pem` (PEM text) signed it, and no
    /// other CA. The URL must then be `https://`. Without it, an `https://` URL (or another TLS
    /// option) trusts the system's roots: the platform's store, or the PEM file in `SSL_CERT_FILE`
    /// and the directory in `SSL_CERT_DIR` when set.
    pub fn tls_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.tls_ca = true;
        self.tls = Some(Tls(self
            .tls_config()
            .ca_certificate(Certificate::from_pem(pem))));
        self
    }

    /// Presents this certificate and key (PEM text) to a broker that asks for client certificates
    /// (mutual TLS).
    pub fn tls_identity_pem(mut self, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.tls = Some(Tls(self
            .tls_config()
            .identity(Identity::from_pem(cert, key))));
        self
    }

    /// The name the broker's certificate must carry, when it is not the URL's host.
    pub fn tls_domain_name(mut self, name: impl Into<String>) -> Self {
        self.tls = Some(Tls(self.tls_config().domain_name(name)));
        self
    }

    fn tls_config(&mut self) -> ClientTlsConfig {
        self.tls
            .take()
            .map(|Tls(config)| config)
            .unwrap_or_default()
    }

    /// Connects, failing if the broker cannot be reached within the connect timeout.
    pub async fn connect(self) -> Result<Client> {
        let connect_error = |source| Error::Connect {
            url: self.url.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(connect_error)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true);
        // A bare `https://` URL already trusts the system's roots (tonic's default with the
        // `tls-native-roots` feature); TLS options without a CA must ask for them.
        if let Some(Tls(tls)) = self.tls.clone() {
            let tls = match self.tls_ca {
                true => tls,
                false => tls.with_native_roots(),
            };
            endpoint = endpoint.tls_config(tls).map_err(connect_error)?;
        }
        let bearer = match &self.token {
            None => BearerToken::default(),
            Some(token) => BearerToken::new(token)?,
        };
        let channel = endpoint.connect().await.map_err(connect_error)?;
        let limit = self.max_message_bytes;
        let broker = BrokerClient::with_interceptor(channel.clone(), bearer.clone())
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        Ok(Client {
            requests: RequestChannel::start(broker.clone(), self.call_timeout),
            broker,
            admin: AdminClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            call_timeout: self.call_timeout,
            max_message_bytes: limit,
        })
    }
}

impl Client {
    /// Connects with the default options. `url` is like `http://127.0.0.1:50051`.
    pub async fn connect(url: impl Into<String>) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Options before connecting: timeouts, keepalive, message size, TLS, token.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            max_message_bytes: 4 * 1024 * 1024,
            token: None,
            tls: None,
            tls_ca: false,
        }
    }

    /// Publishes one message with just a topic and a payload.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<Published> {
        self.publish_with(OutgoingMessage::new(topic, payload))
            .await
    }

    /// Publishes one message with headers, key, reply topic or correlation id.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// use switchyard_client::OutgoingMessage;
    ///
    /// let message = OutgoingMessage::new("orders.created", "order 17").header("source", "web");
    /// client.publish_with(message).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish_with(&self, message: OutgoingMessage) -> Result<Published> {
        let mut published = self.publish_batch(vec![message]).await?;
        published.pop().ok_or_else(|| {
            Error::Status(tonic::Status::internal(
                "the broker answered an empty Publish",
            ))
        })
    }

    /// Publishes a batch, all or nothing: one invalid message or one full group and nothing is
    /// published. Results come back in order.
    pub async fn publish_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<Published>> {
        let request = pb::PublishRequest {
            wait_for_room: false,
            messages: messages
                .into_iter()
                .map(|message| message.carrying_current_trace().into_pb())
                .collect(),
        };
        self.check_size(&request)?;
        let mut broker = self.broker.clone();
        let response = bounded(self.call_timeout, broker.publish(self.timed(request))).await?;
        Ok(response
            .published
            .into_iter()
            .map(Published::from)
            .collect())
    }

    /// A [`Publisher`](crate::Publisher) that batches for throughput.
    pub fn publisher(&self) -> PublisherBuilder {
        PublisherBuilder::new(self.clone())
    }

    /// Subscribes to a pattern (`*` one token, `>` the rest). The subscription is active when this
    /// returns; dropping it unsubscribes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// use futures_util::StreamExt;
    /// use switchyard_client::Event;
    ///
    /// let mut orders = client.subscribe("orders.>").await?;
    /// while let Some(event) = orders.next().await {
    ///     match event? {
    ///         Event::Message(message) => println!("{}: {:?}", message.topic, message.payload),
    ///         Event::Gap { missed } => eprintln!("fell behind by {missed}"),
    ///         // It resubscribes by itself; what is published meanwhile is not seen.
    ///         Event::Disconnected { message, .. } => eprintln!("reconnecting: {message}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, pattern: impl Into<String>) -> Result<Subscription> {
        Subscription::open(self.clone(), pattern.into()).await
    }

    /// Joins the queue group `group` on `topic` (a pattern); see [`ConsumerBuilder`] for options.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// use futures_util::StreamExt;
    ///
    /// let mut jobs = client.consume("images.resize", "workers").prefetch(8).subscribe().await?;
    /// while let Some(delivery) = jobs.next().await {
    ///     let delivery = delivery?;
    ///     println!("working on {}", delivery.message().id);
    ///     delivery.ack();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn consume(&self, topic: impl Into<String>, group: impl Into<String>) -> ConsumerBuilder {
        ConsumerBuilder::new(self.clone(), topic.into(), group.into())
    }

    /// A request to `topic`; `.send()` waits for the reply.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: switchyard_client::Client) -> switchyard_client::Result<()> {
    /// use std::time::Duration;
    /// use switchyard_client::Error;
    ///
    /// match client.request("svc.echo", "ping").timeout(Duration::from_secs(2)).send().await {
    ///     Ok(reply) => println!("reply: {:?}", reply.payload),
    ///     Err(Error::NoResponders { .. }) => eprintln!("nobody serves svc.echo"),
    ///     Err(Error::TimedOut(_)) => eprintln!("no reply in time"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn request(&self, topic: impl Into<String>, payload: impl Into<Bytes>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), OutgoingMessage::new(topic, payload))
    }

    /// Group administration.
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }

    /// Refuses a request too large for one gRPC message before it is sent, with OUT_OF_RANGE as the
    /// broker would: sent anyway, it would fail as an opaque HTTP/2 error.
    pub(crate) fn check_size(&self, request: &impl prost::Message) -> Result<()> {
        self.check_encoded_len(request.encoded_len())
    }

    /// [`Client::check_size`] for a request whose encoded size is already known.
    pub(crate) fn check_encoded_len(&self, size: usize) -> Result<()> {
        if size <= self.max_message_bytes {
            return Ok(());
        }
        Err(Error::Status(tonic::Status::out_of_range(format!(
            "the request is {size} bytes, more than the limit of {} (max_message_bytes)",
            self.max_message_bytes
        ))))
    }

    /// A request that tells the broker the call timeout as its gRPC deadline.
    pub(crate) fn timed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.call_timeout);
        request
    }
}

/// Awaits a call for at most `timeout` (plus a little, so the broker's own deadline answer wins).
///
/// A call that runs out of time is DEADLINE_EXCEEDED whichever side noticed: the broker, this
/// function, or tonic, which enforces a request's `grpc-timeout` locally too and reports that as
/// CANCELLED "Timeout expired" (what a silent broker produces).
pub(crate) async fn bounded<Res>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<Res>, tonic::Status>>,
) -> Result<Res> {
    let no_answer = || {
        Error::Status(tonic::Status::deadline_exceeded(format!(
            "no answer within {} ms",
            timeout.as_millis()
        )))
    };
    match tokio::time::timeout(timeout + Duration::from_millis(500), call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) if is_local_timeout(&status) => Err(no_answer()),
        Ok(Err(status)) => Err(Error::Status(status)),
        Err(_) => Err(no_answer()),
    }
}

/// Whether tonic itself ended the call because its `grpc-timeout` passed.
fn is_local_timeout(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Cancelled
        && status.message() == tonic::TimeoutExpired(()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A builder may end up in a log line: neither the token nor the client's private key shows.
    #[test]
    fn debug_output_shows_no_token_and_no_key() {
        let builder = Client::builder("https://127.0.0.1:1")
            .token("s3cret-token")
            .tls_identity_pem("CERT", "s3cret-key")
            .tls_domain_name("broker.test");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("Tls(<configured>)"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    /// What every call carries does not show the token either: the header value is sensitive.
    #[test]
    fn the_interceptor_shows_no_token() {
        let bearer = BearerToken::new(&SecretString::from("s3cret-token")).unwrap();
        let shown = format!("{bearer:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    /// A token that cannot be sent as metadata is refused before connecting, without repeating it.
    #[tokio::test]
    async fn a_token_that_is_not_metadata_is_refused() {
        let error = Client::builder("http://127.0.0.1:1")
            .token("s3cret\n")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidToken), "{error:?}");
        assert!(!error.to_string().contains("s3cret"));
    }
}
