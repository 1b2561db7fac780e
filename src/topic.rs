//! Topics, patterns and group names: parsing, validation and matching.
//!
//! A topic is a dot-separated list of non-empty tokens (`orders.eu.created`). A pattern may also use
//! `*` for exactly one token and `>` as its last token for one or more trailing tokens, as in NATS.
//! Wildcards are whole tokens only. Validation is strict so that a topic means the same thing to every
//! client: no whitespace, no control characters, bounded length and token count.

use std::{fmt, sync::Arc};

/// The prefix of the reply inboxes the broker makes for requests.
pub const INBOX_PREFIX: &str = "_INBOX.";

/// How long topics and patterns may be.
#[derive(Debug, Clone, Copy)]
pub struct TopicLimits {
    pub max_bytes: usize,
    pub max_tokens: usize,
}

/// Why a topic, pattern or group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} bytes, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("has {count} tokens, more than the limit of {max}")]
    TooManyTokens { count: usize, max: usize },
    #[error("has an empty token (leading, trailing or double dot)")]
    EmptyToken,
    #[error("contains whitespace or a control character ({0:?})")]
    BadCharacter(char),
    #[error("contains a wildcard (`*` or `>`), which only subscription and group patterns may use")]
    Wildcard,
    #[error("uses `{0}` inside a token; wildcards must be whole tokens")]
    PartialWildcard(char),
    #[error("uses `>` before the last token")]
    MisplacedTail,
    #[error("contains `{0}`, which group names may not use")]
    ForbiddenInGroup(char),
}

/// A concrete topic a message is published to: validated, wildcard-free, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

/// A subscription or group pattern: validated, may contain `*` and a final `>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(Arc<str>);

/// One token of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternToken<'a> {
    Literal(&'a str),
    /// `*`: exactly one token.
    AnyOne,
    /// `>`: one or more trailing tokens.
    Tail,
}

/// The name of a queue group within its pattern.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(Arc<str>);

/// Checks what topics and patterns share, and returns the tokens.
fn check_tokens(text: &str, limits: TopicLimits) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > limits.max_bytes {
        return Err(NameError::TooLong {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameError::BadCharacter(bad));
    }
    let count = text.split('.').count();
    if count > limits.max_tokens {
        return Err(NameError::TooManyTokens {
            count,
            max: limits.max_tokens,
        });
    }
    if text.split('.').any(str::is_empty) {
        return Err(NameError::EmptyToken);
    }
    Ok(())
}

impl Topic {
    /// Parses a concrete topic: what Publish accepts.
    pub fn parse(text: &str, limits: TopicLimits) -> Result<Self, NameError> {
        check_tokens(text, limits)?;
        if text.contains(['*', '>']) {
            return Err(NameError::Wildcard);
        }
        Ok(Self(text.into()))
    }

    /// A fresh, unguessable reply inbox for one request.
    pub fn new_inbox() -> Self {
        Self(format!("{INBOX_PREFIX}{}", uuid::Uuid::new_v4().simple()).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    pub fn is_inbox(&self) -> bool {
        self.0.starts_with(INBOX_PREFIX)
    }
}

impl Pattern {
    /// Parses a pattern: what Subscribe, Consume and DeclareGroup accept.
    pub fn parse(text: &str, limits: TopicLimits) -> Result<Self, NameError> {
        check_tokens(text, limits)?;
        let last = text.split('.').count() - 1;
        for (index, token) in text.split('.').enumerate() {
            match token {
                "*" => {}
                ">" if index == last => {}
                ">" => return Err(NameError::MisplacedTail),
                literal => {
                    if let Some(wildcard) = literal.chars().find(|c| matches!(c, '*' | '>')) {
                        return Err(NameError::PartialWildcard(wildcard));
                    }
                }
            }
        }
        Ok(Self(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = PatternToken<'_>> {
        self.0.split('.').map(|token| match token {
            "*" => PatternToken::AnyOne,
            ">" => PatternToken::Tail,
            literal => PatternToken::Literal(literal),
        })
    }

    /// Whether `topic` matches. The subscription index does this for many patterns at once; this one
    /// is for single checks such as refusing a dead-letter topic that would loop back into its group.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut topic_tokens = topic.tokens();
        for token in self.tokens() {
            match (token, topic_tokens.next()) {
                (PatternToken::Tail, Some(_)) => return true,
                (PatternToken::AnyOne, Some(_)) => {}
                (PatternToken::Literal(want), Some(got)) if want == got => {}
                _ => return false,
            }
        }
        topic_tokens.next().is_none()
    }

    /// Whether every topic `other` matches, this pattern matches too. Permissions use it: a
    /// subscription is allowed only when an allowed pattern covers all of it.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut theirs = other.tokens();
        for token in self.tokens() {
            match (token, theirs.next()) {
                (PatternToken::Tail, Some(_)) => return true,
                (PatternToken::AnyOne, Some(PatternToken::Literal(_) | PatternToken::AnyOne)) => {}
                (PatternToken::Literal(want), Some(PatternToken::Literal(got))) if want == got => {}
                _ => return false,
            }
        }
        theirs.next().is_none()
    }

    /// Whether some topic matches both patterns. Permissions use it: a subscription that could see a
    /// denied topic is refused, since deliveries are not filtered one by one.
    pub fn overlaps(&self, other: &Pattern) -> bool {
        let mut theirs = other.tokens();
        for token in self.tokens() {
            match (token, theirs.next()) {
                (PatternToken::Tail, Some(_)) | (_, Some(PatternToken::Tail)) => return true,
                (PatternToken::AnyOne, Some(_)) | (_, Some(PatternToken::AnyOne)) => {}
                (PatternToken::Literal(a), Some(PatternToken::Literal(b))) if a == b => {}
                _ => return false,
            }
        }
        theirs.next().is_none()
    }
}

impl GroupName {
    /// Parses a group name: printable, no dots or wildcards, bounded.
    pub fn parse(text: &str, max_bytes: usize) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text.len() > max_bytes {
            return Err(NameError::TooLong {
                len: text.len(),
                max: max_bytes,
            });
        }
        if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(NameError::BadCharacter(bad));
        }
        if let Some(bad) = text.chars().find(|c| matches!(c, '.' | '*' | '>')) {
            return Err(NameError::ForbiddenInGroup(bad));
        }
        Ok(Self(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    )*};
}
display_as_str!(Topic, Pattern, GroupName);

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TopicLimits = TopicLimits {
        max_bytes: 64,
        max_tokens: 4,
    };

