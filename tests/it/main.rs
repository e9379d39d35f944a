//! hydrant's integration tests, in one binary: each module is one area of hydrant's
//! behaviour, run end to end against the simulator or a fake upstream on loopback.
//!
//! `tests/alloc.rs` is not part of this binary: it installs a counting global allocator,
//! which would count (and slow down) every test here too.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod cache;
mod cache_limits;
mod cli;
mod gateway;
mod lifecycle;
mod redirect;
mod smoke;
mod webhooks;
