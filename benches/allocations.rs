//! Heap allocations per operation on the routing hot paths, counted by a global allocator that wraps
//! the system one. Criterion says how long a path takes; this says how much of it is allocation, which
//! is what the style asks to keep near zero on the fan-out path.
//!
//! Run with `cargo bench --bench allocations`. It prints a Markdown table: allocations (and
//! reallocations) per operation and the bytes they asked for, averaged over 1 000 operations after
//! one warm-up round, so one-off growth of maps and queues shows as a fraction.

#[path = "routing/fixtures.rs"]
mod fixtures;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use switchyard::{
    broker::{Broker, Delivery, Settlement, SubscriptionEvent},
    config::Config,
    memory::{
        MemoryBroker,
        group_state::{GroupState, Settle},
        sublist::Sublist,
    },
    message::MessageId,
    transport::{
        convert,
        wire::{self, Encode as _},
    },
};
use tokio::{sync::Notify, time::Instant};

use self::fixtures::{CHUNK, Fanout, WorkQueue};

/// The system allocator, counting every allocation and reallocation with the size asked for.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn record(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

// SAFETY: every call is passed on unchanged to `System`, which upholds the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's guarantees for `layout` are the ones `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator, which got them from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations and bytes: totals so far, or what happened between two readings.
#[derive(Clone, Copy)]
struct Counted {
    allocations: u64,
    bytes: u64,
}