    fn topic(text: &str) -> Topic {
        Topic::parse(text, LIMITS).unwrap()
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text, LIMITS).unwrap()
    }

    #[test]
    fn topics_reject_what_nats_rejects() {
        let cases = [
            ("", NameError::Empty),
            ("a..b", NameError::EmptyToken),
            (".a", NameError::EmptyToken),
            ("a.", NameError::EmptyToken),
            ("a b", NameError::BadCharacter(' ')),
            ("a\tb", NameError::BadCharacter('\t')),
            ("a\0b", NameError::BadCharacter('\0')),
            ("a.*", NameError::Wildcard),
            ("a.>", NameError::Wildcard),
            ("a.b.c.d.e", NameError::TooManyTokens { count: 5, max: 4 }),
        ];
        for (text, expected) in cases {
            assert_eq!(Topic::parse(text, LIMITS), Err(expected), "{text:?}");
        }
        let long = "x".repeat(65);
        assert_eq!(
            Topic::parse(&long, LIMITS),
            Err(NameError::TooLong { len: 65, max: 64 })
        );
    }

    #[test]
    fn patterns_take_whole_token_wildcards_with_tail_last() {
        assert!(Pattern::parse("a.*.c", LIMITS).is_ok());
        assert!(Pattern::parse("a.>", LIMITS).is_ok());
        assert!(Pattern::parse(">", LIMITS).is_ok());
        assert_eq!(
            Pattern::parse("a.>.c", LIMITS),
            Err(NameError::MisplacedTail)
        );
        assert_eq!(
            Pattern::parse("a*.c", LIMITS),
            Err(NameError::PartialWildcard('*'))
        );
        assert_eq!(
            Pattern::parse("a.b>", LIMITS),
            Err(NameError::PartialWildcard('>'))
        );
    }

    #[test]
    fn matching_follows_token_rules() {
        let cases = [
            ("a.b", "a.b", true),
            ("a.b", "a.c", false),
            ("a.*", "a.b", true),
            ("a.*", "a.b.c", false),
            ("a.*", "a", false),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c", true),
            ("a.>", "a", false),
            (">", "a", true),
            ("*.b.>", "x.b.y.z", true),
            ("*.b.>", "x.c.y", false),
        ];
        for (p, t, expected) in cases {
            assert_eq!(pattern(p).matches(&topic(t)), expected, "{p} ~ {t}");
        }
    }

    #[test]
    fn covering_means_every_matched_topic_is_matched() {
        let cases = [
            (">", "a.*.>", true),
            ("a.>", "a.b", true),
            ("a.>", "a.>", true),
            ("a.>", "a", false),
            ("a.>", ">", false),
            ("a.*", "a.b", true),
            ("a.*", "a.*", true),
            ("a.*", "a.>", false),
            ("a.b", "a.*", false),
            ("a.b", "a.b", true),
            ("*.b", "a.b.c", false),
        ];
        for (outer, inner, expected) in cases {
            assert_eq!(
                pattern(outer).covers(&pattern(inner)),
                expected,
                "{outer} ⊇ {inner}"
            );
        }
    }

    #[test]
    fn overlapping_means_some_topic_matches_both() {
        let cases = [
            (">", "a", true),
            ("a.>", "*.b", true),
            ("a.>", "a", false),
            ("a.*", "*.b", true),
            ("a.*", "b.*", false),
            ("a.b", "a.b.c", false),
            ("a.*.c", "a.>", true),
            ("a.*", "a.*.c", false),
        ];
        for (left, right, expected) in cases {
            assert_eq!(
                pattern(left).overlaps(&pattern(right)),
                expected,
                "{left} ∩ {right}"
            );
            assert_eq!(
                pattern(right).overlaps(&pattern(left)),
                expected,
                "{right} ∩ {left}"
            );
        }
    }

    #[test]
    fn group_names_are_single_printable_words() {
        assert!(GroupName::parse("workers-1", 16).is_ok());
        assert_eq!(GroupName::parse("", 16), Err(NameError::Empty));
        assert_eq!(
            GroupName::parse("a.b", 16),
            Err(NameError::ForbiddenInGroup('.'))
        );
        assert_eq!(
            GroupName::parse("a b", 16),
            Err(NameError::BadCharacter(' '))
        );
        assert!(matches!(
            GroupName::parse(&"g".repeat(17), 16),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn inboxes_are_topics_with_the_inbox_prefix() {
        let inbox = Topic::new_inbox();
        assert!(inbox.is_inbox());
        assert!(
            Topic::parse(
                inbox.as_str(),
                TopicLimits {
                    max_bytes: 256,
                    max_tokens: 8
                }
            )
            .is_ok()
        );
    }
}
