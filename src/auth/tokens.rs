//! Bearer tokens: the token file, and finding the identity behind a presented token.
//!
//! Tokens are kept only as SHA-256 digests and a presented token is compared with every one of them
//! in constant time, so neither the time a lookup takes nor the broker's configuration and token
//! store reveal a token. (What the process was started with, its arguments, environment or files,
//! is out of its hands: hence the advice to prefer a variable or a file to a flag.) Nothing in
//! here prints a token: a token is a [`SecretString`] until it is hashed into a [`TokenDigest`], and
//! file errors name a position, not a value.

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use ring::digest::{SHA256, digest};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::permissions::{Permissions, Rule};
use crate::topic::{Pattern, TopicLimits};

/// A bearer token as the broker keeps it: its SHA-256 digest, never the token.
///
/// A token is hashed the moment it is read (a flag, a variable, the config file or the token file):
/// until then it is a [`SecretString`], which redacts its `Debug` and zeroes its memory when dropped,
/// so no `Config` or `TokenStore` holds a raw token. A digest has one length, so comparing
/// two takes the same time whatever they hold. Its `Debug` shows nothing either: a digest of a weak
/// token could be guessed back.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

/// A token that cannot stand for anyone.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("a token must not be empty")]
pub struct EmptyToken;

impl TokenDigest {
    /// The digest of `token`; an empty token is refused.
    pub fn of(token: &SecretString) -> Result<Self, EmptyToken> {
        let token = token.expose_secret();
        if token.is_empty() {
            return Err(EmptyToken);
        }
        Ok(Self::of_presented(token))
    }

    /// The digest of a token a caller presented; an empty one matches no digest of [`Self::of`].
    fn of_presented(token: &str) -> Self {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        Self(bytes)
    }
}

impl FromStr for TokenDigest {
    type Err = EmptyToken;

    /// What the command line parses a token with: the text is wrapped at once, then hashed.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::of(&SecretString::from(text))
    }
}

impl<'de> Deserialize<'de> for TokenDigest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SecretString::deserialize(deserializer)?;
        Self::of(&token).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// Who a caller is once its token is known: a name for logs and errors, and what it may do.
#[derive(Debug)]
pub struct Identity {
    pub name: String,
    pub permissions: Permissions,
}

impl Identity {
    /// The caller when authentication is off: may do everything.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            permissions: Permissions::all(),
        }
    }
}

/// Why the tokens could not be loaded. No variant carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Only the position is reported: serde's messages may quote a value, and a value may be a token.
    #[error("token file {}: {kind} error at line {line}, column {column}", path.display())]
    Parse {
        path: PathBuf,
        kind: &'static str,
        line: usize,
        column: usize,
    },
    #[error("{origin}: {field}: {reason}")]
    Invalid {
        origin: String,
        field: String,
        reason: String,
    },
}

/// The token file: `{"tokens": [{"name": ..., "token": ..., "admin": ..., "publish": {...}, ...}]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    /// Kept as the text only until `add_json` hashes it; read as a `SecretString` so that an empty
    /// token is refused with the field's path instead of serde's message.
    token: SecretString,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    publish: RuleEntry,
    #[serde(default)]
    subscribe: RuleEntry,
    #[serde(default)]
    consume: RuleEntry,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
}

/// Every known token, as digests, with the identity each one stands for.
pub struct TokenStore {
    entries: Vec<(TokenDigest, Arc<Identity>)>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .entries
            .iter()
            .map(|(_, id)| id.name.as_str())
            .collect();
        f.debug_struct("TokenStore").field("names", &names).finish()
    }
}

