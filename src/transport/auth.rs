//! Authentication and authorization at the gRPC edge. An interceptor on the Broker and Admin services
//! turns the `authorization: Bearer <token>` metadata into a [`Caller`] in the request's extensions;
//! each RPC then asks the caller for the one permission it needs. Health and reflection are not
//! intercepted: they say nothing about messages.

use std::sync::Arc;

use tonic::{Request, Status, metadata::MetadataMap, service::Interceptor};
use tonic_types::StatusExt;

use crate::{
    auth::{Action, Denied, Identity, TokenStore},
    broker::Broker,
    message::NewMessage,
    topic::{Pattern, Topic},
};

/// The tonic interceptor: finds the identity behind the bearer token, or refuses the call.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// `None`: authentication is off and every call is [`Identity::anonymous`].
    tokens: Option<Arc<TokenStore>>,
    anonymous: Arc<Identity>,
}

impl Authenticator {
    pub fn new(tokens: Option<Arc<TokenStore>>) -> Self {
        Self {
            tokens,
            anonymous: Arc::new(Identity::anonymous()),
        }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let identity = match &self.tokens {
            None => Arc::clone(&self.anonymous),
            Some(tokens) => {
                let identity = bearer(request.metadata()).and_then(|token| {
                    tokens
                        .authenticate(token)
                        .ok_or_else(|| unauthenticated("unknown bearer token"))
                });
                if let Err(status) = &identity {
                    let remote = request.remote_addr();
                    tracing::debug!(?remote, reason = status.message(), "call refused");
                }
                identity?
            }
        };
        // The handlers never need the token itself, so it goes no further than here.
        request.metadata_mut().remove("authorization");
        request.extensions_mut().insert(Caller(identity));
        Ok(request)
    }
}

/// The token of `authorization: Bearer <token>` (the scheme in any case, as HTTP has it).
fn bearer(metadata: &MetadataMap) -> Result<&str, Status> {
    let missing =
        || unauthenticated("authorization: expected metadata `authorization: Bearer <token>`");
    let value = metadata.get("authorization").ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(missing()),
    }
}

/// The authenticated caller of one RPC.
#[derive(Debug, Clone)]
pub struct Caller(Arc<Identity>);

/// The caller the interceptor found. A request without one was not intercepted, which is a wiring
/// mistake: it is refused rather than let through.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| unauthenticated("no caller identity on this call"))
}

impl Caller {
    fn denied(&self, action: Action, target: &str, field: String) -> Status {
        Status::from(Denied::Topic {
            identity: self.0.name.clone(),
            action,
            target: target.to_owned(),
            field,
        })
    }

    /// Subscribe and Consume: the whole pattern must be allowed.
    pub fn may(&self, action: Action, pattern: &Pattern, field: &str) -> Result<(), Status> {
        match self.0.permissions.rule(action).permits_pattern(pattern) {
            true => Ok(()),
            false => Err(self.denied(action, pattern.as_str(), field.to_owned())),
        }
    }

    /// Request: publishing to its topic must be allowed.
    pub fn may_publish_to(&self, topic: &Topic, field: &str) -> Result<(), Status> {
        match self.0.permissions.publish.permits_topic(topic) {
            true => Ok(()),
            false => Err(self.denied(Action::Publish, topic.as_str(), field.to_owned())),
        }
    }

    /// Publish: every message of the batch is checked before anything is routed, so a batch is
    /// refused whole. A reply to a request inbox that is waiting right now is allowed whatever the
    /// publish rule says (like NATS's `allow_responses`): its name is unguessable and only those who
    /// received the request know it.
    pub fn may_publish<B: Broker>(&self, batch: &[NewMessage], broker: &B) -> Result<(), Status> {
        let rule = &self.0.permissions.publish;
        let permitted = |topic: &Topic| {
            rule.permits_topic(topic) || (topic.is_inbox() && broker.awaits_reply(topic))
        };
        let refused = batch.iter().position(|message| !permitted(&message.topic));
        match refused {
            None => Ok(()),
            Some(index) => Err(self.denied(
                Action::Publish,
                batch[index].topic.as_str(),
                format!("messages[{index}].topic"),
            )),
        }
    }

    /// Ack: settling a delivery takes the right to consume its group's pattern, checked for every
    /// id before anything is settled (so a call is refused whole). Delivery ids are counters, easy
    /// to guess; without this any token could settle another consumer's deliveries. Ids that name no
    /// live group are left to the broker, which reports them unknown.
    pub fn may_settle<'a, B: Broker>(
        &self,
        ids: impl IntoIterator<Item = (&'a str, &'a str)>,
        broker: &B,
    ) -> Result<(), Status> {
        let rule = self.0.permissions.rule(Action::Consume);
        if rule.permits_all() {
            return Ok(());
        }
        for (field, id) in ids {
            if let Some(pattern) = broker.delivery_pattern(id)
                && !rule.permits_pattern(&pattern)
            {
                return Err(self.denied(Action::Consume, pattern.as_str(), field.to_owned()));
            }
        }
        Ok(())
    }

    /// The Admin service is for tokens marked `"admin": true`.
    pub fn admin(&self) -> Result<(), Status> {
        match self.0.permissions.admin {
            true => Ok(()),
            false => Err(Status::from(Denied::NotAdmin {
                identity: self.0.name.clone(),
            })),
        }
    }
}

impl From<Denied> for Status {
    fn from(denied: Denied) -> Self {
        let details = super::details::of_denied(&denied);
        Status::with_error_details(tonic::Code::PermissionDenied, denied.to_string(), details)
    }
}

/// UNAUTHENTICATED with `message`, and its reason for programs.
fn unauthenticated(message: &str) -> Status {
    Status::with_error_details(
        tonic::Code::Unauthenticated,
        message,
        super::details::unauthenticated(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn authenticator() -> Authenticator {
        let text = r#"{"tokens": [{"name": "a", "token": "good"}]}"#;
        let limits = Config::default().topic_limits();
        let tokens = TokenStore::from_json(text, Path::new("t.json"), limits).unwrap();
        Authenticator::new(Some(Arc::new(tokens)))
    }

    fn call(authorization: Option<&str>) -> Result<Request<()>, Status> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        authenticator().call(request)
    }

    #[test]
    fn a_known_bearer_token_passes_and_leaves_no_trace_in_the_metadata() {
        for value in ["Bearer good", "bearer good"] {
            let request = call(Some(value)).unwrap();
            assert!(request.metadata().get("authorization").is_none());
            assert!(caller(&request).is_ok());
        }
    }

    #[test]
    fn no_token_a_wrong_token_or_another_scheme_is_unauthenticated() {
        for value in [None, Some("Bearer bad"), Some("Basic good"), Some("good")] {
            let status = call(value).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{value:?}");
            assert!(!status.message().contains("good"), "{value:?}");
        }
    }

    #[test]
    fn a_request_that_skipped_the_interceptor_is_refused() {
        let status = caller(&Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
