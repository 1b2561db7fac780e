//! The gRPC edge for one delivered message with a 128-byte payload: converting the domain message to
//! `pb` (with no headers and with four), converting a whole delivery, encoding it with prost, and the
//! parts of the conversion that allocate (the id's UUID text, the topic's text, the header map).

use std::{hint::black_box, sync::Arc, time::SystemTime};

use criterion::{BatchSize, BenchmarkId, Criterion};
use prost::Message as _;
use switchyard::{
    broker::{Delivery, SubscriptionEvent},
    message::MessageId,
    transport::convert,
};

use super::fixtures;

pub fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    for headers in [0, 4] {
        let message = fixtures::message(headers);
        let delivery = Delivery {
            message: Arc::clone(&message),
            delivery_id: "3.1e240".into(),
            attempt: 1,
        };
        group.bench_function(BenchmarkId::new("message", headers), |b| {
            b.iter(|| convert::message(black_box(&message)));
        });
        group.bench_function(BenchmarkId::new("subscription_event", headers), |b| {
            b.iter_batched(
                || SubscriptionEvent::Message(Arc::clone(&message)),
                convert::subscription_event,
                BatchSize::SmallInput,
            );
        });
        group.bench_function(BenchmarkId::new("delivery", headers), |b| {
            b.iter_batched(
                || delivery.clone(),
                convert::delivery,
                BatchSize::SmallInput,
            );
        });
        let encoded = convert::delivery(delivery.clone());
        group.bench_function(BenchmarkId::new("encode_delivery", headers), |b| {
            b.iter(|| black_box(&encoded).encode_to_vec());
        });
        group.bench_function(BenchmarkId::new("delivery_and_encode", headers), |b| {
            b.iter_batched(
                || delivery.clone(),
                |delivery| convert::delivery(delivery).encode_to_vec(),
                BatchSize::SmallInput,
            );
        });
    }

    let message = fixtures::message(4);
    group.bench_function("part/message_id_new", |b| b.iter(MessageId::new));
    group.bench_function("part/message_id_to_string", |b| {
        b.iter(|| black_box(&message.id).to_string());
    });
    group.bench_function("part/topic_to_string", |b| {
        b.iter(|| black_box(&message.topic).to_string());
    });
    group.bench_function("part/headers_clone_4", |b| {
        b.iter(|| black_box(message.headers()).clone());
    });
    group.bench_function("part/published_at", |b| {
        b.iter(|| prost_types::Timestamp::from(black_box(message.published_at())));
    });
    group.bench_function("part/system_time_now", |b| b.iter(SystemTime::now));
    group.bench_function("part/delivery_id_format", |b| {
        b.iter(|| format!("{:x}.{:x}", black_box(3_u64), black_box(123_456_u64)));
    });
    group.finish();
}
