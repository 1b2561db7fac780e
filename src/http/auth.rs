//! Tokens on the HTTP listener: with authentication on, the endpoints `--http-auth` protects need a
//! token with `"admin": true`, the same tokens as the gRPC port's. The token comes as
//! `Authorization: Bearer TOKEN` (scripts, Prometheus' `authorization` setting) or as the password
//! of HTTP Basic authentication, which a browser asks a person for after a `401` that offers it.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine;

use crate::auth::TokenStore;

/// What a protected group of endpoints checks.
#[derive(Debug, Clone)]
pub struct Guard {
    pub tokens: Arc<TokenStore>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// No token, or one nobody has: ask for one.
    Unauthenticated,
    /// A known token without the admin permission.
    NotAdmin,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"switchyard\", charset=\"UTF-8\""),
                )],
                "a token with \"admin\": true is needed: Authorization: Bearer TOKEN, or HTTP Basic \
                 with the token as the password\n",
            )
                .into_response(),
            Self::NotAdmin => (
                StatusCode::FORBIDDEN,
                "this token is not an admin token; the dashboard, the JSON API and protected \
                 metrics need \"admin\": true\n",
            )
                .into_response(),
        }
    }
}

/// The token a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        // `user:password`; the user name is not checked, the token is the password.
        let (_, password) = decoded.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

fn check(guard: &Guard, headers: &HeaderMap) -> Result<(), Refused> {
    let token = presented(headers).ok_or(Refused::Unauthenticated)?;
    let identity = guard
        .tokens
        .authenticate(&token)
        .ok_or(Refused::Unauthenticated)?;
    match identity.permissions.admin {
        true => Ok(()),
        false => Err(Refused::NotAdmin),
    }
}

/// Middleware: passes the request on only with an admin token.
pub async fn require_admin(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match check(&guard, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_present_the_token() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            presented(&headers)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer  abc ").as_deref(), Some("abc"));
        // "anyone:s3cr:et"
        assert_eq!(
            with("Basic YW55b25lOnMzY3I6ZXQ=").as_deref(),
            Some("s3cr:et")
        );
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Digest abc"), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }
}
