//! The simulator's shared state: accounts, files, executions, counters, rate-limit windows and
//! the fault queue, behind one mutex (every critical section is short and never awaits).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

use super::clock;
use super::config::{FileSpec, SimConfig, DEFAULT_WEBHOOK_SECRET};
use super::faults::FaultQueue;
use super::files::{self, RenderCtx, Signer, SimFile, View, STATUSES};
use super::stats::SimStats;

/// Most files per account (bounded memory).
const MAX_FILES_PER_ACCOUNT: usize = 100_000;
/// Most tool executions kept.
pub(super) const MAX_EXECUTIONS: usize = 100_000;
/// Most distinct file ids tracked for per-file hydrate counts.
const MAX_BY_FILE: usize = 100_000;

/// An immutable account record.
#[derive(Clone, Debug)]
pub(super) struct AccountInfo {
    pub(super) api_key: String,
    pub(super) name: String,
    pub(super) short: String,
}

/// Rate-limit endpoint groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Group {
    Hydrate,
    Default,
}

/// Usage within one hourly window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    start: u64,
    used: u32,
}

/// The result of a rate-limit check, rendered as `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RateInfo {
    pub(super) limit: u32,
    pub(super) remaining: u32,
    pub(super) reset: u64,
    pub(super) allowed: bool,
}

/// A simulated tool execution.
#[derive(Clone, Debug)]
pub(super) struct Execution {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) tool_type: String,
    pub(super) output_type: &'static str,
    pub(super) created_at: u64,
    pub(super) polls: u32,
    pub(super) status: &'static str,
    pub(super) output_file: Option<String>,
}

/// A registered webhook endpoint.
#[derive(Clone, Debug)]
pub(super) struct Endpoint {
    pub(super) owner: String,
    pub(super) json: Value,
}

/// Mutable state.
pub(super) struct Inner {
    pub(super) url_lifetime: Duration,
    pub(super) hydrate_quota: u32,
    pub(super) default_quota: u32,
    pub(super) files: HashMap<String, SimFile>,
    pub(super) order: HashMap<String, Vec<String>>,
    pub(super) next_seq: HashMap<String, usize>,
    pub(super) executions: HashMap<String, Execution>,
    pub(super) exec_order: Vec<String>,
    pub(super) prompts: HashMap<String, String>,
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) stats: SimStats,
    pub(super) by_file: HashMap<String, u64>,
    pub(super) windows: HashMap<(String, Group), Window>,
    pub(super) faults: FaultQueue,
}

/// Everything the server tasks and handles share.
pub(super) struct Shared {
    pub(super) addr: SocketAddr,
    pub(super) base_url: String,
    pub(super) signer: Signer,
    pub(super) accounts: Vec<AccountInfo>,
    pub(super) webhook_secret: Option<String>,
    pub(super) cdn_cors_origins: Vec<String>,
    pub(super) inner: Mutex<Inner>,
    pub(super) shutdown: watch::Sender<bool>,
}

fn short_name(api_key: &str, name: &str, idx: usize, taken: &[AccountInfo]) -> String {
    let from_key = api_key.strip_prefix("vg_sim_key_").unwrap_or("");
    let mut short: String = if !from_key.is_empty() {
        from_key.to_string()
    } else {
        name.split_whitespace().next().unwrap_or("").to_string()
    }
    .chars()
    .filter(char::is_ascii_alphanumeric)
    .map(|c| c.to_ascii_lowercase())
    .take(24)
    .collect();
    if short.is_empty() {
        short = format!("acct{idx}");
    }
    if taken.iter().any(|a| a.short == short) {
        short = format!("{short}{idx}");
    }
    short
}

