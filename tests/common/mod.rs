//! Shared harness for the integration tests in `tests/it`: the simulator and hydrant on
//! ephemeral loopback ports ([`Stack`]), a small HTTP client, fake upstreams and a fake webhook
//! receiver, the `hydrant` binary as a child process, and the requests and checks several test
//! modules make. Everything binds 127.0.0.1 and every wait is bounded.
//!
//! - [`client`]: [`HttpClient`], [`Resp`], raw hyper clients, [`assert_error`].
//! - [`fake_upstream`]: servers standing in for VideoGen (fixed JSON, echo, raw bytes, refused).
//! - [`webhook_receiver`]: a receiver for the webhooks hydrant relays.
//! - [`raw_http`]: exact bytes: a raw client and an upstream that records what it receives.
//! - [`process`]: the `hydrant` binary run as a child process.
//! - [`requests`]: hydrate and redirect calls, simulator faults.
//! - [`metrics`]: `/metrics` scraped and read.
//! - [`timing`]: bounded polling and timing windows that tolerate a stalled machine.

pub mod client;
pub mod fake_upstream;
pub mod metrics;
pub mod process;
pub mod raw_http;
pub mod redis;
pub mod requests;
pub mod serving;
pub mod timing;
pub mod webhook_receiver;

use std::sync::Arc;

use hydrant::app::App;
use hydrant::config::{Config, ServeArgs};
use hydrant::server::Running;
use hydrant::sim::{self, SimConfig, SimHandle};

pub use client::*;
pub use metrics::*;
pub use requests::*;
pub use timing::*;

/// The simulator account hydrant uses as its own key.
pub const ALPHA: &str = "vg_sim_key_alpha";
/// A second simulator account.
pub const BETA: &str = "vg_sim_key_beta";
/// A fully ready seeded VIDEO of alpha.
pub const READY: &str = "vg_file_alpha_0001";
/// Preview pending.
pub const PENDING: &str = "vg_file_alpha_0002";
/// hls skipped, download failed.
pub const PARTIAL: &str = "vg_file_alpha_0003";
/// IMAGE with public preview.
pub const PUBLIC: &str = "vg_file_alpha_0004";
/// Another seeded, fully ready alpha file.
pub const READY5: &str = "vg_file_alpha_0005";
/// A third seeded, fully ready alpha file.
pub const READY6: &str = "vg_file_alpha_0006";
/// A client token, for stacks started with it: hydrant swaps it for the proxy key `ALPHA`, so
/// `/v1` calls with it share the proxy key's entries with the `/files` routes.
pub const CLIENT_TOKEN: &str = "tok_frontend_1";

/// A simulator plus a hydrant in front of it.
pub struct Stack {
    pub sim: SimHandle,
    pub hydrant: Running,
    pub app: Arc<App>,
    pub client: HttpClient,
}

impl Stack {
    /// Simulator with defaults, hydrant with the proxy key `ALPHA` and `args` on top.
    pub async fn start(args: ServeArgs) -> Stack {
        Self::start_with(SimConfig::default(), args).await
    }

    /// Like [`Stack::start`], with [`CLIENT_TOKEN`] as hydrant's one client token.
    pub async fn with_client_token(args: ServeArgs) -> Stack {
        Self::start(ServeArgs {
            client_tokens: Some(CLIENT_TOKEN.into()),
            ..args
        })
        .await
    }

    /// Custom simulator config.
    pub async fn start_with(sim_cfg: SimConfig, args: ServeArgs) -> Stack {
        let sim = sim::start(sim_cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator starts");
        let args = ServeArgs {
            listen: Some(args.listen.unwrap_or_else(|| "127.0.0.1:0".into())),
            upstream: Some(args.upstream.clone().unwrap_or_else(|| sim.base_url())),
            api_key: args.api_key.clone().or_else(|| Some(ALPHA.into())),
            ..args
        };
        let config = Config::resolve(args).expect("valid config");
        let app = App::new(config).expect("app builds");
        let hydrant = Running::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("hydrant starts");
        Stack {
            sim,
            hydrant,
            app,
            client: HttpClient::new(),
        }
    }

    /// Absolute URL on hydrant.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.hydrant.url(), path)
    }

    /// Absolute URL on the simulator.
    pub fn sim_url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    /// Stop both.
    pub async fn stop(self) {
        let _ = self.hydrant.stop().await;
        self.sim.shutdown();
    }
}
