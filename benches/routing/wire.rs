//! The gRPC edge for one delivered message with a 128-byte payload (with no headers and with four):
//! writing a Subscribe event and a delivery straight from the message (`transport::wire`, what the
//! server does), against converting to `pb` and encoding that (what it did before), and the parts
//! of the conversion that cost (the id's UUID text, the topic's text, the header map).

use std::{hint::black_box, time::SystemTime};

use criterion::{BenchmarkId, Criterion};
use switchyard::{
    broker::{Delivery, SubscriptionEvent},
    message::MessageId,
    pb,
    transport::{
        convert,
        wire::{self, Encode as _},
    },
};

use super::fixtures;

pub fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    for headers in [0, 4] {
        let message = fixtures::message(headers);
        let delivery = Delivery {
            message: message.clone(),
            delivery_id: "3.1e240".into(),
            attempt: 1,
        };
        // tonic writes every response of a stream into one reused buffer; so do these.
        let mut buf = Vec::with_capacity(4096);
        group.bench_function(BenchmarkId::new("message", headers), |b| {
            b.iter(|| convert::message(black_box(&message)));
        });
        group.bench_function(BenchmarkId::new("write_subscribe_response", headers), |b| {
            let event = wire::SubscribeResponse(SubscriptionEvent::Message(message.clone()));
            b.iter(|| {
                buf.clear();
                black_box(&event).encode_raw(&mut buf);
            });
        });
        group.bench_function(BenchmarkId::new("write_delivery", headers), |b| {
            let delivery = wire::Delivery(delivery.clone());
            b.iter(|| {
                buf.clear();
                black_box(&delivery).encode_raw(&mut buf);
            });
        });
        // What the server did before `wire`: build the generated message, then encode it.
        group.bench_function(
            BenchmarkId::new("convert_and_encode_delivery", headers),
            |b| {
                b.iter(|| {
                    buf.clear();
                    let pb = pb::Delivery {
                        message: Some(convert::message(black_box(&delivery.message))),
                        delivery_id: delivery.delivery_id.clone(),
                        attempt: delivery.attempt,
                    };
                    prost::Message::encode_raw(&pb, &mut buf);
                });
            },
        );
    }

    let message = fixtures::message(4);
    group.bench_function("part/message_id_new", |b| b.iter(MessageId::new));
    group.bench_function("part/message_id_to_string", |b| {
        b.iter(|| black_box(&message.id()).to_string());
    });
    group.bench_function("part/topic_to_string", |b| {
        b.iter(|| black_box(&message.topic()).to_string());
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