impl TokenStore {
    /// The tokens of `file` and `flag_tokens` together; `None` when there are neither, which means
    /// authentication is off. Flag tokens may do everything, admin included.
    pub fn load(
        file: Option<&Path>,
        flag_tokens: &[TokenDigest],
        limits: TopicLimits,
    ) -> Result<Option<Self>, AuthError> {
        let mut store = Self {
            entries: Vec::new(),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
                path: path.to_owned(),
                source,
            })?;
            store.add_json(&text, path, limits)?;
        }
        for (index, token) in flag_tokens.iter().enumerate() {
            let identity = Identity {
                name: format!("auth-token-{}", index + 1),
                permissions: Permissions::all(),
            };
            let field = || format!("token {}", index + 1);
            store.add("auth_tokens", field, token.clone(), identity)?;
        }
        Ok((!store.entries.is_empty()).then_some(store))
    }

    /// Parses a token file's text; `path` only names it in errors.
    pub fn from_json(text: &str, path: &Path, limits: TopicLimits) -> Result<Self, AuthError> {
        let mut store = Self {
            entries: Vec::new(),
        };
        store.add_json(text, path, limits)?;
        Ok(store)
    }

    fn add_json(&mut self, text: &str, path: &Path, limits: TopicLimits) -> Result<(), AuthError> {
        let file: TokenFile = serde_json::from_str(text).map_err(|error| AuthError::Parse {
            path: path.to_owned(),
            kind: match error.classify() {
                serde_json::error::Category::Io => "read",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "content",
                serde_json::error::Category::Eof => "unexpected end of file",
            },
            line: error.line(),
            column: error.column(),
        })?;
        let origin = format!("token file {}", path.display());
        for (index, entry) in file.tokens.into_iter().enumerate() {
            let at = |field: &str| format!("tokens[{index}]{field}");
            if entry.name.trim().is_empty() {
                return Err(invalid(&origin, at(".name"), "must not be empty"));
            }
            let rule = |entry: RuleEntry, action: &str| -> Result<Rule, AuthError> {
                let parse = |list: Vec<String>, kind: &str| {
                    list.iter()
                        .enumerate()
                        .map(|(i, text)| {
                            Pattern::parse(text, limits).map_err(|error| {
                                invalid(&origin, at(&format!(".{action}.{kind}[{i}]")), error)
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                let allow = entry.allow.map(|list| parse(list, "allow")).transpose()?;
                Ok(Rule::new(allow, parse(entry.deny, "deny")?))
            };
            let identity = Identity {
                permissions: Permissions {
                    publish: rule(entry.publish, "publish")?,
                    subscribe: rule(entry.subscribe, "subscribe")?,
                    consume: rule(entry.consume, "consume")?,
                    admin: entry.admin,
                },
                name: entry.name,
            };
            let token = TokenDigest::of(&entry.token)
                .map_err(|error| invalid(&origin, at(".token"), error))?;
            self.add(&origin, || at(".token"), token, identity)?;
        }
        Ok(())
    }

    /// Adds one token, refusing one already known (it could not say who is calling).
    fn add(
        &mut self,
        origin: &str,
        field: impl Fn() -> String,
        token: TokenDigest,
        identity: Identity,
    ) -> Result<(), AuthError> {
        if let Some((_, other)) = self.entries.iter().find(|(known, _)| *known == token) {
            let reason = format!("the same token as {}", other.name);
            return Err(invalid(origin, field(), reason));
        }
        self.entries.push((token, Arc::new(identity)));
        Ok(())
    }

    /// The identity behind `presented`, if any. Every digest is compared, in constant time, whether or
    /// not an earlier one matched, so the time taken does not depend on which token (if any) it is.
    pub fn authenticate(&self, presented: &str) -> Option<Arc<Identity>> {
        let hashed = TokenDigest::of_presented(presented);
        let mut found = None;
        for (known, identity) in &self.entries {
            if bool::from(known.0.ct_eq(&hashed.0)) {
                found = Some(identity);
            }
        }
        found.cloned()
    }

    /// The names of the identities, for the startup log.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|(_, identity)| identity.name.as_str())
    }
}

fn invalid(origin: &str, field: String, reason: impl fmt::Display) -> AuthError {
    AuthError::Invalid {
        origin: origin.to_owned(),
        field,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::Action, topic::Topic};

    const LIMITS: TopicLimits = TopicLimits {
        max_bytes: 64,
        max_tokens: 8,
    };

    fn store(text: &str) -> Result<TokenStore, AuthError> {
        TokenStore::from_json(text, Path::new("tokens.json"), LIMITS)
    }

    #[test]
    fn a_known_token_finds_its_identity_and_others_find_none() {
        let tokens = store(
            r#"{"tokens": [
                {"name": "orders", "token": "t-orders", "publish": {"allow": ["orders.>"]}},
                {"name": "ops", "token": "t-ops", "admin": true}
            ]}"#,
        )
        .unwrap();
        let orders = tokens.authenticate("t-orders").unwrap();
        assert_eq!(orders.name, "orders");
        assert!(!orders.permissions.admin);
        let topic = Topic::parse("payments.x", LIMITS).unwrap();
        assert!(
            !orders
                .permissions
                .rule(Action::Publish)
                .permits_topic(&topic)
        );
        assert!(tokens.authenticate("t-ops").unwrap().permissions.admin);
        assert!(tokens.authenticate("t-order").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn errors_name_the_field_and_never_the_token() {
        let error = store(
            r#"{"tokens": [{"name": "a", "token": "s3cret", "subscribe": {"deny": ["a.>.b"]}}]}"#,
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("tokens[0].subscribe.deny[0]"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");

        let error = store(
            r#"{"tokens": [{"name": "a", "token": "same"}, {"name": "b", "token": "same"}]}"#,
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("tokens[1].token") && text.contains("same token as a"),
            "{text}"
        );

        // A token where a bool belongs: serde would quote it, so only the position is given.
        let error =
            store(r#"{"tokens": [{"name": "a", "token": "x", "admin": "s3cret"}]}"#).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("line 1"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn debug_output_redacts_tokens() {
        let tokens = store(r#"{"tokens": [{"name": "a", "token": "s3cret"}]}"#).unwrap();
        assert!(!format!("{tokens:?}").contains("s3cret"));
        let digest: TokenDigest = "s3cret".parse().unwrap();
        assert!(!format!("{digest:?}").contains("s3cret"));
    }

    #[test]
    fn flag_tokens_may_do_everything_and_nothing_means_auth_is_off() {
        assert!(TokenStore::load(None, &[], LIMITS).unwrap().is_none());
        let flags = ["t1".parse().unwrap()];
        let tokens = TokenStore::load(None, &flags, LIMITS).unwrap().unwrap();
        assert!(tokens.authenticate("t1").unwrap().permissions.admin);
        assert_eq!("".parse::<TokenDigest>(), Err(EmptyToken));
        let twice = ["t1".parse().unwrap(), "t1".parse().unwrap()];
        assert!(TokenStore::load(None, &twice, LIMITS).is_err());
    }
}
