//! The Rust client of Switchyard, a message broker that speaks gRPC.
//!
//! One [`Client`] (a cheap `Clone` over one HTTP/2 connection) serves all four patterns:
//! - publish/subscribe: [`Client::publish`], [`Client::subscribe`], and the batching [`Publisher`];
//! - work queues and exclusive consumers: [`Client::consume`], whose [`Delivery`]s are settled with
//!   `ack`, `nack`, `reject` or `extend` (batched into few Ack calls; a delivery dropped unsettled is
//!   nacked);
//! - request/reply: [`Client::request`] and the responder loop [`Client::serve`];
//! - group administration: [`Client::admin`].
//!
//! Every unary call has a timeout. Streams reconnect by themselves when the connection drops, without
//! ending: a subscription says so with an [`Event::Disconnected`] where it may have missed messages,
//! and a consumer, which misses nothing (the broker redelivers what it held), calls its
//! [`ConsumerBuilder::on_disconnect`] callback if it has one.
//!
//! With the `otel` feature (off by default), messages carry OpenTelemetry trace context as W3C
//! `traceparent` and `tracestate` headers: publishing and requesting write the current context,
//! `Message::trace_context` and `Delivery::trace_context` read it back, and `serve` answers each
//! request within its trace.

#![warn(missing_docs)]

mod admin;
mod batching;
mod client;
mod consumer;
mod error;
mod message;
mod publish_stream;
mod publisher;
mod reconnect;
mod request;
mod request_channel;
mod serve;
mod subscription;
pub mod trace;

pub use admin::{Admin, GroupConfig, GroupInfo};
pub use client::{Client, ClientBuilder};
pub use consumer::{ConsumeMode, Consumer, ConsumerBuilder, Delivery};
pub use error::{Error, Result};
pub use message::{Message, OutgoingMessage, Published};
pub use publisher::{PendingPublish, Publisher, PublisherBuilder};
pub use request::RequestBuilder;
pub use serve::ServeOptions;
pub use subscription::{Event, Subscription};

/// The code generated from the broker's schema, for what this crate does not wrap.
#[allow(clippy::large_enum_variant, missing_docs)]
pub mod pb {
    tonic::include_proto!("switchyard.v1");
}

/// The repository README's Rust example, compiled as a doctest so that it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
