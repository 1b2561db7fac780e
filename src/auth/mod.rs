//! Who may do what: bearer tokens and the permissions each one carries. Plain Rust, no gRPC; the
//! transport applies it at the edge (`transport::auth`).

pub mod permissions;
pub mod tokens;

pub use permissions::{Action, Denied, Permissions, Rule};
pub use tokens::{AuthError, EmptyToken, Identity, TokenDigest, TokenStore};
