//! Topics, patterns and group names: parsing, validation and matching.
//!
//! A topic is a dot-separated list of non-empty tokens (`orders.eu.created`). A pattern may also use
//! `*` for exactly one token and `>` as its last token for one or more trailing tokens, as in NATS.
//! Wildcards are whole tokens only. Validation is strict so that a topic means the same thing to every
//! client and every log line: no whitespace, no control characters, no invisible characters (zero-width
//! and bidirectional controls, which make two different topics print alike), bounded length and token
//! count. Group names are stricter still: ASCII letters, digits, `-` and `_`, so that a group name is
//! safe to print, to put in a file name or a metric label, and cannot be confused with a topic.

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
    #[error("contains whitespace, a control or an invisible character ({0:?})")]
    BadCharacter(char),
    #[error("contains a wildcard (`*` or `>`), which only subscription and group patterns may use")]
    Wildcard,
    #[error("uses `{0}` inside a token; wildcards must be whole tokens")]
    PartialWildcard(char),
    #[error("uses `>` before the last token")]
    MisplacedTail,
    #[error("contains {0:?}; group names use only ASCII letters, digits, `-` and `_`")]
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

/// Characters that print as nothing, or reorder what follows them: a topic holding one looks like
/// another topic in every log and terminal. Soft hyphen, zero-width space and joiners, the
/// bidirectional marks, embeddings, overrides and isolates, word joiner and invisible operators, and
/// the byte order mark. (Other whitespace and control characters are refused by their Unicode class.)
const INVISIBLE: &[std::ops::RangeInclusive<char>] = &[
    '\u{00AD}'..='\u{00AD}',
    '\u{200B}'..='\u{200F}',
    '\u{202A}'..='\u{202E}',
    '\u{2060}'..='\u{2064}',
    '\u{2066}'..='\u{206F}',
    '\u{FEFF}'..='\u{FEFF}',
];

/// Whether `c` may not appear in a topic or pattern at all.
fn is_refused(c: char) -> bool {
    c.is_whitespace() || c.is_control() || INVISIBLE.iter().any(|range| range.contains(&c))
}