impl Counted {
    fn now() -> Self {
        Self {
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    /// What was allocated since `self` was read.
    fn since(self) -> Self {
        let now = Self::now();
        Self {
            allocations: now.allocations - self.allocations,
            bytes: now.bytes - self.bytes,
        }
    }

    /// Prints one table row: what was counted, divided by `ops`.
    fn per(self, ops: u64, path: &str) {
        let allocations = self.allocations as f64 / ops as f64;
        let bytes = self.bytes as f64 / ops as f64;
        println!("| {path} | {allocations:.2} | {bytes:.0} |");
    }
}

fn main() {
    println!("| path (per operation) | allocations | bytes |");
    println!("|---|---:|---:|");
    sublist();
    group_state();
    let rt = fixtures::runtime();
    rt.block_on(broker());
    wire();
}

fn sublist() {
    let patterns = fixtures::patterns(1_000);
    let mut list = Sublist::default();
    for (index, pattern) in patterns.iter().enumerate() {
        list.insert(pattern, index);
    }
    let hit = fixtures::hit_topic(&patterns);
    let counter = Counted::now();
    for _ in 0..CHUNK {
        list.for_each_match(&hit, |entry| {
            black_box(entry);
        });
    }
    counter
        .since()
        .per(CHUNK, "`Sublist::for_each_match`, 1 000 patterns");
    let extra = fixtures::pattern("svc7.*.id42");
    let counter = Counted::now();
    for _ in 0..CHUNK {
        let entry = list.insert(&extra, usize::MAX);
        black_box(list.remove(&extra, entry));
    }
    counter
        .since()
        .per(CHUNK, "`Sublist::insert` + `remove`, 1 000 patterns");
    let miss = fixtures::topic("billing.invoice.paid");
    let counter = Counted::now();
    for _ in 0..CHUNK {
        list.for_each_match(&miss, |entry| {
            black_box(entry);
        });
    }
    counter
        .since()
        .per(CHUNK, "`Sublist::for_each_match`, no match");
}

fn group_state() {
    let message = fixtures::message(0);
    let now = Instant::now();
    let mut state = GroupState::new(fixtures::group_settings(), now);
    let consumer = state
        .attach(fixtures::consumer_terms(), Arc::new(Notify::new()))
        .expect("a shared group takes every consumer");
    for round in 0..2 {
        let counter = Counted::now();
        (0..CHUNK).for_each(|_| {
            state.enqueue(message.clone());
        });
        let enqueued = counter.since();
        let mut deliveries = Vec::with_capacity(CHUNK as usize);
        let counter = Counted::now();
        for _ in 0..CHUNK {
            deliveries.extend(state.take(consumer, now).map(|handout| handout.delivery));
        }
        let taken = counter.since();
        let counter = Counted::now();
        for delivery in deliveries {
            black_box(state.settle(delivery, Settle::Ack, now).ok());
        }
        let settled = counter.since();
        // The first round grows the queue and maps; the second shows the steady state.
        if round == 1 {
            enqueued.per(CHUNK, "`GroupState::enqueue`");
            taken.per(CHUNK, "`GroupState::take`");
            settled.per(CHUNK, "`GroupState::settle` (ack)");
        }
    }
}

async fn broker() {
    let idle = MemoryBroker::new(Config::default());
    let unheard = fixtures::new_message("nobody.listens", 0);
    for round in 0..2 {
        let calls = fixtures::singles(&unheard, CHUNK);
        let counter = Counted::now();
        for batch in calls {
            idle.publish(batch).await.expect("published");
        }
        if round == 1 {
            counter
                .since()
                .per(CHUNK, "`Broker::publish`, no subscribers");
        }
    }

    let mut queue = WorkQueue::new().await;
    for round in 0..2 {
        let calls = fixtures::singles(&queue.message, CHUNK);
        let counter = Counted::now();
        for batch in calls {
            queue
                .broker
                .publish(batch)
                .await
                .expect("the group has room");
        }
        let published = counter.since();
        let counter = Counted::now();
        let mut ids = Vec::with_capacity(CHUNK as usize);
        for _ in 0..CHUNK {
            ids.push(queue.next().await.delivery_id);
        }
        let consumed = counter.since();
        let counter = Counted::now();
        queue.ack(ids).await;
        if round == 1 {
            published.per(CHUNK, "`Broker::publish`, group with 1 consumer");
            consumed.per(CHUNK, "consumer stream `next()`");
            counter
                .since()
                .per(CHUNK, "`Broker::settle`, 1 000 ids in one call (per id)");
        }
    }
    let batch = 100;
    for round in 0..2 {
        let calls: Vec<Vec<_>> = (0..CHUNK / batch)
            .map(|_| (0..batch).map(|_| queue.message.clone()).collect())
            .collect();
        let counter = Counted::now();
        for call in calls {
            queue
                .broker
                .publish(call)
                .await
                .expect("the group has room");
        }
        if round == 1 {
            counter
                .since()
                .per(CHUNK, "`Broker::publish`, batches of 100 (per message)");
        }
        queue.drain(CHUNK).await;
    }
    queue.fill(CHUNK).await;
    let ids = queue.take_ids(CHUNK).await;
    let calls: Vec<Settlement> = ids
        .into_iter()
        .map(|id| Settlement {
            ack: vec![id],
            ..Settlement::default()
        })
        .collect();
    let counter = Counted::now();
    for settlement in calls {
        black_box(queue.broker.settle(settlement).await.expect("settled"));
    }
    counter
        .since()
        .per(CHUNK, "`Broker::settle`, 1 id per call");

    for subscribers in [1, 4, 64] {
        let mut fanout = Fanout::new(subscribers).await;
        for round in 0..2 {
            let calls = fixtures::singles(&fanout.message, CHUNK);
            let counter = Counted::now();
            for call in calls {
                fanout.broker.publish(call).await.expect("published");
            }
            let published = counter.since();
            let counter = Counted::now();
            fanout.drain(CHUNK).await;
            if round == 1 {
                published.per(
                    CHUNK,
                    &format!("`Broker::publish`, fan-out to {subscribers}"),
                );
                counter.since().per(
                    CHUNK * subscribers as u64,
                    &format!("subscription stream `next()`, fan-out to {subscribers} (per copy)"),
                );
            }
        }
    }
}

fn wire() {
    for headers in [0, 4] {
        let message = fixtures::message(headers);
        let delivery = Delivery {
            message: message.clone(),
            delivery_id: "3.1e240".into(),
            attempt: 1,
        };
        let counter = Counted::now();
        for _ in 0..CHUNK {
            black_box(convert::message(&message));
        }
        counter
            .since()
            .per(CHUNK, &format!("`convert::message`, {headers} headers"));
        // tonic writes every response of a stream into one reused buffer; so does this.
        let mut buf = Vec::with_capacity(4096);
        let event = wire::SubscribeResponse(SubscriptionEvent::Message(message.clone()));
        let counter = Counted::now();
        for _ in 0..CHUNK {
            buf.clear();
            event.encode_raw(&mut buf);
        }
        counter.since().per(
            CHUNK,
            &format!("writing a Subscribe event (`wire`), {headers} headers"),
        );
        let delivery = wire::Delivery(delivery);
        let counter = Counted::now();
        for _ in 0..CHUNK {
            buf.clear();
            delivery.encode_raw(&mut buf);
        }
        counter.since().per(
            CHUNK,
            &format!("writing a delivery (`wire`), {headers} headers"),
        );
    }
    let counter = Counted::now();
    for _ in 0..CHUNK {
        black_box(MessageId::new());
    }
    counter.since().per(CHUNK, "`MessageId::new`");
}
