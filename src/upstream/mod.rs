//! Everything that talks to the VideoGen API: the pooled client and the per-tenant limiter.

pub mod client;
pub mod limiter;

pub use client::{UpstreamClient, UpstreamError};