/// Checks what topics and patterns share: length, characters, token count, no empty token.
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
    if let Some(bad) = text.chars().find(|&c| is_refused(c)) {
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

    /// A fresh, unguessable reply inbox under `node` (one token): `_INBOX.<node>.<random>`, so
    /// one subscription per node (cluster mode's) catches the replies to its requests.
    pub fn new_inbox_under(node: &str) -> Self {
        Self(format!("{INBOX_PREFIX}{node}.{}", uuid::Uuid::new_v4().simple()).into())
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
    /// Parses a group name: one to `max_bytes` of ASCII letters, digits, `-` and `_`. Dots and
    /// wildcards would read as a topic, and anything wider invites look-alike names.
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
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        if let Some(bad) = text.chars().find(|&c| !allowed(c)) {
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

    /// Every topic and pattern rule as one table: the text, then what a topic and a pattern make of it.
    #[test]
    fn topic_and_pattern_rules() {
        use NameError::*;
        let long = "x".repeat(65);
        type Outcome = Result<(), NameError>;
        let cases: &[(&str, Outcome, Outcome)] = &[
            ("orders.eu.created", Ok(()), Ok(())),
            ("a-b_c:d/e=f", Ok(()), Ok(())),
            ("caf\u{e9}.\u{4e2d}", Ok(()), Ok(())),
            ("", Err(Empty), Err(Empty)),
            ("a..b", Err(EmptyToken), Err(EmptyToken)),
            (".a", Err(EmptyToken), Err(EmptyToken)),
            ("a.", Err(EmptyToken), Err(EmptyToken)),
            (".", Err(EmptyToken), Err(EmptyToken)),
            ("a b", Err(BadCharacter(' ')), Err(BadCharacter(' '))),
            ("a\tb", Err(BadCharacter('\t')), Err(BadCharacter('\t'))),
            ("a\n", Err(BadCharacter('\n')), Err(BadCharacter('\n'))),
            ("a\rb", Err(BadCharacter('\r')), Err(BadCharacter('\r'))),
            ("a\0b", Err(BadCharacter('\0')), Err(BadCharacter('\0'))),
            (
                "a\u{7f}",
                Err(BadCharacter('\u{7f}')),
                Err(BadCharacter('\u{7f}')),
            ),
            (
                "a\u{85}",
                Err(BadCharacter('\u{85}')),
                Err(BadCharacter('\u{85}')),
            ),
            (
                "a\u{a0}b",
                Err(BadCharacter('\u{a0}')),
                Err(BadCharacter('\u{a0}')),
            ),
            (
                "a\u{3000}",
                Err(BadCharacter('\u{3000}')),
                Err(BadCharacter('\u{3000}')),
            ),
            (
                "a\u{200b}b",
                Err(BadCharacter('\u{200b}')),
                Err(BadCharacter('\u{200b}')),
            ),
            (
                "a\u{202e}b",
                Err(BadCharacter('\u{202e}')),
                Err(BadCharacter('\u{202e}')),
            ),
            (
                "\u{feff}a",
                Err(BadCharacter('\u{feff}')),
                Err(BadCharacter('\u{feff}')),
            ),
            (
                "a\u{ad}b",
                Err(BadCharacter('\u{ad}')),
                Err(BadCharacter('\u{ad}')),
            ),
            ("a.*", Err(Wildcard), Ok(())),
            ("a.>", Err(Wildcard), Ok(())),
            ("*", Err(Wildcard), Ok(())),
            (">", Err(Wildcard), Ok(())),
            ("*.*.>", Err(Wildcard), Ok(())),
            ("a.>.c", Err(Wildcard), Err(MisplacedTail)),
            (">.a", Err(Wildcard), Err(MisplacedTail)),
            ("a*.c", Err(Wildcard), Err(PartialWildcard('*'))),
            ("a.*b", Err(Wildcard), Err(PartialWildcard('*'))),
            ("a.b>", Err(Wildcard), Err(PartialWildcard('>'))),
            ("a.>>", Err(Wildcard), Err(PartialWildcard('>'))),
            ("a.**", Err(Wildcard), Err(PartialWildcard('*'))),
            ("a.b.c.d", Ok(()), Ok(())),
            (
                "a.b.c.d.e",
                Err(TooManyTokens { count: 5, max: 4 }),
                Err(TooManyTokens { count: 5, max: 4 }),
            ),
            (&long[..64], Ok(()), Ok(())),
            (
                &long,
                Err(TooLong { len: 65, max: 64 }),
                Err(TooLong { len: 65, max: 64 }),
            ),
        ];
        for (text, as_topic, as_pattern) in cases {
            let topic = Topic::parse(text, LIMITS).map(|_| ());
            assert_eq!(&topic, as_topic, "topic {text:?}");
            let pattern = Pattern::parse(text, LIMITS).map(|_| ());
            assert_eq!(&pattern, as_pattern, "pattern {text:?}");
        }
    }

    /// Every group name rule as one table.
    #[test]
    fn group_name_rules() {
        use NameError::*;
        let long = "g".repeat(17);
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("workers", Ok(())),
            ("Workers-1_b", Ok(())),
            ("0123456789abcdef", Ok(())),
            ("", Err(Empty)),
            ("a.b", Err(ForbiddenInGroup('.'))),
            ("*", Err(ForbiddenInGroup('*'))),
            (">", Err(ForbiddenInGroup('>'))),
            ("a b", Err(ForbiddenInGroup(' '))),
            ("a\tb", Err(ForbiddenInGroup('\t'))),
            ("a\0", Err(ForbiddenInGroup('\0'))),
            ("a:b", Err(ForbiddenInGroup(':'))),
            ("a/b", Err(ForbiddenInGroup('/'))),
            ("caf\u{e9}", Err(ForbiddenInGroup('\u{e9}'))),
            ("a\u{200b}", Err(ForbiddenInGroup('\u{200b}'))),
            (&long[..16], Ok(())),
            (&long, Err(TooLong { len: 17, max: 16 })),
        ];
        for (text, expected) in cases {
            let parsed = GroupName::parse(text, 16).map(|_| ());
            assert_eq!(&parsed, expected, "group {text:?}");
        }
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
