//! Switchyard: a message broker that speaks gRPC.
//!
//! The layout follows the architecture: [`broker`] is the seam (the `Broker` trait and the domain types
//! it speaks), [`memory`] is the in-memory implementation of it (plain Rust routers, no gRPC),
//! [`transport`] is the gRPC edge that converts between `pb` and the domain, [`auth`] says which
//! token may do what, and [`server`] wires the edge to a listener.

pub mod activity;
pub mod auth;
pub mod broker;
pub mod budget;
pub mod config;
mod connections;
pub mod durable;
pub mod error;
mod http;
pub mod journal;
pub mod memory;
pub mod message;
pub mod nats;
pub mod ready;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod topic;
pub mod transport;
pub mod validate;

/// The code generated from `proto/switchyard/v1`. Lints are relaxed for generated code only: prost
/// keeps a `oneof` inline, so `SubscribeResponse` has one large variant by design.
#[allow(clippy::large_enum_variant)]
pub mod pb {
    tonic::include_proto!("switchyard.v1");
    // The servers, generated apart from the messages (build.rs says why).
    include!(concat!(env!("OUT_DIR"), "/switchyard.v1.Broker.rs"));
    include!(concat!(env!("OUT_DIR"), "/switchyard.v1.Admin.rs"));

    /// The encoded descriptors of the schema, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("switchyard_descriptor");
}
