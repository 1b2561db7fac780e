//! Topic, pattern and group name parsing, and matching: the subscription trie must find exactly the
//! patterns that the plain one-pattern matcher accepts, and the parsers must agree with each other (a
//! valid topic is a valid pattern that matches it; a pattern without wildcards is a valid topic; a
//! valid group name is a valid one-token topic).
#![no_main]

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use switchyard::{
    memory::sublist::Sublist,
    topic::{GroupName, NameError, Pattern, PatternToken, Topic, TopicLimits},
};

const LIMITS: TopicLimits = TopicLimits {
    max_bytes: 48,
    max_tokens: 6,
};

/// Mostly the characters that matter to the rules, so that inputs look like topics; any other char
/// now and then.
const ALPHABET: &[char] = &[
    'a', 'b', 'c', '.', '.', '.', '*', '>', '-', '_', ' ', '\t', '\0', '\u{e9}', '\u{200b}',
];

fn text(input: &mut Unstructured<'_>) -> Result<String> {
    let len = input.int_in_range(0..=24_u8)?;
    let mut text = String::new();
    for _ in 0..len {
        let c = if input.ratio(1, 16)? {
            input.arbitrary::<char>()?
        } else {
            *input.choose(ALPHABET)?
        };
        text.push(c);
    }
    Ok(text)
}

/// Up to `most` candidate texts, each checked by [`check_parsers_agree`], and those `parse` accepts.
fn parsed<T>(
    input: &mut Unstructured<'_>,
    most: u8,
    parse: fn(&str, TopicLimits) -> std::result::Result<T, NameError>,
) -> Result<Vec<T>> {
    let count = input.int_in_range(0..=most)?;
    let mut accepted = Vec::new();
    for _ in 0..count {
        let candidate = text(input)?;
        check_parsers_agree(&candidate);
        if let Ok(value) = parse(&candidate, LIMITS) {
            accepted.push(value);
        }
    }
    Ok(accepted)
}

fn check(input: &mut Unstructured<'_>) -> Result<()> {
    let patterns = parsed(input, 8, Pattern::parse)?;
    let mut trie = Sublist::default();
    let entries: Vec<_> = patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| trie.insert(pattern, index))
        .collect();
    let topics = parsed(input, 8, Topic::parse)?;
    for topic in &topics {
        let mut found = Vec::new();
        trie.for_each_match(topic, |&index| found.push(index));
        found.sort_unstable();
        let expected: Vec<usize> = (0..patterns.len())
            .filter(|&index| patterns[index].matches(topic))
            .collect();
        assert_eq!(found, expected, "{topic:?} against {patterns:?}");
    }
    for (index, (pattern, entry)) in patterns.iter().zip(entries).enumerate() {
        assert_eq!(
            trie.remove(pattern, entry),
            Some(index),
            "removing {pattern:?}"
        );
    }
    for topic in &topics {
        trie.for_each_match(topic, |index| {
            panic!("{topic:?} still matches entry {index}")
        });
    }
    Ok(())
}

fn check_parsers_agree(text: &str) {
    let topic = Topic::parse(text, LIMITS);
    let pattern = Pattern::parse(text, LIMITS);
    if let Ok(topic) = &topic {
        let pattern = pattern
            .as_ref()
            .unwrap_or_else(|error| panic!("topic {text:?} is not a pattern: {error}"));
        assert!(pattern.matches(topic), "{text:?} does not match itself");
        assert_eq!(topic.as_str(), text);
    }
    if let Ok(pattern) = &pattern {
        let literal = pattern
            .tokens()
            .all(|token| matches!(token, PatternToken::Literal(_)));
        assert_eq!(
            literal,
            topic.is_ok(),
            "{text:?}: wildcard-free pattern vs topic"
        );
    }
    if GroupName::parse(text, LIMITS.max_bytes).is_ok() {
        assert!(topic.is_ok(), "group name {text:?} is not a topic");
        assert!(!text.contains('.'), "group name {text:?} has a dot");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
