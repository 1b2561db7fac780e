//! The in-memory broker through the `Broker` seam, as the gRPC service calls it: publishing (with no
//! one listening, into a group, in batches), a consumer's stream handing out deliveries, settling by
//! delivery id, and fan-out to 1, 4 and 64 subscribers.

use std::{hint::black_box, time::Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use switchyard::{
    broker::{Broker, Settlement},
    config::Config,
    memory::MemoryBroker,
};
use tokio::runtime::Runtime;

use super::{
    chunked_async,
    fixtures::{self, CHUNK, Fanout, WorkQueue},
};

/// Messages per call in the batched publish.
const BATCH: u64 = 100;

pub fn benches(c: &mut Criterion) {
    let rt = fixtures::runtime();
    publish(c, &rt);
    consume(c, &rt);
    settle(c, &rt);
    fanout(c, &rt);
}

fn publish(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("publish");

    let broker = rt.block_on(async { MemoryBroker::new(Config::default()) });
    let unheard = fixtures::new_message("nobody.listens", 0);
    group.bench_function("no_subscribers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(chunked_async(iters, CHUNK, async |n| {
                let calls = fixtures::singles(&unheard, n);
                let start = Instant::now();
                for batch in calls {
                    broker.publish(batch).await.expect("published");
                }
                start.elapsed()
            }))
        });
    });

    let mut queue = rt.block_on(WorkQueue::new());
    group.bench_function("group_1_consumer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(chunked_async(iters, CHUNK, async |n| {
                let calls = fixtures::singles(&queue.message, n);
                let start = Instant::now();
                for batch in calls {
                    queue
                        .broker
                        .publish(batch)
                        .await
                        .expect("the group has room");
                }
                let elapsed = start.elapsed();
                queue.drain(n).await;
                elapsed
            }))
        });
    });

    // What one of the small vectors that routing builds per call costs: allocating and freeing it.
    group.bench_function("part/small_vec_alloc", |b| {
        b.iter(|| vec![black_box(1_usize)]);
    });

    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("group_1_consumer_batch_100", |b| {
        b.iter_custom(|iters| {
            rt.block_on(chunked_async(iters, CHUNK / BATCH, async |n| {
                let calls: Vec<Vec<_>> = (0..n)
                    .map(|_| (0..BATCH).map(|_| queue.message.clone()).collect())
                    .collect();
                let start = Instant::now();
                for batch in calls {
                    queue
                        .broker
                        .publish(batch)
                        .await
                        .expect("the group has room");
                }
                let elapsed = start.elapsed();
                queue.drain(n * BATCH).await;
                elapsed
            }))
        });
    });
    group.finish();
}

fn consume(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("consume");
    let mut queue = rt.block_on(WorkQueue::new());
    group.bench_function("stream_next", |b| {
        b.iter_custom(|iters| {
            rt.block_on(chunked_async(iters, CHUNK, async |n| {
                queue.fill(n).await;
                let mut ids = Vec::with_capacity(n as usize);
                let start = Instant::now();
                for _ in 0..n {
                    ids.push(queue.next().await.delivery_id);
                }
                let elapsed = start.elapsed();
                queue.ack(ids).await;
                elapsed
            }))
        });
    });
    group.finish();
}

fn settle(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("settle");
    let mut queue = rt.block_on(WorkQueue::new());
    for ids_per_call in [1, BATCH] {
        group.throughput(Throughput::Elements(ids_per_call));
        group.bench_function(BenchmarkId::new("ack_ids", ids_per_call), |b| {
            b.iter_custom(|iters| {
                rt.block_on(chunked_async(iters, CHUNK / ids_per_call, async |n| {
                    queue.fill(n * ids_per_call).await;
                    let ids = queue.take_ids(n * ids_per_call).await;
                    let calls: Vec<Settlement> = ids
                        .chunks(ids_per_call as usize)
                        .map(|ack| Settlement {
                            ack: ack.to_vec(),
                            ..Settlement::default()
                        })
                        .collect();
                    let start = Instant::now();
                    for settlement in calls {
                        let unknown = queue.broker.settle(settlement).await.expect("settled");
                        debug_assert!(unknown.is_empty());
                    }
                    start.elapsed()
                }))
            });
        });
    }
    group.finish();
}

fn fanout(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("fanout");
    for subscribers in [1, 4, 64] {
        let mut fanout = rt.block_on(Fanout::new(subscribers));
        group.bench_function(BenchmarkId::new("publish", subscribers), |b| {
            b.iter_custom(|iters| {
                rt.block_on(chunked_async(iters, CHUNK, async |n| {
                    let calls = fixtures::singles(&fanout.message, n);
                    let start = Instant::now();
                    for batch in calls {
                        fanout.broker.publish(batch).await.expect("published");
                    }
                    let elapsed = start.elapsed();
                    fanout.drain(n).await;
                    elapsed
                }))
            });
        });
        // What every subscriber's stream adds: each reads every message once.
        group.bench_function(BenchmarkId::new("publish_and_drain", subscribers), |b| {
            b.iter_custom(|iters| {
                rt.block_on(chunked_async(iters, CHUNK, async |n| {
                    let calls = fixtures::singles(&fanout.message, n);
                    let start = Instant::now();
                    for batch in calls {
                        fanout.broker.publish(batch).await.expect("published");
                    }
                    fanout.drain(n).await;
                    start.elapsed()
                }))
            });
        });
    }
    group.finish();
}
