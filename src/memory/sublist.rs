//! The subscription index: a trie of pattern tokens that finds every entry whose pattern matches a
//! topic, in time proportional to the topic's depth rather than to the number of subscriptions.
//!
//! As in NATS's sublist, `*` and `>` are children of their own at each level, so a match walks the
//! literal child, the `*` child, and collects the `>` entries of every level it passes.

use std::collections::HashMap;

use crate::topic::{Pattern, PatternToken, Topic};

/// A handle that identifies one inserted entry, for removal.
pub type EntryId = u64;

#[derive(Debug)]
pub struct Sublist<T> {
    root: Node<T>,
    next_id: EntryId,
}

#[derive(Debug)]
struct Node<T> {
    /// Entries whose pattern ends exactly here.
    here: Vec<(EntryId, T)>,
    /// Entries whose pattern ends with `>` right after this node.
    tail: Vec<(EntryId, T)>,
    literal: HashMap<Box<str>, Node<T>>,
    any_one: Option<Box<Node<T>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            here: Vec::new(),
            tail: Vec::new(),
            literal: HashMap::new(),
            any_one: None,
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.here.is_empty()
            && self.tail.is_empty()
            && self.literal.is_empty()
            && self.any_one.is_none()
    }
}

impl<T> Default for Sublist<T> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            next_id: 0,
        }
    }
}

impl<T> Sublist<T> {
    /// Adds `value` under `pattern` and returns the id that removes it.
    pub fn insert(&mut self, pattern: &Pattern, value: T) -> EntryId {
        let id = self.next_id;
        self.next_id += 1;
        let mut node = &mut self.root;
        for token in pattern.tokens() {
            node = match token {
                PatternToken::Literal(literal) => node.literal.entry(literal.into()).or_default(),
                PatternToken::AnyOne => node.any_one.get_or_insert_with(Box::default),
                PatternToken::Tail => {
                    node.tail.push((id, value));
                    return id;
                }
            };
        }
        node.here.push((id, value));
        id
    }

    /// Removes the entry `id` inserted under `pattern`, pruning nodes left empty. Returns its value.
    pub fn remove(&mut self, pattern: &Pattern, id: EntryId) -> Option<T> {
        let tokens: Vec<PatternToken<'_>> = pattern.tokens().collect();
        Self::remove_below(&mut self.root, &tokens, id)
    }

    fn remove_below(node: &mut Node<T>, tokens: &[PatternToken<'_>], id: EntryId) -> Option<T> {
        let take = |entries: &mut Vec<(EntryId, T)>| {
            let position = entries.iter().position(|(entry, _)| *entry == id)?;
            Some(entries.swap_remove(position).1)
        };
        let Some((first, rest)) = tokens.split_first() else {
            return take(&mut node.here);
        };
        match first {
            PatternToken::Tail => take(&mut node.tail),
            PatternToken::Literal(literal) => {
                let child = node.literal.get_mut(*literal)?;
                let removed = Self::remove_below(child, rest, id);
                if child.is_empty() {
                    node.literal.remove(*literal);
                }
                removed
            }
            PatternToken::AnyOne => {
                let child = node.any_one.as_mut()?;
                let removed = Self::remove_below(child, rest, id);
                if child.is_empty() {
                    node.any_one = None;
                }
                removed
            }
        }
    }

    /// Calls `visit` once for every entry whose pattern matches `topic`.
    pub fn for_each_match<'a>(&'a self, topic: &Topic, mut visit: impl FnMut(&'a T)) {
        let tokens: Vec<&str> = topic.tokens().collect();
        Self::match_below(&self.root, &tokens, &mut visit);
    }

    fn match_below<'a>(node: &'a Node<T>, tokens: &[&str], visit: &mut impl FnMut(&'a T)) {
        let Some((first, rest)) = tokens.split_first() else {
            node.here.iter().for_each(|(_, value)| visit(value));
            return;
        };
        node.tail.iter().for_each(|(_, value)| visit(value));
        if let Some(child) = node.literal.get(*first) {
            Self::match_below(child, rest, visit);
        }
        if let Some(child) = &node.any_one {
            Self::match_below(child, rest, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::topic::TopicLimits;

    const LIMITS: TopicLimits = TopicLimits {
        max_bytes: 256,
        max_tokens: 16,
    };

    fn matches(list: &Sublist<&'static str>, topic: &str) -> Vec<&'static str> {
        let mut found = Vec::new();
        list.for_each_match(&Topic::parse(topic, LIMITS).unwrap(), |v| found.push(*v));
        found.sort();
        found
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text, LIMITS).unwrap()
    }

    #[test]
    fn finds_literal_single_and_tail_wildcards() {
        let mut list = Sublist::default();
        list.insert(&pattern("a.b"), "exact");
        list.insert(&pattern("a.*"), "star");
        list.insert(&pattern("a.>"), "tail");
        list.insert(&pattern(">"), "all");
        list.insert(&pattern("*.b.c"), "star-first");
        assert_eq!(matches(&list, "a.b"), ["all", "exact", "star", "tail"]);
        assert_eq!(matches(&list, "a.b.c"), ["all", "star-first", "tail"]);
        assert_eq!(matches(&list, "a"), ["all"]);
        assert_eq!(matches(&list, "z.y"), ["all"]);
    }

    #[test]
    fn removal_prunes_and_keeps_others() {
        let mut list = Sublist::default();
        let one = list.insert(&pattern("a.b"), "one");
        let two = list.insert(&pattern("a.b"), "two");
        let tail = list.insert(&pattern("a.>"), "tail");
        assert_eq!(list.remove(&pattern("a.b"), one), Some("one"));
        assert_eq!(list.remove(&pattern("a.b"), one), None);
        assert_eq!(matches(&list, "a.b"), ["tail", "two"]);
        list.remove(&pattern("a.b"), two);
        list.remove(&pattern("a.>"), tail);
        assert!(list.root.is_empty(), "every node is pruned");
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string())
        ]
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![token(), Just("*".to_string())];
        (prop::collection::vec(token, 1..4), any::<bool>()).prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".into());
            }
            tokens.join(".")
        })
    }

    proptest! {
        /// The trie agrees with the one-pattern matcher on every pattern and topic.
        #[test]
        fn agrees_with_pattern_matches(
            patterns in prop::collection::vec(pattern_text(), 1..12),
            topic in prop::collection::vec(token(), 1..5),
        ) {
            let topic = Topic::parse(&topic.join("."), LIMITS).unwrap();
            let mut list = Sublist::default();
            for (index, text) in patterns.iter().enumerate() {
                list.insert(&pattern(text), index);
            }
            let mut found = Vec::new();
            list.for_each_match(&topic, |index| found.push(*index));
            found.sort();
            let expected: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, text)| pattern(text).matches(&topic))
                .map(|(index, _)| index)
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
