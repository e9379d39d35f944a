//! Everything that talks to the VideoGen API: the pooled client, the request shapes sent to
//! it, and the per-tenant limiter that protects its quota.

pub mod client;
pub mod limiter;
pub mod request;

pub use client::{UpstreamClient, UpstreamError};
pub use request::Reply;
