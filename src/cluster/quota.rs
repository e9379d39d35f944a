//! The cluster-wide hydrate quota: GCRA per tenant in one script on Redis's clock, so that
//! `hydrate_rate`/`hydrate_burst` hold for the whole cluster whatever the replicas' clocks
//! say, and a pause one replica learned from the upstream applies to all.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{scripts, Cluster};
use crate::tenant::Tenant;
use crate::upstream::limiter::{Refusal, SharedQuota};

impl SharedQuota for Cluster {
    fn take(
        &self,
        tenant: Tenant,
        interval: Duration,
        burst: u32,
        deadline: Instant,
    ) -> BoxFuture<'static, Option<Result<(), (Duration, Refusal)>>> {
        let this = self.clone();
        Box::pin(async move {
            let mut conn = this.conn();
            let mut inv = scripts::GCRA.key(this.tenant_key(&tenant, "q"));
            inv.key(this.tenant_key(&tenant, "p"))
                .arg(interval.as_micros().max(1) as u64)
                .arg(burst.max(1));
            let (verdict, micros) = this
                .run(
                    "quota",
                    deadline,
                    Cluster::invoke::<(i64, i64)>(&inv, &mut conn),
                )
                .await?;
            let wait = Duration::from_micros(micros.max(0) as u64);
            Some(match verdict {
                1 => Ok(()),
                2 => Err((wait, Refusal::UpstreamPaused)),
                _ => Err((wait, Refusal::LimiterSaturated)),
            })
        })
    }

    fn pause(&self, tenant: Tenant, pause: Duration) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            let mut conn = this.conn();
            let mut inv = scripts::PAUSE.key(this.tenant_key(&tenant, "p"));
            inv.arg(pause.as_millis().max(1) as u64);
            let _ = this
                .run(
                    "pause",
                    this.deadline(),
                    Cluster::invoke::<i64>(&inv, &mut conn),
                )
                .await;
        })
    }

    fn replicas(&self) -> u32 {
        Cluster::replicas(self)
    }

    fn deadline(&self) -> Instant {
        Cluster::deadline(self)
    }
}
