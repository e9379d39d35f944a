//! hydrant's integration tests, in one binary: each module is one area of hydrant's
//! behaviour, exercised end to end over loopback HTTP against the simulator, a fake upstream
//! or the `hydrant` binary itself. The shared harness is `tests/common`.
//!
//! `tests/alloc.rs` is a binary of its own: it installs a counting global allocator, which
//! here would count, and slow down, every test of this binary too.

// Test code: a failed set-up should fail the test loudly, and these tests time real
// servers and processes on the wall clock (hydrant's paused-time rules are unit tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod cache;
mod cache_expiry;
mod cache_invalidation;
mod cache_limits;
mod cache_priming;
mod cli_config;
mod cli_serve;
mod cli_sign_demo;
mod cluster;
mod cors;
mod fuzz_corpus;
mod gateway;
mod gateway_failures;
mod gateway_proxy;
mod gateway_streaming;
mod hostile_http;
mod hostile_upstream;
mod lifecycle;
mod redirect;
mod redirect_safety;
mod redis_harness;
mod serving_h2;
mod serving_limits;
mod serving_tls;
mod smoke;
mod webhooks;