impl Shared {
    /// Builds the state and seeds every account.
    pub(super) fn new(cfg: SimConfig, addr: SocketAddr) -> Self {
        let host = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => {
                SocketAddr::from(([127, 0, 0, 1], addr.port()))
            }
            ip if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
            }
            _ => addr,
        };
        let mut accounts: Vec<AccountInfo> = Vec::new();
        for (idx, a) in cfg.accounts.iter().enumerate() {
            if a.api_key.is_empty() || accounts.iter().any(|x| x.api_key == a.api_key) {
                continue;
            }
            let short = short_name(&a.api_key, &a.name, idx, &accounts);
            accounts.push(AccountInfo {
                api_key: a.api_key.clone(),
                name: a.name.clone(),
                short,
            });
        }
        let (shutdown, _) = watch::channel(false);
        let shared = Self {
            addr,
            base_url: format!("http://{host}"),
            signer: Signer::new(rand::random()),
            accounts,
            webhook_secret: cfg.webhook_secret.clone(),
            cdn_cors_origins: cfg.cdn_cors_origins.clone(),
            inner: Mutex::new(Inner {
                url_lifetime: cfg.url_lifetime,
                hydrate_quota: cfg.hydrate_quota_per_hour,
                default_quota: cfg.default_quota_per_hour,
                files: HashMap::new(),
                order: HashMap::new(),
                next_seq: HashMap::new(),
                executions: HashMap::new(),
                exec_order: Vec::new(),
                prompts: HashMap::new(),
                endpoints: Vec::new(),
                stats: SimStats::default(),
                by_file: HashMap::new(),
                windows: HashMap::new(),
                faults: FaultQueue::default(),
            }),
            shutdown,
        };
        for a in &cfg.accounts {
            for n in 1..=a.seed_files.min(MAX_FILES_PER_ACCOUNT) {
                let _ = shared.create_file(
                    &a.api_key,
                    files::seed_spec(n, &cfg.seed_skipped, cfg.seed_description_bytes),
                    None,
                );
            }
        }
        shared
    }

    /// Locks the state; a poisoned lock is recovered (the state stays usable).
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The account for a bearer token.
    pub(super) fn account(&self, api_key: &str) -> Option<&AccountInfo> {
        self.accounts.iter().find(|a| a.api_key == api_key)
    }

    /// Creates a file; `tool` records the producing tool type and execution id.
    pub(super) fn create_file(
        &self,
        api_key: &str,
        spec: FileSpec,
        tool: Option<(&str, &str)>,
    ) -> Option<String> {
        let account = self.account(api_key)?;
        let mut inner = self.lock();
        inner.insert_file(account, spec, tool)
    }

    /// Renders a live (not archived) file visible to `owner` (any owner when `None`).
    pub(super) fn render_file(
        &self,
        file_id: &str,
        owner: Option<&str>,
        view: View,
    ) -> Option<Value> {
        let (file, lifetime) = {
            let inner = self.lock();
            let file = inner.files.get(file_id)?;
            if file.archived || owner.is_some_and(|o| o != file.owner) {
                return None;
            }
            (file.clone(), inner.url_lifetime)
        };
        Some(self.render(&file, view, lifetime))
    }

    /// Renders a file snapshot.
    pub(super) fn render(&self, file: &SimFile, view: View, lifetime: Duration) -> Value {
        let ctx = RenderCtx {
            base_url: &self.base_url,
            signer: &self.signer,
            now: clock::now_f64(),
            lifetime,
        };
        files::render(file, view, &ctx)
    }

    /// `{event, fileId, occurredAt, file}` with a hydrated file.
    pub(super) fn file_event(&self, event: &str, file_id: &str) -> Option<Value> {
        let file = self.render_file(file_id, None, View::Hydrated)?;
        Some(json!({
            "event": event,
            "fileId": file_id,
            "occurredAt": clock::iso8601(clock::now_secs()),
            "file": file,
        }))
    }

    /// The per-call secret, else the configured one, else [`DEFAULT_WEBHOOK_SECRET`].
    pub(super) fn webhook_secret_or(&self, secret: &str) -> String {
        if !secret.is_empty() {
            return secret.to_string();
        }
        self.webhook_secret
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_WEBHOOK_SECRET.to_string())
    }

    /// Resolves when shutdown has been requested.
    pub(super) async fn wait_shutdown(&self) {
        let mut rx = self.shutdown.subscribe();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Inner {
    /// Stores a new file for `account` and returns its id (`None` past the per-account cap).
    pub(super) fn insert_file(
        &mut self,
        account: &AccountInfo,
        spec: FileSpec,
        tool: Option<(&str, &str)>,
    ) -> Option<String> {
        let seq = self.next_seq.entry(account.api_key.clone()).or_insert(0);
        if *seq >= MAX_FILES_PER_ACCOUNT {
            return None;
        }
        *seq += 1;
        let id = format!("vg_file_{}_{:04}", account.short, *seq);
        let mut file =
            SimFile::from_spec(id.clone(), account.api_key.clone(), spec, clock::now_secs());
        if let Some((tool_type, exec)) = tool {
            file.source_tool_type = Some(tool_type.to_string());
            file.source_tool_execution_id = Some(exec.to_string());
        }
        self.files.insert(id.clone(), file);
        self.order
            .entry(account.api_key.clone())
            .or_default()
            .push(id.clone());
        Some(id)
    }

    /// Zeroes the counters.
    pub(super) fn reset_stats(&mut self) {
        self.stats = SimStats::default();
        self.by_file.clear();
    }

    /// Sets a rendition's status; false when anything is unknown.
    pub(super) fn set_status(&mut self, file_id: &str, rendition: &str, status: &str) -> bool {
        if !STATUSES.contains(&status) {
            return false;
        }
        match self
            .files
            .get_mut(file_id)
            .and_then(|f| f.status_mut(rendition))
        {
            Some(slot) => {
                *slot = status.to_string();
                true
            }
            None => false,
        }
    }

    /// Counts a hydrate call for a file id.
    pub(super) fn count_file_hydrate(&mut self, file_id: &str) {
        if let Some(n) = self.by_file.get_mut(file_id) {
            *n += 1;
        } else if self.by_file.len() < MAX_BY_FILE {
            self.by_file.insert(file_id.to_string(), 1);
        }
    }

    /// Quota of a group.
    fn quota(&self, group: Group) -> u32 {
        match group {
            Group::Hydrate => self.hydrate_quota,
            Group::Default => self.default_quota,
        }
    }

    /// The window state without consuming (for fault responses).
    pub(super) fn peek_rate(&self, api_key: &str, group: Group, now: u64) -> RateInfo {
        let start = now - now % 3600;
        let limit = self.quota(group);
        let used = self
            .windows
            .get(&(api_key.to_string(), group))
            .filter(|w| w.start == start)
            .map_or(0, |w| w.used);
        RateInfo {
            limit,
            remaining: limit.saturating_sub(used),
            reset: start + 3600,
            allowed: used < limit,
        }
    }

    /// Consumes one call from the key's window of `group`, if any is left.
    pub(super) fn take_rate(&mut self, api_key: &str, group: Group, now: u64) -> RateInfo {
        let start = now - now % 3600;
        let limit = self.quota(group);
        let w = self
            .windows
            .entry((api_key.to_string(), group))
            .or_insert(Window { start, used: 0 });
        if w.start != start {
            *w = Window { start, used: 0 };
        }
        let allowed = w.used < limit;
        if allowed {
            w.used += 1;
        }
        RateInfo {
            limit,
            remaining: limit.saturating_sub(w.used),
            reset: start + 3600,
            allowed,
        }
    }
}
