//! The gRPC edge: proto in, domain types to the [`crate::broker::Broker`], proto out.

pub mod admin_service;
pub mod auth;
pub mod broker_service;
pub mod codec;
pub mod convert;
pub mod details;
pub mod pipelined;
pub mod wire;
