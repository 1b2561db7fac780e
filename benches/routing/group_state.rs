//! A queue group's state machine on its own, without lock, runtime or clock: storing a message,
//! handing one out, acking one, and the three in a row.

use std::{hint::black_box, sync::Arc, time::Instant as Clock};

use criterion::Criterion;
use switchyard::memory::group_state::{ConsumerId, GroupState, Settle};
use tokio::{sync::Notify, time::Instant};

use super::{chunked, fixtures};

/// A fresh group with one consumer that never runs out of prefetch.
fn group_with_consumer(now: Instant) -> (GroupState, ConsumerId) {
    let mut state = GroupState::new(fixtures::group_settings(), now);
    let consumer = state
        .attach(fixtures::consumer_terms(), Arc::new(Notify::new()))
        .expect("a shared group takes every consumer");
    (state, consumer)
}

pub fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_state");
    let message = fixtures::message(0);
    let now = Instant::now();

    group.bench_function("enqueue", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let (mut state, _) = group_with_consumer(now);
                let start = Clock::now();
                for _ in 0..n {
                    state.enqueue(message.clone());
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("take", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let (mut state, consumer) = group_with_consumer(now);
                (0..n).for_each(|_| {
                    state.enqueue(message.clone());
                });
                let start = Clock::now();
                for _ in 0..n {
                    black_box(state.take(consumer, now));
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("settle_ack", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |n| {
                let (mut state, consumer) = group_with_consumer(now);
                (0..n).for_each(|_| {
                    state.enqueue(message.clone());
                });
                let deliveries: Vec<_> = (0..n)
                    .filter_map(|_| state.take(consumer, now))
                    .map(|handout| handout.delivery)
                    .collect();
                let start = Clock::now();
                for delivery in deliveries {
                    let settled = state.settle(delivery, Settle::Ack, now);
                    black_box(settled.expect("the delivery is outstanding"));
                }
                start.elapsed()
            })
        });
    });

    // The steady state of a consumer that keeps up: nothing accumulates.
    group.bench_function("enqueue_take_ack", |b| {
        let (mut state, consumer) = group_with_consumer(now);
        b.iter(|| {
            state.enqueue(message.clone());
            let handout = state.take(consumer, now).expect("a message is ready");
            black_box(state.settle(handout.delivery, Settle::Ack, now))
        });
    });
    group.finish();
}
