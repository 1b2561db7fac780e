//! The load generators behind `bench/compare.sh`: `nats-peer` and `redis-peer` run
//! `switchyard bench`'s scenarios (fanout, queue, exclusive, reqreply) against nats-server and
//! redis-server, with the same flags, the same load shape and the same counting, and print the
//! same report, so that the brokers can be put side by side.
//!
//! Everything that does not name a broker is written once here: the flags, the run's clock, the
//! publishers' and workers' loops, the request loops and the report. The credit window, the pacing,
//! the payload stamp, the receivers' counting (sequence sets, latency) and the CPU sampler come from
//! `switchyard-loadgen`, which `switchyard bench` uses too. [`nats`] and [`redis`] hold only the calls to each broker's
//! client. The crate is its own workspace, outside the root one, so CI never builds it.

pub mod clock;
pub mod config;
pub mod fanout;
pub mod nats;
pub mod program;
pub mod publish;
pub mod queue;
pub mod redis;
pub mod report;
pub mod reqreply;
