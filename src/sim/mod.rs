//! An in-process fake of the VideoGen REST API (`https://api.videogen.io`).
//!
//! hydrant's tests, benchmarks and `hydrant demo` need an upstream that behaves like VideoGen
//! (signed expiring URLs, hydrate vs. GET shapes, per-key rate limits, errors, webhooks) without
//! network access or an API key. The official Python SDK works against it directly
//! (`VideoGen(api_key="vg_sim_key_alpha", base_url=handle.base_url())`).
//!
//! # Routes
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /v1/me`, `GET /v1/account` | account JSON |
//! | `GET /v1/files?limit&cursor` | `{files, hasMore, nextCursor}`, files hydrated |
//! | `POST /v1/files/search` | `{results: [{similarity, file}]}`, substring match on `displayName` |
//! | `GET /v1/files/{id}` | StorageFile without signed URLs |
//! | `POST /v1/files/{id}/hydrate` | StorageFile with fresh signed URLs |
//! | `POST /v1/files/{id}/archive`, `.../enable-public-preview`, `.../disable-public-preview` | state changes |
//! | `POST /v1/tools/{tool}` (the SDK's 13 tools) | `202 {toolExecutionId, status: "pending"}` |
//! | `GET /v1/tools/executions[/{id}]`, `POST .../{id}/cancel` | pending on the first poll, then succeeded |
//! | `GET/POST /v1/webhooks/endpoints`, `DELETE /v1/webhooks/endpoints/{id}` | in-memory registry |
//! | `GET /cdn/{fileId}/{rendition}?X-Amz-...` | signature + expiry checked (403), real media (`Range`, CORS) |
//! | `GET /cdn/{fileId}/hls/{segment}?X-Amz-...` | an hls segment, signed by the URI its playlist lists |
//! | `GET /cdn/public/{fileId}` | public preview media, no signature |
//! | `OPTIONS /cdn/...` | CORS preflight (`Range` allowed) |
//! | `/_sim/...` | control plane, no auth (table in `control.rs`) |
//!
//! # Seeded files
//!
//! Each account gets `seed_files` files with ids `vg_file_<short>_<nnnn>` (1-based, 4 digits),
//! where `<short>` is the API key without its `vg_sim_key_` prefix (`alpha`, `beta`):
//!
//! | n | type | download | preview | thumbnail | hls | public preview |
//! |---|---|---|---|---|---|---|
//! | 0001 | VIDEO | ready | ready | ready | ready | no |
//! | 0002 | VIDEO | ready | **pending** | ready | ready | no |
//! | 0003 | VIDEO | **failed** | ready | ready | **skipped** (`url ""`, `expiresAt 0`) | no |
//! | 0004 | IMAGE | ready | ready | ready | skipped | **yes** (permanent url, `expiresAt null`) |
//! | 0005+ | VIDEO | ready | ready | ready | ready | no |
//!
//! Default accounts: `vg_sim_key_alpha` ("Alpha Studio", 20 files) and `vg_sim_key_beta`
//! ("Beta Labs", 5 files). Display names cycle through a fixed list and end in ` #<n>`.
//!
//! # Layout
//!
//! Data flows one way, down this table: each module uses only modules listed above it, and
//! this file only declares modules and re-exports the public API.
//!
//! | module | its one job | uses |
//! |---|---|---|
//! | `clock` | Unix time, ISO 8601 and `X-Amz-Date` formats | |
//! | `config` | [`SimConfig`], [`SimAccount`], [`FileSpec`], [`SourceStatuses`] | |
//! | `stats` | [`SimStats`], the request counters | |
//! | `http` | response type, `{"message","code"}` errors, bounded body reads, query and id parsing | |
//! | `faults` | [`Fault`] types, the fault queue, the control plane's fault JSON | |
//! | `webhook` | Standard Webhooks signing and delivery with retries, [`DeliveryReport`] | `clock` |
//! | `media` | the real media files the CDN serves (made by `media/make.sh`), the hls playlist | |
//! | `files` | the StorageFile model: seeding, rendering, presigned URLs, CDN bytes | `clock`, `config`, `media` |
//! | `state` | accounts, files, executions, counters, rate windows, faults behind one mutex | `clock`, `config`, `stats`, `faults`, `files` |
//! | `account` | `GET /v1/me` | `http`, `state` |
//! | `file_routes` | `GET /v1/files/{id}`, hydrate, archive, public-preview toggles | `http`, `files`, `state` |
//! | `listing` | `GET /v1/files` paging and `POST /v1/files/search` | `http`, `files`, `state` |
//! | `tools` | tool executions: start, poll, cancel, list | `clock`, `config`, `http`, `files`, `state` |
//! | `webhook_endpoints` | the `/v1/webhooks/endpoints` registry | `clock`, `http`, `state` |
//! | `cdn` | the fake CDN: signed renditions, hls playlists with signed segments, public previews, `Range`, CORS | `clock`, `http`, `files`, `media`, `state` |
//! | `route` | the URL table: method + path → route, counter key, rate-limit group | `state`, `tools` |
//! | `control` | the `/_sim` control plane | `config`, `http`, `faults`, `webhook`, `files`, `state` |
//! | `service` | one request's pipeline: count, fault, auth, rate limit, dispatch | `clock`, `http`, `faults`, `files`, `state`, the six route modules above, `route`, `control` |
//! | `server` | the accept loop and graceful shutdown | `state`, `service` |
//! | `handle` | [`start`] and [`SimHandle`], in-process control of a running instance | `config`, `stats`, `faults`, `webhook`, `state`, `server` |
//! | `cli` | `hydrant sim` ([`SimArgs`], [`run`]) | `config`, `handle` |
//!
//! HTTP-level tests live in `tests/`, one file per module they exercise; unit tests sit
//! beside their code.

mod account;
mod cdn;
mod cli;
mod clock;
mod config;
mod control;
mod faults;
mod file_routes;
mod files;
mod handle;
mod http;
mod listing;
mod media;
mod route;
mod server;
mod service;
mod state;
mod stats;
mod tools;
mod webhook;
mod webhook_endpoints;

#[cfg(test)]
mod tests;

pub use cli::{run, SimArgs};
pub use config::{FileSpec, SimAccount, SimConfig, SourceStatuses, DEFAULT_WEBHOOK_SECRET};
pub use faults::{Fault, FaultKind, FaultRoute};
pub use handle::{start, SimHandle};
pub use stats::SimStats;
pub use webhook::DeliveryReport;
