//! The client's one error type, with kinds to match on.

use std::time::Duration;

/// What went wrong. Match on the variant; [`Error::code`] gives the gRPC code where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be parsed or the first connection failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The address asked for.
        url: String,
        #[source]
        /// What the transport reported.
        source: tonic::transport::Error,
    },
    /// A request found no subscriber and no group on its topic.
    #[error("no responders for topic {topic}")]
    NoResponders {
        /// The request's topic.
        topic: String,
    },
    /// A request got no reply in time.
    #[error("no reply within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The broker refused the call.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The publisher or consumer was closed and takes no more work.
    #[error("closed")]
    Closed,
    /// The bearer token given to the builder cannot be sent as gRPC metadata (it must be visible
    /// ASCII). The token itself is not repeated here.
    #[error("the token is not valid gRPC metadata: use visible ASCII characters only")]
    InvalidToken,
}

/// The `ErrorInfo.domain` of the broker's reasons.
pub const REASON_DOMAIN: &str = "switchyard.dev";

impl Error {
    /// The broker's stable reason for refusing the call (`GROUP_FULL`, `NO_RESPONDERS`,
    /// `PERMISSION_DENIED`, ... as the README's "Errors" table lists them), where it gave one: what
    /// to match on instead of the message's text.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Status(status) => reason_of(status),
            Self::NoResponders { .. } => Some("NO_RESPONDERS".to_owned()),
            Self::TimedOut(_) | Self::Connect { .. } | Self::Closed | Self::InvalidToken => None,
        }
    }

    /// The gRPC code behind this error, if it came from the broker.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Status(status) => Some(status.code()),
            Self::NoResponders { .. } => Some(tonic::Code::Unavailable),
            Self::TimedOut(_) => Some(tonic::Code::DeadlineExceeded),
            Self::Connect { .. } | Self::Closed | Self::InvalidToken => None,
        }
    }
}

/// The broker's reason in `status`'s details (`grpc-status-details-bin`), if any.
pub(crate) fn reason_of(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .filter(|info| info.domain == REASON_DOMAIN)
        .map(|info| info.reason)
}

/// The status a refused PublishStream or RequestStream frame stands for, with its reason as a
/// unary call's status would carry it, so that callers match both the same way.
pub(crate) fn frame_status(error: crate::pb::StreamError) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let code = tonic::Code::from_i32(error.code);
    match error.reason.is_empty() {
        true => tonic::Status::new(code, error.message),
        false => {
            let details = ErrorDetails::with_error_info(
                error.reason,
                REASON_DOMAIN,
                error
                    .metadata
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            tonic::Status::with_error_details(code, error.message, details)
        }
    }
}

/// Whether a stream that ended with `status` is worth reopening: the connection or the server went
/// away, as opposed to the broker refusing the stream itself.
pub(crate) fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::Internal
    )
}

/// The result of every fallible client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
