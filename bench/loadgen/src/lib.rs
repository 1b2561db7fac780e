//! What the load generators share: `switchyard bench` (src/commands/bench) and the peers' programs
//! that run the same scenarios against NATS and Redis (bench/peers). One copy of the rules that make
//! their figures comparable: how publishers are held to a window of credit and paced, and how
//! receivers count what arrived, what was lost or duplicated, and how late; and how the CPU time
//! of the broker and of the load generator is sampled.

pub mod cpu;
pub mod credit;
pub mod latency;
pub mod measure;
pub mod pacing;
pub mod sequence;
