//! The subscription trie with 10, 1 000 and 100 000 mixed patterns: matching a topic that some
//! pattern matches, one that none does, and adding then removing a subscription.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use switchyard::{memory::sublist::Sublist, topic::Topic};

use super::fixtures;

const SIZES: [usize; 3] = [10, 1_000, 100_000];

/// Counts the entries that match, the way routing visits them.
fn count_matches(list: &Sublist<usize>, topic: &Topic) -> usize {
    let mut found = 0;
    list.for_each_match(topic, |entry| {
        black_box(entry);
        found += 1;
    });
    found
}

pub fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("sublist");
    for size in SIZES {
        let patterns = fixtures::patterns(size);
        let mut list = Sublist::default();
        for (index, pattern) in patterns.iter().enumerate() {
            list.insert(pattern, index);
        }
        let hit = fixtures::hit_topic(&patterns);
        let miss = fixtures::topic("billing.invoice.paid");
        eprintln!(
            "sublist with {size} patterns: {hit} matches {}, {miss} matches {}",
            count_matches(&list, &hit),
            count_matches(&list, &miss)
        );
        group.bench_with_input(BenchmarkId::new("match_hit", size), &hit, |b, topic| {
            b.iter(|| count_matches(&list, black_box(topic)));
        });
        group.bench_with_input(BenchmarkId::new("match_miss", size), &miss, |b, topic| {
            b.iter(|| count_matches(&list, black_box(topic)));
        });
        // A pattern whose `*` branch may or may not exist yet: insert creates or reuses nodes, and
        // remove prunes what it created.
        let extra = fixtures::pattern("svc7.*.id42");
        group.bench_function(BenchmarkId::new("insert_remove", size), |b| {
            b.iter(|| {
                let entry = list.insert(black_box(&extra), usize::MAX);
                list.remove(&extra, entry)
            });
        });
    }
    group.finish();
}
